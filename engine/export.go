package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Export: export_workspace. A commit's /workspace tree (default: the head) is written into a
// new or empty directory under one of the caller's host roots (hostdir.go):
//
//   - The target's parent must exist; the target must not exist or be an empty directory (a
//     non-empty one is refused, nothing is overwritten).
//   - The tree is written into a temporary directory beside the target and renamed into place
//     at the end, so the target never holds half an export; a failure removes the temporary one.
//   - Every file, directory and symlink written gets the owner (uid, gid) of the target's parent
//     directory; permission bits come from the workspace.
//   - Entries that are neither files, directories nor symlinks are skipped and listed.
//
// ExportGitBranch and ExportPatch are in export_git.go.

// Export formats.
const (
	ExportFiles     = "files"
	ExportGitBranch = "git-branch"
	ExportPatch     = "patch"
)

// ExportFormats lists the formats ExportRequest.As takes.
var ExportFormats = []string{ExportFiles, ExportGitBranch, ExportPatch}

// ExportRequest holds export_workspace's arguments.
type ExportRequest struct {
	// Workspace is an id or a name; Commit a commit id of it ("" = head).
	Workspace, Commit string
	// HostDir is the target directory, under one of the caller's host roots.
	HostDir string
	// As is the format: "files" (also when ""), "git-branch" or "patch".
	As string
	// Branch is the branch a git-branch export writes ("" = sandkit/<workspace name>).
	Branch string
	// Progress, when set, receives a line now and then. It must not block.
	Progress func(line string)
}

// ExportReport says what an export wrote.
type ExportReport struct {
	Workspace string `json:"workspace_id"`
	Commit    string `json:"commit_id"`
	HostDir   string `json:"host_dir"`
	As        string `json:"as"`
	Files     int64  `json:"files"`
	Dirs      int64  `json:"dirs,omitempty"`
	Symlinks  int64  `json:"symlinks,omitempty"`
	Bytes     int64  `json:"bytes"`
	// Skipped lists entries not written, "path (why)", at most MaxImportSkipped.
	Skipped []string `json:"skipped,omitempty"`
	// Branch and GitCommit are the branch a git-branch export wrote and its new tip; GitBase the
	// source HEAD the workspace was imported from, which the branch builds on. Unchanged is set
	// when the branch already held the state.
	// Origin is the commit the workspace's history starts from (its import), the state the
	// patch is relative to; set when it is a commit of this workspace (not for a fork).
	Origin    string `json:"origin_commit,omitempty"`
	Branch    string `json:"branch,omitempty"`
	GitCommit string `json:"git_commit,omitempty"`
	GitBase   string `json:"git_base,omitempty"`
	Unchanged bool   `json:"unchanged,omitempty"`
	// Review and Apply are the shell commands a human runs to look at the export and to take it
	// into the repository (git log -p / git merge; git apply --stat / git apply).
	Review string `json:"review,omitempty"`
	Apply  string `json:"apply,omitempty"`
}

