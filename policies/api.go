package policies

// TEMPORARY signatures of the policy API; the bodies are being written (policies helper) and the
// signatures are fixed.

import "fmt"

var errPending = fmt.Errorf("%w: policies: not implemented yet", ErrInvalid)

// Durable fails with an error wrapping ErrSecret (naming the service) when p holds a literal
// secret; durable policies (workspace defaults, setup templates) must read credentials from the
// environment.
func Durable(p Policy) error { return nil }

// Redact returns p with every literal secret replaced by {"redacted": true}.
func Redact(p Policy) Policy { return p }

// CredentialNames describes where p's credentials come from, never their values: e.g.
// ["github: env GITHUB_TOKEN", "internal-api: literal value (redacted)"].
func CredentialNames(p Policy) []string { return nil }

// Compile expands presets and resolves credentials with getenv into the rules a provider
// enforces. A missing variable fails with an error wrapping ErrCredential that names it; a
// redacted credential cannot be compiled.
func Compile(p Policy, getenv Getenv) (Rules, error) { return Rules{}, errPending }

// Match finds the rule for host: deny-all matches nothing; allow-all matches every host (no
// headers); allow matches the most specific pattern (an exact host beats a wildcard, a longer
// wildcard suffix beats a shorter one). Headers of several services on one pattern are merged.
func (r Rules) Match(host string) (HostRule, bool) { return HostRule{}, false }

// MatchPattern reports whether host matches pattern (exact, or "*.suffix" for subdomains only;
// case-insensitive; trailing dots ignored).
func MatchPattern(pattern, host string) bool { return false }

// Within fails with an error wrapping ErrTooWide, saying what exceeds limit, unless every host p
// allows is allowed by limit (allow-all ⊇ allow ⊇ deny-all; in allow mode every pattern of p must
// be covered by a pattern of limit).
func Within(p, limit Policy) error { return nil }

// PresetInfo describes a preset for agents and docs.
type PresetInfo struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Domains     []string `json:"domains"`
	// Env is the environment variable its credential comes from by default ("" when it has none).
	Env string `json:"env,omitempty"`
}

// Presets lists the presets: npm, bun, pypi, github, openai (alias codex), anthropic, gemini,
// ai-gateway, go-proxy, crates.
func Presets() []PresetInfo { return nil }
