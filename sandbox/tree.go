package sandbox

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Tree is a read-only view of one snapshot's /workspace, for reading a whole tree out (an
// export) without a sandbox where the provider can: Provider.Tree. It is safe for concurrent
// use: Open may be called from several goroutines, also while Walk runs.
type Tree interface {
	// Walk calls fn for every entry below /workspace: a directory before its entries, the
	// entries of a directory in byte order of their names. fn returning fs.SkipDir for a
	// directory skips what is in it; any other error stops the walk with that error, and so does
	// ctx ending.
	Walk(ctx context.Context, fn func(TreeEntry) error) error
	// Open opens the regular file at path (relative to /workspace, as TreeEntry.Path) for
	// reading; the caller closes it. A path that is not a regular file of the tree fails with
	// ErrNotFound or ErrInvalid. A provider returns an *os.File where it has one, so that a copy
	// can be made in the kernel.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Close releases the view; Open's readers must be closed first.
	Close() error
}

// TreeEntry is one entry of a Tree.
type TreeEntry struct {
	// Path is relative to /workspace, slash-separated and clean ("src/main.go"), never "".
	Path string
	// Mode holds the type bits (fs.ModeDir, fs.ModeSymlink, none for a regular file; another
	// type as it is, such as fs.ModeNamedPipe, or fs.ModeIrregular where the provider cannot
	// tell which) and the permission bits.
	Mode fs.FileMode
	// Size of a regular file in bytes.
	Size int64
	// ModTime is the last modification time (its zero value when unknown).
	ModTime time.Time
	// Target is a symlink's target, as stored.
	Target string
}

// TreeBySandbox is Provider.Tree for providers without a direct way: it starts a sandbox from
// ref under opts (Snapshot set to ref), lists one directory at a time with ListFiles and reads
// files in chunks of chunk bytes with ReadFile. Close stops the sandbox.
func TreeBySandbox(ctx context.Context, p Provider, ref SnapshotRef, opts StartOptions, chunk int64) (Tree, error) {
	opts.Snapshot = ref
	sb, err := p.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &sandboxTree{sb: sb, chunk: chunk}, nil
}

type sandboxTree struct {
	sb    Sandbox
	chunk int64
	once  sync.Once
	err   error
}

func (t *sandboxTree) Walk(ctx context.Context, fn func(TreeEntry) error) error {
	return t.dir(ctx, "", fn)
}

func (t *sandboxTree) dir(ctx context.Context, rel string, fn func(TreeEntry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := t.sb.ListFiles(ctx, path.Join(WorkspaceDir, rel), 1)
	if err != nil {
		return fmt.Errorf("list %s: %w", path.Join(WorkspaceDir, rel), err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Path < ents[j].Path })
	for _, en := range ents {
		p := strings.TrimPrefix(en.Path, WorkspaceDir+"/")
		if CheckImportPath(p) != nil || path.Dir(p) != cmpDir(rel) {
			return fmt.Errorf("the sandbox listed an unexpected path %q in %s", en.Path, path.Join(WorkspaceDir, rel))
		}
		te := TreeEntry{Path: p, Size: en.Size, Mode: en.Mode.Perm(), ModTime: en.ModTime, Target: en.Target}
		switch en.Type {
		case "dir":
			te.Mode |= fs.ModeDir
		case "symlink":
			te.Mode |= fs.ModeSymlink
		case "file":
		default:
			te.Mode |= fs.ModeIrregular
		}
		err := fn(te)
		if en.Type == "dir" && err == fs.SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if en.Type == "dir" {
			if err := t.dir(ctx, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// cmpDir is the path.Dir of an entry of directory rel.
func cmpDir(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

func (t *sandboxTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if err := CheckImportPath(p); err != nil {
		return nil, err
	}
	r := &chunkReader{ctx: ctx, sb: t.sb, path: p, chunk: t.chunk}
	// The first chunk is read now, so that a path that is not a regular file fails here.
	if err := r.fill(); err != nil {
		return nil, err
	}
	return r, nil
}

func (t *sandboxTree) Close() error {
	t.once.Do(func() { t.err = t.sb.Stop(context.Background()) })
	return t.err
}

// chunkReader reads a file of a sandbox through ReadFile, chunk bytes per call.
type chunkReader struct {
	ctx   context.Context
	sb    Sandbox
	path  string
	chunk int64
	off   int64
	buf   []byte
	eof   bool
}

// fill reads the next chunk.
func (r *chunkReader) fill() error {
	c, err := r.sb.ReadFile(r.ctx, WorkspaceDir+"/"+r.path, r.off, r.chunk)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.path, err)
	}
	r.off += int64(len(c.Data))
	r.buf = c.Data
	if len(c.Data) == 0 || r.off >= c.Size {
		r.eof = true
	}
	return nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }
