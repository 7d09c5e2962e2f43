//go:build linux

package local

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The snapshot store. On disk, under the provider directory:
//
//	layers/<id>/{workspace,home}   committed overlay layers; immutable once there
//	snapshots/<ref>.json           a snapshot: its layer chain, bottom to top
//	sandboxes/<id>/...             running sandboxes (upper, work, ctl/, meta.json); only live
//	                               detached ones survive a restart (see meta.go)
//	trash/<id>                     layers being deleted
//	empty/{workspace,home}         the lower layer of the empty state
//	etc/                           the sandbox /etc (etc.go), rebuilt by New
//
// A snapshot is nothing but a chain of layers, so forking or restoring is a new sandbox with a
// fresh upper directory over the same chain (O(1), no copy), and committing is a rename of the
// upper directory into layers/ (O(1) in the size of the workspace). Layers are shared between
// snapshots; a layer is referenced by every snapshot whose chain holds it and by every running
// sandbox whose lower directories it is. Deleting the last reference deletes the layer.
//
// Inside a layer, deletions follow overlayfs with userxattr: a whiteout (character device 0/0)
// hides a lower entry, a directory with xattr user.overlay.opaque=y hides the lower directory's
// contents.

// snapshotFile is the content of snapshots/<ref>.json.
type snapshotFile struct {
	Layers       []string  `json:"layers"`
	Created      time.Time `json:"created"`
	ChangedFiles int64     `json:"changed_files"`
	ChangedBytes int64     `json:"changed_bytes"`
}

var idRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type store struct {
	dir, layers, snaps, sandboxes, trash, empty string
	log                                         *slog.Logger
	sq                                          *squasher // nil: squash inline (squasher.go)

	mu    sync.Mutex
	index map[sandbox.SnapshotRef][]string // snapshot -> chain
	refs  map[string]int                   // layer -> references (snapshots + running sandboxes)
}

// openStore creates the directory layout and loads the snapshot index. Everything a previous
// process left behind that nothing references is removed: sandbox directories (their processes
// died with that process) except those keep accepts — live detached sandboxes, whose layer
// chains it returns and which then hold references —, half-written snapshot files,
// unreferenced or half-built layers.
func openStore(dir string, log *slog.Logger, keep func(sandboxDir string) (chain []string, ok bool)) (*store, error) {
	s := &store{
		dir:       dir,
		layers:    filepath.Join(dir, "layers"),
		snaps:     filepath.Join(dir, "snapshots"),
		sandboxes: filepath.Join(dir, "sandboxes"),
		trash:     filepath.Join(dir, "trash"),
		empty:     filepath.Join(dir, "empty"),
		log:       log,
		index:     map[sandbox.SnapshotRef][]string{},
		refs:      map[string]int{},
	}
	for _, d := range []string{s.layers, s.snaps, s.sandboxes, s.trash, filepath.Join(s.empty, "workspace"), filepath.Join(s.empty, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// The empty layer must be readable as a lower dir by the unprivileged sandbox uid.
	for _, d := range []string{s.empty, filepath.Join(s.empty, "workspace"), filepath.Join(s.empty, "home")} {
		_ = os.Chmod(d, 0o755)
	}
	for _, d := range []string{s.sandboxes, s.trash} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if d == s.sandboxes && keep != nil && idRe.MatchString(e.Name()) {
				if chain, ok := keep(p); ok {
					for _, l := range chain {
						s.refs[l]++
					}
					continue
				}
			}
			if err := removeTree(p); err != nil {
				log.Warn("local: cannot remove leftover", "path", p, "err", err)
			} else if d == s.sandboxes {
				log.Info("local: removed leftover sandbox of a previous run", "sandbox", e.Name())
			}
		}
	}
	ents, err := os.ReadDir(s.snaps)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(s.snaps, name)
		ref, ok := strings.CutSuffix(name, ".json")
		if !ok || !idRe.MatchString(ref) {
			_ = os.Remove(p) // a half-written .tmp or a stranger
			continue
		}
		b, err := os.ReadFile(p)
		var sf snapshotFile
		if err == nil {
			err = json.Unmarshal(b, &sf)
		}
		if err != nil {
			log.Error("local: unreadable snapshot file; ignoring it", "path", p, "err", err)
			continue
		}
		s.index[sandbox.SnapshotRef(ref)] = sf.Layers
		for _, l := range sf.Layers {
			s.refs[l]++
		}
	}
	ents, err = os.ReadDir(s.layers)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if s.refs[e.Name()] == 0 {
			if err := removeTree(filepath.Join(s.layers, e.Name())); err != nil {
				log.Warn("local: cannot remove unreferenced layer", "layer", e.Name(), "err", err)
			}
		}
	}
	for ref, chain := range s.index {
		for _, l := range chain {
			if _, err := os.Stat(filepath.Join(s.layers, l)); err != nil {
				log.Error("local: snapshot is damaged: a layer is missing", "snapshot", ref, "layer", l)
			}
		}
	}
	return s, nil
}

