// Package policies holds the network egress policy model shared by the engine and the providers:
// the model, validation with precise errors, normalization, presets of well-known services,
// redaction, a stable description, compilation into host rules with credentials resolved, and
// host matching.
//
// # The model
//
// A policy has one of three modes:
//
//   - "deny-all": the sandbox reaches nothing outside itself (the default for new workspaces);
//   - "allow-all": the sandbox may reach any public host;
//   - "allow": the sandbox may reach only the hosts its services and domains name.
//
// In "allow" mode a policy lists Domains (plain host patterns, no credentials) and Services. A
// service is either a preset ("github", "npm", …: see Presets), which brings its own domains and
// header transforms, or a custom service with its own domains and transforms. A header transform
// adds a header (typically Authorization) to requests to some of the service's domains, with a
// value built from a credential: the proxy of the provider injects it, so the secret never enters
// the sandbox (credential brokering).
//
// A domain pattern is an exact host ("registry.npmjs.org") or "*.suffix", which matches
// subdomains of suffix at any depth ("a.b.suffix" too), never suffix itself. Matching is case-insensitive and ignores a
// trailing dot. Patterns carry no scheme, port or path.
//
// # Credentials
//
// A credential is read from the server's environment ({"env": "GITHUB_TOKEN"}, the default of
// every preset) or given literally ({"value": "…"}). Literal secrets are allowed only in per-run
// and per-session overrides; a durable policy (a workspace's default, a template's setup policy)
// refuses them (Durable). Whatever is stored or shown is redacted first (Redact): literal values
// become {"redacted": true}. Environment credentials are resolved when a policy is applied
// (Compile), never earlier, and never written anywhere.
package policies

