package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// errNotHere is nil: Linux is where sandboxes are.
var errNotHere error

// protectSelf makes the agent hard to reach from the commands it runs.
func protectSelf() {
	// Sandboxed processes run as our user: without this they could ptrace us or take our
	// descriptors (pidfd_getfd). Commands we start are dumpable again after their execve.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if os.Getpid() != 1 {
		// Not the namespace's init (started without --as-pid-1): orphans still come to us.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
}

// closeInherited marks every descriptor from 3 up close-on-exec.
func closeInherited() {
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}
