//go:build linux

package local

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Tree implements sandbox.Provider: the snapshot's layers are read where they lie, merged the
// way overlayfs merges them (changes.go: a whiteout hides what lies below, an opaque directory
// the lower directories' entries), with no sandbox and no mount. The view holds a reference on
// the chain's layers until Close, so a snapshot deleted meanwhile keeps its files readable.
// Layers are never written once committed, so what Walk reports stays true while the view is
// open. Open returns the layer's own file (opened with O_NOFOLLOW), so a copy out of it is
// made by the kernel (a reflink or copy_file_range).
func (p *Provider) Tree(ctx context.Context, ref sandbox.SnapshotRef) (sandbox.Tree, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chain, err := p.store.acquire(ref)
	if err != nil {
		return nil, err
	}
	return &layerTree{s: p.store, chain: chain, root: p.store.layerDirs(chain, "workspace")}, nil
}

type layerTree struct {
	s     *store
	chain []string
	root  side
	once  sync.Once
}

func (t *layerTree) Close() error {
	t.once.Do(func() { t.s.release(t.chain) })
	return nil
}

// Walk implements sandbox.Tree; fn returning fs.SkipDir for a directory skips its entries.
func (t *layerTree) Walk(ctx context.Context, fn func(sandbox.TreeEntry) error) error {
	return t.dir(ctx, "", t.root, fn)
}

func (t *layerTree) dir(ctx context.Context, rel string, m side, fn func(sandbox.TreeEntry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l, err := list(m)
	if err != nil {
		return err
	}
	var ns []string
	for _, d := range m {
		for n := range l[d] {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	for _, name := range ns {
		e, ok, err := m.child(name, l)
		if err != nil {
			return err
		}
		if !ok {
			continue // a whiteout
		}
		p := join(rel, name)
		te := sandbox.TreeEntry{Path: p, Mode: e.fi.Mode(), ModTime: e.fi.ModTime()}
		switch {
		case e.fi.Mode().IsRegular():
			te.Size = e.fi.Size()
		case e.fi.Mode()&fs.ModeSymlink != 0:
			if te.Target, err = os.Readlink(e.path); err != nil {
				return err
			}
		}
		err = fn(te)
		if e.fi.IsDir() && err == fs.SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if e.fi.IsDir() {
			if err := t.dir(ctx, p, e.dirs, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open implements sandbox.Tree.
func (t *layerTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if err := sandbox.CheckImportPath(p); err != nil {
		return nil, err
	}
	m := t.root
	parts := strings.Split(p, "/")
	for i, name := range parts {
		e, ok, err := m.child(name, nil)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: /workspace/%s does not exist", sandbox.ErrNotFound, p)
		}
		if i < len(parts)-1 {
			if !e.fi.IsDir() {
				return nil, fmt.Errorf("%w: /workspace/%s is not a directory", sandbox.ErrNotFound, strings.Join(parts[:i+1], "/"))
			}
			m = e.dirs
			continue
		}
		if !e.fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: /workspace/%s is not a regular file", sandbox.ErrInvalid, p)
		}
		return os.OpenFile(e.path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return nil, fmt.Errorf("%w: /workspace/%s does not exist", sandbox.ErrNotFound, p)
}
