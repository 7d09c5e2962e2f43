package policies

import (
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Compile expands presets and resolves credentials with getenv into the rules a provider
// enforces. A missing variable fails with an error wrapping ErrCredential that names it; a
// redacted credential cannot be compiled.
//
// p need not be normalized (Compile normalizes it; an invalid policy fails with ErrInvalid). A nil
// getenv means os.LookupEnv. A variable's value is trimmed of surrounding white space; a variable
// that is set but blank counts as missing. The openai preset reads OPENAI_API_KEY, or
// CODEX_API_KEY when that is unset. Rules.Hosts holds one rule per pattern, sorted by pattern:
// plain domains and header-less service domains have nil Headers; a pattern several services share
// gets their headers merged and their ids joined by "," in Service. Error messages name services
// and variables, never values.
func Compile(p Policy, getenv Getenv) (Rules, error) {
	n, err := Normalize(p)
	if err != nil {
		return Rules{}, err
	}
	if n.Mode != Allow {
		return Rules{Mode: n.Mode}, nil
	}
	if getenv == nil {
		getenv = os.LookupEnv
	}
	rules := map[string]*HostRule{}
	owners := map[string][]string{}
	rule := func(pattern string) *HostRule {
		r := rules[pattern]
		if r == nil {
			r = &HostRule{Pattern: pattern}
			rules[pattern] = r
		}
		return r
	}
	for _, d := range n.Domains {
		rule(d)
	}
	for _, s := range n.Services {
		domains, headers, pr := expand(s)
		for _, d := range domains {
			rule(d)
			owners[d] = append(owners[d], s.ID)
		}
		for _, h := range headers {
			secret, err := resolve(s, pr, h.Credential, getenv)
			if err != nil {
				return Rules{}, err
			}
			value := h.Prefix + encode(h.Encoding, secret)
			targets := h.Domains
			if len(targets) == 0 {
				targets = domains
			}
			for _, d := range targets {
				r := rule(d)
				if r.Headers == nil {
					r.Headers = map[string]string{}
				}
				r.Headers[h.Name] = value
			}
		}
	}
	out := Rules{Mode: Allow, Hosts: make([]HostRule, 0, len(rules))}
	for pattern, r := range rules {
		ids := owners[pattern]
		slices.Sort(ids)
		r.Service = strings.Join(slices.Compact(ids), ",")
		out.Hosts = append(out.Hosts, *r)
	}
	sort.Slice(out.Hosts, func(i, j int) bool { return out.Hosts[i].Pattern < out.Hosts[j].Pattern })
	return out, nil
}

// resolve returns the secret of credential c of service s (pr is its preset, nil for a custom
// service). A preset service without an override tries each of the preset's variables in turn.
func resolve(s Service, pr *preset, c Credential, getenv Getenv) (string, error) {
	switch {
	case c.Redacted:
		return "", fmt.Errorf("%w: policy service %q has a redacted credential (a literal secret removed before the policy was stored or shown), which cannot be applied; pass the policy again with the secret in a per-run policy, or use {\"env\": \"NAME\"}", ErrCredential, s.ID)
	case c.Value != "":
		return c.Value, nil
	}
	names := []string{c.Env}
	if pr != nil && s.Credential == nil {
		names = pr.env
	}
	blank := ""
	for _, name := range names {
		v, ok := getenv(name)
		v = strings.TrimSpace(v)
		if !ok {
			continue
		}
		if v == "" {
			if blank == "" {
				blank = name
			}
			continue
		}
		if !validFieldValue(v) {
			return "", fmt.Errorf("%w: policy service %q: the environment variable %s has a control character (a line break?) inside its value, which a header cannot carry; fix the value where sandkit-mcp runs", ErrCredential, s.ID, name)
		}
		return v, nil
	}
	state := "which is not set on the server"
	if blank != "" && len(names) == 1 {
		state = "which is set but empty on the server"
	}
	msg := fmt.Sprintf("%v: policy service %q needs the environment variable %s, %s; set it where sandkit-mcp runs (the daemon inherits the environment of the door that started it), or pass a per-run policy with a literal credential",
		ErrCredential, s.ID, envList(names), state)
	if pr != nil {
		msg += fmt.Sprintf(", or list its domains (%s) under \"domains\" to reach them without a credential", strings.Join(pr.domains, ", "))
	}
	return "", &credentialError{msg: msg}
}

// credentialError is an error wrapping ErrCredential with a message built beforehand.
type credentialError struct{ msg string }

func (e *credentialError) Error() string { return e.msg }
func (e *credentialError) Unwrap() error { return ErrCredential }

// encode applies a Header.Encoding to a secret.
func encode(encoding, secret string) string {
	if encoding == encodingBasic {
		return base64.StdEncoding.EncodeToString([]byte("x-access-token:" + secret))
	}
	return secret
}

// String describes the rules without any header value: "deny-all", "allow-all", or
// "allow: pattern[header,…] …". Safe to log.
func (r Rules) String() string {
	if r.Mode != Allow {
		return string(r.Mode)
	}
	parts := make([]string, len(r.Hosts))
	for i, h := range r.Hosts {
		parts[i] = h.String()
	}
	return "allow: " + strings.Join(parts, " ")
}

// String describes the rule with header names only: "api.github.com[authorization]". Safe to log.
func (h HostRule) String() string {
	if len(h.Headers) == 0 {
		return h.Pattern
	}
	names := make([]string, 0, len(h.Headers))
	for name := range h.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	return h.Pattern + "[" + strings.Join(names, ",") + "]"
}

// GoString keeps %#v from printing header values.
func (h HostRule) GoString() string { return "policies.HostRule(" + h.String() + ")" }

// GoString keeps %#v from printing header values.
func (r Rules) GoString() string { return "policies.Rules(" + r.String() + ")" }
