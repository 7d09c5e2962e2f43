package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files of the daemon in the data dir.
const (
	socketFile = "sandkit.sock" // the Unix-socket door
	infoFile   = "daemon.json"  // who serves the data dir, and where (the pidfile)
	lockFile   = "daemon.lock"  // held by a stdio door while it checks for and starts a daemon
	logFile    = "daemon.log"   // stdout and stderr of a daemon a door started
)

func socketPath(dataDir string) string { return filepath.Join(dataDir, socketFile) }

// daemonInfo is the daemon's pidfile, written once it serves and removed when it stops. The
// process start time guards against a reused pid.
type daemonInfo struct {
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"start_ticks"`
	Version    string    `json:"version"`
	Started    time.Time `json:"started_at"`
	DataDir    string    `json:"data_dir"`
	Socket     string    `json:"socket"`
	HTTP       string    `json:"http,omitempty"`
	Preview    string    `json:"preview,omitempty"`
	PublicURL  string    `json:"public_url,omitempty"`
	IdleExit   string    `json:"idle_exit,omitempty"`
}

// writeDaemonInfo replaces the pidfile atomically.
func writeDaemonInfo(dataDir string, info daemonInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, "."+infoFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dataDir, infoFile))
}

// readDaemonInfo reads the pidfile; ok is false when there is none (or it is unreadable).
func readDaemonInfo(dataDir string) (daemonInfo, bool) {
	var info daemonInfo
	b, err := os.ReadFile(filepath.Join(dataDir, infoFile))
	if err != nil || json.Unmarshal(b, &info) != nil || info.PID <= 0 {
		return daemonInfo{}, false
	}
	return info, true
}

// removeDaemonInfo removes the pidfile if it is still this process's.
func removeDaemonInfo(dataDir string) {
	if info, ok := readDaemonInfo(dataDir); ok && info.PID == os.Getpid() {
		os.Remove(filepath.Join(dataDir, infoFile))
	}
}

// alive reports whether the process the pidfile names is still running (not a zombie, and not
// another process that got the same pid).
func (i daemonInfo) alive() bool {
	st, ok := procStat(i.PID)
	return ok && st.state != "Z" && st.state != "X" && (i.StartTicks == 0 || st.startTicks == i.StartTicks)
}

type procState struct {
	state      string
	startTicks uint64
}

// procStat reads a process's state and start time (clock ticks since boot) from /proc.
func procStat(pid int) (procState, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procState{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procState{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22, i.e. f[19].
	if len(f) < 20 {
		return procState{}, false
	}
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	return procState{state: f[0], startTicks: ticks}, true
}

// runningDaemon returns the daemon serving dataDir: its pidfile names a live process, or its
// socket answers (then the pid may be unknown).
func runningDaemon(dataDir string) (daemonInfo, bool) {
	info, ok := readDaemonInfo(dataDir)
	if ok && info.alive() {
		return info, true
	}
	if socketAnswers(socketPath(dataDir)) {
		return daemonInfo{DataDir: dataDir, Socket: socketPath(dataDir)}, true
	}
	return daemonInfo{}, false
}

// socketAnswers reports whether something accepts connections on the socket.
func socketAnswers(path string) bool {
	c, err := dialUnix(path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// describeDaemon says who serves dataDir, for error messages.
func describeDaemon(dataDir string) string {
	if info, ok := runningDaemon(dataDir); ok {
		return "a sandkit-mcp daemon: " + infoSummary(info)
	}
	return "not a daemon that answers on its socket: perhaps `sandkit-mcp doctor`, or a daemon still starting or stopping"
}
