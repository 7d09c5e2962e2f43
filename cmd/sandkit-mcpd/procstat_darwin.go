package main

import "golang.org/x/sys/unix"

// sZomb is SZOMB of <sys/proc.h>: a process that exited and was not reaped.
const sZomb = 5

// procStat reads a process's state and start time (microseconds since the epoch) with the
// kern.proc.pid sysctl; a pid no process has fails.
func procStat(pid int) (procState, bool) {
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(k.Proc.P_pid) != pid {
		return procState{}, false
	}
	st := procState{state: "R"}
	if k.Proc.P_stat == sZomb {
		st.state = "Z"
	}
	t := k.Proc.P_starttime
	st.startTicks = uint64(t.Sec)*1_000_000 + uint64(t.Usec)
	return st, true
}
