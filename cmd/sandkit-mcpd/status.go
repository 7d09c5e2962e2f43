package main

import (
	"encoding/json"
	"net/http"
	"os"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
)

// daemonState is what the daemon knows about its own load: the connections of every door, the
// tool calls in flight, and the engine's pending work (engine.Status).
type daemonState struct {
	started time.Time
	conns   *connCounter
	calls   *callTracker
	// status is the engine's (*engine.Engine).Status.
	status func() (engine.Status, error)
}

// engineStatus is engine.Status embedded in healthReport (whose own Status is a word).
type engineStatus = engine.Status

// healthReport is the body of GET /healthz.
type healthReport struct {
	Status        string         `json:"status"`
	Version       string         `json:"version"`
	PID           int            `json:"pid"`
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds int64          `json:"uptime_s"`
	Connections   map[string]int `json:"connections"`
	InFlightCalls int64          `json:"in_flight_calls"`
	engineStatus
	Error string `json:"error,omitempty"`
}

func (d *daemonState) health() healthReport {
	conns, _ := d.conns.snapshot()
	r := healthReport{
		Status: "ok", Version: version, PID: os.Getpid(),
		StartedAt: d.started.UTC(), UptimeSeconds: int64(time.Since(d.started).Seconds()),
		Connections: conns, InFlightCalls: d.calls.count(),
	}
	w, err := d.status()
	r.engineStatus = w
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
	w, err := d.status()
	if err != nil || w.ActiveRuns > 0 || w.OpenSessions > 0 || w.SetupsInFlight > 0 {
		return false, time.Time{}
	}
	since := d.conns.idleSince()
	if t := d.calls.idleSince(); t.After(since) {
		since = t
	}
	return true, since
}
