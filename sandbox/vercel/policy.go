package vercel

import (
	"fmt"
	"maps"
	"strings"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// unsettable are request headers Vercel's egress proxy cannot inject: they describe the request
// itself rather than add to it. A policy asking for one is refused rather than half applied.
var unsettable = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"upgrade": true, "expect": true, "te": true, "trailer": true, "keep-alive": true,
}

// compilePolicy turns a sandkit policy into Vercel's network policy. Credentials are resolved with
// getenv now (their values travel to Vercel's API, which injects them at its egress proxy; they
// never enter the VM). It returns warnings for what Vercel enforces differently, and an error
// wrapping sandbox.ErrInvalid, saying why, for what it cannot express.
func compilePolicy(p policies.Policy, getenv policies.Getenv) (networkPolicy, []string, error) {
	if p.Mode == "" {
		p = policies.Deny() // the zero policy, as on every provider
	}
	rules, err := policies.Compile(p, getenv)
	if err != nil {
		return networkPolicy{}, nil, fmt.Errorf("%w: %v", sandbox.ErrInvalid, err)
	}
	switch rules.Mode {
	case policies.AllowAll:
		return networkPolicy{Mode: "allow-all"}, nil, nil
	case policies.DenyAll:
		return networkPolicy{Mode: "deny-all"}, nil, nil
	}
	np := networkPolicy{Mode: "custom"}
	var wild []string
	for _, h := range rules.Hosts {
		for name := range h.Headers {
			if unsettable[strings.ToLower(name)] {
				return networkPolicy{}, nil, fmt.Errorf("%w: the policy injects header %q on %s, which Vercel's egress proxy cannot set (it describes the request itself); the vercel provider cannot enforce this policy, use the local provider or drop that header", sandbox.ErrInvalid, name, h.Pattern)
			}
		}
		np.AllowedDomains = append(np.AllowedDomains, h.Pattern)
		if len(h.Headers) > 0 {
			np.Injection = append(np.Injection, injectionRule{Domain: h.Pattern, Headers: maps.Clone(h.Headers)})
		}
		if strings.HasPrefix(h.Pattern, "*.") {
			wild = append(wild, h.Pattern)
		}
	}
	if len(np.AllowedDomains) == 0 {
		return networkPolicy{Mode: "deny-all"}, nil, nil
	}
	var warnings []string
	if len(wild) > 0 {
		warnings = append(warnings, fmt.Sprintf("on Vercel a wildcard stands for one label: %s matches a.%s but not a.b.%s; name deeper hosts explicitly if you need them", strings.Join(wild, ", "), strings.TrimPrefix(wild[0], "*."), strings.TrimPrefix(wild[0], "*.")))
	}
	return np, warnings, nil
}
