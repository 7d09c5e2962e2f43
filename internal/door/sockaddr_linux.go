package door

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a socket path in struct sockaddr_un (108 bytes with the NUL).
const maxSunPath = 107

// UnixAddr returns an address for the socket at path that fits sockaddr_un. A path too long is
// reached through /proc/self/fd/N/<name>, N being an open descriptor of its directory; the caller
// must keep dir open for as long as the address is used (a listener: its whole life).
func UnixAddr(path string) (addr string, dir *os.File, err error) {
	if len(path) <= maxSunPath {
		return path, nil, nil
	}
	dir, err = os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	addr = fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(addr) > maxSunPath {
		dir.Close()
		return "", nil, fmt.Errorf("socket name %q is too long", filepath.Base(path))
	}
	return addr, dir, nil
}
