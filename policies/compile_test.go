package policies

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// env is a fake server environment; it records what was looked up.
type env struct {
	vars   map[string]string
	lookup []string
}

func (e *env) get(name string) (string, bool) {
	e.lookup = append(e.lookup, name)
	v, ok := e.vars[name]
	return v, ok
}

func newEnv(kv ...string) *env {
	e := &env{vars: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.vars[kv[i]] = kv[i+1]
	}
	return e
}

func h(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestPresetRules(t *testing.T) {
	server := newEnv(
		"GITHUB_TOKEN", "ghp_TEST123",
		"OPENAI_API_KEY", "sk-openai",
		"CODEX_API_KEY", "sk-codex",
		"ANTHROPIC_API_KEY", "sk-ant",
		"GEMINI_API_KEY", "gm-key",
		"AI_GATEWAY_API_KEY", "gw-key",
	)
	cases := []struct {
		id   string
		want []HostRule
	}{
		{"npm", []HostRule{{Pattern: "registry.npmjs.org", Service: "npm"}}},
		{"bun", []HostRule{{Pattern: "bun.com", Service: "bun"}, {Pattern: "bun.sh", Service: "bun"}}},
		{"pypi", []HostRule{{Pattern: "files.pythonhosted.org", Service: "pypi"}, {Pattern: "pypi.org", Service: "pypi"}}},
		{"github", []HostRule{
			{Pattern: "*.githubusercontent.com", Service: "github"},
			{Pattern: "api.github.com", Service: "github", Headers: h("authorization", "Bearer ghp_TEST123")},
			// base64("x-access-token:ghp_TEST123"), computed independently.
			{Pattern: "github.com", Service: "github", Headers: h("authorization", "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX1RFU1QxMjM=")},
		}},
		{"openai", []HostRule{
			{Pattern: "*.openai.com", Service: "openai"},
			{Pattern: "api.openai.com", Service: "openai", Headers: h("authorization", "Bearer sk-openai")},
		}},
		{"codex", []HostRule{
			{Pattern: "*.openai.com", Service: "openai"},
			{Pattern: "api.openai.com", Service: "openai", Headers: h("authorization", "Bearer sk-openai")},
		}},
		{"anthropic", []HostRule{{Pattern: "api.anthropic.com", Service: "anthropic", Headers: h("x-api-key", "sk-ant")}}},
		{"gemini", []HostRule{
			{Pattern: "*.ai.google.dev", Service: "gemini"},
			{Pattern: "ai.google.dev", Service: "gemini"},
			{Pattern: "generativelanguage.googleapis.com", Service: "gemini", Headers: h("x-goog-api-key", "gm-key")},
		}},
		{"ai-gateway", []HostRule{{Pattern: "ai-gateway.vercel.sh", Service: "ai-gateway", Headers: h("authorization", "Bearer gw-key")}}},
		{"go-proxy", []HostRule{
			{Pattern: "proxy.golang.org", Service: "go-proxy"},
			{Pattern: "storage.googleapis.com", Service: "go-proxy"},
			{Pattern: "sum.golang.org", Service: "go-proxy"},
		}},
		{"crates", []HostRule{{Pattern: "crates.io", Service: "crates"}, {Pattern: "index.crates.io", Service: "crates"}, {Pattern: "static.crates.io", Service: "crates"}}},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			got, err := Compile(allow(Service{ID: c.id}), server.get)
			if err != nil {
				t.Fatal(err)
			}
			want := Rules{Mode: Allow, Hosts: c.want}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Compile(%s) =\n %s\nwant\n %s", c.id, dump(got), dump(want))
			}
		})
	}
}

// dump shows rules with their secrets, for test failures only.
func dump(r Rules) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", r.Mode)
	for _, h := range r.Hosts {
		fmt.Fprintf(&b, " {%s %q %v}", h.Pattern, h.Service, h.Headers)
	}
	return b.String()
}

