//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// What changed, from the layers (the rules of "Changes" in package sandbox).
//
// Two states are two stacks of layer directories: the snapshot a sandbox started from and the
// same chain with its upper directory on top (Snapshot), or the chains of two snapshots (Diff).
// Layers the two stacks share below the first difference are the same on both sides, so only
// the paths that the other layers hold can differ: the walk visits exactly those ("touched"),
// looking each one up in the merged view of both sides the way overlayfs does (a whiteout hides
// what lies below, an opaque directory hides the lower directories' entries, a non-directory
// hides everything below). That makes it O(changes), not O(tree), except where a change hides a
// whole lower directory (an opaque directory: its entries on both sides are compared) or adds
// one (a new directory: its entries are listed). A squashed chain shares no layer with its
// ancestors, so a Diff across a squash visits every path of the squashed layer; its regular files
// are hard links of the older layers' files, so comparing them is one stat.

// layerSubs are the two durable trees of a layer, and how their paths are shown.
var layerSubs = []struct{ sub, prefix string }{{"workspace", ""}, {"home", "~/"}}

// side is the directories that make up one directory of a merged view, top layer first.
type side []string

// entry is what a merged view holds at one path: the topmost layer's entry, and for a directory
// the layer directories merged into it.
type entry struct {
	fi   fs.FileInfo
	path string
	dirs side
}

// listing holds the names of layer directories, read once, so that looking up many names in a
// directory merged from many layers costs a map lookup per layer instead of an lstat.
type listing map[string]map[string]bool

// has reports whether dir may hold name: false only when dir was listed without it.
func (l listing) has(dir, name string) bool {
	names, ok := l[dir]
	return !ok || names[name]
}

// listingThreshold is how many names a directory visit looks up before it lists its layer
// directories instead of probing each with lstat.
const listingThreshold = 32

// list reads the names of every directory of the sides.
func list(sides ...side) (listing, error) {
	l := listing{}
	for _, m := range sides {
		for _, d := range m {
			if _, ok := l[d]; ok {
				continue
			}
			ns, err := names([]string{d})
			if err != nil {
				return nil, err
			}
			set := make(map[string]bool, len(ns))
			for _, n := range ns {
				set[n] = true
			}
			l[d] = set
		}
	}
	return l, nil
}

// child looks name up in the merged directory m, as overlayfs does. l, when not nil, lists
// directories of m, whose names need no lstat to be ruled out.
func (m side) child(name string, l listing) (entry, bool, error) {
	for i, d := range m {
		if !l.has(d, name) {
			continue
		}
		p := filepath.Join(d, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return entry{}, false, err
		}
		if isWhiteout(fi) {
			return entry{}, false, nil
		}
		e := entry{fi: fi, path: p}
		if !fi.IsDir() {
			return e, true, nil
		}
		e.dirs = side{p}
		if isOpaque(p) {
			return e, true, nil
		}
		for _, lower := range m[i+1:] {
			if !l.has(lower, name) {
				continue
			}
			q := filepath.Join(lower, name)
			lfi, err := os.Lstat(q)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return entry{}, false, err
			}
			if !lfi.IsDir() {
				break // a whiteout or a non-directory ends the merge
			}
			e.dirs = append(e.dirs, q)
			if isOpaque(q) {
				break
			}
		}
		return e, true, nil
	}
	return entry{}, false, nil
}

