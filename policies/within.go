package policies

import (
	"fmt"
	"strings"
)

// Within fails with an error wrapping ErrTooWide, saying what exceeds limit, unless every host p
// allows is allowed by limit (allow-all ⊇ allow ⊇ deny-all; in allow mode every pattern of p must
// be covered by a pattern of limit).
//
// Presets count by their domains: a limit "allow:github" covers a plain domain "api.github.com",
// and a limit listing github's domains covers the github preset. A wildcard covers the exact hosts
// and the narrower wildcards under it ("*.example.com" covers "a.example.com" and
// "*.a.example.com", never "example.com"); an exact host covers only itself. Only hosts are
// compared, not credentials (see EnvNames). An invalid p fails with its ErrInvalid error; an
// invalid limit too, prefixed "operator's limit: ".
func Within(p, limit Policy) error {
	np, err := Normalize(p)
	if err != nil {
		return err
	}
	nl, err := Normalize(limit)
	if err != nil {
		return fmt.Errorf("operator's limit: %w", err)
	}
	if nl.Mode == AllowAll || np.Mode == DenyAll {
		return nil
	}
	if nl.Mode == DenyAll {
		return fmt.Errorf("%w: the operator's limit is \"deny-all\", so the sandbox may not reach the network; policy %q asks for more; use mode \"deny-all\"", ErrTooWide, np.String())
	}
	if np.Mode == AllowAll {
		return fmt.Errorf("%w: mode \"allow-all\" is not allowed by the operator's limit %q; use mode \"allow\" with the services and domains you need within it", ErrTooWide, nl.String())
	}
	allowed := nl.Domains
	for _, s := range nl.Services {
		d, _, _ := expand(s)
		allowed = append(allowed, d...)
	}
	var problems []string
	count := 0 // uncovered domains, for the verb
	for _, d := range np.Domains {
		if !coveredBy(d, allowed) {
			problems = append(problems, fmt.Sprintf("domain %q", d))
			count++
		}
	}
	for _, s := range np.Services {
		domains, _, _ := expand(s)
		var out []string
		for _, d := range domains {
			if !coveredBy(d, allowed) {
				out = append(out, fmt.Sprintf("%q", d))
			}
		}
		count += len(out)
		switch len(out) {
		case 0:
		case 1:
			problems = append(problems, fmt.Sprintf("domain %s of service %q", out[0], s.ID))
		default:
			problems = append(problems, fmt.Sprintf("domains %s of service %q", strings.Join(out, ", "), s.ID))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	verb := "is"
	if count > 1 {
		verb = "are"
	}
	return fmt.Errorf("%w: %s %s not allowed by the operator's limit %q; narrow the policy, or ask the operator to widen the limit",
		ErrTooWide, strings.Join(problems, ", "), verb, nl.String())
}

// coveredBy reports whether some pattern of limit allows every host pattern d allows (all
// canonical).
func coveredBy(d string, limit []string) bool {
	for _, l := range limit {
		if covers(l, d) {
			return true
		}
	}
	return false
}

func covers(l, d string) bool {
	if l == d {
		return true
	}
	suffix, wild := strings.CutPrefix(l, "*.")
	if !wild {
		return false
	}
	if ds, ok := strings.CutPrefix(d, "*."); ok {
		return ds == suffix || strings.HasSuffix(ds, "."+suffix)
	}
	return strings.HasSuffix(d, "."+suffix)
}
