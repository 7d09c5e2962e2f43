package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Import: create_workspace from_host_dir. The tree of a host directory (under one of the
// caller's host roots, hostdir.go) becomes the workspace's first commit, kind "import", built by
// the provider straight from the host files (sandbox.Provider.Import), never through a sandbox.
//
//   - A git work tree imports what the user sees: tracked and untracked files that are not
//     ignored (`git ls-files -co --exclude-standard`), uncommitted edits included, without .git
//     unless WithGit. git runs with `-c safe.directory=<dir>` for those calls only; the user's git
//     configuration is never changed. The commit records the source's HEAD and whether it was
//     dirty (store.ImportSource).
//   - Any other directory imports everything in it.
//   - Symlinks are imported as links; special files (sockets, devices, FIFOs) and names that are
//     not valid UTF-8 are skipped and reported (at most MaxImportSkipped listed).
//   - At most MaxImportFiles entries and MaxImportBytes bytes of file content.

// Limits of an import.
const (
	// MaxImportBytes bounds the file content one import copies.
	MaxImportBytes = 1 << 30
	// MaxImportFiles bounds the entries (files, directories, symlinks) of one import.
	MaxImportFiles = 200_000
	// MaxImportSkipped bounds the skipped paths an import lists (all are counted).
	MaxImportSkipped = 20
)

// ImportLimits bound one import (Options.ImportLimits).
type ImportLimits struct {
	// Files bounds the entries (files, directories, symlinks); Bytes the file content.
	Files, Bytes int64
}

func (l ImportLimits) withDefaults() ImportLimits {
	if l.Files <= 0 {
		l.Files = MaxImportFiles
	}
	if l.Bytes <= 0 {
		l.Bytes = MaxImportBytes
	}
	return l
}

// ImportReport says what an import took.
type ImportReport struct {
	HostDir  string `json:"host_dir"`
	Files    int64  `json:"files"`
	Dirs     int64  `json:"dirs,omitempty"`
	Symlinks int64  `json:"symlinks,omitempty"`
	Bytes    int64  `json:"bytes"`
	// Git is true for a git work tree; GitHead is its HEAD, Dirty whether it had changes not
	// committed (untracked files included), WithGit whether .git came along.
	Git     bool   `json:"git,omitempty"`
	GitHead string `json:"git_head,omitempty"`
	Dirty   bool   `json:"dirty,omitempty"`
	WithGit bool   `json:"with_git,omitempty"`
	// Skipped lists entries left out, "path (why)", at most MaxImportSkipped; SkippedCount
	// counts them all.
	Skipped      []string `json:"skipped,omitempty"`
	SkippedCount int      `json:"skipped_count,omitempty"`
}

// message is the import commit's message.
func (r ImportReport) message() string {
	s := fmt.Sprintf("import: %s (%d files, %s)", r.HostDir, r.Files, HumanBytes(r.Bytes))
	if r.Git {
		head := r.GitHead
		if len(head) > 12 {
			head = head[:12]
		}
		if head == "" {
			head = "no commit yet"
		}
		s += ", git " + head
		if r.Dirty {
			s += " with uncommitted changes"
		}
	}
	return s
}

// HumanBytes renders a byte count for people ("512 bytes", "1.5 MiB").
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// imported is an import's snapshot and report.
type imported struct {
	info   sandbox.SnapshotInfo
	report ImportReport
}

func (im *imported) source() *store.ImportSource {
	r := im.report
	return &store.ImportSource{HostDir: r.HostDir, Git: r.Git, GitHead: r.GitHead, Dirty: r.Dirty, WithGit: r.WithGit}
}

// importHostDir builds the snapshot of a host directory.
func (e *Engine) importHostDir(ctx context.Context, dir string, withGit bool, progress func(string)) (*imported, error) {
	const arg = "from_host_dir"
	hp, err := resolveHostPath(ctx, arg, dir)
	if err != nil {
		return nil, err
	}
	root, err := openRoot(hp.root)
	if err != nil {
		return nil, hostErr(arg, hostPath{root: hp.root, rel: "."}, "the host root", err)
	}
	defer root.Close()
	src, err := openDirBeneath(root, hp.rel)
	if err != nil {
		return nil, hostErr(arg, hp, "the directory", err)
	}
	defer src.Close()
	l := &importLister{src: src, lim: e.imp, rep: ImportReport{HostDir: hp.show()}}
	g := gitRepo{dir: hp.show(), ceiling: filepath.Dir(hp.root)}
	if top, ok := gitTop(root, hp.rel); ok {
		g.top = filepath.Join(hp.root, top)
		// git runs as whoever owns the repository (its .git), found beneath the root.
		if d, err := openDirBeneath(root, top); err == nil {
			st, err := lstatAt(d, ".git")
			d.Close()
			if err != nil {
				return nil, hostErr(arg, hp, "the repository's .git", err)
			}
			g.cred, g.home = gitAs(int(st.Uid), int(st.Gid))
		} else {
			return nil, hostErr(arg, hp, "the work tree", err)
		}
	}
	paths, ok, err := g.files(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		l.rep.Git = true
		l.rep.GitHead, l.rep.Dirty = g.state(ctx)
		for _, p := range paths {
			if err := l.add(p); err != nil {
				return nil, err
			}
		}
		if withGit {
			if st, err := lstatAt(src, ".git"); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				l.rep.WithGit = true
				if err := l.walk(".git"); err != nil {
					return nil, err
				}
			}
		}
	} else if err := l.walk("."); err != nil {
		return nil, err
	}
	sort.Slice(l.entries, func(i, j int) bool { return l.entries[i].Path < l.entries[j].Path })
	var last time.Time
	is := sandbox.ImportSource{
		Entries: l.entries,
		Open: func(p string) (*os.File, error) {
			// O_NONBLOCK: a file swapped for a FIFO since it was listed must not hang the import.
			f, err := openBeneath(src, filepath.FromSlash(p), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
			if err != nil {
				return nil, err
			}
			if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
				f.Close()
				return nil, fmt.Errorf("%s changed while it was imported: it is no longer a regular file", p)
			}
			return f, nil
		},
	}
	if progress != nil {
		total := l.rep.Bytes
		is.Progress = func(b, n int64) {
			if time.Since(last) < time.Second && n < int64(len(l.entries)) {
				return
			}
			last = time.Now()
			progress(fmt.Sprintf("importing %s: %d of %d entries, %s of %s", hp.show(), n, len(l.entries), HumanBytes(b), HumanBytes(total)))
		}
	}
	info, err := e.prov.Import(ctx, is)
	if err != nil {
		return nil, e.provErr(err, "import "+hp.show())
	}
	return &imported{info: info, report: l.rep}, nil
}

