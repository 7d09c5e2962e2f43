package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Export as a git branch or a patch (export_workspace as "git-branch" / "patch").
//
// Both turn workspace states into git trees the way `git add -A` would: the state is written
// into a temporary work tree (never the user's) and added to a temporary index
// (GIT_INDEX_FILE in a temporary directory), so the workspace's .gitignore files decide what is
// left out (a build directory the agent made and ignored stays out), and tracked files are kept
// even when ignored, as git keeps them.
//
// git-branch writes into the repository the workspace was imported from (its origin commit, the
// import, recorded git HEAD and dirtiness; host_dir is that repository or a directory in its work
// tree):
//
//   - On top of the recorded HEAD: first, when the import was dirty, a commit of the imported
//     tree (the user's own uncommitted edits and untracked files, kept apart), then a commit of
//     the workspace's state at the commit exported. An import of a subdirectory puts the
//     workspace under that subdirectory; the rest of the tree comes from the recorded HEAD.
//   - Commits are dated by the sandkit commits they stand for and carry a Sandkit-Workspace
//     trailer: exporting the same commit again changes nothing, and a branch whose tip is an
//     earlier export of the same workspace gets the new state as one more commit on top.
//   - The branch (default sandkit/<workspace name>) is created, or advanced only when its tip is
//     an ancestor of the new commit; a diverged branch and one checked out in any worktree are
//     refused. The repository's work tree, index, HEAD and current branch are never touched: only
//     objects and that one ref (and its reflog) are written.
//   - git runs with -c safe.directory=<work tree> for each call only, hooks and fsmonitor off,
//     no GIT_* variables of the server. A server running as root runs git as the owner of the
//     repository's .git (with the owner's HOME), so what git writes belongs to the owner and the
//     owner's configuration runs as the owner only.
//
// patch writes a git-style patch (binary-safe, full index lines) of the changes from the
// workspace's origin state (the import) to the commit exported, into a new file under a host
// root, built in a temporary repository of its own (the user's repository is not written). For
// a subdirectory of a git work tree under one of the connection's roots the paths are relative
// to the work tree's top, so `git apply` runs there.

