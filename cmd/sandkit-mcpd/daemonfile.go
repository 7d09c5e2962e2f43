package main

import (
	"encoding/json"
	"os"
	"path/filepath"
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

// procState is what procStat (procstat_*.go) tells of a process.
type procState struct {
	state string // "Z" or "X": a zombie or dead
	// startTicks is the process's start time as the system counts it (Linux: clock ticks
	// since boot), compared with the pidfile's to tell a reused pid; 0 when unknown.
	startTicks uint64
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
