package engine_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/store"
)

// hostEnv is an engine with options of the test's choosing, over the test provider.
func hostEnv(t *testing.T, lim engine.ImportLimits) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pv := makeProvider(t, dir)
	e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv, ImportLimits: lim})
	if err != nil {
		t.Fatal(err)
	}
	v := &env{dir: dir, st: st, pv: pv, e: e}
	t.Cleanup(v.close)
	return v
}

// rootCtx is a request context whose connection may use roots.
func rootCtx(t *testing.T, roots ...string) context.Context {
	return engine.WithHostRoots(ctxT(t), roots)
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "safe.directory=*", "-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// makeRepo makes a git work tree with a committed file edited since, an untracked file, and
// ignored ones; owned by another user, as a user's checkout is when the server runs as root.
func makeRepo(t *testing.T, dir string) (head string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{".gitignore": "ignored.txt\nbuild/\n", "a.txt": "committed\n", "src/main.go": "package main\n"})
	gitT(t, dir, "init", "-q", "-b", "main")
	gitT(t, dir, "add", ".")
	gitT(t, dir, "commit", "-q", "-m", "first")
	head = gitT(t, dir, "rev-parse", "HEAD")
	writeTree(t, dir, map[string]string{"a.txt": "edited, not committed\n", "new.txt": "untracked\n", "ignored.txt": "secret\n", "build/out.bin": "artifact\n", "src/ignored.txt": "secret\n"})
	if os.Geteuid() == 0 {
		chownTree(t, dir, 4242, 4242)
	}
	return head
}

func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestImportGitWorkTree: a git work tree imports what the user sees (tracked plus untracked,
// not ignored, uncommitted edits included), without .git, as a first commit of kind import that
// records the HEAD and that the tree was dirty; git is trusted for the call only (the repo
// belongs to another user and no safe.directory is configured).
func TestImportGitWorkTree(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := ownerRoot(t)
	repo := filepath.Join(root, "proj")
	headSHA := makeRepo(t, repo)
	ctx := rootCtx(t, root)
	w, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "imp", FromHostDir: "proj"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	r := w.Imported
	if r == nil || !r.Git || r.GitHead != headSHA || !r.Dirty || r.WithGit || r.Files != 4 || r.HostDir != repo {
		t.Fatalf("import report: %+v (want git head %s, dirty, 4 files from %s)", r, headSHA, repo)
	}
	hist, err := v.e.History(ctx, "imp", 0)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history: %v %v", hist, err)
	}
	c := hist[0]
	if c.Kind != engine.CommitImport || c.Import == nil || c.Import.GitHead != headSHA || !c.Import.Dirty || c.Import.HostDir != repo {
		t.Fatalf("first commit: %+v import %+v", c, c.Import)
	}
	out := stdout(v.sh(t, "imp", "find . -path ./.git -prune -o -print | sort; cat a.txt; test -e .git && echo has-git; touch a.txt && echo writable"))
	want := ".\n./.gitignore\n./a.txt\n./new.txt\n./src\n./src/main.go\nedited, not committed\nwritable\n"
	if out != want {
		t.Errorf("imported workspace:\n%s\nwant\n%s", out, want)
	}
	if out, err := exec.Command("git", "config", "--global", "--get-all", "safe.directory").Output(); err == nil && strings.Contains(string(out), repo) {
		t.Errorf("the import changed the user's git config: safe.directory %s", out)
	}

	// A subdirectory of the work tree imports as git sees it too.
	w3, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "imp-sub", FromHostDir: "proj/src", WithGit: true})
	if err != nil {
		t.Fatalf("import a subdirectory: %v", err)
	}
	if r := w3.Imported; !r.Git || r.Files != 1 || r.WithGit {
		t.Errorf("subdirectory import: %+v, want git, 1 file, no .git", r)
	}
	// A root inside the work tree cannot see its top: the directory imports whole.
	w4, err := v.e.CreateWorkspace(rootCtx(t, filepath.Join(repo, "src")), engine.CreateWorkspaceRequest{Name: "imp-inner", FromHostDir: "."})
	if err != nil {
		t.Fatalf("import below the work tree's top: %v", err)
	}
	if r := w4.Imported; r.Git || r.Files != 2 {
		t.Errorf("import of a root inside a work tree: %+v, want a plain directory of 2 files", r)
	}

	// with_git brings .git along; a second import reads the same tree again.
	w2, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "imp-git", FromHostDir: repo, WithGit: true})
	if err != nil {
		t.Fatalf("import with_git: %v", err)
	}
	if !w2.Imported.WithGit {
		t.Errorf("with_git not reported: %+v", w2.Imported)
	}
	if out := stdout(v.sh(t, "imp-git", "test -f .git/HEAD && echo has-git; test -e ignored.txt || echo no-ignored")); out != "has-git\nno-ignored\n" {
		t.Errorf("with_git workspace: %q", out)
	}
}

