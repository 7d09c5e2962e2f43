package tools

import (
	"context"
	"encoding/json"
	"fmt"
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
// change; the compact grammar's own mistakes are caught by the tools layer, the rest by the
// engine (policy errors).
func TestPolicyArgumentErrors(t *testing.T) {
	ctx, tools := connectedTools(t)
	pol := func(p string) string { return `{"workspace": "w", "policy": ` + p + `}` }
	tests := []struct {
		tool, args string
		want       []string
	}{
		{"set_policy", `{"workspace": "w"}`, []string{`invalid argument: policy: missing`, `{"allow": ["npm"]}`}},
		{"set_policy", `{"policy": {}}`, []string{`invalid argument: workspace`}},
		{"set_policy", pol(`{"allow": ["a.*.example.com"]}`), []string{`policy error`, "wildcard", "first label"}},
		{"set_policy", pol(`{"allow": ["*example.com"]}`), []string{`policy error`, "wildcard"}},
		{"set_policy", pol(`{"allow": ["example.com:8080"]}`), []string{`policy error`, "port"}},
		{"set_policy", pol(`{"allow": ["https://example.com/x"]}`), []string{`policy error`, "example.com"}},
		{"set_policy", pol(`{"allow": [""]}`), []string{`invalid argument: policy`, "allow[0] is empty"}},
		{"set_policy", pol(`{"allow": ["npmjs"]}`), []string{`invalid argument: policy`, `"npmjs"`, "npm"}},
		{"set_policy", pol(`{"allow": ["*", "npm"]}`), []string{`invalid argument: policy`, "stands alone"}},
		{"set_policy", pol(`{"headers": [{"hosts": ["api.internal.example"], "name": "bad header", "env": "SANDKIT_CRED_K"}]}`),
			[]string{`policy error`, "bad header"}},
		{"set_policy", pol(`{"headers": [{"hosts": ["api.internal.example"], "name": "host", "env": "SANDKIT_CRED_K"}]}`),
			[]string{`policy error`, `"host"`}},
		{"set_policy", pol(`{"headers": [{"hosts": [], "name": "x-k", "env": "SANDKIT_CRED_K"}]}`), []string{`invalid argument: policy`, "no hosts"}},
		{"set_policy", pol(`{"allow": ["github"], "credentials": {"github": {"env": "A", "value": "b"}}}`), []string{`policy error`, "github", "exactly one"}},
		{"set_policy", pol(`{"allow": ["npm"], "credentials": {"npm": {"env": "SANDKIT_CRED_N"}}}`), []string{`policy error`, "sends no credential"}},
		{"set_policy", pol(`{"allow": ["npm"], "credentials": {"pypi": {"env": "SANDKIT_CRED_N"}}}`), []string{`invalid argument: policy`, "not in allow"}},
		{"set_policy", pol(`{"allow": ["npm"], "token": "x"}`), []string{`unknown argument "token"`}},
		{"set_policy", pol(`{"mode": "deny-all"}`), []string{`unknown argument "mode"`}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"allow": ["github"], "credentials": {"github": {"env": "HOME"}}}}`, []string{`policy error`, "SANDKIT_CRED_"}},
		{"open_session", `{"workspace": "w", "policy": {"allow": ["a..b"]}}`, []string{`policy error`, "a..b"}},
	}
	for _, tc := range tests {
		res := callToolCtx(t, ctx, tools, tc.tool, tc.args)
		text, ok := wantErrorResult(t, tc.tool+" "+tc.args, res, tc.want)
		if !ok {
			continue
		}
		if f, ok := res.StructuredContent.(failure); !ok || (f.Error.Argument != "policy" && f.Error.Argument != "workspace" && !strings.Contains(text, "unknown argument")) {
			t.Errorf("%s %s: structured error does not name the argument: %+v", tc.tool, tc.args, res.StructuredContent)
		}
	}
}

// TestPolicySchemaListsPresets: a model learns the presets from the tool list, once (set_policy),
// and the other tools refer to it.
func TestPolicySchemaListsPresets(t *testing.T) {
	descs := map[string]string{}
	for _, tool := range registeredTools(t) {
		var s struct {
			Properties map[string]struct {
				Description string `json:"description"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(tool.RawInputSchema, &s); err != nil {
			t.Fatal(err)
		}
		if p, ok := s.Properties["policy"]; ok {
			descs[tool.Name] = p.Description
		}
	}
	if len(policies.Presets()) < 10 {
		t.Fatalf("policies.Presets() lists %d presets", len(policies.Presets()))
	}
	for _, p := range policies.Presets() {
		if !strings.Contains(descs["set_policy"], p.ID+" (") {
			t.Errorf("set_policy's policy does not list preset %q: %s", p.ID, descs["set_policy"])
		}
	}
	for _, name := range []string{"create_workspace", "run_command", "open_session"} {
		if !strings.Contains(descs[name], "as in set_policy") {
			t.Errorf("%s's policy does not refer to set_policy's grammar: %q", name, descs[name])
		}
	}
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
	if pol, _ := ws["policy"].(map[string]any); len(pol["allow"].([]any)) != 0 {
		t.Fatalf("default policy: %v", ws["policy"])
	}
	out, text := r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{
		"allow": []any{"github", "npm", "Docs.Example.com."},
	}})
	pol, _ := out["policy"].(map[string]any)
	if fmt.Sprint(pol["allow"]) != "[docs.example.com github npm]" || !strings.Contains(text, "allow:docs.example.com,github,npm") {
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
	if g, _ := got["policy"].(map[string]any); len(g["allow"].([]any)) != 3 || len(got["policy_credentials"].([]any)) != 1 {
		t.Errorf("get_workspace does not show the policy set: %v", got)
	}

	// Durable: no literal secrets, and the message names the service.
	_, text = r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{
		"allow": []any{"github"}, "credentials": map[string]any{"github": map[string]any{"value": "ghp_secret123"}},
	}}, `service "github"`)
	if !strings.Contains(text, "literal secret") || strings.Contains(text, "ghp_secret123") {
		t.Errorf("literal secret refusal: %s", text)
	}
	r.fails("create_workspace", map[string]any{"name": "q", "policy": map[string]any{
		"headers": []any{map[string]any{"hosts": []any{"api.example.com"}, "name": "x-api-key", "value": "k"}},
	}}, "literal secret")

	// The operator's limit, wherever a policy is given.
	r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"allow": []any{"*"}}}, "operator's limit")
	r.fails("create_workspace", map[string]any{"name": "q", "policy": map[string]any{"allow": []any{"pypi"}}}, `service "pypi"`)
	r.fails("run_command", map[string]any{"workspace": "p", "command": "true", "policy": map[string]any{"allow": []any{"evil.test"}}}, "operator's limit")
	r.fails("open_session", map[string]any{"workspace": "p", "policy": map[string]any{"allow": []any{"*"}}}, "max_policy")

	// A per-run literal secret is accepted, and shown redacted.
	run, _ := r.ok("run_command", map[string]any{"workspace": "p", "command": "true", "policy": map[string]any{
		"allow": []any{"github"}, "credentials": map[string]any{"github": map[string]any{"value": "ghp_secret123"}},
	}})
	if str(run, "policy") != "allow:github" {
		t.Errorf("run policy = %q", str(run, "policy"))
	}

	// set_policy while another connection holds a session: refused with the lease. (The session
	// could not start with the github preset: GITHUB_TOKEN is not set here.)
	r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"allow": []any{"npm"}}})
	// mcp-go's stdio sessions share one id, so the other holder opens its session at the engine.
	other := engine.Holder{Conn: "another-connection", Client: "other-agent 1.0"}
	ses, err := eng.OpenSession(ctxT(t), other, engine.OpenSessionRequest{Workspace: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, text = r.fails("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{}}, ses.ID)
	if !strings.Contains(text, "other-agent 1.0") || !strings.Contains(text, "holder") {
		t.Errorf("lease refusal: %s", text)
	}
	if _, err := eng.DiscardSession(ctxT(t), other, ses.ID); err != nil {
		t.Fatal(err)
	}

	// The holder itself may: its live session switches too.
	mine, _ := r.ok("open_session", map[string]any{"workspace": "p"})
	out, _ = r.ok("set_policy", map[string]any{"workspace": "p", "policy": map[string]any{"allow": []any{}}})
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
