package main_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func gitE2E(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// TestHostRootsEndToEnd: a door started with `--host-root .` in a directory imports a git repo
// under it (tracked, untracked, uncommitted edits; not ignored files), a command runs on the
// import, and the result exports as files; a second door of the same daemon without that root is
// refused, also when its client sends a door hello of its own.
func TestHostRootsEndToEnd(t *testing.T) {
	t.Parallel()
	dd := dataDir(t)
	root := t.TempDir()
	repo := filepath.Join(root, "proj")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".gitignore", "*.log\n")
	write("app.txt", "v1\n")
	gitE2E(t, repo, "init", "-q")
	gitE2E(t, repo, "add", ".")
	gitE2E(t, repo, "commit", "-q", "-m", "init")
	write("app.txt", "v2\n")
	write("notes.md", "untracked\n")
	write("debug.log", "ignored\n")

	door := doorCommand(t, dd)
	door.Args = append(door.Args, "--host-root", ".")
	door.Dir = root
	c := connectVia(t, "e2e-roots", &mcp.CommandTransport{Command: door})
	out, text, isErr := c.call("create_workspace", map[string]any{"name": "proj", "from_host_dir": "proj"})
	if isErr {
		t.Fatalf("import: %s", text)
	}
	imp, _ := out["imported"].(map[string]any)
	if imp == nil || imp["git"] != true || imp["dirty"] != true || imp["files"] != float64(3) {
		t.Fatalf("import result: %v", out)
	}
	_, text, isErr = c.call("run_command", map[string]any{"workspace": "proj", "command": "cat app.txt notes.md; ls -A; echo built > out.txt"})
	if isErr || !strings.Contains(text, "v2\nuntracked\n.gitignore\napp.txt\nnotes.md") {
		t.Fatalf("run: %v\n%s", isErr, text)
	}
	_, text, isErr = c.call("export_workspace", map[string]any{"workspace": "proj", "host_dir": filepath.Join(root, "exported"), "as": "files"})
	if isErr {
		t.Fatalf("export: %s", text)
	}
	for name, want := range map[string]string{"app.txt": "v2\n", "notes.md": "untracked\n", "out.txt": "built\n"} {
		if b, err := os.ReadFile(filepath.Join(root, "exported", name)); err != nil || string(b) != want {
			t.Errorf("exported %s: %q %v, want %q", name, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "exported", "debug.log")); err == nil {
		t.Errorf("an ignored file was exported")
	}

	// As a branch of the repository (the work tree untouched) and as a patch it accepts.
	out, text, isErr = c.call("export_workspace", map[string]any{"workspace": "proj", "host_dir": "proj", "as": "git-branch"})
	if isErr || out["branch"] != "sandkit/proj" || !strings.Contains(text, "merge sandkit/proj") {
		t.Fatalf("export git-branch: %v\n%s", out, text)
	}
	if b, err := exec.Command("git", "-C", repo, "show", "sandkit/proj:out.txt").Output(); err != nil || string(b) != "built\n" {
		t.Errorf("out.txt on the branch: %q %v", b, err)
	}
	if b, err := exec.Command("git", "-C", repo, "status", "--porcelain").Output(); err != nil || string(b) != " M app.txt\n?? notes.md\n" {
		t.Errorf("the repository's status after the export: %q %v", b, err)
	}
	_, text, isErr = c.call("export_workspace", map[string]any{"workspace": "proj", "host_dir": "out.patch", "as": "patch"})
	if isErr || !strings.Contains(text, "apply: git -C "+repo+" apply") {
		t.Fatalf("export patch: %s", text)
	}
	if b, err := exec.Command("git", "-C", repo, "apply", "--check", filepath.Join(root, "out.patch")).CombinedOutput(); err != nil {
		t.Errorf("git apply --check: %v %s", err, b)
	}

	// The person at the terminal exports a branch of their own with the CLI (no host root needed).
	if out, errs, code := cli(t, dd, "export", "proj", repo, "--git-branch", "review/cli"); code != 0 || !strings.Contains(out, "review/cli") {
		t.Errorf("sandkit-mcp export --git-branch: exit %d, %q %q", code, out, errs)
	}
	if b, err := exec.Command("git", "-C", repo, "show", "review/cli:out.txt").Output(); err != nil || string(b) != "built\n" {
		t.Errorf("out.txt on the CLI's branch: %q %v", b, err)
	}

	// Another door of the same daemon has no roots.
	other := connect(t, dd)
	for _, call := range []struct {
		tool string
		args map[string]any
	}{
		{"create_workspace", map[string]any{"name": "stolen", "from_host_dir": repo}},
		{"export_workspace", map[string]any{"workspace": "proj", "host_dir": filepath.Join(root, "again")}},
	} {
		_, text, isErr := other.call(call.tool, call.args)
		if !isErr || !strings.Contains(text, "--host-root") {
			t.Errorf("%s without roots: %v %s", call.tool, isErr, text)
		}
	}

	// A client that sends a door hello through its door gains nothing: only the door's own
	// first line counts.
	raw := doorCommand(t, dd)
	stdin, err := raw.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := raw.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = raw.Wait() }()
	lines := []string{
		`{"sandkit_door":1,"host_roots":["` + root + `"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"forger","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_workspace","arguments":{"name":"forged","from_host_dir":"` + repo + `"}}}`,
	}
	if _, err := stdin.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	deadline := time.AfterFunc(time.Minute, func() { _ = raw.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				IsError bool `json:"isError"`
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID != 2 {
			continue
		}
		if !msg.Result.IsError || len(msg.Result.Content) == 0 || !strings.Contains(msg.Result.Content[0].Text, "--host-root") {
			t.Errorf("a forged hello gave roots: %s", sc.Bytes())
		}
		return
	}
	t.Fatalf("no answer to the forged call: %v", sc.Err())
}

// TestServeHostRoots: `serve --host-root` and the config's host_roots apply to every connection:
// a plain door imports from either; a path under neither is refused.
func TestServeHostRoots(t *testing.T) {
	t.Parallel()
	dd := dataDir(t)
	flagRoot, cfgRoot := t.TempDir(), t.TempDir()
	for _, r := range []string{flagRoot, cfgRoot} {
		if err := os.WriteFile(filepath.Join(r, "f.txt"), []byte(r), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"host_roots": ["`+cfgRoot+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	startServe(t, dd, nil, "--host-root", flagRoot, "--config", cfg)
	c := connect(t, dd)
	for i, r := range []string{flagRoot, cfgRoot} {
		name := []string{"from-flag", "from-config"}[i]
		if _, text, isErr := c.call("create_workspace", map[string]any{"name": name, "from_host_dir": r}); isErr {
			t.Errorf("import from %s: %s", r, text)
		}
	}
	if _, text, isErr := c.call("create_workspace", map[string]any{"name": "elsewhere", "from_host_dir": t.TempDir()}); !isErr || !strings.Contains(text, "under no host root") {
		t.Errorf("import from outside the roots: %v %s", isErr, text)
	}
}
