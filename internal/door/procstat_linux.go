package door

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStat reads a process's state and start time (clock ticks since boot) from /proc.
func ProcStat(pid int) (ProcState, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcState{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ProcState{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22, i.e. f[19].
	if len(f) < 20 {
		return ProcState{}, false
	}
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	return ProcState{State: f[0], StartTicks: ticks}, true
}