// ExportWorkspace writes a commit's tree into a host directory (see above).
func (e *Engine) ExportWorkspace(ctx context.Context, req ExportRequest) (ExportReport, error) {
	if e.isClosed() {
		return ExportReport{}, ErrClosed
	}
	as := req.As
	if as == "" {
		as = ExportFiles
	}
	if as != ExportFiles && as != ExportGitBranch && as != ExportPatch {
		return ExportReport{}, ArgError("as", fmt.Sprintf("%q is not a format; give one of %s", req.As, strings.Join(ExportFormats, ", ")))
	}
	if req.Branch != "" && as != ExportGitBranch {
		return ExportReport{}, ArgError("branch", fmt.Sprintf("branch is for as %q only", ExportGitBranch))
	}
	const arg = "host_dir"
	hp, err := resolveHostPath(ctx, arg, req.HostDir)
	if err != nil {
		return ExportReport{}, err
	}
	if hp.rel == "." && as != ExportGitBranch {
		return ExportReport{}, errorf(ErrInvalid, "%s: %s is a host root itself; name a new path inside it, such as %s", arg, hp.root, filepath.Join(hp.root, "export")).
			with(ErrorFields{Argument: arg, Path: hp.root})
	}
	var w store.Workspace
	var c, origin store.Commit
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		if w, err = lookupTx(tx, req.Workspace); err != nil {
			return err
		}
		id := req.Commit
		if id == "" {
			id = w.Head
		}
		if c, err = commitOf(tx, w, id); err != nil {
			return err
		}
		origin, err = originOf(tx, c)
		return err
	}); err != nil {
		return ExportReport{}, err
	}
	switch as {
	case ExportGitBranch:
		return e.exportGitBranch(ctx, req, hp, w, c, origin)
	case ExportPatch:
		return e.exportPatch(ctx, hp, w, c, origin)
	}
	parent, parentRel, base, pst, err := openTargetParent(arg, hp)
	if err != nil {
		return ExportReport{}, err
	}
	defer parent.Close()
	replace := false
	if st, err := lstatAt(parent, base); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return ExportReport{}, errorf(ErrExists, "%s: %s exists and is not a directory; give a new or empty directory", arg, hp.show()).
				with(ErrorFields{Argument: arg, Path: hp.show()})
		}
		if empty, err := emptyDir(parent, base); err != nil {
			return ExportReport{}, hostErr(arg, hp, "the target", err)
		} else if !empty {
			return ExportReport{}, errorf(ErrExists, "%s: %s is not empty; export into a new or empty directory (nothing is overwritten)", arg, hp.show()).
				with(ErrorFields{Argument: arg, Path: hp.show()})
		}
		replace = true
	} else if !errors.Is(err, unix.ENOENT) {
		return ExportReport{}, hostErr(arg, hp, "the target", err)
	}

	tree, err := e.prov.Tree(ctx, sandbox.SnapshotRef(c.Snapshot))
	if err != nil {
		return ExportReport{}, e.provErr(err, "open the commit's tree to export from")
	}
	defer tree.Close()

	tmpName := fmt.Sprintf(".%s.sandkit-export-%s", base, newID("")[:12])
	if err := unix.Mkdirat(int(parent.Fd()), tmpName, 0o700); err != nil {
		return ExportReport{}, hostErr(arg, hp, "a temporary directory beside the target", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(filepath.Join(hp.root, parentRel, tmpName))
		}
	}()
	tmp, err := openBeneath(parent, tmpName, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return ExportReport{}, hostErr(arg, hp, "the temporary directory", err)
	}
	defer tmp.Close()
	x := &exporter{ctx: ctx, tree: tree, tmp: tmp, uid: int(pst.Uid), gid: int(pst.Gid), progress: req.Progress,
		rep: ExportReport{Workspace: w.ID, Commit: c.ID, HostDir: hp.show(), As: as}}
	if err := x.walk(); err != nil {
		return ExportReport{}, err
	}
	if err := x.finish(); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}
	if err := unix.Fchown(int(tmp.Fd()), x.uid, x.gid); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}
	if err := unix.Fchmod(int(tmp.Fd()), 0o755); err != nil {
		return ExportReport{}, fmt.Errorf("export: %w", err)
	}
	// rename(2) replaces an empty directory; a target made meanwhile that is not empty fails.
	if err := unix.Renameat(int(parent.Fd()), tmpName, int(parent.Fd()), base); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || (!replace && errors.Is(err, unix.EISDIR)) {
			return ExportReport{}, errorf(ErrExists, "%s: %s was filled while the export ran; nothing was overwritten", arg, hp.show()).
				with(ErrorFields{Argument: arg, Path: hp.show()})
		}
		return ExportReport{}, hostErr(arg, hp, "the target", err)
	}
	done = true
	e.log.Info("workspace exported", "workspace", w.ID, "commit", c.ID, "host_dir", hp.show(), "files", x.rep.Files, "bytes", x.rep.Bytes)
	return x.rep, nil
}

// openTargetParent opens the directory that will hold hp (beneath its root, never through a
// symlink) and returns it, its path relative to the root, hp's last name and the parent's owner
// (what the export writes gets that owner).
func openTargetParent(arg string, hp hostPath) (parent *os.File, parentRel, base string, st unix.Stat_t, err error) {
	root, err := openRoot(hp.root)
	if err != nil {
		return nil, "", "", st, hostErr(arg, hostPath{root: hp.root, rel: "."}, "the host root", err)
	}
	defer root.Close()
	parentRel, base = filepath.Dir(hp.rel), filepath.Base(hp.rel)
	parent, err = openDirBeneath(root, parentRel)
	if err != nil {
		return nil, "", "", st, hostErr(arg, hostPath{root: hp.root, rel: parentRel}, "the parent directory", err)
	}
	if err := unix.Fstat(int(parent.Fd()), &st); err != nil {
		parent.Close()
		return nil, "", "", st, err
	}
	return parent, parentRel, base, st, nil
}

