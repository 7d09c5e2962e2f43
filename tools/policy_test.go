package tools

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
	"github.com/sandkit/sandkit-mcp/store"
)

// TestPolicyArgumentErrors: malformed policies are tool errors naming the argument and what to
// change, before the engine is involved (the engine here is nil).
func TestPolicyArgumentErrors(t *testing.T) {
	tools := newToolset(nil, nil, Options{}).all()
	pol := func(p string) string { return `{"workspace": "w", "policy": ` + p + `}` }
	tests := []struct {
		tool, args string
		want       []string
	}{
		{"set_policy", `{"workspace": "w"}`, []string{`invalid argument "policy": missing`, "deny-all"}},
		{"set_policy", `{"policy": {"mode": "deny-all"}}`, []string{`invalid argument "workspace"`}},
		{"set_policy", pol(`{"mode": "allow", "domains": ["a.*.example.com"]}`), []string{`invalid argument "policy"`, "wildcard", "first label"}},
		{"set_policy", pol(`{"mode": "allow", "domains": ["*example.com"]}`), []string{`invalid argument "policy"`, "wildcard"}},
		{"set_policy", pol(`{"mode": "allow", "domains": ["example.com:8080"]}`), []string{`invalid argument "policy"`, "port"}},
		{"set_policy", pol(`{"mode": "allow", "domains": ["https://example.com/x"]}`), []string{`invalid argument "policy"`, "example.com"}},
		{"set_policy", pol(`{"mode": "allow"}`), []string{`invalid argument "policy"`, "at least one domain or service"}},
		{"set_policy", pol(`{"mode": "allow", "services": []}`), []string{`invalid argument "policy"`, "at least one domain or service"}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "npmjs"}]}`), []string{`invalid argument "policy"`, `"npmjs"`, "npm"}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "internal"}]}`), []string{`invalid argument "policy"`, `"internal"`}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "internal", "domains": ["api.internal.example"], "headers": [{"name": "bad header", "credential": {"env": "SANDKIT_CRED_K"}}]}]}`),
			[]string{`invalid argument "policy"`, "bad header"}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "internal", "domains": ["api.internal.example"], "headers": [{"name": "host", "credential": {"env": "SANDKIT_CRED_K"}}]}]}`),
			[]string{`invalid argument "policy"`, `"host"`}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "github", "credential": {"env": "A", "value": "b"}}]}`), []string{`invalid argument "policy"`, "github"}},
		{"set_policy", pol(`{"mode": "deny-all", "services": [{"id": "npm"}]}`), []string{`invalid argument "policy"`, "takes no domains or services"}},
		{"set_policy", pol(`{"mode": "allow", "services": [{"id": "npm", "token": "x"}]}`), []string{`unknown argument "token"`}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"mode": "allow", "services": [{"id": "npm", "domains": ["x.com"]}]}}`, []string{`invalid argument "policy"`, "npm"}},
		{"open_session", `{"workspace": "w", "policy": {"mode": "allow", "domains": ["a..b"]}}`, []string{`invalid argument "policy"`, "a..b"}},
		{"create_workspace", `{"policy": {"mode": "allow", "services": [{"id": ""}]}}`, []string{`invalid argument "policy"`}},
	}
	for _, tc := range tests {
		res := callTool(t, tools, tc.tool, tc.args)
		if !res.IsError {
			t.Errorf("%s %s: not an error result", tc.tool, tc.args)
			continue
		}
		text := resultText(t, res)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %s:\n got %q\nwant it to contain %q", tc.tool, tc.args, text, w)
			}
		}
	}
}

