package main_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

// vercelEnv is the environment that points the server at the fake with its credentials.
func vercelEnv(url string) []string {
	return append(os.Environ(), "SANDKIT_VERCEL_API_URL="+url, "VERCEL_ACCESS_TOKEN="+vercelfaketest.TestToken,
		"VERCEL_TEAM_ID="+vercelfaketest.TestTeamID, "VERCEL_PROJECT_ID="+vercelfaketest.TestProjectID, "VERCEL_OIDC_TOKEN=")
}

// TestVercelProviderStory drives the built binary with --provider vercel through the official
// MCP client: the daemon (started by the door, with the door's environment) talks HTTP to the
// Vercel fake; every durable command is a Vercel sandbox and a snapshot.
func TestVercelProviderStory(t *testing.T) {
	t.Parallel()
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	dir := dataDir(t)
	door := exec.Command(binary(t), "--data-dir", dir, "--provider", "vercel", "--log-level", "warn")
	door.Env = vercelEnv(fe.URL)
	door.Stderr = testLog{t}
	c := connectVia(t, "vercel-e2e", &mcp.CommandTransport{Command: door})

	ws := c.ok("create_workspace", map[string]any{"name": "v"})
	if ws["provider"] != "vercel" {
		t.Fatalf("create_workspace: provider %v, want vercel", ws["provider"])
	}
	c.fails("create_workspace", map[string]any{"name": "low", "exposed_ports": []any{80}}, "1024")
	c.ok("write_files", map[string]any{"workspace": "v", "files": []any{map[string]any{"path": "hello.txt", "content": "hello\n"}}})
	r := c.ok("run_command", map[string]any{"workspace": "v", "command": "sh", "args": []any{"-c", "cat hello.txt; echo two > two.txt; exit 3"}})
	if r["exit_code"].(float64) != 3 || r["stdout"] != "hello\n" || r["commit_id"] == "" {
		t.Fatalf("run_command: %v", r)
	}
	if rf := c.ok("read_file", map[string]any{"workspace": "v", "path": "two.txt"}); rf["content"] != "two\n" {
		t.Fatalf("read_file: %v", rf)
	}
	snaps := 0
	for _, s := range fe.Fake.Snapshots() {
		if s.Status == "created" {
			snaps++
		}
	}
	if snaps != 2 {
		t.Errorf("the fake holds %d snapshots after write_files and run_command; want 2 (one per commit)", snaps)
	}
	for _, s := range fe.Fake.Sessions() {
		if s.Status == "running" {
			t.Errorf("session %s of sandbox %s still runs after the durable calls ended", s.ID, s.Sandbox)
		}
	}
}

// TestVercelDoctor: doctor names missing credentials without showing values, and says when the
// API refuses them or accepts them.
func TestVercelDoctor(t *testing.T) {
	t.Parallel()
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	dir := t.TempDir()
	doctor := func(env []string) (string, error) {
		cmd := exec.Command(binary(t), "doctor", "--data-dir", dir, "--provider", "vercel")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var bare []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VERCEL_") && !strings.HasPrefix(kv, "SANDKIT_VERCEL_") {
			bare = append(bare, kv)
		}
	}
	out, err := doctor(append(bare, "VERCEL_ACCESS_TOKEN=secret-token-value-1"))
	if err == nil || !strings.Contains(out, "VERCEL_TEAM_ID") || !strings.Contains(out, "VERCEL_PROJECT_ID") || strings.Contains(out, "secret-token-value-1") {
		t.Errorf("doctor with only an access token: %v\n%s\nwant a failure naming VERCEL_TEAM_ID and VERCEL_PROJECT_ID, without the token", err, out)
	}
	out, err = doctor(append(vercelEnv(fe.URL), "VERCEL_ACCESS_TOKEN=wrong-token-value-2"))
	if err == nil || !strings.Contains(out, "[FAIL] vercel API") || strings.Contains(out, "wrong-token-value-2") {
		t.Errorf("doctor with a refused token: %v\n%s\nwant the vercel API check failing, without the token", err, out)
	}
	out, err = doctor(vercelEnv(fe.URL))
	if err != nil || !strings.Contains(out, "[ok  ] vercel API") || !strings.Contains(out, "[ok  ] vercel token: an access token") || strings.Contains(out, vercelfaketest.TestToken) {
		t.Errorf("doctor with good credentials: %v\n%s", err, out)
	}

	// OIDC tokens: when the token expires, and how it is renewed or that nothing renews it.
	home := t.TempDir()
	oidcEnv := append(bare, "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "SANDKIT_VERCEL_API_URL="+fe.URL, "SANDKIT_VERCEL_OIDC_REFRESH_URL="+fe.URL)
	tok := fe.Fake.IssueOIDCToken(time.Hour)
	var claims struct{ Exp int64 }
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339)
	noSecret := func(what, out string) {
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(out, part) {
				t.Errorf("doctor %s shows the token:\n%s", what, out)
			}
		}
	}
	out, err = doctor(append(oidcEnv, "VERCEL_OIDC_TOKEN="+tok))
	if err != nil || !strings.Contains(out, "[ok  ] vercel token: OIDC token from VERCEL_OIDC_TOKEN, expires at "+exp) ||
		!strings.Contains(out, "nothing renews it") || !strings.Contains(out, "vercel login") || !strings.Contains(out, "[ok  ] vercel API") {
		t.Errorf("doctor with an OIDC token and no renewal: %v\n%s", err, out)
	}
	noSecret("with an OIDC token", out)

	envFile := filepath.Join(home, ".env.local")
	if err := os.WriteFile(envFile, []byte("VERCEL_OIDC_TOKEN=\""+tok+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = doctor(append(oidcEnv, "SANDKIT_VERCEL_OIDC_TOKEN_FILE="+envFile))
	if err != nil || !strings.Contains(out, "OIDC token from "+envFile+", expires at "+exp) || !strings.Contains(out, "renewal: re-read from "+envFile+" when it changes") {
		t.Errorf("doctor with a token file: %v\n%s", err, out)
	}
	noSecret("with a token file", out)

	if err := os.MkdirAll(filepath.Join(home, "data", "com.vercel.cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "data", "com.vercel.cli", "auth.json"), []byte(`{"token":"cli-login-value-3"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = doctor(append(oidcEnv, "VERCEL_OIDC_TOKEN="+tok))
	if err != nil || !strings.Contains(out, "renewal: renewed with the Vercel CLI login at "+filepath.Join(home, "data", "com.vercel.cli", "auth.json")) || strings.Contains(out, "cli-login-value-3") {
		t.Errorf("doctor with a CLI login: %v\n%s", err, out)
	}
	noSecret("with a CLI login", out)
}

// TestVercelDemo: `demo --provider vercel` tells the door it spawns which provider to use, runs
// the whole story there, and leaves no snapshot behind its throw-away data dir.
func TestVercelDemo(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	cmd := exec.Command(binary(t), "demo", "--provider", "vercel")
	cmd.Env = vercelEnv(fe.URL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--provider vercel") || !strings.Contains(string(out), "200 <h1>hello from a sandkit session</h1>") ||
		!strings.Contains(string(out), "demo finished: every step above went through MCP to real Vercel sandboxes") {
		t.Fatalf("demo --provider vercel: %v\n%s", err, out)
	}
	snaps := fe.Fake.Snapshots()
	if len(snaps) == 0 {
		t.Errorf("the demo made no snapshot at the Vercel fake:\n%s", out)
	}
	for _, s := range snaps {
		if s.Status == "created" {
			t.Errorf("snapshot %s outlived the demo's throw-away data dir", s.ID)
		}
	}
}