// emptyDir reports whether the directory name in dir is empty.
func emptyDir(dir *os.File, name string) (bool, error) {
	d, err := openBeneath(dir, name, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// exporter writes a snapshot's /workspace (a sandbox.Tree) below tmp, a directory it made.
type exporter struct {
	ctx      context.Context
	tree     sandbox.Tree
	tmp      *os.File
	uid, gid int
	progress func(string)
	last     time.Time
	rep      ExportReport
	modes    []exportMode
	// skipGit leaves out the top-level .git (a git-branch or patch export builds its own).
	skipGit bool

	// Files are copied by up to exportWorkers goroutines at once (over Vercel each read is its
	// own request to the sandbox); mu guards rep, last and err.
	sem chan struct{}
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

// exportWorkers is how many files an export copies at once.
const exportWorkers = 8

// walk writes the whole tree and waits for every file copy.
func (x *exporter) walk() error {
	x.sem = make(chan struct{}, exportWorkers)
	err := x.tree.Walk(x.ctx, x.entry)
	x.wg.Wait()
	if err == nil {
		err = x.err
	}
	if err != nil && x.ctx.Err() != nil {
		return errorf(ErrCancelled, "the export was cancelled")
	}
	return err
}

type exportMode struct {
	rel  string
	perm fs.FileMode
}

// entry writes one entry of the tree: directories and symlinks at once (the walk visits a
// directory before what is in it), regular files by a worker.
func (x *exporter) entry(en sandbox.TreeEntry) error {
	p := en.Path
	if sandbox.CheckImportPath(p) != nil {
		return fmt.Errorf("export: the provider listed an unexpected path %q", p)
	}
	host := filepath.FromSlash(p)
	if x.skipGit && p == ".git" {
		return fs.SkipDir
	}
	switch {
	case en.Mode.IsDir():
		if err := unix.Mkdirat(int(x.tmp.Fd()), host, 0o700); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		if err := unix.Fchownat(int(x.tmp.Fd()), host, x.uid, x.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		x.modes = append(x.modes, exportMode{host, en.Mode.Perm()})
		x.mu.Lock()
		x.rep.Dirs++
		x.mu.Unlock()
	case en.Mode&fs.ModeSymlink != 0:
		if err := unix.Symlinkat(en.Target, int(x.tmp.Fd()), host); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		if err := unix.Fchownat(int(x.tmp.Fd()), host, x.uid, x.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		x.mu.Lock()
		x.rep.Symlinks++
		x.mu.Unlock()
	case en.Mode.IsRegular():
		x.mu.Lock()
		failed := x.err
		x.mu.Unlock()
		if failed != nil {
			return failed
		}
		x.sem <- struct{}{}
		x.wg.Add(1)
		go func() {
			defer func() { <-x.sem; x.wg.Done() }()
			if err := x.file(p, host, en); err != nil {
				x.mu.Lock()
				if x.err == nil {
					x.err = err
				}
				x.mu.Unlock()
			}
		}()
	default:
		x.mu.Lock()
		if len(x.rep.Skipped) < MaxImportSkipped {
			x.rep.Skipped = append(x.rep.Skipped, p+" (not a file, directory or symlink)")
		}
		x.mu.Unlock()
	}
	return nil
}

// file copies one regular file: a reflink where the provider hands out a file on a file system
// that shares extents with the target, else a copy in the kernel (copy_file_range), else reads.
func (x *exporter) file(p, host string, en sandbox.TreeEntry) error {
	in, err := x.tree.Open(x.ctx, p)
	if err != nil {
		return fmt.Errorf("export: read %s: %w", p, err)
	}
	defer in.Close()
	// The parent was made by this export, and O_EXCL|O_NOFOLLOW never follows or reuses an entry.
	f, err := openBeneath(x.tmp, host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	defer f.Close()
	n, err := copyInto(f, in)
	if err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	if err := f.Chown(x.uid, x.gid); err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	if err := f.Chmod(en.Mode.Perm()); err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	if !en.ModTime.IsZero() {
		tv := unix.NsecToTimeval(en.ModTime.UnixNano())
		_ = unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rep.Files++
	x.rep.Bytes += n
	if x.progress != nil && time.Since(x.last) > time.Second {
		x.last = time.Now()
		x.progress(fmt.Sprintf("exported %d files, %s", x.rep.Files, HumanBytes(x.rep.Bytes)))
	}
	return nil
}

// copyInto copies in to the new, empty file out and returns the bytes copied.
func copyInto(out *os.File, in io.Reader) (int64, error) {
	if f, ok := in.(*os.File); ok {
		if n, ok := cloneFile(out, f); ok {
			return n, nil
		}
	}
	return io.Copy(out, in)
}

// finish gives the directories their permission bits, deepest first.
func (x *exporter) finish() error {
	for i := len(x.modes) - 1; i >= 0; i-- {
		if err := unix.Fchmodat(int(x.tmp.Fd()), x.modes[i].rel, uint32(x.modes[i].perm), 0); err != nil {
			return err
		}
	}
	return nil
}
