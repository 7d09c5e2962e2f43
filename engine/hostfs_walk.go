package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// walkBeneath opens rel beneath dir one element at a time with O_NOFOLLOW, refusing ".." and
// every symlink on the way (stricter than openat2's RESOLVE_BENEATH, which allows links that
// stay inside).
func walkBeneath(dir *os.File, rel string, flags int, mode uint32) (*os.File, error) {
	rel = filepath.Clean(rel)
	if filepath.IsAbs(rel) || (!filepath.IsLocal(rel) && rel != ".") {
		return nil, &os.PathError{Op: "open", Path: rel, Err: errHostEscape}
	}
	parts := strings.Split(rel, string(filepath.Separator))
	cur := int(dir.Fd())
	owned := -1
	defer func() {
		if owned >= 0 {
			unix.Close(owned)
		}
	}()
	for i, p := range parts {
		last := i == len(parts)-1
		fl, m := unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(0)
		if last {
			fl, m = flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode
		}
		fd, err := unix.Openat(cur, p, fl, m)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || (errors.Is(err, unix.ENOTDIR) && !last) {
				if st, serr := lstatName(cur, p); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					err = errHostEscape
				}
			}
			return nil, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		if owned >= 0 {
			unix.Close(owned)
		}
		owned, cur = fd, fd
	}
	f := os.NewFile(uintptr(owned), filepath.Join(dir.Name(), rel))
	owned = -1
	return f, nil
}

func lstatName(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}
