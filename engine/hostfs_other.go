//go:build !linux

package engine

import "os"

// openBeneath is the portable walk where openat2 is missing (see walkBeneath).
func openBeneath(dir *os.File, rel string, flags int, mode uint32) (*os.File, error) {
	return walkBeneath(dir, rel, flags, mode)
}
