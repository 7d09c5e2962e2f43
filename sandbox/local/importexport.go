//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Import implements sandbox.Provider: the entries are copied straight into a new layer
// directory (layers/<id>.tmp, renamed into place when complete), O(tree): each file is cloned
// (FICLONE) where the file system shares extents, else copied in the kernel (copy_file_range,
// through io.Copy). Nothing runs in a sandbox. The new snapshot's chain is that one layer.
func (p *Provider) Import(ctx context.Context, src sandbox.ImportSource) (sandbox.SnapshotInfo, error) {
	for _, e := range src.Entries {
		if err := sandbox.CheckImportPath(e.Path); err != nil {
			return sandbox.SnapshotInfo{}, err
		}
	}
	if len(src.Entries) == 0 {
		return sandbox.SnapshotInfo{Unchanged: true, Changes: sandbox.Changes{Known: true}}, nil
	}
	id := newID()
	tmp := filepath.Join(p.store.layers, id+".tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return sandbox.SnapshotInfo{}, fmt.Errorf("import: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = removeTree(tmp)
		}
	}()
	for _, sub := range []string{"workspace", "home"} {
		d := filepath.Join(tmp, sub)
		if err := os.Mkdir(d, 0o755); err != nil {
			return sandbox.SnapshotInfo{}, err
		}
		if err := os.Chown(d, p.uid, p.gid); err != nil {
			return sandbox.SnapshotInfo{}, err
		}
	}
	im := &importer{p: p, root: filepath.Join(tmp, "workspace"), dirs: map[string]bool{".": true}}
	// Directories and symlinks are made here, in order; regular files are copied by up to
	// importWorkers goroutines (their directory made first), since creating and filling files is
	// most of an import's time and file systems create files in parallel.
	var bytes, done atomic.Int64
	var failed atomic.Pointer[error]
	sem := make(chan struct{}, importWorkers)
	var wg sync.WaitGroup
	fail := func(e sandbox.ImportEntry, err error) {
		err = fmt.Errorf("import %s: %w", e.Path, err)
		failed.CompareAndSwap(nil, &err)
	}
	last := time.Now()
	for _, e := range src.Entries {
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return sandbox.SnapshotInfo{}, err
		}
		if failed.Load() != nil {
			break
		}
		if !e.Mode.IsRegular() {
			if _, err := im.place(e, src.Open); err != nil {
				fail(e, err)
				break
			}
			done.Add(1)
			continue
		}
		if err := im.dir(path.Dir(e.Path)); err != nil {
			fail(e, err)
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := im.copyIn(e, src.Open)
			if err != nil {
				fail(e, err)
				return
			}
			bytes.Add(n)
			done.Add(1)
		}()
		if src.Progress != nil && time.Since(last) > 200*time.Millisecond {
			src.Progress(bytes.Load(), done.Load())
			last = time.Now()
		}
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return sandbox.SnapshotInfo{}, *err
	}
	if src.Progress != nil {
		src.Progress(bytes.Load(), done.Load())
	}
	if err := im.finish(); err != nil {
		return sandbox.SnapshotInfo{}, fmt.Errorf("import: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(p.store.layers, id)); err != nil {
		return sandbox.SnapshotInfo{}, fmt.Errorf("import: %w", err)
	}
	ok = true
	chain := []string{id}
	ch, err := p.store.diffChains(ctx, nil, chain)
	if err != nil {
		_ = removeTree(filepath.Join(p.store.layers, id))
		return sandbox.SnapshotInfo{}, fmt.Errorf("import: %w", err)
	}
	if err := syncFS(p.store.layers); err != nil {
		_ = removeTree(filepath.Join(p.store.layers, id))
		return sandbox.SnapshotInfo{}, err
	}
	ref := sandbox.SnapshotRef(newID())
	if err := p.store.writeSnapshot(ref, snapshotFile{Layers: chain, Created: time.Now().UTC(), ChangedFiles: ch.Files, ChangedBytes: ch.Bytes}); err != nil {
		_ = removeTree(filepath.Join(p.store.layers, id))
		return sandbox.SnapshotInfo{}, err
	}
	p.store.mu.Lock()
	p.store.index[ref] = chain
	p.store.refs[id]++
	p.store.mu.Unlock()
	return sandbox.SnapshotInfo{Ref: ref, Changes: ch, ChangedFiles: ch.Files, ChangedBytes: ch.Bytes}, nil
}

