//go:build !linux && !darwin

package door

import (
	"errors"
	"syscall"
)

// ProcStat can only tell whether a process with this pid exists (signal 0); its start time is
// unknown, so a reused pid is not told apart.
func ProcStat(pid int) (ProcState, bool) {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return ProcState{}, false
	}
	return ProcState{State: "R"}, true
}