// TestImportPlainDirSkipsSpecialFiles: a directory that is no git work tree imports everything,
// symlinks as links (one pointing out of the root is not followed), and skips sockets, FIFOs and
// names that are not UTF-8, listing them.
func TestImportPlainDirSkipsSpecialFiles(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := t.TempDir()
	src := filepath.Join(root, "plain")
	writeTree(t, src, map[string]string{"x.txt": "x\n", "d/y.txt": "y\n", ".hidden": "h\n"})
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "out-link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.WriteFile(filepath.Join(src, "bad-\xff.txt"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress []string
	w, err := v.e.CreateWorkspace(rootCtx(t, root), engine.CreateWorkspaceRequest{Name: "plain", FromHostDir: src,
		Progress: func(line string) { progress = append(progress, line) }})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(progress) == 0 || !strings.HasPrefix(progress[len(progress)-1], "importing "+src+": 5 of 5 entries") {
		t.Errorf("progress: %q", progress)
	}
	r := w.Imported
	if r.Git || r.Files != 3 || r.Symlinks != 1 || r.SkippedCount != 3 {
		t.Fatalf("report: %+v", r)
	}
	skipped := strings.Join(r.Skipped, "; ")
	for _, s := range []string{"fifo (a FIFO)", "sock (a socket)", "not valid UTF-8"} {
		if !strings.Contains(skipped, s) {
			t.Errorf("skipped %q lacks %q", skipped, s)
		}
	}
	if out := stdout(v.sh(t, "plain", "readlink out-link; cat d/y.txt .hidden; ls | wc -l")); out != "/etc/passwd\ny\nh\n3\n" {
		t.Errorf("workspace: %q", out)
	}
}

// TestImportLimits: more entries or bytes than the limits fail with the limit named, and no
// workspace is made.
func TestImportLimits(t *testing.T) {
	t.Parallel()
	v := hostEnv(t, engine.ImportLimits{Files: 3, Bytes: 10})
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "many"), map[string]string{"1": "", "2": "", "3": "", "4": ""})
	writeTree(t, filepath.Join(root, "big"), map[string]string{"f": "more than ten bytes"})
	ctx := rootCtx(t, root)
	for _, c := range []struct{ dir, want string }{{"many", "more than 3 files"}, {"big", "more than 10 bytes"}} {
		_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: c.dir, FromHostDir: c.dir})
		ee, ok := engine.AsError(err)
		if !ok || !errors.Is(err, engine.ErrInvalid) || !strings.Contains(ee.Msg, c.want) || ee.Fields.Limit == nil {
			t.Errorf("import %s: %v, want ErrInvalid with %q and the limit", c.dir, err, c.want)
		}
		if _, err := v.e.GetWorkspace(ctx, c.dir); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("a failed import left workspace %s: %v", c.dir, err)
		}
	}
	if engine.MaxImportFiles != 200_000 || engine.MaxImportBytes != 1<<30 {
		t.Errorf("default limits %d files, %d bytes", engine.MaxImportFiles, engine.MaxImportBytes)
	}
}