// importer places entries under root, a directory only this process writes.
type importer struct {
	p    *Provider
	root string
	dirs map[string]bool // slash paths known to be real directories here
	// modes are the directories' permission bits, set by finish.
	modes []dirMode
}

type dirMode struct {
	path string
	perm fs.FileMode
}

// finish gives the directories their permission bits, deepest last listed first.
func (im *importer) finish() error {
	for i := len(im.modes) - 1; i >= 0; i-- {
		if err := os.Chmod(im.modes[i].path, im.modes[i].perm); err != nil {
			return err
		}
	}
	return nil
}

// dir makes sure rel is a directory (creating it and its parents, mode 0755, when missing); an
// entry there that is not a directory (a symlink an earlier entry made) is refused, so nothing
// is ever written through a link.
func (im *importer) dir(rel string) error {
	if im.dirs[rel] {
		return nil
	}
	if err := im.dir(path.Dir(rel)); err != nil {
		return err
	}
	full := filepath.Join(im.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(full, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(full, im.p.uid, im.p.gid); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", sandbox.ErrInvalid, rel)
	}
	im.dirs[rel] = true
	return nil
}

// place creates one entry; it returns the bytes copied.
func (im *importer) place(e sandbox.ImportEntry, open func(string) (*os.File, error)) (int64, error) {
	if err := im.dir(path.Dir(e.Path)); err != nil {
		return 0, err
	}
	full := filepath.Join(im.root, filepath.FromSlash(e.Path))
	perm := e.Mode.Perm()
	switch {
	case e.Mode.IsDir():
		if err := im.dir(e.Path); err != nil {
			return 0, err
		}
		// Applied at the end (finish): a directory without write permission must still be filled.
		im.modes = append(im.modes, dirMode{full, perm})
		return 0, nil
	case e.Mode&fs.ModeSymlink != 0:
		if err := os.Symlink(e.Target, full); err != nil {
			return 0, err
		}
		return 0, os.Lchown(full, im.p.uid, im.p.gid)
	case e.Mode.IsRegular():
		return im.copyIn(e, open)
	default:
		return 0, fmt.Errorf("%w: not a file, a directory or a symlink", sandbox.ErrInvalid)
	}
}

// copyIn copies the regular file of e into its place, whose directory exists; it is safe to call
// from several goroutines. It returns the bytes copied.
func (im *importer) copyIn(e sandbox.ImportEntry, open func(string) (*os.File, error)) (int64, error) {
	full := filepath.Join(im.root, filepath.FromSlash(e.Path))
	perm := e.Mode.Perm()
	in, err := open(e.Path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return 0, err
	}
	n, err := copyFile(out, in)
	if err == nil {
		err = out.Chown(im.p.uid, im.p.gid)
	}
	if err == nil {
		err = out.Chmod(perm) // the umask applied at create
	}
	if err == nil {
		if fi, serr := in.Stat(); serr == nil {
			tv := unix.NsecToTimeval(fi.ModTime().UnixNano())
			_ = unix.Futimes(int(out.Fd()), []unix.Timeval{tv, tv})
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// importWorkers is how many files an import copies at once.
const importWorkers = 4

// copyFile clones in into out where the file system shares extents, else copies it (io.Copy
// between files uses copy_file_range).
func copyFile(out, in *os.File) (int64, error) {
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
		fi, err := out.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	return io.Copy(out, in)
}
