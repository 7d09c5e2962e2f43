// Package policies holds the network egress policy model shared by the engine and the providers.
//
// A policy has one of three modes:
//
//   - "deny-all": the sandbox reaches nothing outside itself (the default for new workspaces);
//   - "allow-all": the sandbox may reach any public host;
//   - "allow": the sandbox may reach only the listed domains (exact names or "*.suffix" wildcards,
//     which match subdomains only).
//
// This file is the model and its validation. Presets, header transforms, credential brokering and
// matching arrive with the egress issue; until then a provider that cannot enforce a mode says so.
package policies

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Mode names a policy's behaviour.
type Mode string

// The three modes.
const (
	DenyAll  Mode = "deny-all"
	AllowAll Mode = "allow-all"
	Allow    Mode = "allow"
)

// Policy is a network egress policy. The zero value is not valid; use Deny() for the default.
type Policy struct {
	// Mode is deny-all, allow-all or allow.
	Mode Mode `json:"mode"`
	// Domains lists the hosts reachable in "allow" mode: exact names ("registry.npmjs.org") or
	// wildcards ("*.githubusercontent.com", subdomains only). Empty in the other modes.
	Domains []string `json:"domains,omitempty"`
}

// Deny returns the deny-all policy.
func Deny() Policy { return Policy{Mode: DenyAll} }

// ErrInvalid marks a policy that fails validation. The wrapped message says what to change.
var ErrInvalid = errors.New("invalid policy")

// Normalize validates p and returns it in canonical form: domains lower-cased, trailing dots
// removed, de-duplicated and sorted. The error wraps ErrInvalid and names the offending part.
func Normalize(p Policy) (Policy, error) {
	switch p.Mode {
	case DenyAll, AllowAll:
		if len(p.Domains) > 0 {
			return Policy{}, fmt.Errorf("%w: mode %q takes no domains; use mode \"allow\" with a domain list", ErrInvalid, p.Mode)
		}
		return Policy{Mode: p.Mode}, nil
	case Allow:
		if len(p.Domains) == 0 {
			return Policy{}, fmt.Errorf("%w: mode \"allow\" needs at least one domain (for no network use mode \"deny-all\")", ErrInvalid)
		}
		seen := map[string]bool{}
		var out []string
		for _, d := range p.Domains {
			n, err := normalizeDomain(d)
			if err != nil {
				return Policy{}, err
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return Policy{Mode: Allow, Domains: out}, nil
	case "":
		return Policy{}, fmt.Errorf("%w: mode is required (deny-all, allow-all or allow)", ErrInvalid)
	default:
		return Policy{}, fmt.Errorf("%w: unknown mode %q (use deny-all, allow-all or allow)", ErrInvalid, p.Mode)
	}
}

func normalizeDomain(d string) (string, error) {
	orig := d
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", fmt.Errorf("%w: empty domain in the list", ErrInvalid)
	}
	if strings.Contains(d, ":") {
		return "", fmt.Errorf("%w: domain %q has a port; list the host name only", ErrInvalid, orig)
	}
	labels := strings.Split(d, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if strings.Contains(l, "*") {
			return "", fmt.Errorf("%w: domain %q: a wildcard is allowed only as the whole first label (\"*.example.com\")", ErrInvalid, orig)
		}
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("%w: domain %q has an empty or over-long label", ErrInvalid, orig)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("%w: domain %q contains %q; use letters, digits, '-' and '.'", ErrInvalid, orig, r)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: domain %q has a label starting or ending with '-'", ErrInvalid, orig)
		}
	}
	return d, nil
}

// String is a stable, human-readable description: "deny-all", "allow-all" or
// "allow:a.example,*.b.example".
func (p Policy) String() string {
	if p.Mode == Allow {
		return "allow:" + strings.Join(p.Domains, ",")
	}
	return string(p.Mode)
}
