package tools

import (
	"os"
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
}
