package door

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Files of the daemon in the data dir.
const (
	SocketFile = "sandkit.sock" // the Unix-socket door
	InfoFile   = "daemon.json"  // who serves the data dir, and where (the pidfile)
	LockFile   = "daemon.lock"  // held by a stdio door while it checks for and starts a daemon
	LogFile    = "daemon.log"   // stdout and stderr of a daemon a door started
)

// SocketPath is the daemon's socket in dataDir.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, SocketFile) }

// Info is the daemon's pidfile, written once it serves and removed when it stops. The
// process start time guards against a reused pid.
type Info struct {
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

// WriteInfo replaces the pidfile atomically.
func WriteInfo(dataDir string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, "."+InfoFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dataDir, InfoFile))
}

// ReadInfo reads the pidfile; ok is false when there is none (or it is unreadable).
func ReadInfo(dataDir string) (Info, bool) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if err != nil || json.Unmarshal(b, &info) != nil || info.PID <= 0 {
		return Info{}, false
	}
	return info, true
}

// RemoveInfo removes the pidfile if it is still this process's.
func RemoveInfo(dataDir string) {
	if info, ok := ReadInfo(dataDir); ok && info.PID == os.Getpid() {
		os.Remove(filepath.Join(dataDir, InfoFile))
	}
}

// Alive reports whether the process the pidfile names is still running (not a zombie, and not
// another process that got the same pid).
func (i Info) Alive() bool {
	st, ok := ProcStat(i.PID)
	return ok && st.State != "Z" && st.State != "X" && (i.StartTicks == 0 || st.StartTicks == i.StartTicks)
}

// ProcState is what ProcStat (procstat_*.go) tells of a process.
type ProcState struct {
	State string // "Z" or "X": a zombie or dead
	// StartTicks is the process's start time as the system counts it (Linux: clock ticks
	// since boot), compared with the pidfile's to tell a reused pid; 0 when unknown.
	StartTicks uint64
}

// Running returns the daemon serving dataDir: its pidfile names a live process, or its
// socket answers (then the pid may be unknown).
func Running(dataDir string) (Info, bool) {
	info, ok := ReadInfo(dataDir)
	if ok && info.Alive() {
		return info, true
	}
	if SocketAnswers(SocketPath(dataDir)) {
		return Info{DataDir: dataDir, Socket: SocketPath(dataDir)}, true
	}
	return Info{}, false
}

// SocketAnswers reports whether something accepts connections on the socket.
func SocketAnswers(path string) bool {
	c, err := DialUnix(path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
