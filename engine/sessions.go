package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Sessions: opening, ending and the live sandboxes behind them. The lease rules are in
// session_lease.go, the operations of a live session in session_ops.go, previews in
// session_url.go and the reconciliation after a restart in session_reconcile.go.

// sessionGrace is how much longer a session's sandbox may live than the session itself, so the
// engine's expiry (which records the outcome) comes first.
const sessionGrace = 30 * time.Second

// liveSession is an open session in this process.
type liveSession struct {
	id     string
	ws     string
	sb     sandbox.Sandbox
	mu     sync.Mutex
	timer  *time.Timer
	ending bool               // commit, discard or expiry has begun: no new operations
	fg     map[string]*fgProc // foreground commands that outlived their yield (session_fg.go)
	bg     []string           // background processes started, oldest first (session_url.go)
}

// sessions is the engine's in-memory view of open sessions and preview tokens.
type sessions struct {
	mu       sync.Mutex
	live     map[string]*liveSession // session id → live session
	gone     map[string]time.Time    // connections that have closed (recently), and when
	previews map[string]preview      // token → target and URL
}

func (s *sessions) init() {
	s.live = map[string]*liveSession{}
	s.gone = map[string]time.Time{}
	s.previews = map[string]preview{}
}

func (e *Engine) liveSession(id string) *liveSession {
	e.sess.mu.Lock()
	defer e.sess.mu.Unlock()
	return e.sess.live[id]
}

func validSessionTimeout(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultSessionTimeout, nil
	case d < MinSessionTimeout:
		return 0, errorf(ErrInvalid, "timeout_ms %d is less than the minimum %d (omit it for the default of %d ms)", d.Milliseconds(), MinSessionTimeout.Milliseconds(), DefaultSessionTimeout.Milliseconds()).
			with(ErrorFields{Argument: "timeout_ms", Limit: ptr(MinSessionTimeout.Milliseconds()), Got: ptr(d.Milliseconds())})
	case d > MaxSessionTimeout:
		return 0, errorf(ErrInvalid, "timeout_ms %d is larger than the maximum %d ms (24 h); extend_session can prolong a session later", d.Milliseconds(), MaxSessionTimeout.Milliseconds()).
			with(ErrorFields{Argument: "timeout_ms", Limit: ptr(MaxSessionTimeout.Milliseconds()), Got: ptr(d.Milliseconds())})
	}
	return d, nil
}

// OpenSession opens a live session on a workspace: a sandbox started from head that the caller
// (the holder) drives until it commits, discards, or the session expires. It waits behind
// durable operations already queued on the workspace.
func (e *Engine) OpenSession(ctx context.Context, h Holder, req OpenSessionRequest) (Session, error) {
	if e.isClosed() {
		return Session{}, ErrClosed
	}
	if h.Conn == "" {
		return Session{}, errorf(ErrInvalid, "sessions need a connection identity")
	}
	timeout, err := validSessionTimeout(req.Timeout)
	if err != nil {
		return Session{}, err
	}
	if err := e.checkSpace("open_session"); err != nil {
		return Session{}, err
	}
	if err := e.providerLifetime(timeout+sessionGrace, fmt.Sprintf("a session of timeout_ms %d", timeout.Milliseconds())); err != nil {
		return Session{}, err
	}
	extra, err := validPorts(req.ExposedPorts)
	if err != nil {
		return Session{}, err
	}
	var override *policies.Policy
	if req.Policy != nil {
		p, err := e.checkPolicy(*req.Policy, useSession)
		if err != nil {
			return Session{}, err
		}
		override = &p
	}
	w, err := e.lookup(req.Workspace)
	if err != nil {
		return Session{}, err
	}
	if w.Provider != e.prov.Name() {
		return Session{}, errorf(ErrInvalid, "workspace %s belongs to provider %q, but this server runs provider %q", w.Name, w.Provider, e.prov.Name())
	}
	if err := e.checkLease(ctx, w.ID); err != nil {
		return Session{}, err
	}
	var out store.Session
	var jerr error
	j := e.enqueue(w.ID, func(jctx context.Context) {
		out, jerr = e.openSession(jctx, h, w.ID, timeout, override, extra)
	})
	select {
	case <-j.done:
	case <-ctx.Done():
		if e.withdraw(j) {
			return Session{}, errorf(ErrCancelled, "open_session was cancelled before it started")
		}
		<-j.done // the session opens anyway; if the caller is gone, Disconnect detaches it
	}
	if jerr != nil {
		return Session{}, jerr
	}
	e.sess.mu.Lock()
	_, gone := e.sess.gone[h.Conn]
	e.sess.mu.Unlock()
	if gone {
		e.Disconnect(h.Conn)
	}
	return e.sessionView(out), nil
}

