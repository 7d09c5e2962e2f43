package engine

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openBeneath opens rel beneath dir with openat2(RESOLVE_BENEATH): the kernel refuses ".." above
// dir, absolute paths and symlinks that lead out of it (errHostEscape). Kernels without openat2
// (before 5.6) get the portable walk, which refuses every symlink on the way.
func openBeneath(dir *os.File, rel string, flags int, mode uint32) (*os.File, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(int(dir.Fd()), rel, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), rel)), nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOSYS):
			return walkBeneath(dir, rel, flags, mode)
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP) && flags&unix.O_NOFOLLOW == 0:
			return nil, &os.PathError{Op: "open", Path: rel, Err: errHostEscape}
		}
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
}

// renameNoReplace renames from to to within the directory dirfd, failing with EEXIST when to
// exists (renameat2 RENAME_NOREPLACE; EINVAL or ENOSYS where the file system or kernel lacks it).
func renameNoReplace(dirfd int, from, to string) error {
	return unix.Renameat2(dirfd, from, dirfd, to, unix.RENAME_NOREPLACE)
}
