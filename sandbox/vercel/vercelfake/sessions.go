package vercelfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The session endpoints (§5.2) and the session state machine (§10.1):
//
//	pending ─► running ─► stopping ─► [snapshotting] ─► stopped
//	                   └► snapshotting ───────────────► stopped   (POST snapshot)
//
// A session ends through POST stop, its timeout, the sandbox's DELETE, or a snapshot. Stopping
// a persistent sandbox's session (stop or timeout) takes an automatic snapshot first.

// goLocked runs f in a goroutine Close waits for; it does nothing once the server is closed.
// Call with s.mu held.
func (s *Server) goLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// stateError is the answer to a session operation on a session that is not running.
func stateError(ss *session) error {
	switch ss.status {
	case statusRunning:
		return nil
	case statusStopping:
		return newError(http.StatusUnprocessableEntity, codeStopping, "The Sandbox is stopping and cannot accept this operation.")
	case statusSnapshotting:
		return newError(http.StatusUnprocessableEntity, codeSnapshotting, "The Sandbox is creating a snapshot and will be stopped.")
	case statusPending:
		return newError(http.StatusUnprocessableEntity, "sandbox_pending", "The Sandbox is still starting.")
	}
	return newError(http.StatusGone, codeStopped, "The Sandbox has stopped execution and is no longer available.")
}

// sessionFor looks up the {sid} of r, in any state.
func (s *Server) sessionFor(r *http.Request) (*session, error) {
	id := r.PathValue("sid")
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil {
		return nil, notFound("Sandbox session %s not found.", id)
	}
	return ss, nil
}

