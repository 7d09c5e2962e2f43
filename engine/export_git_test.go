package engine_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// ownerRoot is a temporary host root the repository's owner (another uid when the tests run as
// root: git runs as that user) can reach.
func ownerRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// gitOwned runs a git command of the test's own and gives what it wrote back to the
// repository's owner.
func gitOwned(t *testing.T, repo string, args ...string) string {
	t.Helper()
	out := gitT(t, repo, args...)
	if os.Geteuid() == 0 {
		chownTree(t, repo, 4242, 4242)
	}
	return out
}

// repoState is what an export must never change in the user's repository.
type repoState struct {
	status, head, branch string
	index                []byte
	indexMod             int64
}

func stateOf(t *testing.T, repo string) repoState {
	t.Helper()
	fi, err := os.Stat(filepath.Join(repo, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(repo, ".git", "index"))
	return repoState{gitT(t, repo, "--no-optional-locks", "status", "--porcelain"), gitT(t, repo, "rev-parse", "HEAD"), gitT(t, repo, "symbolic-ref", "HEAD"), b, fi.ModTime().UnixNano()}
}

// gitFails runs git and reports whether it failed.
func gitFails(repo string, args ...string) bool {
	return exec.Command("git", append([]string{"-c", "safe.directory=*", "-C", repo}, args...)...).Run() != nil
}

// TestExportGitBranch: a workspace imported from a dirty git work tree (owned by another user)
// exports as a branch on the recorded HEAD: the user's uncommitted edit and untracked file in
// a first commit, the agent's changes in a second, the ignored build directory left out; the
// repository's work tree, index, HEAD and branch are untouched and what git wrote belongs to the
// repository's owner. Exporting again changes nothing; more work advances the branch; a diverged
// or checked-out branch, a workspace not imported from git and another repository are refused;
// a subdirectory import goes under its subdirectory.
func TestExportGitBranch(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := ownerRoot(t)
	repo := filepath.Join(root, "proj")
	base := makeRepo(t, repo)
	gitOwned(t, repo, "worktree", "add", "-q", "-b", "elsewhere", filepath.Join(root, "wt2"))
	ctx := rootCtx(t, root)
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "gb", FromHostDir: "proj"}); err != nil {
		t.Fatal(err)
	}
	v.sh(t, "gb", "echo '// changed' >> src/main.go && mkdir build && echo obj > build/x.o && echo fresh > fresh.txt")
	before := stateOf(t, repo)

	rep, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if rep.Branch != "sandkit/gb" || rep.GitBase != base || rep.GitCommit == "" || rep.Unchanged ||
		!strings.Contains(rep.Review, "log -p "+base[:12]+"..sandkit/gb") || !strings.Contains(rep.Apply, "merge sandkit/gb") {
		t.Fatalf("report: %+v", rep)
	}
	if got := gitT(t, repo, "rev-parse", "sandkit/gb"); got != rep.GitCommit {
		t.Errorf("branch at %s, report says %s", got, rep.GitCommit)
	}
	if got := gitT(t, repo, "show", "sandkit/gb:src/main.go"); got != "package main\n// changed" {
		t.Errorf("src/main.go on the branch: %q", got)
	}
	if got := gitT(t, repo, "show", "sandkit/gb:fresh.txt"); got != "fresh" {
		t.Errorf("fresh.txt on the branch: %q", got)
	}
	for _, p := range []string{"build", "build/x.o", "ignored.txt"} {
		if !gitFails(repo, "cat-file", "-e", "sandkit/gb:"+p) {
			t.Errorf("the ignored %s is on the branch", p)
		}
	}
	// The user's own uncommitted edit and untracked file sit in the first commit, on the HEAD.
	if got := gitT(t, repo, "rev-parse", "sandkit/gb~2"); got != base {
		t.Errorf("the branch's base is %s, want the import's HEAD %s", got, base)
	}
	if got := gitT(t, repo, "show", "sandkit/gb~1:a.txt"); got != "edited, not committed" {
		t.Errorf("a.txt in the first commit: %q", got)
	}
	if gitFails(repo, "cat-file", "-e", "sandkit/gb~1:new.txt") || !gitFails(repo, "cat-file", "-e", "sandkit/gb~1:fresh.txt") {
		t.Errorf("the first commit should hold the untracked new.txt and not the agent's fresh.txt")
	}
	if got := gitT(t, repo, "diff", "--name-only", "sandkit/gb~1", "sandkit/gb"); got != "fresh.txt\nsrc/main.go" {
		t.Errorf("the second commit changed %q", got)
	}
	if after := stateOf(t, repo); after.status != before.status || after.head != before.head || after.branch != before.branch ||
		!bytes.Equal(after.index, before.index) || after.indexMod != before.indexMod {
		t.Errorf("the export touched the repository: before %+v after %+v", before, after)
	}
	if os.Geteuid() == 0 {
		_ = filepath.Walk(filepath.Join(repo, ".git"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Sys().(*syscall.Stat_t).Uid != 4242 {
				t.Errorf("%s belongs to uid %d, not the repository's owner", p, fi.Sys().(*syscall.Stat_t).Uid)
			}
			return nil
		})
	}
	if out, err := exec.Command("git", "config", "--global", "--get-all", "safe.directory").Output(); err == nil && strings.Contains(string(out), repo) {
		t.Errorf("the export changed the user's git config: %s", out)
	}

	// The same commit again: nothing changes. More work: the branch grows by one commit.
	again, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: filepath.Join(repo, "src"), As: engine.ExportGitBranch})
	if err != nil || !again.Unchanged || again.GitCommit != rep.GitCommit {
		t.Fatalf("export again: %+v %v, want unchanged at %s", again, err, rep.GitCommit)
	}
	v.sh(t, "gb", "echo more > more.txt")
	more, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch})
	if err != nil || more.Unchanged {
		t.Fatalf("export after more work: %+v %v", more, err)
	}
	if got := gitT(t, repo, "rev-parse", "sandkit/gb~1"); got != rep.GitCommit {
		t.Errorf("the advanced branch's parent is %s, want the earlier tip %s", got, rep.GitCommit)
	}

	// A fork of the workspace exports on the same import (its origin is the import).
	if _, err := v.e.Fork(ctx, "gb", "", "gb-fork"); err != nil {
		t.Fatal(err)
	}
	v.sh(t, "gb-fork", "echo forked > forked.txt")
	if fr, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb-fork", HostDir: repo, As: engine.ExportGitBranch}); err != nil || fr.Origin != "" {
		t.Errorf("fork export: %+v %v", fr, err)
	} else if got := gitT(t, repo, "show", "sandkit/gb-fork:forked.txt"); got != "forked" || gitT(t, repo, "rev-parse", "sandkit/gb-fork~2") != base {
		t.Errorf("the fork's branch: forked.txt %q", got)
	}

	// An existing branch that is an ancestor (the HEAD) is advanced; a diverged one is refused.
	gitOwned(t, repo, "branch", "at-head", base)
	if r, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch, Branch: "at-head"}); err != nil || gitT(t, repo, "rev-parse", "at-head") != r.GitCommit {
		t.Errorf("advancing an ancestor branch: %+v %v", r, err)
	}
	div := gitOwned(t, repo, "commit-tree", "-p", base, "-m", "mine", base+"^{tree}")
	gitOwned(t, repo, "branch", "diverged", div)
	_, err = v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch, Branch: "diverged"})
	if ee, ok := engine.AsError(err); !ok || !errors.Is(err, engine.ErrExists) || ee.Fields.Argument != "branch" || !strings.Contains(ee.Msg, "branch -D diverged") {
		t.Errorf("diverged branch: %v, want ErrExists naming what to do", err)
	}
	if got := gitT(t, repo, "rev-parse", "diverged"); got != div {
		t.Errorf("the diverged branch moved to %s", got)
	}
	for _, b := range []string{"main", "elsewhere"} {
		_, err = v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch, Branch: b})
		if ee, ok := engine.AsError(err); !ok || !errors.Is(err, engine.ErrInvalid) || !strings.Contains(ee.Msg, "checked out") {
			t.Errorf("checked-out branch %s: %v, want refused", b, err)
		}
	}
	if _, err = v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: repo, As: engine.ExportGitBranch, Branch: "bad..name"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("bad branch name: %v", err)
	}
	if after := stateOf(t, repo); after.status != before.status || after.head != before.head || after.branch != before.branch || !bytes.Equal(after.index, before.index) {
		t.Errorf("the exports touched the repository: before %+v after %+v", before, after)
	}

	// Another repository, a plain directory, a workspace not imported from git: refused.
	other := filepath.Join(root, "other")
	writeTree(t, other, map[string]string{"x": "x\n"})
	gitT(t, other, "init", "-q")
	writeTree(t, root, map[string]string{"plain/x": "x\n"})
	for _, dir := range []string{other, filepath.Join(root, "plain")} {
		_, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "gb", HostDir: dir, As: engine.ExportGitBranch})
		if ee, ok := engine.AsError(err); !ok || !errors.Is(err, engine.ErrInvalid) || ee.Fields.Argument != "host_dir" || !strings.Contains(ee.Msg, repo) {
			t.Errorf("export to %s: %v, want refused naming %s", dir, err, repo)
		}
	}
	v.mkws(t, "fresh")
	if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "fresh", HostDir: repo, As: engine.ExportGitBranch}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("a workspace not imported: %v", err)
	}

	// A subdirectory import goes under its directory; the top's ignore rules apply to it.
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "sub", FromHostDir: "proj/src"}); err != nil {
		t.Fatal(err)
	}
	v.sh(t, "sub", "echo '// sub' >> main.go && echo x > ignored.txt && echo y > util.go")
	if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: "sub", HostDir: repo, As: engine.ExportGitBranch}); err != nil {
		t.Fatalf("subdirectory export: %v", err)
	}
	if got := gitT(t, repo, "diff", "--name-only", base, "sandkit/sub"); got != "src/main.go\nsrc/util.go" {
		t.Errorf("the subdirectory branch changed %q, want src/main.go and src/util.go", got)
	}
	if got := gitT(t, repo, "show", "sandkit/sub:a.txt"); got != "committed" {
		t.Errorf("a.txt outside the subdirectory: %q, want HEAD's", got)
	}
}

