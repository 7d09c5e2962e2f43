package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// reconcileSessions re-adopts the sessions open in the store after a restart: detached when their
// sandbox is still alive and their time is not up; otherwise recorded expired or discarded with
// head kept. Live sandboxes no session references are stopped.
func (e *Engine) reconcileSessions(ctx context.Context) error {
	var open []store.Session
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		open, err = tx.Sessions(func(s store.Session) bool { return s.Open() })
		return err
	}); err != nil {
		return fmt.Errorf("engine: reconcile sessions: %w", err)
	}
	keep := map[string]bool{}
	for _, s := range open {
		sb, err := e.prov.Reconnect(ctx, s.SandboxID)
		switch {
		case err != nil:
			e.endSession(s.ID, store.SessionDiscarded, fmt.Sprintf("its sandbox was lost while the server was down (%v); uncommitted changes are gone, head kept", err))
			e.log.Warn("session discarded: sandbox lost", "session", s.ID, "err", err)
		case time.Now().After(s.Expires):
			_ = sb.Stop(ctx)
			e.endSession(s.ID, store.SessionExpired, "the session's time ran out while the server was down; its uncommitted changes were discarded")
		default:
			keep[s.SandboxID] = true
			if s.State == store.SessionAttached {
				s.State = store.SessionDetached
				_ = e.st.Update(func(tx *store.Tx) error { return tx.PutSession(s) })
			}
			e.adopt(s, sb)
			e.log.Info("session re-adopted", "session", s.ID, "expires", s.Expires)
		}
	}
	live, err := e.prov.Sandboxes(ctx)
	if errors.Is(err, sandbox.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: list live sandboxes: %w", err)
	}
	for _, id := range live {
		if keep[id] {
			continue
		}
		if sb, err := e.prov.Reconnect(ctx, id); err == nil {
			_ = sb.Stop(ctx)
			e.log.Info("stopped an orphan live sandbox", "sandbox", id)
		}
	}
	return nil
}
