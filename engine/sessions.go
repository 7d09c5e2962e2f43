package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Sessions (leases). The rules, enforced here:
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

// preview is a token handed out by session_url: what it stands for and the URL it is served at.
type preview struct {
	PreviewTarget
	url string
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

// SessionExec runs a command in the session: in the foreground (waits up to Yield, returns the
// outcome, or a process id when the command is still running then: see session_fg.go) or in the
// background (returns a process id for session_logs and session_kill at once).
func (e *Engine) SessionExec(ctx context.Context, h Holder, req SessionExecRequest) (SessionExecResult, error) {
	if err := CheckCommand(req.Command, req.Args); err != nil {
		return SessionExecResult{}, err
	}
	if err := CheckStdin(len(req.Stdin)); err != nil {
		return SessionExecResult{}, err
	}
	if err := validEnv(req.Env); err != nil {
		return SessionExecResult{}, err
	}
	if err := CheckBackgroundTimeout(req.Background, req.Timeout); err != nil {
		return SessionExecResult{}, err
	}
	timeout, err := CheckTimeout(req.Timeout)
	if err != nil {
		return SessionExecResult{}, err
	}
	yield, err := CheckYield(req.Background, req.Yield)
	if err != nil {
		return SessionExecResult{}, err
	}
	cwd := "."
	if req.Cwd != "" {
		if cwd, err = cleanPath(req.Cwd, true); err != nil {
			return SessionExecResult{}, err
		}
	}
	ls, _, err := e.holding(h, req.SessionID)
	if err != nil {
		return SessionExecResult{}, err
	}
	prog, args := shellArgv(req.Command, req.Args)
	x := sandbox.ExecRequest{Command: prog, Args: args, Cwd: cwd, Env: req.Env, Stdin: req.Stdin}
	if req.Background {
		id, err := ls.sb.StartProcess(ctx, x)
		if err != nil {
			return SessionExecResult{}, e.sessionErr(ls, err)
		}
		e.noteProcess(ls, id)
		return SessionExecResult{ProcessID: id, Running: true}, nil
	}
	x.Timeout = timeout
	return e.execForeground(ctx, ls, req, x, yield)
}

// checkProcessID checks session_logs' and session_kill's process_id.
func checkProcessID(id string) error {
	if strings.TrimSpace(id) == "" {
		return badArg("process_id", nil, nil, "process_id is empty; give the process_id session_exec returned (background=true, or a foreground command still running after its yield)")
	}
	return nil
}

func noProcess(sessionID, processID string) error {
	return errorf(ErrNotFound, "session %s has no process %q; session_exec returns process ids (with background=true, or for a foreground command still running after its yield)", sessionID, processID).
		with(ErrorFields{Session: sessionID, Process: processID})
}

// SessionLogs reports a process of the session (a background one, or a foreground command that
// outlived its yield) and its output from offset since, waiting up to wait (at most MaxWait) for
// new output or the process's end.
func (e *Engine) SessionLogs(ctx context.Context, h Holder, sessionID, processID string, since int64, wait time.Duration) (ProcessStatus, error) {
	if err := CheckOffset("offset", since); err != nil {
		return ProcessStatus{}, err
	}
	if err := CheckWait(wait); err != nil {
		return ProcessStatus{}, err
	}
	if err := checkProcessID(processID); err != nil {
		return ProcessStatus{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return ProcessStatus{}, err
	}
	if hasPrefix(processID, fgPrefix) {
		p := ls.fgProc(processID)
		if p == nil {
			return ProcessStatus{}, noProcess(sessionID, processID)
		}
		return fgLogs(ctx, p, since, wait), nil
	}
	st, err := ls.sb.Process(ctx, processID, since, wait)
	if err != nil {
		if errors.Is(err, sandbox.ErrNotFound) {
			return ProcessStatus{}, noProcess(sessionID, processID)
		}
		return ProcessStatus{}, e.sessionErr(ls, err)
	}
	shellView(&st)
	return st, nil
}

// shellView shows a process that runs a shell command line (sh -lc <line>, see shellArgv) as
// the line, as it was given: the two mean the same.
func shellView(st *ProcessStatus) {
	if st.Command == "sh" && len(st.Args) == 2 && st.Args[0] == "-lc" {
		st.Command, st.Args = st.Args[1], nil
	}
}

// SessionKill sends sig (ValidSignal) to a background process's process group and returns its
// status; a foreground command that outlived its yield is killed instead (session_fg.go).
func (e *Engine) SessionKill(ctx context.Context, h Holder, sessionID, processID string, sig syscall.Signal) (ProcessStatus, error) {
	if err := ValidSignal(sig); err != nil {
		return ProcessStatus{}, err
	}
	if err := checkProcessID(processID); err != nil {
		return ProcessStatus{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return ProcessStatus{}, err
	}
	if hasPrefix(processID, fgPrefix) {
		p := ls.fgProc(processID)
		if p == nil {
			return ProcessStatus{}, noProcess(sessionID, processID)
		}
		return fgKill(ctx, sessionID, p, sig)
	}
	if err := ls.sb.Signal(ctx, processID, sig); err != nil {
		if errors.Is(err, sandbox.ErrNotFound) {
			return ProcessStatus{}, noProcess(sessionID, processID)
		}
		return ProcessStatus{}, e.sessionErr(ls, err)
	}
	// Give the process a moment to act on the signal, so the status says whether it ended.
	st, err := ls.sb.Process(ctx, processID, 0, 0)
	if err == nil && st.Running {
		st, err = ls.sb.Process(ctx, processID, st.Next, 500*time.Millisecond)
	}
	if err != nil {
		return ProcessStatus{}, e.sessionErr(ls, err)
	}
	st.Output = nil // the caller asked for a signal, not for the log: session_logs reads it
	st.Offset = st.Next
	shellView(&st)
	return st, nil
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

// SessionWriteFiles applies a write_files call to the live session: files written, deletes
// removed, no commit (commit_session saves them with the rest). Every path is checked before
// anything changes, so a call with one bad path leaves the session's files as they were.
func (e *Engine) SessionWriteFiles(ctx context.Context, h Holder, sessionID string, req WriteRequest) error {
	ch, err := validWrite(req, e.homeDir())
	if err != nil {
		return err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return err
	}
	if err := ls.sb.ChangeFiles(ctx, ch.FileChanges); err != nil {
		return ch.attribute(e.sessionErr(ls, err), req)
	}
	return nil
}

// SessionReadFile reads a file from the live session (in /workspace or the home).
func (e *Engine) SessionReadFile(ctx context.Context, h Holder, sessionID, path string, offset, max int64) (FileContent, error) {
	p, max, err := readArgs(path, e.homeDir(), offset, max)
	if err != nil {
		return FileContent{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return FileContent{}, err
	}
	c, err := ls.sb.ReadFile(ctx, p.prov, offset, max)
	if err != nil {
		return FileContent{}, readErr(e.sessionErr(ls, err), p, path)
	}
	return FileContent{Path: p.show, Data: c.Data, Size: c.Size, Offset: offset}, nil
}

// SessionListFiles lists a directory of the live session (in /workspace or the home).
func (e *Engine) SessionListFiles(ctx context.Context, h Holder, sessionID, path string, depth int) ([]FileEntry, error) {
	home := e.homeDir()
	p, depth, err := listArgs(path, home, depth)
	if err != nil {
		return nil, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return nil, err
	}
	entries, err := ls.sb.ListFiles(ctx, p.prov, depth)
	if err != nil {
		return nil, listErr(e.sessionErr(ls, err), path)
	}
	return fileEntries(entries, home), nil
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