// exportGitBranch writes the branch (see above).
func (e *Engine) exportGitBranch(ctx context.Context, req ExportRequest, hp hostPath, w store.Workspace, c, origin store.Commit) (ExportReport, error) {
	const arg = "host_dir"
	src := origin.Import
	if origin.Kind != CommitImport || src == nil || !src.Git {
		return ExportReport{}, errorf(ErrInvalid, "as %q needs a workspace imported from a git work tree (create_workspace from_host_dir); workspace %s was not; export it as %q or %q instead",
			ExportGitBranch, w.Name, ExportPatch, ExportFiles).with(ErrorFields{Argument: "as"})
	}
	root, err := openRoot(hp.root)
	if err != nil {
		return ExportReport{}, hostErr(arg, hostPath{root: hp.root, rel: "."}, "the host root", err)
	}
	defer root.Close()
	if d, err := openDirBeneath(root, hp.rel); err != nil {
		return ExportReport{}, hostErr(arg, hp, "the directory", err)
	} else {
		d.Close()
	}
	top, ok := gitTop(root, hp.rel)
	if !ok {
		return ExportReport{}, errorf(ErrInvalid, "%s: %s is in no git work tree; give the repository workspace %s was imported from (%s)", arg, hp.show(), w.Name, src.HostDir).
			with(ErrorFields{Argument: arg, Path: hp.show()})
	}
	topAbs := filepath.Join(hp.root, top)
	prefix, err := filepath.Rel(topAbs, src.HostDir)
	if err != nil || (prefix != "." && !filepath.IsLocal(prefix)) {
		return ExportReport{}, errorf(ErrInvalid, "%s: %s is not the repository workspace %s was imported from; give %s (or a directory in its work tree)", arg, topAbs, w.Name, src.HostDir).
			with(ErrorFields{Argument: arg, Path: hp.show()})
	}
	if prefix == "." {
		prefix = ""
	}
	prefix = filepath.ToSlash(prefix)
	topDir, err := openDirBeneath(root, top)
	if err != nil {
		return ExportReport{}, hostErr(arg, hp, "the work tree", err)
	}
	gst, err := lstatAt(topDir, ".git")
	topDir.Close()
	if err != nil {
		return ExportReport{}, hostErr(arg, hp, "the work tree's .git", err)
	}
	g, tmp, err := newGitPlumb(topAbs, int(gst.Uid), int(gst.Gid), false)
	if err != nil {
		return ExportReport{}, err
	}
	defer os.RemoveAll(tmp)
	out, err := g.run(ctx, nil, nil, "rev-parse", "--absolute-git-dir")
	if err != nil {
		as := ""
		if g.cred != nil {
			as = fmt.Sprintf(" (git runs as the owner of its .git, uid %d, who must be able to reach it)", g.uid)
		}
		return ExportReport{}, errorf(ErrInvalid, "%s: git cannot read the repository at %s%s: %v", arg, topAbs, as, err).with(ErrorFields{Argument: arg, Path: topAbs})
	}
	g.gitDir = strings.TrimSpace(string(out))

	base := src.GitHead
	if base != "" {
		if _, err := g.run(ctx, nil, nil, "cat-file", "-e", base+"^{commit}"); err != nil {
			return ExportReport{}, errorf(ErrNotFound, "%s: the repository at %s no longer has commit %s, which workspace %s was imported from; export as %q instead",
				arg, topAbs, base, w.Name, ExportPatch).with(ErrorFields{Argument: arg, Path: topAbs})
		}
	}
	branch := req.Branch
	if branch == "" {
		branch = "sandkit/" + w.Name
	}
	ref := "refs/heads/" + branch
	if strings.HasPrefix(branch, "-") || strings.HasPrefix(branch, "refs/") {
		return ExportReport{}, ArgError("branch", fmt.Sprintf("%q: give a branch name such as sandkit/%s, without refs/heads/", branch, w.Name))
	}
	if _, err := g.run(ctx, nil, nil, "check-ref-format", ref); err != nil {
		return ExportReport{}, ArgError("branch", fmt.Sprintf("%q is not a valid git branch name", branch))
	}
	if wt, err := g.checkedOut(ctx, ref); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	} else if wt != "" {
		return ExportReport{}, errorf(ErrInvalid, "branch: %s is checked out in %s; an export never writes a checked-out branch: give another branch name, or check out another branch there", branch, wt).
			with(ErrorFields{Argument: "branch", Path: wt})
	}
	old := ""
	if out, err := g.run(ctx, nil, nil, "rev-parse", "--verify", "-q", ref+"^{commit}"); err == nil {
		old = strings.TrimSpace(string(out))
	}
	if err := g.identity(ctx); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}

	rep := ExportReport{Workspace: w.ID, Commit: c.ID, HostDir: topAbs, As: ExportGitBranch, Branch: branch, GitBase: base, Origin: ownOrigin(w, origin)}
	progress := func(s string) {
		if req.Progress != nil {
			req.Progress(s)
		}
	}
	parent := base
	parentTree := ""
	if base != "" {
		if parentTree, err = g.revParse(ctx, base+"^{tree}"); err != nil {
			return ExportReport{}, fmt.Errorf("export: %w", err)
		}
	}
	if src.Dirty {
		progress("writing the imported tree (the uncommitted changes of " + src.HostDir + ")")
		t1, _, err := e.gitTree(ctx, g, origin.Snapshot, w.ID, base, prefix)
		if err != nil {
			return ExportReport{}, err
		}
		if t1 != parentTree {
			msg := fmt.Sprintf("sandkit: uncommitted changes of %s, as imported\n\nThe work tree's own edits and untracked files when it was imported.\n\n%s\n",
				src.HostDir, trailers(w.ID, origin.ID))
			if parent, err = g.commitTree(ctx, t1, parent, origin.Created, msg); err != nil {
				return ExportReport{}, fmt.Errorf("export: %w", err)
			}
			parentTree = t1
		}
	}
	// A branch whose tip is an earlier export of this workspace on the same base grows by one
	// (its own first commit, if any, stays).
	if old != "" && old != parent && g.ours(ctx, old, w.ID) && (base == "" || g.isAncestor(ctx, base, old)) {
		parent = old
		if parentTree, err = g.revParse(ctx, old+"^{tree}"); err != nil {
			return ExportReport{}, fmt.Errorf("export: %w", err)
		}
	}
	progress("writing the workspace's tree at " + c.ID)
	t2, x, err := e.gitTree(ctx, g, c.Snapshot, w.ID, base, prefix)
	if err != nil {
		return ExportReport{}, err
	}
	rep.Files, rep.Dirs, rep.Symlinks, rep.Bytes, rep.Skipped = x.Files, x.Dirs, x.Symlinks, x.Bytes, x.Skipped
	tip := parent
	if t2 != parentTree {
		msg := fmt.Sprintf("sandkit: workspace %s at %s\n\n%s\n\n%s\n", w.Name, c.ID, c.Message, trailers(w.ID, c.ID))
		if tip, err = g.commitTree(ctx, t2, parent, c.Created, msg); err != nil {
			return ExportReport{}, fmt.Errorf("export: %w", err)
		}
	}
	if tip == "" {
		return ExportReport{}, errorf(ErrInvalid, "workspace %s has no files and the repository no commit; there is nothing to write as a branch", w.Name)
	}
	if old != "" && old != tip && !g.isAncestor(ctx, old, tip) {
		return ExportReport{}, errorf(ErrExists, "branch: %s exists at %s, which is not an ancestor of this export (it has commits of its own); give another branch name, or delete it (git -C %s branch -D %s)",
			branch, short(old), shellQuote(topAbs), branch).with(ErrorFields{Argument: "branch"})
	}
	rep.GitCommit, rep.Unchanged = tip, old == tip
	if old != tip {
		if _, err := g.run(ctx, nil, nil, "update-ref", "-m", "sandkit: export of workspace "+w.Name, ref, tip, old); err != nil {
			return ExportReport{}, fmt.Errorf("export: %w", err)
		}
	}
	if base != "" {
		rep.Review = fmt.Sprintf("git -C %s log -p %s..%s", shellQuote(topAbs), short(base), branch)
	} else {
		rep.Review = fmt.Sprintf("git -C %s log -p %s", shellQuote(topAbs), branch)
	}
	rep.Apply = fmt.Sprintf("git -C %s merge %s", shellQuote(topAbs), branch)
	e.log.Info("workspace exported as a git branch", "workspace", w.ID, "commit", c.ID, "repo", topAbs, "branch", branch, "tip", tip)
	return rep, nil
}