// TestExportPatch: the agent's changes since the import as a git patch in a new file, which the
// repository's `git apply --check` accepts (also for a subdirectory import); an existing file is
// never overwritten.
func TestExportPatch(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	root := ownerRoot(t)
	repo := filepath.Join(root, "proj")
	makeRepo(t, repo)
	ctx := rootCtx(t, root)
	for _, c := range []struct{ name, dir, script, want string }{
		{"pa", "proj", "echo '// changed' >> src/main.go && rm new.txt && mkdir build && echo obj > build/x.o && printf '\\0\\1' > bin.dat", "src/main.go"},
		{"pb", "proj/src", "echo '// sub' >> main.go && echo y > util.go", "src/util.go"},
	} {
		if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: c.name, FromHostDir: c.dir}); err != nil {
			t.Fatal(err)
		}
		v.sh(t, c.name, c.script)
		file := filepath.Join(root, c.name+".patch")
		rep, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: c.name, HostDir: file, As: engine.ExportPatch})
		if err != nil {
			t.Fatalf("export %s: %v", c.name, err)
		}
		if rep.HostDir != file || rep.Apply != "git -C "+repo+" apply "+file || rep.Bytes == 0 {
			t.Errorf("report: %+v", rep)
		}
		b, _ := os.ReadFile(file)
		if !strings.Contains(string(b), "diff --git a/"+c.want+" b/"+c.want) || strings.Contains(string(b), "build/") {
			t.Errorf("patch %s:\n%s", c.name, b)
		}
		if out, err := exec.Command("git", "-c", "safe.directory=*", "-C", repo, "apply", "--check", file).CombinedOutput(); err != nil {
			t.Errorf("git apply --check %s: %v\n%s\n%s", c.name, err, out, b)
		}
		if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: c.name, HostDir: file, As: engine.ExportPatch}); !errors.Is(err, engine.ErrExists) {
			t.Errorf("patch over an existing file: %v", err)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 3 {
		t.Errorf("the exports left more than their files: %v", ents)
	}
}