// acquire returns ref's chain and takes a reference on its layers for a sandbox that will use
// them as lower directories. The empty ref is the empty chain.
func (s *store) acquire(ref sandbox.SnapshotRef) ([]string, error) {
	if ref == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	chain, ok := s.index[ref]
	if !ok {
		return nil, fmt.Errorf("%w: snapshot %q does not exist in the local provider (it was deleted, or made by another provider or data directory)", sandbox.ErrNotFound, ref)
	}
	for _, l := range chain {
		if _, err := os.Stat(filepath.Join(s.layers, l)); err != nil {
			return nil, fmt.Errorf("%w: snapshot %q is damaged: its layer %s is missing from %s", sandbox.ErrNotFound, ref, l, s.layers)
		}
	}
	for _, l := range chain {
		s.refs[l]++
	}
	return slices.Clone(chain), nil
}

// release drops references on chain's layers and deletes layers nobody references any more.
func (s *store) release(chain []string) {
	s.mu.Lock()
	dead := s.unrefLocked(chain)
	s.mu.Unlock()
	s.removeLayers(dead)
}

// unrefLocked drops one reference per layer and moves the layers left without references to
// trash/, returning their trash paths. The rename is atomic and quick, so the slow deletion can
// happen without the lock.
func (s *store) unrefLocked(chain []string) []string {
	var dead []string
	for _, l := range chain {
		s.refs[l]--
		if s.refs[l] > 0 {
			continue
		}
		delete(s.refs, l)
		t := filepath.Join(s.trash, l)
		if err := os.Rename(filepath.Join(s.layers, l), t); err != nil {
			s.log.Warn("local: cannot delete layer", "layer", l, "err", err)
			continue
		}
		dead = append(dead, t)
	}
	return dead
}

func (s *store) removeLayers(paths []string) {
	for _, p := range paths {
		if err := removeTree(p); err != nil {
			s.log.Warn("local: cannot remove layer", "path", p, "err", err)
		}
	}
}

// commit turns a stopped sandbox's upper directory, which holds changes, into a snapshot whose
// chain is parent plus the new layer (with a prefix the squasher has squashed replaced by its
// squashed layer). A chain longer than the soft limit wakes the background squasher
// (squasher.go); one longer than the hard limit (maxLayers without a squasher) is squashed here.
// (A sandbox that changed nothing makes no snapshot: Snapshot does not call commit.) The caller
// keeps its references on parent.
func (s *store) commit(parent []string, upper string, st sandbox.Changes, maxLayers int) (sandbox.SnapshotRef, error) {
	id := newID()
	if err := os.Rename(upper, filepath.Join(s.layers, id)); err != nil {
		return "", fmt.Errorf("commit layer: %w", err)
	}
	// The new snapshot's references, taken now: a layer it names cannot go meanwhile.
	s.mu.Lock()
	chain := s.squashedPrefix(append(slices.Clone(parent), id))
	for _, l := range chain {
		s.refs[l]++
	}
	s.mu.Unlock()
	fail := func(err error) (sandbox.SnapshotRef, error) {
		s.release(chain) // frees the new layer, and a squashed one made here
		return "", err
	}
	hard := maxLayers
	if s.sq != nil {
		hard = s.sq.hard
	}
	// Layer content must be on disk before a snapshot file points at it. A squash syncs the
	// whole file system, then writes the snapshot file. Otherwise the new layer's files and
	// directories, its name in layers/ and the snapshot file's content are synced together (one
	// wait, as the file system merges the fsyncs), then the snapshot file is renamed into place
	// and its directory synced (a second wait): a crash in between leaves a temporary snapshot
	// file and a layer that nothing names, which the next start collects.
	ref := sandbox.SnapshotRef(newID())
	if len(chain) > hard {
		sq, err := s.squash(chain)
		if err != nil {
			return fail(fmt.Errorf("squash %d layers: %w", len(chain), err))
		}
		s.mu.Lock()
		s.refs[sq]++
		s.mu.Unlock()
		s.release(chain) // the squashed layer holds hard links of what it needs
		chain = []string{sq}
		if err := syncFS(s.layers); err != nil {
			return fail(err)
		}
		if err := s.writeSnapshot(ref, snapshotFile{Layers: chain, Created: time.Now().UTC(), ChangedFiles: st.Files, ChangedBytes: st.Bytes}); err != nil {
			return fail(err)
		}
	} else {
		tmp, err := s.snapshotTemp(ref, snapshotFile{Layers: chain, Created: time.Now().UTC(), ChangedFiles: st.Files, ChangedBytes: st.Bytes})
		if err != nil {
			return fail(err)
		}
		if err := syncLayer(filepath.Join(s.layers, id), s.layers, tmp); err != nil {
			_ = os.Remove(tmp)
			return fail(err)
		}
		if err := s.publishSnapshot(ref, tmp); err != nil {
			_ = os.Remove(tmp)
			return fail(err)
		}
	}
	s.mu.Lock()
	s.index[ref] = chain
	s.mu.Unlock()
	if s.sq != nil && len(chain) > s.sq.soft {
		s.wakeSquasher()
	}
	return ref, nil
}

