//go:build !linux

package engine

import (
	"os"

	"golang.org/x/sys/unix"
)

// openBeneath is the portable walk where openat2 is missing (see walkBeneath).
func openBeneath(dir *os.File, rel string, flags int, mode uint32) (*os.File, error) {
	return walkBeneath(dir, rel, flags, mode)
}

// renameNoReplace is renameat2(RENAME_NOREPLACE) on Linux; elsewhere it answers ENOSYS, and
// callers link the new name and unlink the old one instead (which never replaces either).
func renameNoReplace(int, string, string) error { return unix.ENOSYS }
