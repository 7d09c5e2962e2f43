package engine

import (
	"context"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// The one durable path. Every change to a workspace's state made in a sandbox — run_command
// (runs.go execute), write_files and edit_file (files.go durably), commit_session (sessions.go)
// — ends the same way: save the sandbox (a snapshot), then record the outcome in one
// transaction that moves head from the head the job started from. The template setup
// (templates.go) saves the same way and records a template snapshot instead of a commit.
//
// The only condition on the head move is that head is still the one the job started from: a
// policy, name, label or port change made meanwhile does not abort the commit.

// snapshotTimeout bounds the snapshot that ends a durable change.
const snapshotTimeout = 5 * time.Minute

// save ends sb with a snapshot of its durable state. It is detached from ctx's cancellation:
// the change has been made, and a cancel arriving now must not lose it halfway (it only ends
// the caller's wait). On failure sb is stopped; its changes are gone and head stays.
func save(ctx context.Context, sb sandbox.Sandbox) (sandbox.SnapshotInfo, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snapshotTimeout)
	defer cancel()
	info, err := sb.Snapshot(sctx)
	if err != nil {
		_ = sb.Stop(context.Background())
	}
	return info, err
}

// move is the record of one saved change.
type move struct {
	// ws is the workspace and base the head the job started from.
	ws, base string
	// info is what save returned; commit is recorded and made head unless info.Unchanged.
	info   sandbox.SnapshotInfo
	commit store.Commit
	// check, when set, runs first on the workspace as stored now (a session's own conditions).
	check func(w store.Workspace) error
	// release, when set, is a session id whose lease ends with the change.
	release string
	// also, when set, records the operation's own outcome in the same transaction (the run).
	also func(tx *store.Tx) error
}

// record applies m in one transaction (a group commit: records of runs ending at the same time
// share one fsync, store.Group). When it fails, the new snapshot (which nothing references) is
// deleted and head is where it was.
func (e *Engine) record(m move) error {
	err := e.st.Group(func(tx *store.Tx) error {
		w, err := tx.Workspace(m.ws)
		if err != nil {
			return err
		}
		if m.check != nil {
			if err := m.check(w); err != nil {
				return err
			}
		}
		put := false
		if !m.info.Unchanged {
			if w.Head != m.base {
				return errorf(ErrBusy, "head moved from %s to %s while the change was made; nothing was committed", m.base, w.Head)
			}
			if err := tx.PutCommit(m.commit); err != nil {
				return err
			}
			w.Head, w.Updated, put = m.commit.ID, m.commit.Created, true
		}
		if m.release != "" && w.Session == m.release {
			w.Session, w.Updated, put = "", time.Now().UTC(), true
		}
		if put {
			if _, err := tx.PutWorkspace(w); err != nil {
				return err
			}
		}
		if m.also != nil {
			return m.also(tx)
		}
		return nil
	})
	if err != nil && !m.info.Unchanged && m.info.Ref != "" {
		_ = e.prov.DeleteSnapshot(context.Background(), m.info.Ref)
	}
	if err == nil && !m.info.Unchanged {
		e.headMoved(m.ws)
		e.retainAfterCommit(m.ws)
	}
	return err
}