func TestPresetsList(t *testing.T) {
	list := Presets()
	var ids []string
	envs := map[string]string{}
	for _, p := range list {
		ids = append(ids, p.ID)
		envs[p.ID] = p.Env
		if p.Description == "" || len(p.Domains) == 0 {
			t.Errorf("preset %q lacks a description or domains", p.ID)
		}
		for _, d := range p.Domains {
			if n, err := normalizeDomain(d); err != nil || n != d {
				t.Errorf("preset %q domain %q is not canonical: %q, %v", p.ID, d, n, err)
			}
		}
		if _, err := Normalize(allow(Service{ID: p.ID})); err != nil {
			t.Errorf("preset %q alone does not normalize: %v", p.ID, err)
		}
	}
	wantIDs := []string{"ai-gateway", "anthropic", "bun", "crates", "gemini", "github", "go-proxy", "npm", "openai", "pypi"}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("Presets() ids = %v, want %v", ids, wantIDs)
	}
	wantEnv := map[string]string{"ai-gateway": "AI_GATEWAY_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "bun": "", "crates": "", "gemini": "GEMINI_API_KEY",
		"github": "GITHUB_TOKEN", "go-proxy": "", "npm": "", "openai": "OPENAI_API_KEY", "pypi": ""}
	if !reflect.DeepEqual(envs, wantEnv) {
		t.Fatalf("Presets() env = %v, want %v", envs, wantEnv)
	}
	for _, p := range list {
		if p.ID == "openai" && (!strings.Contains(p.Description, "Codex") || !strings.Contains(p.Description, "CODEX_API_KEY")) {
			t.Errorf("openai's description does not say Codex uses it and how CODEX_API_KEY is read: %q", p.Description)
		}
	}
	list[0].Domains[0] = "changed.example.com"
	if Presets()[0].Domains[0] == "changed.example.com" {
		t.Fatal("Presets() shares its slices")
	}
}