// TestHostPathEscapes: nothing outside the roots is read or written: "..", absolute paths
// elsewhere, and symlinks out of the root are refused for import and export; without roots both
// say how an operator enables them.
func TestHostPathEscapes(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "secret\n"})
	writeTree(t, root, map[string]string{"in/ok.txt": "ok\n"})
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	v.mkws(t, "target")
	ctx := rootCtx(t, root)
	for _, p := range []string{"../" + filepath.Base(outside), outside, "escape", "escape/", filepath.Join(root, "escape"), "in/../../x"} {
		_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "esc", FromHostDir: p})
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("import from %q: %v, want ErrInvalid", p, err)
		}
		_, err = v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "target", HostDir: filepath.Join(p, "out")})
		if !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("export to %q: %v, want ErrInvalid", filepath.Join(p, "out"), err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("something was written outside the root: %v", ents)
	}
	for _, call := range []func() error{
		func() error {
			_, err := v.e.CreateWorkspace(ctxT(t), engine.CreateWorkspaceRequest{Name: "none", FromHostDir: root})
			return err
		},
		func() error {
			_, err := v.e.ExportWorkspace(ctxT(t), engine.ExportRequest{Workspace: "target", HostDir: filepath.Join(root, "x")})
			return err
		},
	} {
		err := call()
		ee, ok := engine.AsError(err)
		if !ok || !errors.Is(err, engine.ErrInvalid) || !strings.Contains(ee.Msg, "--host-root") || !strings.Contains(ee.Msg, "host_roots") {
			t.Errorf("without roots: %v, want how to enable them", err)
		}
	}
}

// TestExportRoundTrip: an import exported again gives the same tree, with the owner of the
// target's parent; a non-empty target is refused, an empty one filled; an older commit exports
// its own state; nothing is left half-written.
func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeTree(t, src, map[string]string{"a.txt": "alpha\n", "d/e/deep.txt": "deep\n"})
	if err := os.Chmod(filepath.Join(src, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	ctx := rootCtx(t, root)
	w, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "rt", FromHostDir: "src"})
	if err != nil {
		t.Fatal(err)
	}
	first := w.Head
	v.sh(t, "rt", "echo later > later.txt")

	owner := filepath.Join(root, "owned")
	if err := os.Mkdir(owner, 0o755); err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid()
	if uid == 0 {
		uid = 4343
		if err := os.Chown(owner, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "rt", HostDir: "owned/out", As: "files"})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	out := filepath.Join(owner, "out")
	if rep.HostDir != out || rep.Files != 3 || rep.Symlinks != 1 || rep.Commit == first {
		t.Errorf("report: %+v", rep)
	}
	for name, want := range map[string]string{"a.txt": "alpha\n", "d/e/deep.txt": "deep\n", "later.txt": "later\n"} {
		if b, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	if tgt, err := os.Readlink(filepath.Join(out, "link")); err != nil || tgt != "a.txt" {
		t.Errorf("link: %q %v", tgt, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "a.txt")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("a.txt mode: %v %v", fi, err)
	}
	_ = filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != uid {
			t.Errorf("%s is owned by %d:%d, want the parent's %d", p, st.Uid, st.Gid, uid)
		}
		return nil
	})
	if ents, _ := os.ReadDir(owner); len(ents) != 1 {
		t.Errorf("the export left more than its target: %v", ents)
	}

	// Not into a non-empty directory; into an empty one; an older commit.
	_, err = v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "rt", HostDir: out})
	if !errors.Is(err, engine.ErrExists) {
		t.Errorf("export into a non-empty directory: %v, want ErrExists", err)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "rt", Commit: first, HostDir: empty}); err != nil {
		t.Fatalf("export into an empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "later.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first commit's export has later.txt: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(empty, "d/e/deep.txt")); string(b) != "deep\n" {
		t.Errorf("first commit export: %q", b)
	}
	if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "rt", HostDir: "x", As: "tarball"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("as tarball: %v, want ErrInvalid", err)
	}
}