func (e *Engine) openSession(ctx context.Context, h Holder, wsID string, timeout time.Duration, override *policies.Policy, extra []int) (store.Session, error) {
	if ctx.Err() != nil {
		return store.Session{}, ErrClosed
	}
	w, base, err := e.unleasedHead(wsID)
	if err != nil {
		return store.Session{}, err
	}
	pol := w.Policy
	var stored *policies.Policy
	if override != nil {
		pol = *override
		stored = redacted(*override)
	} else if err := e.defaultPolicyUsable(w); err != nil {
		return store.Session{}, err
	}
	ports, err := e.sessionOpenPorts(w, extra)
	if err != nil {
		return store.Session{}, err
	}
	now := time.Now().UTC()
	sb, err := e.prov.Start(ctx, sandbox.StartOptions{
		Snapshot: sandbox.SnapshotRef(base.Snapshot), Policy: pol, Label: w.ID,
		Lifetime: timeout + sessionGrace, Detached: true, Ports: ports,
	})
	if err != nil {
		return store.Session{}, e.provErr(err, "start the session's sandbox")
	}
	s := store.Session{
		ID: newID(sessionPrefix), Workspace: w.ID, State: store.SessionAttached,
		HolderConn: h.Conn, HolderClient: h.Client, SandboxID: sb.ID(), Base: base.ID,
		Policy: describePolicy(pol), Override: stored, Ports: ports, Opened: now, Expires: now.Add(timeout),
	}
	err = e.st.Update(func(tx *store.Tx) error {
		cur, err := tx.Workspace(w.ID)
		if err != nil {
			return err
		}
		if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
			return err
		}
		if cur.Head != base.ID {
			return errorf(ErrBusy, "head moved from %s to %s while the session started; open it again", base.ID, cur.Head)
		}
		if !slices.Equal(cur.ExposedPorts, w.ExposedPorts) { // the session's ports come from w's
			return errorf(ErrBusy, "the workspace's exposed_ports changed from %v to %v while the session started; open it again", w.ExposedPorts, cur.ExposedPorts)
		}
		if err := tx.PutSession(s); err != nil {
			return err
		}
		cur.Session = s.ID
		cur.Updated = now
		_, err = tx.PutWorkspace(cur)
		return err
	})
	if err != nil {
		_ = sb.Stop(context.Background())
		return store.Session{}, err
	}
	e.adopt(s, sb)
	e.log.Info("session opened", "session", s.ID, "workspace", w.ID, "holder", h.Client, "expires", s.Expires)
	return s, nil
}

// sessionOpenPorts are the ports of a session opening on w: the workspace's exposed ports, then
// open_session's extra ones, within the limits of a workspace's and the provider's.
func (e *Engine) sessionOpenPorts(w store.Workspace, extra []int) ([]int, error) {
	if len(extra) == 0 {
		return w.ExposedPorts, nil
	}
	ports, err := validPorts(append(slices.Clone(w.ExposedPorts), extra...))
	if err == nil {
		err = e.providerPorts(ports)
	}
	if err != nil {
		return nil, noted(err, fmt.Sprintf("the session's ports are workspace %s's exposed_ports %v plus open_session's %v", w.Name, w.ExposedPorts, extra))
	}
	return ports, nil
}

// adopt registers a live session and arms its expiry.
func (e *Engine) adopt(s store.Session, sb sandbox.Sandbox) {
	ls := &liveSession{id: s.ID, ws: s.Workspace, sb: sb, bg: slices.Clone(s.Processes)}
	e.sess.mu.Lock()
	e.sess.live[s.ID] = ls
	e.sess.mu.Unlock()
	ls.mu.Lock()
	ls.timer = time.AfterFunc(time.Until(s.Expires), func() { e.expire(s.ID) })
	ls.mu.Unlock()
}