// exportPatch writes the patch file (see above).
func (e *Engine) exportPatch(ctx context.Context, hp hostPath, w store.Workspace, c, origin store.Commit) (ExportReport, error) {
	const arg = "host_dir"
	parent, _, base, pst, err := openTargetParent(arg, hp)
	if err != nil {
		return ExportReport{}, err
	}
	defer parent.Close()
	if _, err := lstatAt(parent, base); err == nil {
		return ExportReport{}, errorf(ErrExists, "%s: %s exists; a patch is written to a new file (nothing is overwritten)", arg, hp.show()).
			with(ErrorFields{Argument: arg, Path: hp.show()})
	} else if !errors.Is(err, unix.ENOENT) {
		return ExportReport{}, hostErr(arg, hp, "the target", err)
	}

	// Where the patch applies: the work tree's top for a git import found under a root (paths
	// carry the imported subdirectory), else the imported directory itself.
	applyDir, prefix := "", ""
	if src := origin.Import; origin.Kind == CommitImport && src != nil {
		applyDir = src.HostDir
		if sp, err := resolveHostPath(ctx, arg, src.HostDir); err == nil && src.Git {
			if r, err := openRoot(sp.root); err == nil {
				if top, ok := gitTop(r, sp.rel); ok {
					applyDir = filepath.Join(sp.root, top)
					if p, err := filepath.Rel(top, sp.rel); err == nil && p != "." {
						prefix = filepath.ToSlash(p) + "/"
					}
				}
				r.Close()
			}
		}
	}

	g, tmp, err := newGitPlumb("", os.Geteuid(), os.Getegid(), true)
	if err != nil {
		return ExportReport{}, err
	}
	defer os.RemoveAll(tmp)
	if _, err := g.run(ctx, nil, nil, "init", "-q", filepath.Join(tmp, "repo")); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}
	g.gitDir = filepath.Join(tmp, "repo", ".git")
	t1, _, err := e.gitTree(ctx, g, origin.Snapshot, w.ID, "", "")
	if err != nil {
		return ExportReport{}, err
	}
	t2, _, err := e.gitTree(ctx, g, c.Snapshot, w.ID, "", "")
	if err != nil {
		return ExportReport{}, err
	}
	patch, err := g.run(ctx, nil, nil, "diff-tree", "-p", "--binary", "--full-index", "--no-color", "--src-prefix=a/"+prefix, "--dst-prefix=b/"+prefix, t1, t2)
	if err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}
	if len(patch) == 0 {
		return ExportReport{}, errorf(ErrInvalid, "commit %s of workspace %s has the same files as its origin %s; there is no change to write as a patch", c.ID, w.Name, origin.ID)
	}

	tmpName := fmt.Sprintf(".%s.sandkit-export-%s", base, newID("")[:12])
	f, err := openBeneath(parent, tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return ExportReport{}, hostErr(arg, hp, "a temporary file beside the target", err)
	}
	done := false
	defer func() {
		if !done {
			_ = unix.Unlinkat(int(parent.Fd()), tmpName, 0)
		}
	}()
	_, werr := f.Write(patch)
	if werr == nil {
		werr = f.Chown(int(pst.Uid), int(pst.Gid))
	}
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return ExportReport{}, fmt.Errorf("export: %w", werr)
	}
	// Never replace a file made meanwhile.
	err = renameNoReplace(int(parent.Fd()), tmpName, base)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if err = unix.Linkat(int(parent.Fd()), tmpName, int(parent.Fd()), base, 0); err == nil {
			_ = unix.Unlinkat(int(parent.Fd()), tmpName, 0)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		return ExportReport{}, errorf(ErrExists, "%s: %s was made while the export ran; nothing was overwritten", arg, hp.show()).with(ErrorFields{Argument: arg, Path: hp.show()})
	} else if err != nil {
		return ExportReport{}, hostErr(arg, hp, "the target", err)
	}
	done = true
	rep := ExportReport{Workspace: w.ID, Commit: c.ID, HostDir: hp.show(), As: ExportPatch, Origin: ownOrigin(w, origin),
		Files: int64(bytes.Count(patch, []byte("\ndiff --git ")) + 1), Bytes: int64(len(patch))}
	file := shellQuote(hp.show())
	rep.Review = "git apply --stat " + file
	if applyDir != "" {
		rep.Apply = fmt.Sprintf("git -C %s apply %s", shellQuote(applyDir), file)
	} else {
		rep.Apply = "git apply " + file + " (in the directory the workspace's files belong in)"
	}
	e.log.Info("workspace exported as a patch", "workspace", w.ID, "commit", c.ID, "file", hp.show(), "bytes", len(patch))
	return rep, nil
}

