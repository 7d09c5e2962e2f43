package door

import "golang.org/x/sys/unix"

// sZomb is SZOMB of <sys/proc.h>: a process that exited and was not reaped.
const sZomb = 5

// ProcStat reads a process's state and start time (microseconds since the epoch) with the
// kern.proc.pid sysctl; a pid no process has fails.
func ProcStat(pid int) (ProcState, bool) {
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(k.Proc.P_pid) != pid {
		return ProcState{}, false
	}
	st := ProcState{State: "R"}
	if k.Proc.P_stat == sZomb {
		st.State = "Z"
	}
	t := k.Proc.P_starttime
	st.StartTicks = uint64(t.Sec)*1_000_000 + uint64(t.Usec)
	return st, true
}
