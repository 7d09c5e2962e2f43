package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const templatesConfig = `{
  "default_policy": {"mode": "deny-all"},
  "max_policy": {"mode": "allow", "services": [{"id": "npm"}]},
  "templates": {
    "base": {
      "description": "a prepared workspace",
      "command": "sh", "args": ["-c", "echo prepared > /workspace/ready.txt; echo setting up"],
      "policy": {"mode": "deny-all"}
    }
  }
}`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sandkit.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sandkit runs the binary and returns its combined output and whether it succeeded.
func sandkit(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	return string(out), err == nil
}

func TestBootstrapCommand(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	conf := writeConfig(t, templatesConfig)

	out, ok := sandkit(t, "bootstrap", "--data-dir", dir, "--config", conf, "--log-level", "warn")
	if !ok || !strings.Contains(out, "base: built snapshot") {
		t.Fatalf("bootstrap: ok=%v\n%s", ok, out)
	}
	_, rest, _ := strings.Cut(out, "built snapshot ")
	snap, _, _ := strings.Cut(rest, " ")
	out, ok = sandkit(t, "bootstrap", "--data-dir", dir, "--config", conf, "--log-level", "warn")
	if !ok || !strings.Contains(out, "base: already built (snapshot "+snap) {
		t.Fatalf("second bootstrap: ok=%v\n%s", ok, out)
	}
	out, ok = sandkit(t, "bootstrap", "--data-dir", dir, "--config", conf, "--template", "nope")
	if ok || !strings.Contains(out, `"nope"`) || !strings.Contains(out, "base") {
		t.Fatalf("bootstrap of an unknown template: ok=%v\n%s", ok, out)
	}

	// With the daemon running (started by a door with the same config), bootstrap refuses; the
	// daemon serves the template built above (its setup does not run again) and enforces the
	// config's policies.
	c := connectVia(t, "e2e", &mcp.CommandTransport{Command: doorWithConfig(t, dir, conf)})
	out, ok = sandkit(t, "bootstrap", "--data-dir", dir, "--config", conf)
	if ok || !strings.Contains(out, "stop it first") {
		t.Fatalf("bootstrap with a daemon running: ok=%v\n%s", ok, out)
	}
	w := c.ok("create_workspace", map[string]any{"name": "from-base", "template": "base"})
	if w["template"] != "base" {
		t.Fatalf("create_workspace from template: %v", w)
	}
	h := c.ok("workspace_history", map[string]any{"workspace": "from-base"})
	commits, _ := h["commits"].([]any)
	// The workspace starts from the bootstrapped snapshot (snap): its setup commit, made by
	// bootstrap, not by a second setup run.
	if first, _ := commits[len(commits)-1].(map[string]any); first["kind"] != "setup" || snap == "" {
		t.Errorf("first commit %v: want kind setup on the bootstrapped snapshot %s", first, snap)
	}
	f := c.ok("read_file", map[string]any{"workspace": "from-base", "path": "ready.txt"})
	if f["content"] != "prepared\n" {
		t.Errorf("ready.txt = %v", f["content"])
	}
	c.fails("create_workspace", map[string]any{"name": "x", "template": "other"}, "base")
	c.fails("set_policy", map[string]any{"workspace": "from-base", "policy": map[string]any{"allow": []any{"*"}}}, "operator's limit")
	c.ok("set_policy", map[string]any{"workspace": "from-base", "policy": map[string]any{"allow": []any{"npm"}}})
	init := c.cs.InitializeResult()
	if init == nil || !strings.Contains(init.Instructions, "base: a prepared workspace") || !strings.Contains(init.Instructions, "operator's limit") {
		t.Errorf("instructions do not describe the config: %+v", init)
	}
}

func doorWithConfig(t *testing.T, dir, conf string) *exec.Cmd {
	cmd := doorCommand(t, dir)
	cmd.Args = append(cmd.Args, "--config", conf)
	return cmd
}

func TestBootstrapFailures(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	failing := writeConfig(t, `{"templates": {"broken": {"command": "sh", "args": ["-c", "echo no such package >&2; exit 3"], "policy": {"mode": "deny-all"}}}}`)
	out, ok := sandkit(t, "bootstrap", "--data-dir", dir, "--config", failing, "--log-level", "warn")
	if ok || !strings.Contains(out, "broken: FAILED") || !strings.Contains(out, "exit code 3") || !strings.Contains(out, "no such package") {
		t.Fatalf("bootstrap of a failing template: ok=%v\n%s", ok, out)
	}

	bad := writeConfig(t, `{"templates": {"t": {"command": "true", "policy": {"mode": "allow", "domains": ["a.*.example.com"]}}}}`)
	out, ok = sandkit(t, "bootstrap", "--data-dir", dir, "--config", bad)
	if ok || !strings.Contains(out, bad) || !strings.Contains(out, "templates.t.policy") || !strings.Contains(out, "wildcard") {
		t.Fatalf("bootstrap with a bad config: ok=%v\n%s", ok, out)
	}
	out, ok = sandkit(t, "bootstrap", "--data-dir", dir)
	if ok || !strings.Contains(out, "nothing to bootstrap") {
		t.Fatalf("bootstrap without a config: ok=%v\n%s", ok, out)
	}
	// serve refuses a bad config at start, naming the file and field.
	out, ok = sandkit(t, "serve", "--data-dir", dir, "--config", bad, "--preview-addr", "")
	if ok || !strings.Contains(out, "templates.t.policy") {
		t.Fatalf("serve with a bad config: ok=%v\n%s", ok, out)
	}
	// doctor reports it too.
	out, _ = sandkit(t, "doctor", "--data-dir", dir, "--config", bad)
	if !strings.Contains(out, "[FAIL] operator config") || !strings.Contains(out, "templates.t.policy") {
		t.Fatalf("doctor with a bad config:\n%s", out)
	}
}