// TestPolicySchemaListsPresets: a model learns the presets from the tool list.
func TestPolicySchemaListsPresets(t *testing.T) {
	for _, tool := range registeredTools(t) {
		if tool.Name != "set_policy" {
			continue
		}
		var s struct {
			Properties map[string]struct {
				Properties map[string]struct {
					Description string `json:"description"`
				} `json:"properties"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(tool.RawInputSchema, &s); err != nil {
			t.Fatal(err)
		}
		desc := s.Properties["policy"].Properties["services"].Description
		if len(policies.Presets()) < 10 {
			t.Fatalf("policies.Presets() lists %d presets", len(policies.Presets()))
		}
		for _, p := range policies.Presets() {
			if !strings.Contains(desc, `"`+p.ID+`"`) {
				t.Errorf("services' description does not list preset %q: %s", p.ID, desc)
			}
		}
		return
	}
	t.Fatal("no set_policy tool")
}

// newEngineWith opens a real engine (bbolt file, local provider) with the options set gives.
func newEngineWith(t *testing.T, set func(*engine.Options)) *engine.Engine {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local")})
	if err != nil {
		t.Fatalf("local provider: %v (install bubblewrap: apt-get install -y bubblewrap)", err)
	}
	localtest.StopLiveAtCleanup(t, pv)
	t.Cleanup(func() { pv.Close() })
	opts := engine.Options{Store: st, Provider: pv}
	set(&opts)
	eng, err := engine.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func TestSetPolicyRoundTrip(t *testing.T) {
	limit := policies.Policy{Mode: policies.Allow, Domains: []string{"*.example.com"}, Services: []policies.Service{{ID: "npm"}, {ID: "github"}}}
	eng := newEngineWith(t, func(o *engine.Options) {
		o.MaxPolicy = &limit
		o.Getenv = func(string) (string, bool) { return "", false }
		o.Templates = map[string]engine.Template{
			"node": {Description: "test", Command: "sh", Args: []string{"-c", "echo set up > /workspace/marker"}, Policy: policies.Deny()},
		}
	})
	r := newRigOn(t, eng)

	ws, _ := r.ok("create_workspace", map[string]any{"name": "p"})
	if pol, _ := ws["policy"].(map[string]any); pol["mode"] != "deny-all" {
		t.Fatalf("default policy: %v", ws["policy"])
	}
	out, text := r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{
		"mode": "allow", "services": []any{map[string]any{"id": "github"}, map[string]any{"id": "npm"}}, "domains": []any{"Docs.Example.com."},
	}})
	pol, _ := out["policy"].(map[string]any)
	if pol["mode"] != "allow" || !strings.Contains(text, "allow:docs.example.com,github,npm") {
		t.Fatalf("set_policy result: %v\n%s", out, text)
	}
	creds, _ := out["policy_credentials"].([]any)
	if len(creds) != 1 || creds[0] != "github: env GITHUB_TOKEN" || !strings.Contains(text, "github: env GITHUB_TOKEN") {
		t.Errorf("policy_credentials = %v; text %s", out["policy_credentials"], text)
	}
	if !strings.Contains(text, "warning:") || !strings.Contains(text, "needs the environment variable GITHUB_TOKEN") {
		t.Errorf("the missing credential variable should be warned about: %s", text)
	}
	got, _ := r.ok("get_workspace", map[string]any{"workspace": "p"})
	if g, _ := got["policy"].(map[string]any); len(g["services"].([]any)) != 2 || len(got["policy_credentials"].([]any)) != 1 {
		t.Errorf("get_workspace does not show the policy set: %v", got)
	}

	// Durable: no literal secrets, and the message names the service.
	_, text = r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{
		"mode": "allow", "services": []any{map[string]any{"id": "github", "credential": map[string]any{"value": "ghp_secret123"}}},
	}}, `service "github"`)
	if !strings.Contains(text, "literal secret") || strings.Contains(text, "ghp_secret123") {
		t.Errorf("literal secret refusal: %s", text)
	}
	r.fails("create_workspace", map[string]any{"name": "q", "policy": map[string]any{
		"mode": "allow", "services": []any{map[string]any{"id": "internal", "domains": []any{"api.example.com"},
			"headers": []any{map[string]any{"name": "x-api-key", "credential": map[string]any{"value": "k"}}}}},
	}}, `service "internal"`)

	// The operator's limit, wherever a policy is given.
	r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"mode": "allow-all"}}, "operator's limit")
	r.fails("create_workspace", map[string]any{"name": "q", "policy": map[string]any{"mode": "allow", "services": []any{map[string]any{"id": "pypi"}}}}, `service "pypi"`)
	r.fails("run_command", map[string]any{"workspace": "p", "command": "true", "policy": map[string]any{"mode": "allow", "domains": []any{"evil.test"}}}, "operator's limit")
	r.fails("open_session", map[string]any{"workspace": "p", "policy": map[string]any{"mode": "allow-all"}}, "max_policy")

	// A per-run literal secret is accepted, and shown redacted.
	run, _ := r.ok("run_command", map[string]any{"workspace": "p", "command": "true", "policy": map[string]any{
		"mode": "allow", "services": []any{map[string]any{"id": "github", "credential": map[string]any{"value": "ghp_secret123"}}},
	}})
	if str(run, "policy") != "allow:github" {
		t.Errorf("run policy = %q", str(run, "policy"))
	}

	// set_policy while another connection holds a session: refused with the lease. (The session
	// could not start with the github preset: GITHUB_TOKEN is not set here.)
	r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"mode": "allow", "services": []any{map[string]any{"id": "npm"}}}})
	// mcp-go's stdio sessions share one id, so the other holder opens its session at the engine.
	other := engine.Holder{Conn: "another-connection", Client: "other-agent 1.0"}
	ses, err := eng.OpenSession(ctxT(t), other, engine.OpenSessionRequest{Workspace: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, text = r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"mode": "deny-all"}}, ses.ID)
	if !strings.Contains(text, "other-agent 1.0") || !strings.Contains(text, "holder") {
		t.Errorf("lease refusal: %s", text)
	}
	if _, err := eng.DiscardSession(ctxT(t), other, ses.ID); err != nil {
		t.Fatal(err)
	}

	// The holder itself may: its live session switches too.
	mine, _ := r.ok("open_session", map[string]any{"workspace": "p"})
	out, _ = r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"mode": "deny-all"}})
	if l, _ := out["session"].(map[string]any); l["policy"] != "deny-all" || l["session_id"] != str(mine, "session_id") {
		t.Errorf("the holder's set_policy reaches its live session: %v", out["session"])
	}
	r.ok("discard_session", map[string]any{"session_id": str(mine, "session_id")})

	// Templates: unknown names list the known ones; a known one gives a setup commit.
	r.fails("create_workspace", map[string]any{"name": "t", "template": "python"}, "node")
	tw, text := r.ok("create_workspace", map[string]any{"name": "t", "template": "node"})
	if str(tw, "template") != "node" || !strings.Contains(text, "from template node") {
		t.Errorf("create_workspace from a template: %v\n%s", tw, text)
	}
	hist, _ := r.ok("workspace_history", map[string]any{"workspace": "t"})
	commits, _ := hist["commits"].([]any)
	if first, _ := commits[len(commits)-1].(map[string]any); first["kind"] != "setup" {
		t.Errorf("first commit of a template workspace: %v", commits)
	}
	f, _ := r.ok("read_file", map[string]any{"workspace": "t", "path": "marker"})
	if str(f, "content") != "set up\n" {
		t.Errorf("marker = %q", str(f, "content"))
	}
}
