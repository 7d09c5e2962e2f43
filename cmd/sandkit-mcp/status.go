package main

import (
	"encoding/json"
	"net/http"
	"os"
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// daemonState is what the daemon knows about its own load: the connections of every door, the
// tool calls in flight, and the engine's pending work as recorded in the store.
type daemonState struct {
	started time.Time
	conns   *connCounter
	calls   *callTracker
	store   *store.Store
	// setups counts the template setups in flight (engine.SetupsInFlight); nil: none.
	setups func() int
}

// engineWork counts what keeps the engine busy without any client: runs queued or running (a
// background run_command), open sessions (their previews and expiry need the daemon), and template
// setups still running for a caller that stopped waiting.
type engineWork struct {
	Workspaces     int `json:"workspaces"`
	ActiveRuns     int `json:"active_runs"`
	OpenSessions   int `json:"open_sessions"`
	SetupsInFlight int `json:"setups_in_flight"`
}

func (d *daemonState) work() (engineWork, error) {
	var w engineWork
	err := d.store.View(func(tx *store.Tx) error {
		ws, err := tx.Workspaces()
		if err != nil {
			return err
		}
		w.Workspaces = len(ws)
		runs, err := tx.Runs(func(r store.Run) bool { return !r.Done() })
		if err != nil {
			return err
		}
		w.ActiveRuns = len(runs)
		ses, err := tx.Sessions(func(s store.Session) bool { return s.Open() })
		if err != nil {
			return err
		}
		w.OpenSessions = len(ses)
		return nil
	})
	if d.setups != nil {
		w.SetupsInFlight = d.setups()
	}
	return w, err
}

// healthReport is the body of GET /healthz.
type healthReport struct {
	Status        string         `json:"status"`
	Version       string         `json:"version"`
	PID           int            `json:"pid"`
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds int64          `json:"uptime_s"`
	Connections   map[string]int `json:"connections"`
	InFlightCalls int64          `json:"in_flight_calls"`
	engineWork
	Error string `json:"error,omitempty"`
}

func (d *daemonState) health() healthReport {
	conns, _ := d.conns.snapshot()
	r := healthReport{
		Status: "ok", Version: version, PID: os.Getpid(),
		StartedAt: d.started.UTC(), UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Connections: conns, InFlightCalls: d.calls.count(),
	}
	w, err := d.work()
	r.engineWork = w
	if err != nil {
		r.Status, r.Error = "degraded", err.Error()
	}
	return r
}

// ServeHTTP answers /healthz: 200 with the report, 503 when the state file cannot be read.
func (d *daemonState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	rep := d.health()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if rep.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rep)
}

// idle reports whether nothing needs the daemon: no connection, no call in flight, no engine
// work; and since when (the later of the last connection leaving and the last call ending).
func (d *daemonState) idle() (bool, time.Time) {
	if _, n := d.conns.snapshot(); n > 0 || d.calls.count() > 0 {
		return false, time.Time{}
	}
	w, err := d.work()
	if err != nil || w.ActiveRuns > 0 || w.OpenSessions > 0 || w.SetupsInFlight > 0 {
		return false, time.Time{}
	}
	since := d.conns.idleSince()
	if t := d.calls.idleSince(); t.After(since) {
		since = t
	}
	return true, since
}