// TestImportGitRunsAsOwner: a root server runs the import's git as the owner of the repository,
// so a clean filter the repository's configuration names (git status runs it for a file whose
// size is unchanged but whose time is) never runs as root; a repository its owner cannot reach
// is refused with what to do, not imported as a plain directory with its ignored files.
func TestImportGitRunsAsOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (CI runs as root)")
		}
		t.Skip("needs root: it checks that git runs as the repository's owner instead")
	}
	v := newEnv(t)
	root := ownerRoot(t)
	repo := filepath.Join(root, "proj")
	marker := filepath.Join(root, "filter-ran-as")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, repo, map[string]string{".gitattributes": "a.txt filter=probe\n", "a.txt": "one\n"})
	gitT(t, repo, "init", "-q", "-b", "main")
	gitT(t, repo, "add", ".")
	gitT(t, repo, "commit", "-q", "-m", "first")
	gitT(t, repo, "config", "filter.probe.clean", "id -u >> "+marker+"; cat")
	// Same size, later time: status must read the file through the filter to tell.
	if err := os.WriteFile(filepath.Join(repo, "a.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(repo, "a.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	chownTree(t, repo, 4242, 4242)
	if err := os.WriteFile(marker, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(marker, 0o666); err != nil {
		t.Fatal(err)
	}
	ctx := rootCtx(t, root)
	w, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "owned", FromHostDir: "proj"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if w.Imported == nil || !w.Imported.Git || !w.Imported.Dirty {
		t.Fatalf("import report: %+v, want a dirty git import", w.Imported)
	}
	ran, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	uids := strings.Fields(string(ran))
	if len(uids) == 0 {
		t.Fatal("git status never ran the clean filter: the test's premise is wrong")
	}
	for _, u := range uids {
		if u != "4242" {
			t.Errorf("the repository's clean filter ran as uid %s, want only the owner 4242 (all: %q)", u, uids)
		}
	}

	// The owner cannot reach the repository: an error that says so, nothing imported.
	hidden := filepath.Join(root, "locked")
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(hidden, "proj")
	makeRepo(t, inner)
	_, err = v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "locked", FromHostDir: "locked/proj"})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Kind != engine.ErrInvalid || !strings.Contains(ee.Msg, "git failed there (run as uid 4242") {
		t.Fatalf("import of a repository its owner cannot reach: %v, want an invalid-argument error naming git and the owner", err)
	}
	if _, err := v.e.GetWorkspace(ctx, "locked"); err == nil {
		t.Error("a failed import left a workspace behind")
	}
}

// TestHostDirBadInput: a path with NUL is an argument error; a host root that vanished after the
// connection named it is reported as missing for import and every export format, and nothing is
// made in its place.
func TestHostDirBadInput(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := t.TempDir()
	v.mkws(t, "target")
	ctx := rootCtx(t, root)
	for _, p := range []string{"a\x00b", "\x00", " "} {
		if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "nul", FromHostDir: p}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("import from %q: %v, want ErrInvalid", p, err)
		}
		if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "target", HostDir: p}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("export to %q: %v, want ErrInvalid", p, err)
		}
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		ee, ok := engine.AsError(err)
		if !ok || !errors.Is(err, engine.ErrNotFound) || !strings.Contains(ee.Msg, "host root") || !strings.Contains(ee.Msg, root) {
			t.Errorf("%s with a vanished host root: %v, want not found naming the host root %s", what, err, root)
		}
	}
	_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "gone", FromHostDir: "proj"})
	check("import", err)
	for _, as := range []string{engine.ExportFiles, engine.ExportPatch} {
		_, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "target", HostDir: "out", As: as})
		check("export as "+as, err)
	}
	if _, err := os.Lstat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the vanished root was made again: %v", err)
	}
}
