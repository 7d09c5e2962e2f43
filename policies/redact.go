package policies

import (
	"fmt"
	"slices"
	"strings"
)

// Durable fails with an error wrapping ErrSecret (naming the service) when p holds a literal
// secret; durable policies (workspace defaults, setup templates) must read credentials from the
// environment.
//
// A redacted credential is refused too (it is a literal secret that is gone, so the policy could
// never be applied). The message names the services, never a value.
func Durable(p Policy) error {
	var literal, redacted []string
	for _, s := range p.Services {
		creds := []Credential{}
		if s.Credential != nil {
			creds = append(creds, *s.Credential)
		}
		for _, h := range s.Headers {
			creds = append(creds, h.Credential)
		}
		for _, c := range creds {
			switch {
			case c.Value != "":
				literal = appendOnce(literal, s.ID)
			case c.Redacted:
				redacted = appendOnce(redacted, s.ID)
			}
		}
	}
	const fix = `a durable policy (a workspace's default, a setup policy) must read credentials from the server's environment: use {"env": "NAME"} and set NAME where sandkit-mcp runs, or pass the secret in a per-run or per-session policy instead`
	switch {
	case len(literal) > 0:
		return fmt.Errorf("%w: %s a literal secret; %s", ErrSecret, servicesVerb(literal, "carries", "carry"), fix)
	case len(redacted) > 0:
		return fmt.Errorf("%w: %s a redacted credential, which can never be applied; %s", ErrSecret, servicesVerb(redacted, "holds", "hold"), fix)
	}
	return nil
}

// servicesVerb renders `service "a" carries` or `services "a", "b" carry`.
func servicesVerb(ids []string, one, many string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	if len(ids) == 1 {
		return "service " + q[0] + " " + one
	}
	return "services " + strings.Join(q, ", ") + " " + many
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Redact returns p with every literal secret replaced by {"redacted": true}.
//
// The result shares no slice or pointer with p (p keeps its secrets, for Compile); environment
// credentials stay as they are.
func Redact(p Policy) Policy {
	out := Policy{Mode: p.Mode, Domains: slices.Clone(p.Domains)}
	if p.Services != nil {
		out.Services = make([]Service, len(p.Services))
	}
	for i, s := range p.Services {
		n := Service{ID: s.ID, Domains: slices.Clone(s.Domains)}
		if s.Credential != nil {
			c := redact(*s.Credential)
			n.Credential = &c
		}
		if s.Headers != nil {
			n.Headers = make([]Header, len(s.Headers))
		}
		for j, h := range s.Headers {
			h.Domains = slices.Clone(h.Domains)
			h.Credential = redact(h.Credential)
			n.Headers[j] = h
		}
		out.Services[i] = n
	}
	return out
}

func redact(c Credential) Credential {
	if c.Value != "" {
		return Credential{Redacted: true}
	}
	return c
}

// CredentialNames describes where p's credentials come from, never their values: e.g.
// ["github: env GITHUB_TOKEN", "internal-api: literal value (redacted)"].
//
// One entry per service and source, in the order of p's services (sorted by id once normalized);
// presets without a credential have none. nil when p reads no credential.
func CredentialNames(p Policy) []string {
	var out []string
	for _, s := range p.Services {
		_, headers, pr := expand(s)
		for _, h := range headers {
			what := "no credential (invalid)"
			switch c := h.Credential; {
			case pr != nil && s.Credential == nil:
				what = "env " + envList(pr.env)
			case c.Value != "" || c.Redacted:
				what = "literal value (redacted)"
			case c.Env != "":
				what = "env " + c.Env
			}
			out = appendOnce(out, s.ID+": "+what)
		}
	}
	return out
}

// EnvNames lists the environment variables of the server that p reads when it is applied (the
// defaults of its presets, fallbacks included, and every {"env": …}), sorted and de-duplicated;
// nil when none. Useful to check a policy against an operator's list of variables agents may use.
func EnvNames(p Policy) []string {
	var out []string
	for _, s := range p.Services {
		_, headers, pr := expand(s)
		for _, h := range headers {
			switch {
			case pr != nil && s.Credential == nil:
				out = append(out, pr.env...)
			case h.Credential.Env != "":
				out = append(out, h.Credential.Env)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
