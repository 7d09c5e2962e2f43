//go:build linux

package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/policies"
)

// What the provider knows about a live sandbox on disk, and how it recognises the sandbox's
// processes after a restart.
//
// A detached sandbox writes sandboxes/<id>/meta.json once it runs (and again when its deadline
// moves). A new provider on the same directory reads it to decide whether the sandbox still
// lives — its agent's pid still names a process with the recorded start time — and, if so,
// adopts it: it keeps the sandbox's directory and layers, watches its processes through pidfds
// (which work for processes that are not our children) and serves Reconnect. Sandboxes without
// a meta.json (durable ones, or detached ones whose start did not complete) are leftovers.

// sandboxMeta is the content of sandboxes/<id>/meta.json.
type sandboxMeta struct {
	ID       string    `json:"id"`
	Label    string    `json:"label,omitempty"`
	Chain    []string  `json:"chain"`
	Detached bool      `json:"detached"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// AgentPid is the host pid of the agent, the sandbox's PID 1: the sandbox lives exactly as
	// long as it does. OuterPid is bwrap's monitor process outside the sandbox (the helper,
	// which became bwrap); it exits right after the agent. The start times (clock ticks since
	// boot, /proc/<pid>/stat field 22) tell them from later processes with the same pids.
	AgentPid   int      `json:"agent_pid"`
	AgentStart uint64   `json:"agent_start"`
	OuterPid   int      `json:"outer_pid"`
	OuterStart uint64   `json:"outer_start"`
	Cgroups    []string `json:"cgroups,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	// Policy is the sandbox's egress policy with every literal secret redacted (never a
	// secret): a provider that adopts the sandbox compiles it again, credentials from its
	// environment (see recompileStored).
	Policy *policies.Policy `json:"policy,omitempty"`
	// Agent says which agent binary runs in the sandbox (for diagnostics); Protocol is the
	// protocol it speaks (agent.Protocol of the provider that started it).
	Agent    string `json:"agent"`
	Protocol string `json:"protocol"`
}

const metaFile = "meta.json"

func readMeta(dir string) (sandboxMeta, error) {
	var m sandboxMeta
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
	}
	return m, nil
}

// writeMeta replaces meta.json atomically (temp file + rename). It is not fsynced: a live
// sandbox does not survive a crash of the machine anyway.
func writeMeta(dir string, m sandboxMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, metaFile))
}

// procStat returns a process's state letter and start time (clock ticks since boot) from
// /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces and parentheses; fields resume after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

// procStartTime is the start time of a living process, 0 if it is gone.
func procStartTime(pid int) uint64 {
	st, start, err := procStat(pid)
	if err != nil || st == 'Z' || st == 'X' {
		return 0
	}
	return start
}

// errGone: the process exited, or its pid now names another process.
var errGone = errors.New("process is gone")

// pidWatch follows one process through a pidfd: done is closed when it has exited (also when
// it is a zombie that nobody reaped yet, or the watch was closed).
type pidWatch struct {
	pid  int
	f    *os.File
	done chan struct{}
}

// watchPid opens a pidfd for pid and, when start is not zero, checks that pid still names the
// process that started at that time. Opening first and checking after makes the check race-free:
// the pidfd keeps naming the process it was opened for.
func watchPid(pid int, start uint64) (*pidWatch, error) {
	if pid <= 0 {
		return nil, errGone
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, errGone
		}
		return nil, fmt.Errorf("pidfd_open(%d): %w (Linux >= 5.3 is required)", pid, err)
	}
	if start != 0 && procStartTime(pid) != start {
		unix.Close(fd)
		return nil, errGone
	}
	// Non-blocking, so the runtime's poller waits for it without holding a thread.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := &pidWatch{pid: pid, f: os.NewFile(uintptr(fd), "pidfd"), done: make(chan struct{})}
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.f.Close()
		return nil, err
	}
	go func() {
		defer close(w.done)
		_ = rc.Read(func(fd uintptr) bool {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 0)
			return err != nil && err != unix.EINTR || n > 0
		})
	}()
	return w, nil
}

// kill sends SIGKILL to the process unless it has exited.
func (w *pidWatch) kill() error {
	if w == nil {
		return nil
	}
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0)
	}); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return nil
	}
	return serr
}

// exitedWithin waits up to d for the process to exit.
func (w *pidWatch) exitedWithin(d time.Duration) bool {
	if w == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
		return false
	}
}

func (w *pidWatch) close() {
	if w != nil {
		w.f.Close()
	}
}
