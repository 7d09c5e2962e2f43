package engine

import (
	"os"

	"golang.org/x/sys/unix"
)

// cloneFile makes out, an empty file, share in's extents (FICLONE) and returns in's size; false
// where the file system cannot (another file system, or one without reflinks).
func cloneFile(out, in *os.File) (int64, bool) {
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		return 0, false
	}
	fi, err := out.Stat()
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}
