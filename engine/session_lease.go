package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// Sessions (leases). The rules, enforced in these files:
//
//  1. At most one open session per workspace. While it is open, durable operations on that
//     workspace (run_command, write_files, restore, fork, delete) and a second open_session fail
//     at once with an error naming the session, its holder and its expiry, and saying what to do.
//  2. Only the holder — the connection that opened or attached it — may use it. Another
//     connection may attach only once the holder's connection is gone (the session is detached).
//  3. commit_session makes a commit of kind "session" from the session's state and moves head —
//     unless the session changed nothing: then it ends committed without a commit
//     (Session.Unchanged) and head stays; discard_session, expiry and a lost sandbox drop the
//     changes. Head is never lost.
//  4. A session outlives the server: its sandbox is detached; after a restart it is re-adopted
//     (detached, since no connection survives a restart) or, if its sandbox is gone or its time
//     is up, recorded discarded or expired.

// leaseError explains that workspace w is held by session s, and what to do. caller is who asked
// (zero when unknown): the error says whether the holder is the caller itself.
func leaseError(w store.Workspace, s store.Session, caller Holder) *Error {
	left := time.Until(s.Expires).Round(time.Second)
	holder := s.HolderClient
	if holder == "" {
		holder = "an unknown client"
	}
	f := ErrorFields{Workspace: w.Name, Session: s.ID, Holder: holder, State: s.State, ExpiresAt: ptr(s.Expires.UTC())}
	mine := caller.Conn != "" && caller.Conn == s.HolderConn && s.State == store.SessionAttached
	if caller.Conn != "" {
		f.HolderIsYou = ptr(mine)
	}
	var state, how string
	switch {
	case mine:
		state = "held by " + holder + " (you)"
		how = fmt.Sprintf("use the session (session_exec, write_files and read_file with session_id %s) and end it with commit_session or discard_session", s.ID)
	case s.State == store.SessionDetached:
		state = fmt.Sprintf("detached (its holder %s disconnected)", holder)
		how = fmt.Sprintf("attach_session on %q takes it over; or wait until it expires", w.Name)
	default:
		state = "held by " + holder
		how = fmt.Sprintf("if it is yours, use it (session_exec with session_id %s) and end it with commit_session or discard_session; "+
			"if your connection dropped, take it over with attach_session; otherwise wait until it expires", s.ID)
	}
	e := errorf(ErrLeased, "workspace %q is leased by session %s, %s, until %s (in %s); %s",
		w.Name, s.ID, state, s.Expires.UTC().Format(time.RFC3339), left, how).with(f)
	if mine {
		e.then("commit_session", "save the session's changes and release the workspace", map[string]any{"session_id": s.ID})
		e.then("discard_session", "drop the session's changes and release the workspace", map[string]any{"session_id": s.ID})
	} else {
		e.then("attach_session", "take the session over once its holder is gone", map[string]any{"workspace": w.Name})
	}
	return e
}

// checkLeaseTx fails with a lease error when workspace w has an open session.
func checkLeaseTx(tx *store.Tx, w store.Workspace, caller Holder) error {
	if w.Session == "" {
		return nil
	}
	s, err := tx.Session(w.Session)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // a dangling pointer; reconciliation clears it
		}
		return err
	}
	if !s.Open() {
		return nil
	}
	return leaseError(w, s, caller)
}

// checkLease is checkLeaseTx in its own read transaction.
func (e *Engine) checkLease(ctx context.Context, wsID string) error {
	return e.st.View(func(tx *store.Tx) error {
		w, err := tx.Workspace(wsID)
		if err != nil {
			return err
		}
		return checkLeaseTx(tx, w, CallerFrom(ctx))
	})
}

// holding checks that h may act on session id now and returns it.
func (e *Engine) holding(h Holder, id string) (*liveSession, store.Session, error) {
	if !hasPrefix(id, sessionPrefix) {
		return nil, store.Session{}, errorf(ErrInvalid, "%q is not a session id (session ids look like ses_…); open_session returns one", id)
	}
	var s store.Session
	var w store.Workspace
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		if s, err = tx.Session(id); err != nil {
			return err
		}
		w, err = tx.Workspace(s.Workspace)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, s, errorf(ErrNotFound, "no session %q (it may belong to a deleted workspace)", id)
	}
	if err != nil {
		return nil, s, err
	}
	if !s.Open() {
		return nil, s, endedError(s)
	}
	ls := e.liveSession(id)
	if ls == nil {
		return nil, s, errorf(ErrProvider, "session %s is recorded open but its sandbox is not known to this server; it will be reconciled at the next start", id)
	}
	if s.HolderConn != h.Conn {
		if s.State == store.SessionDetached {
			return nil, s, errorf(ErrNotHolder, "session %s is detached (its holder's connection closed); call attach_session on workspace %q to take it over", id, w.Name).
				with(ErrorFields{Workspace: w.Name, Session: id, Holder: s.HolderClient, HolderIsYou: ptr(false), State: s.State, ExpiresAt: ptr(s.Expires.UTC())}).
				then("attach_session", "take the session over", map[string]any{"workspace": w.Name})
		}
		return nil, s, errorf(ErrNotHolder, "session %s on workspace %q is held by %s, another connection; only the holder may use it (attach_session works once that connection is gone, or wait until %s)", id, w.Name, s.HolderClient, s.Expires.UTC().Format(time.RFC3339)).
			with(ErrorFields{Workspace: w.Name, Session: id, Holder: s.HolderClient, HolderIsYou: ptr(false), State: s.State, ExpiresAt: ptr(s.Expires.UTC())})
	}
	if time.Now().After(s.Expires) {
		e.expire(id)
		return nil, s, errorf(ErrExpired, "session %s expired at %s; its changes were discarded; open_session starts a new one", id, s.Expires.UTC().Format(time.RFC3339)).
			with(ErrorFields{Workspace: w.Name, Session: id, ExpiresAt: ptr(s.Expires.UTC())}).
			then("open_session", "start a new session from the workspace's head", map[string]any{"workspace": w.Name})
	}
	ls.mu.Lock()
	ending := ls.ending
	ls.mu.Unlock()
	if ending {
		return nil, s, errorf(ErrExpired, "session %s is ending (being committed, discarded or expired)", id)
	}
	return ls, s, nil
}

