package door

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal (logs are coloured there).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