// names lists the names in any of dirs (sorted, without duplicates; whiteouts included, child
// sorts them out).
func names(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		f, err := os.Open(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ns, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// differ walks the touched paths of two merged views and collects the changes.
type differ struct {
	ctx    context.Context
	prefix string
	out    sandbox.Changes
	seen   int
}

func (d *differ) add(rel, op string, fi fs.FileInfo) {
	d.out.Files++
	typ := entryType(fi)
	if op != sandbox.Deleted && fi.Mode().IsRegular() {
		d.out.Bytes += fi.Size()
	}
	if len(d.out.Paths) < sandbox.MaxChanges {
		d.out.Paths = append(d.out.Paths, sandbox.Change{Path: d.prefix + rel, Op: op, Type: typ})
	}
}

func entryType(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	default:
		return "other"
	}
}

func (d *differ) tick() error {
	d.seen++
	if d.seen%256 == 0 {
		return d.ctx.Err()
	}
	return nil
}

// dir compares directory rel, a directory on both sides (a old, b new), visiting the names the
// touched layer directories hold at rel — or all names of both sides when full, or when one of
// the touched directories is opaque (it hides lower entries that no touched layer names; so
// does everything under it). It reports whether it listed anything under rel.
func (d *differ) dir(rel string, a, b side, touched []string, full bool) (bool, error) {
	all := full || slices.ContainsFunc(touched, isOpaque)
	scan := touched
	if all {
		scan = slices.Concat(touched, a, b)
	}
	ns, err := names(scan)
	if err != nil {
		return false, err
	}
	var l listing
	if len(ns) > listingThreshold {
		if l, err = list(a, b); err != nil {
			return false, err
		}
	}
	listed := false
	for _, name := range ns {
		if err := d.tick(); err != nil {
			return listed, err
		}
		ea, okA, err := a.child(name, l)
		if err != nil {
			return listed, err
		}
		eb, okB, err := b.child(name, l)
		if err != nil {
			return listed, err
		}
		var under []string
		for _, t := range touched {
			if fi, err := os.Lstat(filepath.Join(t, name)); err == nil && fi.IsDir() {
				under = append(under, filepath.Join(t, name))
			}
		}
		l, err := d.entry(join(rel, name), ea, okA, eb, okB, under, all)
		if err != nil {
			return listed, err
		}
		listed = listed || l
	}
	return listed, nil
}

// entry compares one path; it reports whether it listed anything at or under it.
func (d *differ) entry(rel string, ea entry, okA bool, eb entry, okB bool, touched []string, full bool) (bool, error) {
	switch {
	case !okA && !okB:
		return false, nil
	case !okA:
		return d.added(rel, eb)
	case !okB:
		d.add(rel, sandbox.Deleted, ea.fi)
		return true, nil
	}
	aDir, bDir := ea.fi.IsDir(), eb.fi.IsDir()
	switch {
	case aDir && bDir:
		same, err := sameDir(ea, eb)
		if err != nil {
			return false, err
		}
		if !same {
			d.add(rel, sandbox.Modified, eb.fi)
		}
		listed, err := d.dir(rel, ea.dirs, eb.dirs, touched, full)
		return listed || !same, err
	case bDir: // a non-directory became a directory: all it holds is new
		d.add(rel, sandbox.Modified, eb.fi)
		_, err := d.addedUnder(rel, eb.dirs)
		return true, err
	case aDir: // a directory became a non-directory, its contents went with it
		d.add(rel, sandbox.Modified, eb.fi)
		return true, nil
	}
	same, err := sameFile(ea, eb)
	if err != nil || same {
		return false, err
	}
	d.add(rel, sandbox.Modified, eb.fi)
	return true, nil
}

// added lists a new entry: a non-directory, or the entries under a new directory (the
// directory itself when it is empty).
func (d *differ) added(rel string, e entry) (bool, error) {
	if !e.fi.IsDir() {
		d.add(rel, sandbox.Added, e.fi)
		return true, nil
	}
	listed, err := d.addedUnder(rel, e.dirs)
	if err == nil && !listed {
		d.add(rel, sandbox.Added, e.fi)
	}
	return true, err
}

func (d *differ) addedUnder(rel string, m side) (bool, error) {
	ns, err := names(m)
	if err != nil {
		return false, err
	}
	var l listing
	if len(ns) > listingThreshold && len(m) > 1 {
		if l, err = list(m); err != nil {
			return false, err
		}
	}
	listed := false
	for _, name := range ns {
		if err := d.tick(); err != nil {
			return listed, err
		}
		e, ok, err := m.child(name, l)
		if err != nil {
			return listed, err
		}
		if !ok {
			continue
		}
		if _, err := d.added(join(rel, name), e); err != nil {
			return true, err
		}
		listed = true
	}
	return listed, nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// sameDir: permission bits, owner and extended attributes (not times, see package sandbox).
func sameDir(a, b entry) (bool, error) {
	if a.fi.Mode() != b.fi.Mode() || !sameOwner(a.fi, b.fi) {
		return false, nil
	}
	return sameXattrs(a.path, b.path)
}

// sameFile compares two non-directories: the same inode (a layer's own file, or a squash's
// hard link) is the same; otherwise type, permission bits, owner, size, modification time,
// extended attributes and content or target must all match.
func sameFile(a, b entry) (bool, error) {
	sa, okA := a.fi.Sys().(*syscall.Stat_t)
	sb, okB := b.fi.Sys().(*syscall.Stat_t)
	if !okA || !okB {
		return false, fmt.Errorf("%s: no stat data", a.path)
	}
	if sa.Dev == sb.Dev && sa.Ino == sb.Ino {
		return true, nil
	}
	if a.fi.Mode() != b.fi.Mode() || sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Size != sb.Size ||
		sa.Mtim != sb.Mtim || sa.Rdev != sb.Rdev {
		return false, nil
	}
	if same, err := sameXattrs(a.path, b.path); err != nil || !same {
		return false, err
	}
	switch {
	case a.fi.Mode().IsRegular():
		return sameContent(a.path, b.path)
	case a.fi.Mode()&fs.ModeSymlink != 0:
		ta, err := os.Readlink(a.path)
		if err != nil {
			return false, err
		}
		tb, err := os.Readlink(b.path)
		return err == nil && ta == tb, err
	}
	return true, nil
}

func sameOwner(a, b fs.FileInfo) bool {
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// sameXattrs compares the extended attributes of two entries, without overlayfs's own.
func sameXattrs(a, b string) (bool, error) {
	xa, err := xattrs(a)
	if err != nil {
		return false, err
	}
	xb, err := xattrs(b)
	if err != nil || len(xa) != len(xb) {
		return false, err
	}
	for k, v := range xa {
		if w, ok := xb[k]; !ok || w != v {
			return false, nil
		}
	}
	return true, nil
}

func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var out map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(val[:m])
	}
	return out, nil
}

// layerDirs is a chain's directories for sub, top layer first (the empty layer for the empty
// chain), as absolute paths.
func (s *store) layerDirs(chain []string, sub string) side {
	if len(chain) == 0 {
		return side{filepath.Join(s.empty, sub)}
	}
	out := make(side, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		out = append(out, filepath.Join(s.layers, chain[i], sub))
	}
	return out
}

// upperChanges is what a sandbox over chain changed in its upper directory.
func (s *store) upperChanges(ctx context.Context, chain []string, upper string) (sandbox.Changes, error) {
	d := &differ{ctx: ctx, out: sandbox.Changes{Known: true}}
	for _, ls := range layerSubs {
		lower := s.layerDirs(chain, ls.sub)
		top := filepath.Join(upper, ls.sub)
		d.prefix = ls.prefix
		if _, err := d.dir("", lower, append(side{top}, lower...), []string{top}, false); err != nil {
			return sandbox.Changes{}, err
		}
	}
	return d.out, nil
}

// diffChains is what differs from chain a to chain b. Only the layers above their common prefix
// are walked.
func (s *store) diffChains(ctx context.Context, a, b []string) (sandbox.Changes, error) {
	k := 0
	for k < len(a) && k < len(b) && a[k] == b[k] {
		k++
	}
	d := &differ{ctx: ctx, out: sandbox.Changes{Known: true}}
	for _, ls := range layerSubs {
		var touched []string
		for _, l := range slices.Concat(a[k:], b[k:]) {
			touched = append(touched, filepath.Join(s.layers, l, ls.sub))
		}
		if len(touched) == 0 {
			continue
		}
		d.prefix = ls.prefix
		if _, err := d.dir("", s.layerDirs(a, ls.sub), s.layerDirs(b, ls.sub), touched, false); err != nil {
			return sandbox.Changes{}, err
		}
	}
	return d.out, nil
}