func endedError(s store.Session) error {
	switch s.State {
	case store.SessionCommitted:
		if s.Unchanged {
			return errorf(ErrExpired, "session %s was committed without changes (no commit was made) and is over; open_session starts a new one", s.ID)
		}
		return errorf(ErrExpired, "session %s was committed (commit %s) and is over; open_session starts a new one", s.ID, s.CommitID)
	case store.SessionExpired:
		return errorf(ErrExpired, "session %s expired at %s and its changes were discarded; open_session starts a new one", s.ID, s.Expires.UTC().Format(time.RFC3339))
	default:
		return errorf(ErrExpired, "session %s was discarded (%s); open_session starts a new one", s.ID, s.EndReason)
	}
}

// AttachSession makes h the holder of the workspace's open session once the previous holder's
// connection is gone (or when h already holds it).
func (e *Engine) AttachSession(ctx context.Context, h Holder, workspace string) (Session, error) {
	if h.Conn == "" {
		return Session{}, errorf(ErrInvalid, "sessions need a connection identity")
	}
	var out store.Session
	err := e.st.Update(func(tx *store.Tx) error {
		w, err := lookupTx(tx, workspace)
		if err != nil {
			return err
		}
		if w.Session == "" {
			return errorf(ErrNotFound, "workspace %q has no open session; open_session starts one", w.Name).
				with(ErrorFields{Workspace: w.Name}).then("open_session", "start a session", map[string]any{"workspace": w.Name})
		}
		s, err := tx.Session(w.Session)
		if err != nil {
			return err
		}
		if !s.Open() {
			return errorf(ErrNotFound, "workspace %q has no open session; open_session starts one", w.Name)
		}
		e.sess.mu.Lock()
		_, holderGone := e.sess.gone[s.HolderConn]
		e.sess.mu.Unlock()
		switch {
		case s.HolderConn == h.Conn && s.State == store.SessionAttached:
			out = s
			return nil
		case s.State == store.SessionAttached && !holderGone:
			return errorf(ErrLeased, "session %s on workspace %q is held by %s, whose connection is still open; attach works only once that connection is gone (or the session expires at %s)", s.ID, w.Name, s.HolderClient, s.Expires.UTC().Format(time.RFC3339)).
				with(ErrorFields{Workspace: w.Name, Session: s.ID, Holder: s.HolderClient, HolderIsYou: ptr(false), State: s.State, ExpiresAt: ptr(s.Expires.UTC())})
		}
		s.State = store.SessionAttached
		s.HolderConn = h.Conn
		s.HolderClient = h.Client
		out = s
		return tx.PutSession(s)
	})
	if err != nil {
		return Session{}, err
	}
	e.log.Info("session attached", "session", out.ID, "holder", h.Client)
	return e.sessionView(out), nil
}

// Disconnect tells the engine that a connection is gone: the sessions it holds become detached
// (their sandboxes keep running until they expire) and another connection may attach them.
func (e *Engine) Disconnect(conn string) {
	if conn == "" {
		return
	}
	now := time.Now()
	e.sess.mu.Lock()
	e.sess.gone[conn] = now
	for c, t := range e.sess.gone { // remember closed connections only as long as a call may still be in flight
		if now.Sub(t) > goneMemory {
			delete(e.sess.gone, c)
		}
	}
	var ids []string
	for id := range e.sess.live {
		ids = append(ids, id)
	}
	e.sess.mu.Unlock()
	for _, id := range ids {
		err := e.st.Update(func(tx *store.Tx) error {
			s, err := tx.Session(id)
			if err != nil || s.HolderConn != conn || s.State != store.SessionAttached {
				return err
			}
			s.State = store.SessionDetached
			return tx.PutSession(s)
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("could not detach a session", "session", id, "err", err)
		}
	}
}

// goneMemory is how long the engine remembers a closed connection, to detach a session whose
// open_session was still running when its caller went away.
const goneMemory = time.Hour

// Connect tells the engine that a connection (re)appeared; an id that was closed before and is
// reused (stdio's fixed id, say) counts as live again.
func (e *Engine) Connect(conn string) {
	e.sess.mu.Lock()
	delete(e.sess.gone, conn)
	e.sess.mu.Unlock()
}