// originOf is the commit a workspace's history starts from: the first commit of c's chain, and
// for a fork the first commit of the chain it was forked from. A parent pruned by retention is
// stepped over to the first commit of its workspace (retention keeps first commits, and the
// commits forks were made from).
func originOf(tx *store.Tx, c store.Commit) (store.Commit, error) {
	for range 10_000_000 {
		next := c.Parent
		if next == "" && c.Kind == CommitFork {
			next = c.Source
		}
		if next == "" {
			return c, nil
		}
		p, err := tx.Commit(next)
		if errors.Is(err, store.ErrNotFound) && next == c.Parent {
			// Retention pruned the parent: the chain goes on at the workspace's first commit,
			// which retention keeps.
			if p, err = rootCommit(tx, c.Workspace); err == nil && p.ID == c.ID {
				return c, nil
			}
		}
		if errors.Is(err, store.ErrNotFound) {
			return c, nil // forked from a deleted workspace: this is as far as it goes
		}
		if err != nil {
			return store.Commit{}, err
		}
		c = p
	}
	return store.Commit{}, fmt.Errorf("commit %s: history too long", c.ID)
}

// gitTree writes a snapshot's /workspace as a tree of g's repository, the way `git add -A`
// would (see above): under prefix, on top of base's tree ("" = empty) when prefix is set.
func (e *Engine) gitTree(ctx context.Context, g *gitPlumb, snap, label, base, prefix string) (string, ExportReport, error) {
	if err := os.RemoveAll(g.workTree); err != nil {
		return "", ExportReport{}, err
	}
	dirs := []string{g.workTree}
	if prefix != "" {
		for _, el := range strings.Split(prefix, "/") {
			dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], el))
		}
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", ExportReport{}, err
		}
		if err := os.Lchown(d, g.uid, g.gid); err != nil {
			return "", ExportReport{}, err
		}
	}
	dir := dirs[len(dirs)-1]
	// The ignore rules of the directories above the subdirectory come from base.
	if prefix != "" && base != "" {
		parts := strings.Split(prefix, "/")
		for i := range parts {
			rel := path.Join(path.Join(parts[:i]...), ".gitignore")
			if b, err := g.run(ctx, nil, nil, "cat-file", "blob", base+":"+rel); err == nil {
				p := filepath.Join(g.workTree, filepath.FromSlash(rel))
				if err := os.WriteFile(p, b, 0o644); err != nil {
					return "", ExportReport{}, err
				}
				if err := os.Lchown(p, g.uid, g.gid); err != nil {
					return "", ExportReport{}, err
				}
			}
		}
	}
	rep, err := e.exportTree(ctx, snap, label, dir, g.uid, g.gid)
	if err != nil {
		return "", rep, err
	}
	_ = os.Remove(g.index)
	if base != "" {
		_, err = g.run(ctx, nil, nil, "read-tree", base)
	} else {
		_, err = g.run(ctx, nil, nil, "read-tree", "--empty")
	}
	if err != nil {
		return "", rep, fmt.Errorf("export: %w", err)
	}
	spec := "."
	if prefix != "" {
		spec = prefix
	}
	if _, err := g.run(ctx, nil, nil, "add", "-A", "--", spec); err != nil {
		return "", rep, fmt.Errorf("export: %w", err)
	}
	t, err := g.run(ctx, nil, nil, "write-tree")
	if err != nil {
		return "", rep, fmt.Errorf("export: %w", err)
	}
	return strings.TrimSpace(string(t)), rep, nil
}