// expire ends a session whose time is up: its changes are dropped, head stays.
func (e *Engine) expire(id string) {
	ls := e.liveSession(id)
	if ls == nil {
		return
	}
	var s store.Session
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		s, err = tx.Session(id)
		return err
	}); err != nil || !s.Open() {
		return
	}
	if d := time.Until(s.Expires); d > 0 { // extended meanwhile
		ls.mu.Lock()
		ls.timer.Reset(d)
		ls.mu.Unlock()
		return
	}
	if !ls.begin() {
		return
	}
	_ = ls.sb.Stop(context.Background())
	e.endSession(id, store.SessionExpired, "the session's time ran out; its uncommitted changes were discarded and the workspace stays at its head")
	e.log.Info("session expired", "session", id)
}

// begin marks a live session as ending; false if it already was.
func (ls *liveSession) begin() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.ending {
		return false
	}
	ls.ending = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	return true
}

// endSession records a session's end (not by commit) and releases its workspace.
func (e *Engine) endSession(id, state, reason string) store.Session {
	now := time.Now().UTC()
	var s store.Session
	err := e.st.Update(func(tx *store.Tx) error {
		var err error
		if s, err = tx.Session(id); err != nil {
			return err
		}
		s.State = state
		s.Ended = now
		s.EndReason = reason
		if err := tx.PutSession(s); err != nil {
			return err
		}
		return releaseTx(tx, s.Workspace, id, now)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.log.Error("could not record the end of a session", "session", id, "err", err)
	}
	e.forget(id)
	return s
}

// releaseTx clears the workspace's session pointer when it still names id.
func releaseTx(tx *store.Tx, wsID, id string, now time.Time) error {
	w, err := tx.Workspace(wsID)
	if err != nil {
		return err
	}
	if w.Session != id {
		return nil
	}
	w.Session = ""
	w.Updated = now
	_, err = tx.PutWorkspace(w)
	return err
}

// forget drops a session from memory with its preview tokens, and stops serving those.
func (e *Engine) forget(id string) {
	e.sess.mu.Lock()
	delete(e.sess.live, id)
	var closed []string
	for tok, t := range e.sess.previews {
		if t.SessionID == id {
			delete(e.sess.previews, tok)
			closed = append(closed, tok)
		}
	}
	e.sess.mu.Unlock()
	for _, tok := range closed {
		e.previews.Close(tok)
	}
}

// sessionErr maps a sandbox error of a live session, noticing a sandbox that died.
func (e *Engine) sessionErr(ls *liveSession, err error) error {
	if errors.Is(err, sandbox.ErrEnded) && ls.begin() {
		e.endSession(ls.id, store.SessionDiscarded, "its sandbox ended unexpectedly")
		return errorf(ErrExpired, "the sandbox of session %s has ended (%v); its uncommitted changes are lost, the workspace stays at its head; open_session starts a new one", ls.id, err)
	}
	if errors.Is(err, sandbox.ErrRefused) {
		return errorf(ErrInvalid, "%v", err)
	}
	return e.provErr(err, "")
}

// GetSession returns a session by id, in any state.
func (e *Engine) GetSession(ctx context.Context, id string) (Session, error) {
	var s store.Session
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		s, err = tx.Session(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, errorf(ErrNotFound, "no session %q", id)
	}
	if err != nil {
		return Session{}, err
	}
	return e.sessionView(s), nil
}

func (e *Engine) sessionView(s store.Session) Session {
	v := Session{Session: s, Holder: s.HolderClient}
	_ = e.st.View(func(tx *store.Tx) error {
		if w, err := tx.Workspace(s.Workspace); err == nil {
			v.WorkspaceName = w.Name
			v.ExposedPorts = sessionPorts(s, w)
		}
		return nil
	})
	if ls := e.liveSession(s.ID); ls != nil && s.Open() {
		v.Warnings = ls.sb.Warnings()
	}
	return v
}

// ExtendSession makes the session expire timeout from now.
func (e *Engine) ExtendSession(ctx context.Context, h Holder, sessionID string, timeout time.Duration) (Session, error) {
	if timeout == 0 {
		return Session{}, badArg("timeout_ms", nil, nil, "timeout_ms is required: the new lifetime from now, %d to %d milliseconds (e.g. 1800000 for 30 minutes)",
			MinSessionTimeout.Milliseconds(), MaxSessionTimeout.Milliseconds())
	}
	timeout, err := validSessionTimeout(timeout)
	if err != nil {
		return Session{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return Session{}, err
	}
	until := time.Now().UTC().Add(timeout)
	err = ls.sb.Extend(ctx, until.Add(sessionGrace))
	if errors.Is(err, sandbox.ErrUnsupported) && e.prov.Capabilities().FixedDeadline && until.Add(sessionGrace).Before(ls.sb.Deadline()) {
		// The sandbox's deadline cannot move earlier; the session's own expiry (below) ends it.
		err = nil
	}
	if err != nil {
		return Session{}, e.sessionErr(ls, err)
	}
	var s store.Session
	if err := e.st.Update(func(tx *store.Tx) error {
		var err error
		if s, err = tx.Session(sessionID); err != nil {
			return err
		}
		s.Expires = until
		return tx.PutSession(s)
	}); err != nil {
		return Session{}, err
	}
	ls.mu.Lock()
	if ls.timer != nil {
		ls.timer.Reset(timeout)
	}
	ls.mu.Unlock()
	return e.sessionView(s), nil
}

// CommitSession snapshots the session as a new commit (kind "session"), moves head to it and ends
// the session. If the snapshot or the record fails, the session is discarded and head stays. A
// session that changed nothing (the provider tells) ends committed without a commit: head stays,
// the session record says Unchanged, and the returned Commit has an empty ID (changes.go).
func (e *Engine) CommitSession(ctx context.Context, h Holder, sessionID, message string) (Commit, error) {
	if len(message) > 1000 {
		return Commit{}, errorf(ErrInvalid, "message is longer than 1000 bytes")
	}
	ls, s, err := e.holding(h, sessionID)
	if err != nil {
		return Commit{}, err
	}
	if !ls.begin() {
		return Commit{}, errorf(ErrExpired, "session %s is already ending", sessionID)
	}
	info, err := save(ctx, ls.sb)
	if err != nil {
		e.endSession(sessionID, store.SessionDiscarded, fmt.Sprintf("commit failed: %v", err))
		return Commit{}, errorf(ErrProvider, "could not save session %s: %v; the session is discarded and the workspace stays at its head", sessionID, err)
	}
	if message == "" {
		message = fmt.Sprintf("session %s", sessionID)
	}
	now := time.Now().UTC()
	c := withChanges(store.Commit{
		ID: newID(commitPrefix), Workspace: s.Workspace, Parent: s.Base, Snapshot: string(info.Ref),
		Kind: CommitSession, Message: message, Created: now,
	}, info.Changes)
	if info.Unchanged {
		c = noCommit(s.Workspace, s.Base, CommitSession, message)
	}
	err = e.record(move{ws: s.Workspace, base: s.Base, info: info, commit: c, release: sessionID,
		check: func(w store.Workspace) error {
			if w.Session != sessionID || w.Head != s.Base {
				return errorf(ErrBusy, "workspace %s no longer matches session %s (head %s, session %q)", w.ID, sessionID, w.Head, w.Session)
			}
			return nil
		},
		also: func(tx *store.Tx) error {
			cur, err := tx.Session(sessionID)
			if err != nil {
				return err
			}
			cur.State = store.SessionCommitted
			cur.CommitID = c.ID
			cur.Unchanged = info.Unchanged
			cur.Ended = now
			return tx.PutSession(cur)
		}})
	if err != nil {
		e.endSession(sessionID, store.SessionDiscarded, fmt.Sprintf("commit could not be recorded: %v", err))
		return Commit{}, fmt.Errorf("could not record the commit of session %s: %w; the session is discarded and the workspace stays at its head", sessionID, err)
	}
	e.forget(sessionID)
	if info.Unchanged {
		e.log.Info("session committed without changes; no commit", "session", sessionID, "head", s.Base)
	} else {
		e.log.Info("session committed", "session", sessionID, "commit", c.ID, "files", c.ChangedFiles)
	}
	return c, nil
}

// DiscardSession ends the session and drops its changes; head stays.
func (e *Engine) DiscardSession(ctx context.Context, h Holder, sessionID string) (Session, error) {
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return Session{}, err
	}
	if !ls.begin() {
		return Session{}, errorf(ErrExpired, "session %s is already ending", sessionID)
	}
	_ = ls.sb.Stop(context.Background())
	s := e.endSession(sessionID, store.SessionDiscarded, "discard_session was called")
	e.log.Info("session discarded", "session", sessionID)
	return e.sessionView(s), nil
}
