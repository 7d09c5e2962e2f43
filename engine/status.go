package engine

import "github.com/sandkit/sandkit-mcp/store"

// Status is what keeps the engine busy without any client, for the daemon's idle exit and its
// health report.
type Status struct {
	// Workspaces counts the workspaces in the store.
	Workspaces int `json:"workspaces"`
	// ActiveRuns are runs queued or running in this process (a background run_command).
	ActiveRuns int `json:"active_runs"`
	// OpenSessions are sessions whose sandbox this process keeps (their previews and expiry
	// need it).
	OpenSessions int `json:"open_sessions"`
	// SetupsInFlight are template setups still running, also for a caller that stopped waiting.
	SetupsInFlight int `json:"setups_in_flight"`
}

// Status reports the engine's load; it fails only when the store cannot be read.
func (e *Engine) Status() (Status, error) {
	var s Status
	e.mu.Lock()
	s.ActiveRuns = len(e.active)
	e.mu.Unlock()
	e.sess.mu.Lock()
	s.OpenSessions = len(e.sess.live)
	e.sess.mu.Unlock()
	s.SetupsInFlight = e.SetupsInFlight()
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		s.Workspaces, err = tx.CountWorkspaces()
		return err
	})
	return s, err
}
