package policies

import (
	"slices"
	"strings"
)

// encodingBasic is the Header.Encoding of git over HTTPS to GitHub: base64("x-access-token:" +
// credential), sent as "Basic …".
const encodingBasic = "basic-x-access-token"

// preset is a well-known service: its domains, and the header transforms that carry its credential.
type preset struct {
	id          string
	alias       string // another id that names the same preset ("" when none)
	description string
	domains     []string
	// env lists the environment variables of its default credential, in lookup order (the first
	// one set wins); nil when the preset sends no credential (and then it accepts none).
	env []string
	// headers are its transforms; their Credential is left zero and comes from the service.
	headers []Header
}

// presets are the presets, sorted by id. Domains are in canonical form (see normalizeDomain).
var presets = []preset{
	{
		id:          "ai-gateway",
		description: "Vercel AI Gateway (ai-gateway.vercel.sh), with authorization: Bearer $AI_GATEWAY_API_KEY.",
		domains:     []string{"ai-gateway.vercel.sh"},
		env:         []string{"AI_GATEWAY_API_KEY"},
		headers:     []Header{{Name: "authorization", Prefix: "Bearer "}},
	},
	{
		id:          "anthropic",
		description: "Anthropic API (api.anthropic.com, used by Claude Code and the Anthropic SDKs), with x-api-key: $ANTHROPIC_API_KEY.",
		domains:     []string{"api.anthropic.com"},
		env:         []string{"ANTHROPIC_API_KEY"},
		headers:     []Header{{Name: "x-api-key"}},
	},
	{
		id:          "bun",
		description: "Bun's site and install script (bun.sh, bun.com). The script downloads Bun from GitHub releases (add github), and bun install fetches packages from the npm registry (add npm).",
		domains:     []string{"bun.sh", "bun.com"},
	},
	{
		id:          "crates",
		description: "Rust's crates.io for cargo: the API (crates.io), the sparse index (index.crates.io) and the crate downloads (static.crates.io). No credential.",
		domains:     []string{"crates.io", "index.crates.io", "static.crates.io"},
	},
	{
		id:          "gemini",
		description: "Google Gemini API (generativelanguage.googleapis.com, with x-goog-api-key: $GEMINI_API_KEY) and its docs (ai.google.dev, *.ai.google.dev, no credential).",
		domains:     []string{"generativelanguage.googleapis.com", "ai.google.dev", "*.ai.google.dev"},
		env:         []string{"GEMINI_API_KEY"},
		headers:     []Header{{Domains: []string{"generativelanguage.googleapis.com"}, Name: "x-goog-api-key"}},
	},
	{
		id: "github",
		description: "GitHub with $GITHUB_TOKEN: git over HTTPS to github.com (authorization: Basic base64(\"x-access-token:\"+token)), " +
			"the REST API at api.github.com (authorization: Bearer token), and raw files and release downloads on *.githubusercontent.com (no credential). " +
			"Without a token, list these domains under \"domains\" instead.",
		domains: []string{"github.com", "api.github.com", "*.githubusercontent.com"},
		env:     []string{"GITHUB_TOKEN"},
		headers: []Header{
			{Domains: []string{"github.com"}, Name: "authorization", Prefix: "Basic ", Encoding: encodingBasic},
			{Domains: []string{"api.github.com"}, Name: "authorization", Prefix: "Bearer "},
		},
	},
	{
		id: "go-proxy",
		description: "The Go module mirror and checksum database, as go mod download and GOTOOLCHAIN use them by default " +
			"(proxy.golang.org, sum.golang.org, and storage.googleapis.com, where the mirror redirects module downloads; " +
			"note that this opens all of Google Cloud Storage). No credential; modules fetched direct from their hosts need those hosts too.",
		domains: []string{"proxy.golang.org", "sum.golang.org", "storage.googleapis.com"},
	},
	{
		id:          "npm",
		description: "The npm registry (registry.npmjs.org), for npm, pnpm, yarn and bun install. No credential.",
		domains:     []string{"registry.npmjs.org"},
	},
	{
		id:    "openai",
		alias: "codex",
		description: "OpenAI API, also what Codex uses (the id \"codex\" names this preset too): api.openai.com with authorization: Bearer $OPENAI_API_KEY " +
			"(or $CODEX_API_KEY when OPENAI_API_KEY is unset), and *.openai.com without credential.",
		domains: []string{"api.openai.com", "*.openai.com"},
		env:     []string{"OPENAI_API_KEY", "CODEX_API_KEY"},
		headers: []Header{{Domains: []string{"api.openai.com"}, Name: "authorization", Prefix: "Bearer "}},
	},
	{
		id:          "pypi",
		description: "The Python Package Index for pip and uv (pypi.org, files.pythonhosted.org). No credential.",
		domains:     []string{"pypi.org", "files.pythonhosted.org"},
	},
}

// lookupPreset finds a preset by id or alias (lower-case); nil when id names none.
func lookupPreset(id string) *preset {
	for i := range presets {
		if presets[i].id == id || (presets[i].alias != "" && presets[i].alias == id) {
			return &presets[i]
		}
	}
	return nil
}

// presetNames lists every id and alias, sorted, for error messages.
func presetNames() string {
	var names []string
	for _, p := range presets {
		names = append(names, p.id)
		if p.alias != "" {
			names = append(names, p.alias)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// envList describes a preset's default environment variables: "OPENAI_API_KEY (or CODEX_API_KEY)".
func envList(env []string) string {
	if len(env) <= 1 {
		return strings.Join(env, "")
	}
	return env[0] + " (or " + strings.Join(env[1:], ", or ") + ")"
}

// Presets lists the presets: npm, bun, pypi, github, openai (alias codex), anthropic, gemini,
// ai-gateway, go-proxy, crates.
//
// They are sorted by id; the alias "codex" is not listed separately (the openai description names
// it). Env is the first variable of the default credential (openai falls back to CODEX_API_KEY when
// OPENAI_API_KEY is unset, as its description says). Each call returns fresh slices.
func Presets() []PresetInfo {
	out := make([]PresetInfo, 0, len(presets))
	for _, p := range presets {
		info := PresetInfo{ID: p.id, Description: p.description, Domains: slices.Clone(p.domains)}
		if len(p.env) > 0 {
			info.Env = p.env[0]
		}
		out = append(out, info)
	}
	return out
}

// PresetInfo describes a preset for agents and docs.
type PresetInfo struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Domains     []string `json:"domains"`
	// Env is the environment variable its credential comes from by default ("" when it has none).
	Env string `json:"env,omitempty"`
}
