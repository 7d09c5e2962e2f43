//go:build linux

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Squash merges a layer chain into one layer with the same merged view, so chains stay short
// enough for one overlay mount (the mount data is limited to one page, and every lower layer
// costs a little on each lookup).
//
// The chain is applied bottom to top onto an empty directory in Go, honouring overlayfs's
// deletion marks: a whiteout removes the entry below it, an opaque directory replaces the
// directory below it, a non-directory replaces whatever was there. Regular files are hard-linked
// rather than copied: layers are immutable (overlayfs copies a lower file up before changing it),
// so sharing their inodes is safe and makes a squash O(entries), not O(bytes). The result is a
// bottom layer, so it needs no whiteouts or opaque marks of its own.

func (s *store) squash(chain []string) (string, error) {
	id := newID()
	tmp := filepath.Join(s.layers, id+".tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	for _, sub := range []string{"workspace", "home"} {
		dst := filepath.Join(tmp, sub)
		if err := os.Mkdir(dst, 0o755); err != nil {
			return "", err
		}
		for _, l := range chain {
			src := filepath.Join(s.layers, l, sub)
			if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err := applyLayer(src, dst); err != nil {
				_ = removeTree(tmp)
				return "", fmt.Errorf("apply layer %s: %w", l, err)
			}
		}
		if fi, err := os.Lstat(filepath.Join(s.layers, chain[len(chain)-1], sub)); err == nil {
			copyMeta(dst, fi)
		}
	}
	if err := os.Rename(tmp, filepath.Join(s.layers, id)); err != nil {
		_ = removeTree(tmp)
		return "", err
	}
	return id, nil
}

// applyLayer applies the entries of layer directory src onto the merged directory dst.
func applyLayer(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		sp := filepath.Join(src, e.Name())
		dp := filepath.Join(dst, e.Name())
		fi, err := os.Lstat(sp)
		if err != nil {
			return err
		}
		dfi, derr := os.Lstat(dp)
		exists := derr == nil
		switch {
		case isWhiteout(fi):
			if exists {
				if err := removeTree(dp); err != nil {
					return err
				}
			}
		case fi.IsDir():
			if exists && (!dfi.IsDir() || isOpaque(sp)) {
				if err := removeTree(dp); err != nil {
					return err
				}
				exists = false
			}
			if !exists {
				if err := os.Mkdir(dp, 0o700); err != nil {
					return err
				}
			} else {
				// Writable while we fill it; copyMeta below sets the final mode.
				_ = os.Chmod(dp, 0o700)
			}
			if err := applyLayer(sp, dp); err != nil {
				return err
			}
			copyMeta(dp, fi)
			copyXattrs(sp, dp)
		default:
			if exists {
				if err := removeTree(dp); err != nil {
					return err
				}
			}
			if err := placeEntry(sp, dp, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// placeEntry puts a non-directory entry of a layer at dp.
func placeEntry(sp, dp string, fi fs.FileInfo) error {
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode().IsRegular():
		return os.Link(sp, dp)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(sp)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dp); err != nil {
			return err
		}
	default:
		// FIFOs, sockets, device nodes: recreate the node.
		if st == nil {
			return fmt.Errorf("%s: unsupported entry", sp)
		}
		if err := unix.Mknod(dp, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("recreate %s: %w", sp, err)
		}
	}
	if st != nil {
		_ = os.Lchown(dp, int(st.Uid), int(st.Gid))
		mt := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
		at := time.Unix(st.Atim.Sec, st.Atim.Nsec)
		_ = unix.Lutimes(dp, []unix.Timeval{unix.NsecToTimeval(at.UnixNano()), unix.NsecToTimeval(mt.UnixNano())})
	}
	return nil
}

// copyMeta gives directory dp the owner, permissions and times of fi.
func copyMeta(dp string, fi fs.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = os.Lchown(dp, int(st.Uid), int(st.Gid))
		_ = os.Chmod(dp, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky))
		_ = os.Chtimes(dp, time.Unix(st.Atim.Sec, st.Atim.Nsec), time.Unix(st.Mtim.Sec, st.Mtim.Nsec))
	}
}

// copyXattrs copies a directory's extended attributes except overlayfs's own.
func copyXattrs(sp, dp string) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(sp, buf)
	if err != nil || n == 0 {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(sp, name, val)
		if err != nil {
			continue
		}
		_ = unix.Lsetxattr(dp, name, val[:m], 0)
	}
}
