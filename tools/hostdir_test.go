package tools

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostDirTools: without host roots, from_host_dir and export_workspace fail with how to
// enable them; with Options.HostRoots, a directory imports (the result says what came) and a
// workspace exports into a new directory, and both results match their output schemas.
func TestHostDirTools(t *testing.T) {
	eng := newEngine(t, nil)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proj", "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proj", "src", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	none := newRigOn(t, eng)
	out, _ := none.fails("create_workspace", map[string]any{"name": "p", "from_host_dir": root}, "--host-root")
	if e := sub(out, "error"); str(e, "kind") != "invalid_argument" || str(e, "argument") != "from_host_dir" {
		t.Errorf("no roots: error %v", e)
	}
	none.ok("create_workspace", map[string]any{"name": "plain"})
	none.fails("export_workspace", map[string]any{"workspace": "plain", "host_dir": filepath.Join(root, "out")}, "host_roots")

	r := newRigOpts(t, eng, Options{HostRoots: []string{root}})
	out, text := r.ok("create_workspace", map[string]any{"name": "p", "from_host_dir": "proj"})
	imp := sub(out, "imported")
	if imp == nil || imp["files"] != float64(1) || str(imp, "host_dir") != filepath.Join(root, "proj") || !strings.Contains(text, "imported "+filepath.Join(root, "proj")) {
		t.Errorf("import result: %v\n%s", out, text)
	}
	hist, _ := r.ok("workspace_history", map[string]any{"workspace": "p"})
	commits, _ := hist["commits"].([]any)
	if len(commits) != 1 {
		t.Fatalf("history: %v", hist)
	}
	if first, _ := commits[0].(map[string]any); str(first, "kind") != "import" || str(sub(first, "import"), "host_dir") != filepath.Join(root, "proj") {
		t.Errorf("first commit: %v", first)
	}
	out, text = r.ok("export_workspace", map[string]any{"workspace": "p", "host_dir": "out", "as": "files"})
	if out["files"] != float64(1) || !strings.Contains(text, "exported commit") {
		t.Errorf("export result: %v\n%s", out, text)
	}
	if b, err := os.ReadFile(filepath.Join(root, "out", "src", "main.go")); err != nil || string(b) != "package main\n" {
		t.Errorf("exported file: %q %v", b, err)
	}
	r.fails("export_workspace", map[string]any{"workspace": "p", "host_dir": "out"}, "not empty")
	r.fails("export_workspace", map[string]any{"workspace": "p", "host_dir": "../x"}, "leaves the host root")

	// A git import exports as a branch and as a patch; results name the commands to run.
	repo := filepath.Join(root, "proj")
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "first"}} {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, b)
		}
	}
	r.ok("create_workspace", map[string]any{"name": "g", "from_host_dir": "proj"})
	r.ok("write_files", map[string]any{"workspace": "g", "files": []any{map[string]any{"path": "src/new.go", "content": "package main\n"}}})
	out, text = r.ok("export_workspace", map[string]any{"workspace": "g", "host_dir": "proj", "as": "git-branch"})
	if str(out, "branch") != "sandkit/g" || str(out, "git_commit") == "" || !strings.Contains(text, "merge sandkit/g") || !strings.Contains(text, "review: git -C "+repo+" log -p") {
		t.Errorf("git-branch result: %v\n%s", out, text)
	}
	if next, _ := out["next"].([]any); len(next) == 0 || str(next[0].(map[string]any), "tool") != "workspace_diff" {
		t.Errorf("git-branch next: %v", out["next"])
	}
	out, text = r.ok("export_workspace", map[string]any{"workspace": "g", "host_dir": "g.patch", "as": "patch"})
	if str(out, "host_dir") != filepath.Join(root, "g.patch") || !strings.Contains(text, "apply: git -C "+repo+" apply "+filepath.Join(root, "g.patch")) {
		t.Errorf("patch result: %v\n%s", out, text)
	}
	r.fails("export_workspace", map[string]any{"workspace": "p", "host_dir": "proj", "as": "git-branch", "branch": "main"}, "needs a workspace imported from a git work tree")
}
