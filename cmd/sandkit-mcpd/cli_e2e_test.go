package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs a command for the humans against a data dir and returns its stdout, stderr and exit
// code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runBinary(t, append(args, "--data-dir", dir)...)
}

// TestHumanCLI: ls, log, runs and show on the data dir the agents use, with no daemon running
// (the command starts it, as the stdio door does) and with one serving an agent.
func TestHumanCLI(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	if out, errs, code := cli(t, dir, "ls"); code != 0 || strings.TrimSpace(out) != "no workspaces" {
		t.Fatalf("ls with no daemon running: exit %d, %q %q", code, out, errs)
	}

	agent := connect(t, dir)
	agent.ok("create_workspace", map[string]any{"name": "site"})
	run := agent.ok("run_command", map[string]any{"workspace": "site", "command": "echo hi > index.html; echo made"})
	runID := run["run_id"].(string)

	out, _, code := cli(t, dir, "ls")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "site") || !strings.Contains(out, "ws_") {
		t.Errorf("ls: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "log", "site")
	if code != 0 || !strings.Contains(out, "run: echo hi > index.html; echo made") || !strings.Contains(out, "[head]") || !strings.Contains(out, "empty") {
		t.Errorf("log site: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "runs", "site")
	if code != 0 || !strings.Contains(out, runID) || !strings.Contains(out, "exited") {
		t.Errorf("runs site: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "show", runID, "--json")
	var shown map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown["status"] != "exited" || shown["stdout"] != "made\n" || shown["next"] != nil {
		t.Errorf("show --json: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "show", runID)
	if code != 0 || !strings.Contains(out, "exited 0") || !strings.Contains(out, "made") || strings.Contains(out, "next:") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "diff", "site")
	if code != 0 || !strings.Contains(out, "index.html") || !strings.Contains(out, "+hi") || strings.Contains(out, "next:") {
		t.Errorf("diff site: exit %d\n%s", code, out)
	}
	dest := filepath.Join(t.TempDir(), "out")
	out, errs, code := cli(t, dir, "export", "site", dest)
	if b, err := os.ReadFile(filepath.Join(dest, "index.html")); code != 0 || err != nil || string(b) != "hi\n" {
		t.Errorf("export site %s: exit %d, %q %q; index.html %q %v", dest, code, out, errs, b, err)
	}
	if _, errs, code := cli(t, dir, "export", "site", dest); code != 1 || !strings.Contains(errs, "not empty") {
		t.Errorf("export into a non-empty directory: exit %d, %q", code, errs)
	}
	if _, errs, code := cli(t, dir, "log", "nope"); code != 1 || !strings.Contains(errs, `no workspace with id or name "nope"`) {
		t.Errorf("log of a missing workspace: exit %d, %q", code, errs)
	}
	if _, errs, code := cli(t, dir, "log"); code != 2 || !strings.Contains(errs, "usage: sandkit-mcp log WS") {
		t.Errorf("log without a workspace: exit %d, %q", code, errs)
	}
	// The agent's connection is unaffected.
	agent.ok("get_workspace", map[string]any{"workspace": "site"})
}
