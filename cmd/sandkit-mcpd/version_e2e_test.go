package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionNamesTheBuild: a binary built from a git checkout says which commit it is, the same
// in `sandkit-mcpd version`, in the thin front's `sandkit-mcp version` (so a door can compare it
// with its daemon's), in the MCP serverInfo, in /healthz and in the daemon's pidfile.
//
// Go stamps no VCS information in a linked git worktree (it takes only a directory named .git
// for a repository's root, and a worktree's .git is a file), so the binary is built from a
// throwaway repository holding this module's files in one commit.
func TestVersionNamesTheBuild(t *testing.T) {
	repo := t.TempDir()
	root := filepath.Join("..", "..")
	list, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		} else if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com",
			"-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "the module as tested")
	rev := git("rev-parse", "HEAD")

	bins := t.TempDir()
	bin, front := filepath.Join(bins, "sandkit-mcpd"), filepath.Join(bins, "sandkit-mcp")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bins, "./cmd/sandkit-mcpd", "./cmd/sandkit-mcp")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// What the go command recorded, read independently of the binary.
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var modVersion string
	for _, line := range strings.Split(string(info), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" {
			modVersion = f[2]
		}
	}
	if !bytes.Contains(info, []byte("vcs.revision="+rev)) {
		t.Fatalf("go build did not stamp revision %s:\n%s", rev, info)
	}

	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "sandkit-mcp ")
	if !ok || !strings.Contains(v, rev[:12]) || !strings.HasPrefix(v, modVersion) || strings.Contains(v, " ") {
		t.Fatalf("sandkit-mcpd version: %q; want one word holding module version %s and revision %s", out, modVersion, rev[:12])
	}
	if fout, err := exec.Command(front, "version").Output(); err != nil || string(fout) != string(out) {
		t.Errorf("sandkit-mcp version (the front): %q, %v; want sandkit-mcpd's %q", fout, err, out)
	}

	s := startServeOf(t, bin, dataDir(t), nil, "--http", "127.0.0.1:0")
	if _, h := health(t, s.info.HTTP, ""); h["version"] != v {
		t.Errorf("/healthz version %v, want %q", h["version"], v)
	}
	if s.info.Version != v {
		t.Errorf("daemon pidfile version %q, want %q", s.info.Version, v)
	}
	c := connectHTTP(t, s.info.HTTP, "version", "")
	if got := c.cs.InitializeResult().ServerInfo; got.Name != "sandkit-mcp" || got.Version != v {
		t.Errorf("serverInfo %s %s, want sandkit-mcp %s", got.Name, got.Version, v)
	}
}