// exportTree writes a snapshot's /workspace (without a top-level .git) into dir, a directory of
// the server's own, with owner uid:gid.
func (e *Engine) exportTree(ctx context.Context, snap, label, dir string, uid, gid int) (ExportReport, error) {
	tree, err := e.prov.Tree(ctx, sandbox.SnapshotRef(snap))
	if err != nil {
		return ExportReport{}, e.provErr(err, "open the commit's tree to export from")
	}
	defer tree.Close()
	d, err := os.Open(dir)
	if err != nil {
		return ExportReport{}, err
	}
	defer d.Close()
	x := &exporter{ctx: ctx, tree: tree, tmp: d, uid: uid, gid: gid, skipGit: true}
	if err := x.walk(); err != nil {
		return x.rep, err
	}
	if err := x.finish(); err != nil {
		return x.rep, fmt.Errorf("export: %w", err)
	}
	return x.rep, nil
}

// gitPlumb runs git plumbing for an export: in dir until gitDir is known, then against gitDir with
// the temporary workTree and index.
type gitPlumb struct {
	dir, gitDir, workTree, index string
	uid, gid                     int
	cred                         *syscall.Credential
	home                         string
	isolated                     bool // no system or global configuration (the patch's own repository)
	env                          []string
}

// newGitPlumb makes the temporary directory (owned by uid:gid) and the runner; git runs as
// uid:gid when the server is root and they are not.
func newGitPlumb(dir string, uid, gid int, isolated bool) (*gitPlumb, string, error) {
	tmp, err := os.MkdirTemp("", "sandkit-export-git-")
	if err != nil {
		return nil, "", err
	}
	if err := os.Lchown(tmp, uid, gid); err != nil {
		os.RemoveAll(tmp)
		return nil, "", err
	}
	g := &gitPlumb{dir: dir, workTree: filepath.Join(tmp, "wt"), index: filepath.Join(tmp, "index"), uid: uid, gid: gid, home: tmp, isolated: isolated}
	// GIT_WORK_TREE names it from the start; gitTree fills it.
	if err := os.Mkdir(g.workTree, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, "", err
	}
	if err := os.Lchown(g.workTree, uid, gid); err != nil {
		os.RemoveAll(tmp)
		return nil, "", err
	}
	var home string
	g.cred, home = gitAs(uid, gid)
	if home != "" && !isolated {
		g.home = home
	}
	return g, tmp, nil
}

// gitAs is whom git runs as for a host repository owned by uid:gid: that user when the server is
// root and the owner is not (so nothing the repository's configuration names, such as a clean
// filter, runs as root, and what git writes is the owner's), with the owner's home directory
// ("" when it is unknown); else the server itself, with its HOME.
func gitAs(uid, gid int) (cred *syscall.Credential, home string) {
	if os.Geteuid() != 0 || uid == 0 {
		return nil, os.Getenv("HOME")
	}
	cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	return cred, home
}