// importLister collects the entries of an import, checking the limits as it goes.
type importLister struct {
	src     *os.File
	lim     ImportLimits
	entries []sandbox.ImportEntry
	seen    map[string]bool
	rep     ImportReport
}

func (l *importLister) skip(p, why string) {
	l.rep.SkippedCount++
	if len(l.rep.Skipped) < MaxImportSkipped {
		if !utf8.ValidString(p) {
			p = strings.ToValidUTF8(p, "\uFFFD")
		}
		l.rep.Skipped = append(l.rep.Skipped, p+" ("+why+")")
	}
}

// add lists the entry at p (slash-separated, relative to the source directory).
func (l *importLister) add(p string) error {
	if !utf8.ValidString(p) {
		l.skip(p, "name is not valid UTF-8")
		return nil
	}
	if sandbox.CheckImportPath(p) != nil {
		l.skip(p, "not a plain relative path")
		return nil
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[p] {
		return nil
	}
	l.seen[p] = true
	dir, err := openDirBeneath(l.src, filepath.FromSlash(path.Dir(p)))
	if err != nil {
		if errors.Is(err, errHostEscape) {
			l.skip(p, "leads out of the host root")
			return nil
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil // deleted in the work tree since git listed it
		}
		return fmt.Errorf("import %s: %w", p, err)
	}
	defer dir.Close()
	return l.addAt(dir, p)
}

// addAt lists p, whose parent directory is dir.
func (l *importLister) addAt(dir *os.File, p string) error {
	name := path.Base(p)
	st, err := lstatAt(dir, name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	mode := fileMode(uint32(st.Mode))
	e := sandbox.ImportEntry{Path: p, Mode: mode}
	switch {
	case mode.IsRegular():
		e.Size = st.Size
		l.rep.Files++
		l.rep.Bytes += st.Size
		if l.rep.Bytes > l.lim.Bytes {
			return errorf(ErrInvalid, "from_host_dir: %s holds more than %s of files (the import limit); import a smaller directory, or add what is not needed to .gitignore",
				l.rep.HostDir, HumanBytes(l.lim.Bytes)).with(ErrorFields{Argument: "from_host_dir", Limit: ptr(l.lim.Bytes), Path: l.rep.HostDir})
		}
	case mode.IsDir():
		l.rep.Dirs++
	case mode&fs.ModeSymlink != 0:
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return fmt.Errorf("import %s: %w", p, err)
		}
		e.Target = string(buf[:n])
		l.rep.Symlinks++
	default:
		what := "a special file"
		switch {
		case mode&fs.ModeSocket != 0:
			what = "a socket"
		case mode&fs.ModeNamedPipe != 0:
			what = "a FIFO"
		case mode&fs.ModeDevice != 0:
			what = "a device"
		}
		l.skip(p, what)
		return nil
	}
	l.entries = append(l.entries, e)
	if n := int64(len(l.entries)); n > l.lim.Files {
		return errorf(ErrInvalid, "from_host_dir: %s holds more than %d files and directories (the import limit); import a smaller directory, or add what is not needed to .gitignore",
			l.rep.HostDir, l.lim.Files).with(ErrorFields{Argument: "from_host_dir", Limit: ptr(l.lim.Files), Path: l.rep.HostDir})
	}
	return nil
}

// walk lists everything below rel ("." for the whole source), depth first in name order.
func (l *importLister) walk(rel string) error {
	dir, err := openBeneath(l.src, filepath.FromSlash(rel), os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("import %s: %w", rel, err)
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("import %s: %w", rel, err)
	}
	sort.Strings(names)
	for _, name := range names {
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		if !utf8.ValidString(p) {
			l.skip(p, "name is not valid UTF-8")
			continue
		}
		before := len(l.entries)
		if err := l.addAt(dir, p); err != nil {
			return err
		}
		if len(l.entries) > before && l.entries[before].Mode.IsDir() {
			if err := l.walk(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// gitTop finds the top of the git work tree holding rel (a directory beneath root): the nearest
// of rel and its parents, up to the root itself, that has a .git entry. ok is false when there
// is none inside the root: a work tree whose top lies outside the root is imported as a plain
// directory (git would read outside the root).
func gitTop(root *os.File, rel string) (string, bool) {
	for cur := rel; ; cur = filepath.Dir(cur) {
		if d, err := openDirBeneath(root, cur); err == nil {
			_, serr := lstatAt(d, ".git")
			d.Close()
			if serr == nil {
				return cur, true
			}
		}
		if cur == "." {
			return "", false
		}
	}
}

// gitRepo runs git for an import: in dir (the imported directory), inside the work tree whose
// top is top ("" when there is none in the root), never looking above ceiling, as cred (nil: the
// server itself) with home as HOME.
type gitRepo struct {
	dir, top, ceiling string
	cred              *syscall.Credential
	home              string
}

// run runs one git command, trusting the work tree as a safe.directory for that call only (the
// user's git configuration is never changed), with hooks and fsmonitor off and no optional
// locks, as the owner of the repository (gitAs): what the repository's configuration can still
// run during status (a clean filter) runs as that user, never as root.
func (g gitRepo) run(ctx context.Context, args ...string) ([]byte, error) {
	pre := []string{"-c", "safe.directory=" + g.top, "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-C", g.dir}
	cmd := exec.CommandContext(ctx, "git", append(pre, args...)...)
	home := g.home
	if home == "" {
		home = "/nonexistent" // the owner has no home we know: no global configuration
	}
	env := []string{"GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "GIT_CEILING_DIRECTORIES=" + g.ceiling, "HOME=" + home}
	cmd.Env = append(env, gitEnviron()...)
	return gitOutput(cmd, g.cred, args)
}

// files lists the work tree's tracked and untracked-not-ignored files under dir; ok is false
// when dir is in no git work tree inside the root (or git is not installed). A work tree whose
// git fails (its owner cannot read it, a damaged repository) is an error, not a plain directory:
// importing it as one would bring in what the user's git ignores.
func (g gitRepo) files(ctx context.Context) (paths []string, ok bool, err error) {
	if g.top == "" {
		return nil, false, nil
	}
	out, err := g.run(ctx, "rev-parse", "--is-inside-work-tree")
	if errors.Is(err, exec.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, g.failed(err)
	}
	if strings.TrimSpace(string(out)) != "true" {
		return nil, false, nil
	}
	if out, err = g.run(ctx, "ls-files", "-co", "--exclude-standard", "-z"); err != nil {
		return nil, false, g.failed(err)
	}
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			paths = append(paths, string(p))
		}
	}
	return paths, true, nil
}

// failed is the error for a git command that failed in the work tree.
func (g gitRepo) failed(err error) error {
	who := "the server's user"
	if g.cred != nil {
		who = fmt.Sprintf("uid %d, the owner of its .git", g.cred.Uid)
	}
	return errorf(ErrInvalid, "from_host_dir: %s is in the git work tree %s, but git failed there (run as %s): %v; fix the repository (or its permissions for its owner), or import a directory outside it", g.dir, g.top, who, err).
		with(ErrorFields{Argument: "from_host_dir", Path: g.dir})
}

// state is the work tree's HEAD commit ("" before the first) and whether it has changes
// (untracked files included).
func (g gitRepo) state(ctx context.Context) (head string, dirty bool) {
	if out, err := g.run(ctx, "rev-parse", "--verify", "-q", "HEAD"); err == nil {
		head = strings.TrimSpace(string(out))
	}
	if out, err := g.run(ctx, "status", "--porcelain", "-z"); err == nil {
		dirty = len(bytes.TrimSpace(out)) > 0
	}
	return head, dirty
}