func TestCompileCredentials(t *testing.T) {
	const missing = "credential unavailable: policy service \"github\" needs the environment variable GITHUB_TOKEN, which is not set on the server; " +
		"set it where sandkit-mcp runs (the daemon inherits the environment of the door that started it), or pass a per-run policy with a literal credential, " +
		"or list its domains (github.com, api.github.com, *.githubusercontent.com) under \"domains\" to reach them without a credential"
	cases := []struct {
		name    string
		p       Policy
		env     *env
		host    string
		want    map[string]string // headers on host
		wantErr string            // exact message, or a prefix ending in "…"
		noRead  []string          // variables that must not be read
	}{
		{"default env", allow(Service{ID: "github"}), newEnv("GITHUB_TOKEN", "ghp_TEST123"), "api.github.com", h("authorization", "Bearer ghp_TEST123"), "", nil},
		{"env value trimmed", allow(Service{ID: "github"}), newEnv("GITHUB_TOKEN", " ghp_TEST123\n"), "api.github.com", h("authorization", "Bearer ghp_TEST123"), "", nil},
		{"override by env", allow(Service{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_GH_BOT_TOKEN"}}), newEnv("GITHUB_TOKEN", "wrong", "SANDKIT_CRED_GH_BOT_TOKEN", "bot"),
			"github.com", h("authorization", "Basic eC1hY2Nlc3MtdG9rZW46Ym90"), "", []string{"GITHUB_TOKEN"}},
		{"override by literal", allow(Service{ID: "github", Credential: &Credential{Value: "lit"}}), newEnv("GITHUB_TOKEN", "wrong"),
			"github.com", h("authorization", "Basic eC1hY2Nlc3MtdG9rZW46bGl0"), "", []string{"GITHUB_TOKEN"}},
		{"override by literal, bearer", allow(Service{ID: "anthropic", Credential: &Credential{Value: secret}}), newEnv(), "api.anthropic.com", h("x-api-key", secret), "", []string{"ANTHROPIC_API_KEY"}},
		{"openai prefers OPENAI_API_KEY", allow(Service{ID: "openai"}), newEnv("OPENAI_API_KEY", "o", "CODEX_API_KEY", "c"), "api.openai.com", h("authorization", "Bearer o"), "", []string{"CODEX_API_KEY"}},
		{"openai falls back to CODEX_API_KEY", allow(Service{ID: "codex"}), newEnv("CODEX_API_KEY", "c"), "api.openai.com", h("authorization", "Bearer c"), "", nil},
		{"openai falls back over a blank OPENAI_API_KEY", allow(Service{ID: "openai"}), newEnv("OPENAI_API_KEY", " ", "CODEX_API_KEY", "c"), "api.openai.com", h("authorization", "Bearer c"), "", nil},
		{"openai explicit env has no fallback", allow(Service{ID: "openai", Credential: &Credential{Env: "OPENAI_API_KEY"}}), newEnv("CODEX_API_KEY", "c"), "", nil,
			`credential unavailable: policy service "openai" needs the environment variable OPENAI_API_KEY, which is not set on the server…`, []string{"CODEX_API_KEY"}},
		{"custom service literal and env", allow(custom("internal", []string{"api.internal.example.com"},
			Header{Name: "authorization", Prefix: "Token ", Credential: envCred("SANDKIT_CRED_INTERNAL_TOKEN")},
			Header{Name: "x-team", Credential: Credential{Value: "blue"}})),
			newEnv("SANDKIT_CRED_INTERNAL_TOKEN", "t0k"), "api.internal.example.com", h("authorization", "Token t0k", "x-team", "blue"), "", nil},
		{"custom basic encoding", allow(custom("git", []string{"git.example.com"},
			Header{Name: "authorization", Prefix: "Basic ", Encoding: encodingBasic, Credential: envCred("SANDKIT_CRED_GIT_TOKEN")})),
			newEnv("SANDKIT_CRED_GIT_TOKEN", "ghp_TEST123"), "git.example.com", h("authorization", "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX1RFU1QxMjM="), "", nil},

		{"missing env named", allow(Service{ID: "github"}), newEnv(), "", nil, missing, nil},
		{"blank env", allow(Service{ID: "anthropic"}), newEnv("ANTHROPIC_API_KEY", "  "), "", nil,
			`credential unavailable: policy service "anthropic" needs the environment variable ANTHROPIC_API_KEY, which is set but empty on the server…`, nil},
		{"missing openai names both", allow(Service{ID: "openai"}), newEnv(), "", nil,
			`credential unavailable: policy service "openai" needs the environment variable OPENAI_API_KEY (or CODEX_API_KEY), which is not set on the server…`, nil},
		{"missing custom env", allow(custom("internal", []string{"a.example.com"}, Header{Name: "x-key", Credential: envCred("SANDKIT_CRED_INTERNAL_TOKEN")})), newEnv(), "", nil,
			"credential unavailable: policy service \"internal\" needs the environment variable SANDKIT_CRED_INTERNAL_TOKEN, which is not set on the server; " +
				"set it where sandkit-mcp runs (the daemon inherits the environment of the door that started it), or pass a per-run policy with a literal credential", nil},
		{"env with a line break", allow(Service{ID: "github"}), newEnv("GITHUB_TOKEN", secret+"\nx-evil: 1"), "", nil,
			`credential unavailable: policy service "github": the environment variable GITHUB_TOKEN has a control character…`, nil},
		{"redacted preset credential", allow(Service{ID: "github", Credential: &Credential{Redacted: true}}), newEnv("GITHUB_TOKEN", "x"), "", nil,
			`credential unavailable: policy service "github" has a redacted credential…`, []string{"GITHUB_TOKEN"}},
		{"redacted header credential", allow(custom("internal", []string{"a.example.com"}, Header{Name: "x-key", Credential: Credential{Redacted: true}})), newEnv(), "", nil,
			`credential unavailable: policy service "internal" has a redacted credential…`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules, err := Compile(c.p, c.env.get)
			for _, name := range c.noRead {
				if slices.Contains(c.env.lookup, name) {
					t.Errorf("Compile read %s", name)
				}
			}
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("Compile succeeded: %s", rules)
				}
				if !errors.Is(err, ErrCredential) {
					t.Errorf("error %q does not wrap ErrCredential", err)
				}
				if prefix, ok := strings.CutSuffix(c.wantErr, "…"); ok {
					if !strings.HasPrefix(err.Error(), prefix) {
						t.Errorf("error =\n %q\nwant a prefix\n %q", err, prefix)
					}
				} else if err.Error() != c.wantErr {
					t.Errorf("error =\n %q\nwant\n %q", err, c.wantErr)
				}
				for _, v := range c.env.vars {
					// (Values of a few letters occur in any sentence.)
					if v = strings.TrimSpace(v); len(v) >= 6 && strings.Contains(err.Error(), v) {
						t.Errorf("error %q shows a value", err)
					}
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rule, ok := rules.Match(c.host)
			if !ok || !reflect.DeepEqual(rule.Headers, c.want) {
				t.Fatalf("Match(%q) = %v %v, want headers %v", c.host, rule.Headers, ok, c.want)
			}
		})
	}
}

func TestCompileModesAndMerge(t *testing.T) {
	for _, m := range []Mode{DenyAll, AllowAll} {
		r, err := Compile(Policy{Mode: m}, func(string) (string, bool) { t.Fatal("getenv called"); return "", false })
		if err != nil || !reflect.DeepEqual(r, Rules{Mode: m}) {
			t.Errorf("Compile(%s) = %v, %v", m, r, err)
		}
	}
	if _, err := Compile(Policy{Mode: Allow, Domains: []string{"a.*.com"}}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compile of an invalid policy: %v, want ErrInvalid", err)
	}

	p := Policy{Mode: Allow, Domains: []string{"api.openai.com", "example.com"}, Services: []Service{
		{ID: "openai"},
		custom("org", []string{"api.openai.com"}, Header{Name: "openai-organization", Credential: Credential{Value: "org-1"}}),
	}}
	got, err := Compile(p, newEnv("OPENAI_API_KEY", "o").get)
	if err != nil {
		t.Fatal(err)
	}
	want := Rules{Mode: Allow, Hosts: []HostRule{
		{Pattern: "*.openai.com", Service: "openai"},
		{Pattern: "api.openai.com", Service: "openai,org", Headers: h("authorization", "Bearer o", "openai-organization", "org-1")},
		{Pattern: "example.com"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Compile =\n %s\nwant\n %s", dump(got), dump(want))
	}
}

func TestCompileNilGetenvUsesEnvironment(t *testing.T) {
	t.Setenv("SANDKIT_CRED_SANDKIT_POLICIES_TEST_TOKEN", "from-os")
	r, err := Compile(allow(custom("x", []string{"a.example.com"}, Header{Name: "x-key", Credential: envCred("SANDKIT_CRED_SANDKIT_POLICIES_TEST_TOKEN")})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rule, _ := r.Match("a.example.com"); rule.Headers["x-key"] != "from-os" {
		t.Fatalf("headers = %v", rule.Headers)
	}
}

func TestRulesNeverPrintSecrets(t *testing.T) {
	r, err := Compile(allow(Service{ID: "anthropic", Credential: &Credential{Value: secret}}, Service{ID: "npm"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{r, r.Hosts[0], r.Hosts, &r} {
			if s := fmt.Sprintf(format, v); strings.Contains(s, secret) {
				t.Errorf("Sprintf(%q) shows the secret: %s", format, s)
			}
		}
	}
	if got, want := r.String(), "allow: api.anthropic.com[x-api-key] registry.npmjs.org"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