// liveSession looks up the {sid} of r and requires it to be running (else 410 or 422).
func (s *Server) liveSession(r *http.Request) (*session, error) {
	ss, err := s.sessionFor(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := stateError(ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// backendError maps an error of the backend sandbox: one that ended (the session stopped
// meanwhile) is the session's state error; anything else is a 500.
func (s *Server) backendError(ss *session, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	s.mu.Lock()
	serr := stateError(ss)
	s.mu.Unlock()
	if serr != nil {
		return serr
	}
	if errors.Is(err, sandbox.ErrEnded) {
		return newError(http.StatusGone, codeStopped, "The Sandbox has stopped execution and is no longer available.")
	}
	return internalError(err)
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	ss, err := s.sessionFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	out := map[string]any{"session": ss.view(), "routes": ss.routes()}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if p := q.Get("project"); p != "" {
		if err := s.checkProject("project", p); err != nil {
			writeError(w, err)
			return
		}
	}
	desc, err := sortOrder(q)
	if err != nil {
		writeError(w, err)
		return
	}
	name := q.Get("name")
	s.mu.Lock()
	var list []*session
	for _, ss := range s.sessions {
		if name == "" || ss.sb.name == name {
			list = append(list, ss)
		}
	}
	sortSessions(list, desc)
	views := make([]wireSession, len(list))
	for i, ss := range list {
		views[i] = ss.view()
	}
	s.mu.Unlock()
	page, pag, err := paginate(views, q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": page, "pagination": pag})
}

func sortSessions(list []*session, desc bool) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.createdAt != b.createdAt {
			return (a.createdAt < b.createdAt) != desc
		}
		return (a.id < b.id) != desc
	})
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	ss, err := s.sessionFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	sn, err := s.endSession(r.Context(), ss, endStop, nil, false)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	out := map[string]any{"session": ss.view(), "sandbox": ss.sb.view()}
	if sn != nil {
		out["snapshot"] = sn.view()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleExtend(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		Duration *int64 `json:"duration"`
	}
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	if req.Duration == nil {
		writeError(w, badRequest("should have required property `duration`"))
		return
	}
	if *req.Duration < 1000 {
		writeError(w, badRequest("`duration` should be >= 1000"))
		return
	}
	s.mu.Lock()
	total := ss.timeout + *req.Duration
	maxMs := s.opts.MaxTimeout.Milliseconds()
	if total > maxMs {
		s.mu.Unlock()
		writeError(w, newError(http.StatusBadRequest, codeTimeoutInvalid,
			"The sandbox timeout cannot be extended to %d ms: the maximum duration of a sandbox on this plan is %d ms (%s), and %d ms are already allowed.",
			total, maxMs, s.opts.MaxTimeout, ss.timeout))
		return
	}
	base := ss.startedAt
	backend := ss.backend
	s.mu.Unlock()
	until := time.UnixMilli(base + total).Add(backendGrace)
	if err := backend.Extend(context.WithoutCancel(r.Context()), until); err != nil {
		writeError(w, s.backendError(ss, err))
		return
	}
	s.mu.Lock()
	if err := stateError(ss); err != nil {
		s.mu.Unlock()
		writeError(w, err)
		return
	}
	ss.timeout += *req.Duration
	ss.updatedAt = ms(time.Now())
	s.armTimerLocked(ss)
	out := map[string]any{"session": ss.view()}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleNetworkPolicy(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var raw []byte
	if err := decodeBody(r, &rawJSON{&raw}, false); err != nil {
		writeError(w, err)
		return
	}
	if err := s.refusePolicyShape(raw, ""); err != nil {
		writeError(w, err)
		return
	}
	p, err := parsePolicy(raw, "")
	if err != nil {
		writeError(w, err)
		return
	}
	pol, err := p.backendPolicy()
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	backend := ss.backend
	s.mu.Unlock()
	if err := backend.SetPolicy(context.WithoutCancel(r.Context()), pol); err != nil {
		if errors.Is(err, sandbox.ErrInvalid) {
			writeError(w, badRequest("the network policy cannot be applied: %v", err))
			return
		}
		writeError(w, s.backendError(ss, err))
		return
	}
	s.mu.Lock()
	ss.policy = p
	ss.updatedAt = ms(time.Now())
	out := map[string]any{"session": ss.view()}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// rawJSON lets decodeBody hand over the raw body (after its empty-body handling).
type rawJSON struct{ dst *[]byte }

func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r.dst = append([]byte(nil), b...)
	return nil
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		Expiration *int64 `json:"expiration"`
	}
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	if req.Expiration != nil {
		if err := validateSnapshotExpiration(*req.Expiration, "expiration"); err != nil {
			writeError(w, err)
			return
		}
	}
	v3 := len(r.URL.Path) > 3 && r.URL.Path[:4] == "/v3/"
	sn, err := s.endSession(r.Context(), ss, endSnapshot, req.Expiration, v3)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	out := map[string]any{"snapshot": sn.view(), "session": ss.view()}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// endHow says why a session ends.
type endHow int

const (
	endStop     endHow = iota // POST stop
	endTimeout                // its deadline passed
	endDelete                 // the named sandbox was deleted
	endSnapshot               // POST snapshot
)

// endSession ends a running session (see the state machine above) and returns the snapshot it
// took, if any. Ending a session that is already stopping waits until it has stopped (a
// snapshot request then fails with 422); ending a stopped one does nothing (a snapshot request
// fails with 410). It does not depend on ctx's cancellation: a client that goes away does not
// leave a half-stopped session.
func (s *Server) endSession(ctx context.Context, ss *session, how endHow, expiration *int64, v3 bool) (*snapshot, error) {
	s.mu.Lock()
	switch ss.status {
	case statusRunning:
	case statusPending:
		err := stateError(ss)
		s.mu.Unlock()
		return nil, err
	case statusStopping, statusSnapshotting:
		if how == endSnapshot || how == endTimeout {
			err := stateError(ss)
			s.mu.Unlock()
			return nil, err
		}
		done := ss.done
		s.mu.Unlock()
		select {
		case <-done:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed.")
		}
	default:
		var err error
		if how == endSnapshot {
			err = stateError(ss)
		}
		s.mu.Unlock()
		return nil, err
	}
	now := ms(time.Now())
	sb := ss.sb
	takeSnapshot := how == endSnapshot || (sb.persistent && how != endDelete)
	ss.requestedStopAt = now
	ss.status = statusStopping
	if how == endSnapshot {
		ss.status = statusSnapshotting
		ss.snapshottedAt = now
	}
	ss.updatedAt = now
	if sb.current == ss {
		sb.statusUpdatedAt = now
	}
	if ss.timer != nil {
		ss.timer.Stop()
	}
	listeners := ss.listeners
	ss.listeners = nil
	backend := ss.backend
	s.mu.Unlock()

	for _, l := range listeners {
		l.close()
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var info sandbox.SnapshotInfo
	var err error
	if takeSnapshot {
		if how != endSnapshot {
			s.mu.Lock()
			ss.status = statusSnapshotting
			ss.snapshottedAt = ms(time.Now())
			ss.updatedAt = ss.snapshottedAt
			s.mu.Unlock()
		}
		if d := s.opts.SnapshotDelay; d > 0 {
			t := time.NewTimer(d) // the artificial duration of the snapshot itself
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
			}
		}
		info, err = backend.Snapshot(bctx)
		if err != nil {
			_ = backend.Stop(bctx)
		}
	} else if err = backend.Stop(bctx); err != nil {
		s.log.Warn("vercelfake: backend stop failed", "session", ss.id, "err", err)
		err = nil
	}

	s.mu.Lock()
	end := time.Now()
	if err != nil {
		s.log.Error("vercelfake: snapshot failed", "session", ss.id, "err", err)
		ss.status = statusFailed
		s.finishSessionLocked(ss, end)
		s.mu.Unlock()
		return nil, internalError(fmt.Errorf("snapshot of session %s failed: %w", ss.id, err))
	}
	s.finishSessionLocked(ss, end)
	if !takeSnapshot {
		s.mu.Unlock()
		return nil, nil
	}
	if info.Unchanged {
		// The backend made no snapshot: the VM's disk is that of the one the session started
		// from, and Vercel makes a snapshot all the same (deleteBackendSnapshots keeps a backend
		// snapshot while another snapshot shares it).
		info.Ref = ss.sourceRef
	}
	sn := &snapshot{
		id: newSnapshotID(), sourceSessionID: ss.id, sandboxName: sb.name, projectID: sb.projectID,
		region: ss.region, ref: info.Ref, status: snapCreated, sizeBytes: info.ChangedBytes,
		createdAt: ms(end), updatedAt: ms(end), creationMethod: "manual", parentID: ss.sourceSnapshotID,
	}
	if how != endSnapshot {
		sn.creationMethod = "automatic"
	}
	if parent := s.snapshots[ss.sourceSnapshotID]; parent != nil {
		sn.sizeBytes += parent.sizeBytes
	}
	switch {
	case expiration != nil:
		sn.expiration = *expiration
	case sb.snapExp != nil:
		sn.expiration = *sb.snapExp
	case v3:
		sn.expiration = defaultSnapshotTTL3.Milliseconds()
	default:
		sn.expiration = defaultSnapshotTTL.Milliseconds()
	}
	s.snapshots[sn.id] = sn
	sb.currentSnapshotID = sn.id
	sb.updatedAt = ms(end)
	drop := s.applyRetentionLocked(sb)
	s.mu.Unlock()
	s.deleteBackendSnapshots(drop)
	s.log.Info("vercelfake: snapshot taken", "session", ss.id, "snapshot", sn.id, "method", sn.creationMethod)
	return sn, nil
}

// finishSessionLocked records that ss has stopped: its metrics, the sandbox's totals, and wakes
// everyone waiting for it.
func (s *Server) finishSessionLocked(ss *session, end time.Time) {
	if ss.stopped {
		return
	}
	if ss.timer != nil {
		ss.timer.Stop()
	}
	if ss.status != statusFailed {
		ss.status = statusStopped
	}
	ss.stopped = true
	ss.stoppedAt = ms(end)
	ss.updatedAt = ss.stoppedAt
	if ss.startedAt != 0 {
		ss.duration = ss.stoppedAt - ss.startedAt
	}
	// Active CPU is approximated by the time commands ran (the backend does not meter CPU).
	var cpu int64
	for _, c := range ss.order {
		if c.exitCode != nil {
			cpu += c.durationMs
		} else {
			cpu += ss.stoppedAt - c.startedAt
		}
	}
	ss.cpuMs = min(cpu, ss.duration)
	sb := ss.sb
	sb.totalDuration += ss.duration
	sb.totalCPU += ss.cpuMs
	sb.totalIngress += ss.ingress.Load()
	sb.totalEgress += ss.egress.Load()
	if sb.current == ss {
		sb.statusUpdatedAt = ss.stoppedAt
	}
	close(ss.done)
}

// armTimerLocked (re)arms the timer that ends ss at its deadline.
func (s *Server) armTimerLocked(ss *session) {
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.timer = time.AfterFunc(time.Until(time.UnixMilli(ss.deadline())), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ss.status != statusRunning {
			return
		}
		if time.Now().Before(time.UnixMilli(ss.deadline())) {
			s.armTimerLocked(ss) // extended meanwhile
			return
		}
		s.goLocked(func() {
			if _, err := s.endSession(s.ctx, ss, endTimeout, nil, false); err != nil {
				s.log.Warn("vercelfake: ending a timed-out session failed", "session", ss.id, "err", err)
			}
		})
	})
}

// applyRetentionLocked enforces sb's keepLastSnapshots after a new snapshot: snapshots of sb
// beyond the newest count are deleted (deleteEvicted, the default) or, with deleteEvicted
// false, made to expire after keepLastSnapshots.expiration when given. It returns the deleted
// snapshots, whose backend data the caller frees.
func (s *Server) applyRetentionLocked(sb *namedSandbox) []*snapshot {
	k := sb.keepLast
	if k == nil {
		return nil
	}
	var mine []*snapshot
	for _, sn := range s.snapshots {
		if sn.sandboxName == sb.name && sn.projectID == sb.projectID && sn.status == snapCreated {
			mine = append(mine, sn)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].createdAt > mine[j].createdAt })
	var drop []*snapshot
	for i, sn := range mine {
		if i < k.Count || sn.id == sb.currentSnapshotID {
			continue
		}
		if k.DeleteEvicted == nil || *k.DeleteEvicted {
			s.markDeletedLocked(sn)
			drop = append(drop, sn)
		} else if k.Expiration != nil && *k.Expiration > 0 {
			sn.lastUsedAt = ms(time.Now())
			sn.expiration = *k.Expiration
		}
	}
	return drop
}