import (
	"errors"
	"fmt"
	"slices"
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

// Policy is a network egress policy, as agents write it and as it is stored (redacted). The zero
// value is not valid; use Deny() for the default.
type Policy struct {
	// Mode is deny-all, allow-all or allow.
	Mode Mode `json:"mode"`
	// Domains lists hosts reachable in "allow" mode without any header transform.
	Domains []string `json:"domains,omitempty"`
	// Services lists presets and custom services reachable in "allow" mode.
	Services []Service `json:"services,omitempty"`
}

// Service is a preset (ID names it and nothing else is needed, except optionally Credential) or a
// custom service (ID is a free name, Domains and Headers describe it).
type Service struct {
	// ID is a preset name ("github") or, for a custom service, any name that is not a preset's.
	ID string `json:"id"`
	// Domains are the custom service's host patterns (presets bring theirs; giving Domains for a
	// preset is an error).
	Domains []string `json:"domains,omitempty"`
	// Headers are the custom service's header transforms (presets bring theirs).
	Headers []Header `json:"headers,omitempty"`
	// Credential overrides where a preset's credential comes from (its default is an environment
	// variable, e.g. GITHUB_TOKEN). Not allowed on custom services (their headers carry theirs).
	Credential *Credential `json:"credential,omitempty"`
}

// Header is a header transform: requests to Domains (default: every domain of the service) get
// header Name set to Prefix + encode(credential).
type Header struct {
	// Domains limits the transform to some of the service's domains; empty means all of them.
	Domains []string `json:"domains,omitempty"`
	// Name is the header name (e.g. "authorization"); stored lower-case.
	Name string `json:"name"`
	// Prefix goes before the encoded credential (e.g. "Bearer ").
	Prefix string `json:"prefix,omitempty"`
	// Encoding is "" (the credential as it is) or "basic-x-access-token" (base64 of
	// "x-access-token:" + credential, as git over HTTPS to GitHub wants).
	Encoding string `json:"encoding,omitempty"`
	// Credential is where the value comes from.
	Credential Credential `json:"credential"`
}

// Credential is where a header value comes from: exactly one of Env, Value or Redacted.
type Credential struct {
	// Env names an environment variable of the server, read when the policy is applied.
	Env string `json:"env,omitempty"`
	// Value is a literal secret: only in per-run or per-session overrides, never stored.
	Value string `json:"value,omitempty"`
	// Redacted marks a literal secret that was removed for storage or display; a policy holding
	// one cannot be applied.
	Redacted bool `json:"redacted,omitempty"`
}

// Deny returns the deny-all policy.
func Deny() Policy { return Policy{Mode: DenyAll} }

// ErrInvalid marks a policy that fails validation. The wrapped message says what to change.
var ErrInvalid = errors.New("invalid policy")

// ErrSecret marks a durable policy holding a literal secret.
var ErrSecret = errors.New("literal secret in a durable policy")

// ErrCredential marks a credential that cannot be resolved when the policy is applied (the
// message names the environment variable or the redacted service).
var ErrCredential = errors.New("credential unavailable")

// ErrTooWide marks a policy wider than an operator's limit.
var ErrTooWide = errors.New("policy wider than allowed")

// Rules is a compiled policy: what a provider enforces. It holds resolved secrets: keep it in
// memory only, never log or store it.
type Rules struct {
	Mode Mode
	// Hosts are the allowed host patterns ("allow" mode), each with the headers to inject.
	Hosts []HostRule
}

// HostRule allows one host pattern and says which headers to set on requests to it.
type HostRule struct {
	// Pattern is an exact host or "*.suffix".
	Pattern string
	// Headers maps lower-case header names to their full values (secrets included).
	Headers map[string]string
	// Service is the id of the service the rule comes from ("" for a plain domain).
	Service string
}

// Getenv looks up a server environment variable (os.LookupEnv in production).
type Getenv func(name string) (string, bool)

// Normalize validates p and returns it in canonical form: domains lower-cased, trailing dots
// removed, de-duplicated and sorted. The error wraps ErrInvalid and names the offending part.
//
// In canonical form, service ids and header names are lower-case, the alias "codex" is "openai",
// services are sorted by id, header transforms by name, and empty lists are nil; Normalize of a
// canonical policy returns it unchanged. Two services with one id, or two transforms setting the
// same header on the same domain, are errors rather than silently merged.
func Normalize(p Policy) (Policy, error) {
	switch p.Mode {
	case DenyAll, AllowAll:
		if len(p.Domains) > 0 || len(p.Services) > 0 {
			return Policy{}, fmt.Errorf("%w: mode %q takes no domains or services; use mode \"allow\" to list what the sandbox may reach", ErrInvalid, p.Mode)
		}
		return Policy{Mode: p.Mode}, nil
	case Allow:
		return normalizeAllow(p)
	case "":
		return Policy{}, fmt.Errorf("%w: mode is required (deny-all, allow-all or allow)", ErrInvalid)
	default:
		return Policy{}, fmt.Errorf("%w: unknown mode %q (use deny-all, allow-all or allow)", ErrInvalid, p.Mode)
	}
}

// String is a stable, human-readable description: "deny-all", "allow-all" or "allow:" followed by
// the service ids and plain domains, sorted by name (a wildcard by the host after its "*.") and
// comma-separated ("allow:github,npm,registry.example.com", "allow:a.com,*.b.com").
// It never shows credentials.
func (p Policy) String() string {
	if p.Mode != Allow {
		return string(p.Mode)
	}
	names := make([]string, 0, len(p.Services)+len(p.Domains))
	for _, s := range p.Services {
		names = append(names, s.ID)
	}
	names = append(names, p.Domains...)
	sort.Slice(names, func(i, j int) bool { return describeLess(names[i], names[j]) })
	return "allow:" + strings.Join(slices.Compact(names), ",")
}

// describeLess orders the names of String by host name, a wildcard's "*." aside, so a wildcard
// sits next to its domain ("a.com,*.b.com,b.com"); between equal hosts the exact one comes first.
func describeLess(a, b string) bool {
	ha, wa := strings.CutPrefix(a, "*.")
	hb, wb := strings.CutPrefix(b, "*.")
	if ha != hb {
		return ha < hb
	}
	return !wa && wb
}