// writeSnapshot writes a snapshot file durably: temp file, fsync, rename, fsync the directory.
func (s *store) writeSnapshot(ref sandbox.SnapshotRef, sf snapshotFile) error {
	tmp, err := s.snapshotTemp(ref, sf)
	if err != nil {
		return err
	}
	if err := syncAll([]string{tmp}); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := s.publishSnapshot(ref, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// snapshotTemp writes a snapshot file under its temporary name, not synced.
func (s *store) snapshotTemp(ref sandbox.SnapshotRef, sf snapshotFile) (string, error) {
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(s.snaps, string(ref)+".json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// publishSnapshot renames a synced temporary snapshot file into place and syncs its directory.
func (s *store) publishSnapshot(ref sandbox.SnapshotRef, tmp string) error {
	if err := os.Rename(tmp, filepath.Join(s.snaps, string(ref)+".json")); err != nil {
		return err
	}
	return syncDir(s.snaps)
}

// delete removes a snapshot and every layer no other snapshot or running sandbox needs.
func (s *store) delete(ref sandbox.SnapshotRef) error {
	if !idRe.MatchString(string(ref)) {
		return nil // not one of ours, so it does not exist here
	}
	s.mu.Lock()
	chain, ok := s.index[ref]
	if !ok {
		s.mu.Unlock()
		return nil
	}
	if err := os.Remove(filepath.Join(s.snaps, string(ref)+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.mu.Unlock()
		return fmt.Errorf("delete snapshot %s: %w", ref, err)
	}
	delete(s.index, ref)
	dead := s.unrefLocked(chain)
	s.mu.Unlock()
	if err := syncDir(s.snaps); err != nil {
		return err
	}
	s.removeLayers(dead)
	return nil
}

func (s *store) list() []sandbox.SnapshotRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sandbox.SnapshotRef, 0, len(s.index))
	for r := range s.index {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// lowerDirs returns the overlay lowerdir list for one of the layer subdirectories ("workspace"
// or "home"), top layer first, relative to the layers directory.
func (s *store) lowerDirs(chain []string, sub string) []string {
	if len(chain) == 0 {
		return []string{filepath.Join("..", "empty", sub)}
	}
	out := make([]string, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		out = append(out, chain[i]+"/"+sub)
	}
	return out
}

const opaqueXattr = "user.overlay.opaque"

func isOpaque(dir string) bool {
	var b [4]byte
	n, err := unix.Lgetxattr(dir, opaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

func isWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return st.Rdev == 0
}

// removeTree removes a directory tree even when it holds directories without write or search
// permission (overlayfs leaves work/work at mode 000; sandboxed code can chmod its own dirs).
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		if err != nil && d != nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncEntriesMax is the most entries a layer syncs one by one; a larger one syncs the file
// system instead (syncfs), which costs one wait however many files changed.
var syncEntriesMax = 2000 // a variable for the benchmarks, which compare it with 0 (always syncfs)

// syncLayer makes the layer directory dir (just renamed into parent) durable, with the files
// also names (synced in the same batch): every regular file and directory in dir is fsynced, and
// so is parent, which holds its name. Symlinks, whiteouts and xattrs are metadata of the
// directories and inodes synced. A layer of more than syncEntriesMax entries syncs the whole
// file system instead: one fsync per file of a 30,000-file install would cost more than one
// syncfs. Unlike syncfs, this does not wait for what other programs wrote to the same file
// system (a build that dirtied gigabytes of page cache).
func syncLayer(dir, parent string, also ...string) error {
	var paths []string
	tooMany := errors.New("too many entries")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if t := d.Type(); t.IsDir() || t.IsRegular() {
			paths = append(paths, p)
		}
		if len(paths) > syncEntriesMax {
			return tooMany
		}
		return nil
	})
	if errors.Is(err, tooMany) {
		if err := syncFS(parent); err != nil {
			return err
		}
		return syncAll(also)
	}
	if err != nil {
		return err
	}
	// In any order (nothing names the layer until its snapshot file is in place), all at once:
	// the file system merges concurrent fsyncs into one journal commit.
	return syncAll(append(append(paths, parent), also...))
}

// syncFiles is how many fsyncs syncAll runs at once.
const syncFiles = 8

// syncAll fsyncs every path (regular files and directories, not followed through symlinks).
func syncAll(paths []string) error {
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, syncFiles)
	for _, p := range paths {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil {
				err = f.Sync()
				f.Close()
			}
			if err != nil {
				select {
				case errs <- fmt.Errorf("sync %s: %w", p, err):
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
