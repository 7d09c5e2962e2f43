//go:build !linux

package door

import (
	"fmt"
	"os"
)

// maxSunPath is the room for a socket path in struct sockaddr_un (104 bytes with the NUL on
// macOS and the BSDs).
const maxSunPath = 103

// UnixAddr returns path when it fits sockaddr_un. There is no /proc/self/fd here to reach a
// longer one through, so a longer path is refused, saying what to do; dir is always nil.
func UnixAddr(path string) (addr string, dir *os.File, err error) {
	if len(path) > maxSunPath {
		return "", nil, fmt.Errorf("socket path %s is %d bytes, more than this system's %d: use a shorter --data-dir (or SANDKIT_DATA_DIR)", path, len(path), maxSunPath)
	}
	return path, nil, nil
}