// run runs one git command with stdin and extra environment variables.
func (g *gitPlumb) run(ctx context.Context, stdin []byte, env []string, args ...string) ([]byte, error) {
	pre := []string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"}
	if g.dir != "" {
		pre = append(pre, "-c", "safe.directory="+g.dir)
	}
	cmd := exec.CommandContext(ctx, "git", append(pre, args...)...)
	ev := []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "HOME=" + g.home}
	if g.isolated {
		ev = append(ev, "GIT_CONFIG_NOSYSTEM=1")
	}
	if g.gitDir != "" {
		ev = append(ev, "GIT_DIR="+g.gitDir, "GIT_WORK_TREE="+g.workTree, "GIT_INDEX_FILE="+g.index)
		cmd.Dir = g.workTree
	} else {
		cmd.Dir = filepath.Dir(g.index)
		if g.dir != "" {
			cmd.Dir = g.dir
		}
	}
	cmd.Env = append(append(append(ev, gitEnviron()...), g.env...), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return gitOutput(cmd, g.cred, args)
}

// gitEnviron is the server's environment for a git command, without what must not reach it: the
// server's own git variables must not point git elsewhere; its HOME and XDG configuration are
// not the repository owner's.
func gitEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "GIT_") && k != "HOME" && !strings.HasPrefix(k, "XDG_") {
			env = append(env, kv)
		}
	}
	return env
}

// gitOutput runs the git command cmd (its arguments args, for the error) as cred (nil: the
// server itself) and returns its output, or an error that carries what git wrote on stderr.
func gitOutput(cmd *exec.Cmd, cred *syscall.Credential, args []string) ([]byte, error) {
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (g *gitPlumb) revParse(ctx context.Context, rev string) (string, error) {
	out, err := g.run(ctx, nil, nil, "rev-parse", "--verify", "-q", rev)
	return strings.TrimSpace(string(out)), err
}

func (g *gitPlumb) isAncestor(ctx context.Context, a, b string) bool {
	_, err := g.run(ctx, nil, nil, "merge-base", "--is-ancestor", a, b)
	return err == nil
}

// ours reports whether commit id is an export of workspace ws.
func (g *gitPlumb) ours(ctx context.Context, id, ws string) bool {
	out, err := g.run(ctx, nil, nil, "cat-file", "commit", id)
	return err == nil && bytes.Contains(out, []byte("\nSandkit-Workspace: "+ws+"\n"))
}

// checkedOut returns the worktree that has ref checked out ("" when none).
func (g *gitPlumb) checkedOut(ctx context.Context, ref string) (string, error) {
	out, err := g.run(ctx, nil, nil, "worktree", "list", "--porcelain")
	if err != nil {
		return "", err
	}
	wt := ""
	for _, line := range strings.Split(string(out), "\n") {
		if p, ok := strings.CutPrefix(line, "worktree "); ok {
			wt = p
			if wt == g.workTree {
				wt = g.dir // the main work tree, shown as our GIT_WORK_TREE
			}
		} else if b, ok := strings.CutPrefix(line, "branch "); ok && b == ref {
			return wt, nil
		}
	}
	return "", nil
}

// identity uses the repository owner's git identity, or sandkit-mcp's where none is configured.
func (g *gitPlumb) identity(ctx context.Context) error {
	for _, k := range []struct{ key, value string }{{"user.name", "sandkit-mcp"}, {"user.email", "sandkit-mcp@localhost"}} {
		if out, _ := g.run(ctx, nil, nil, "config", k.key); strings.TrimSpace(string(out)) != "" {
			continue
		}
		v := "NAME"
		if k.key == "user.email" {
			v = "EMAIL"
		}
		g.env = append(g.env, "GIT_AUTHOR_"+v+"="+k.value, "GIT_COMMITTER_"+v+"="+k.value)
	}
	return nil
}

// commitTree makes a commit dated when.
func (g *gitPlumb) commitTree(ctx context.Context, tree, parent string, when time.Time, msg string) (string, error) {
	args := []string{"commit-tree", tree}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	date := fmt.Sprintf("@%d +0000", when.Unix())
	out, err := g.run(ctx, []byte(msg), []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}, args...)
	return strings.TrimSpace(string(out)), err
}

// ownOrigin is origin's id when it is a commit of w.
func ownOrigin(w store.Workspace, origin store.Commit) string {
	if origin.Workspace == w.ID {
		return origin.ID
	}
	return ""
}

func trailers(ws, commit string) string {
	return "Sandkit-Workspace: " + ws + "\nSandkit-Commit: " + commit
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
