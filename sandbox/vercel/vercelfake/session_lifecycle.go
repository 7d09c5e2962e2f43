package vercelfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The session state machine (§10.1), which the session endpoints (sessions.go), the sandbox's
// DELETE and resume, and the session's timer drive:
//
//	pending ─► running ─► stopping ─► [snapshotting] ─► stopped
//	                   └► snapshotting ───────────────► stopped   (POST snapshot)
//
// A session ends through POST stop, its timeout, the sandbox's DELETE, or a snapshot. Stopping
// a persistent sandbox's session (stop or timeout) takes an automatic snapshot first.

// startSession boots a new session of sb from source (nil: empty) and makes it sb's current
// session. It returns once the session is running.
func (s *Server) startSession(ctx context.Context, sb *namedSandbox, source *snapshot) (*session, error) {
	unlock := s.lock(onSandboxes | onSessions | onSnapshots)
	if s.life.isClosed() {
		unlock()
		return nil, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed.")
	}
	now := ms(time.Now())
	ss := &session{
		id: newSessionID(), sb: sb, projectID: sb.projectID, status: statusPending, region: sb.region,
		vcpus: sb.vcpus, runtime: sb.runtime, timeout: sb.timeout, policy: sb.policy,
		requestedAt: now, createdAt: now, updatedAt: now,
		ports: append([]int(nil), sb.ports...), subdomains: map[int]string{},
		listeners: map[int]*routeListener{}, commands: map[string]*command{}, done: make(chan struct{}),
	}
	for _, p := range ss.ports {
		ss.subdomains[p] = sb.subdomains[p]
	}
	var ref sandbox.SnapshotRef
	if source != nil {
		ss.sourceSnapshotID = source.id
		ss.sourceRef = source.ref
		ref = source.ref
		source.lastUsedAt = now
		source.updatedAt = now
	}
	s.sessions.all[ss.id] = ss
	sb.current = ss
	sb.statusUpdatedAt = now
	pol, err := sb.policy.backendPolicy()
	env, lifetime, label := sb.env, time.Duration(ss.timeout)*time.Millisecond+backendGrace, "vercelfake "+sb.name+" "+ss.id
	unlock()

	fail := func(err error) (*session, error) {
		unlock := s.lock(onSandboxes | onSessions)
		ss.status = statusFailed
		ss.updatedAt = ms(time.Now())
		sb.statusUpdatedAt = ss.updatedAt
		close(ss.done)
		unlock()
		return nil, err
	}
	if err != nil {
		return fail(err)
	}
	// The VM must not die with the request that asked for it.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	backend, err := s.opts.Backend.Start(bctx, sandbox.StartOptions{
		Snapshot: ref,
		Policy:   pol,
		Env:      env,
		Lifetime: lifetime,
		Label:    label,
		Detached: true,
	})
	if err != nil {
		s.log.Error("vercelfake: backend start failed", "sandbox", sb.name, "session", ss.id, "err", err)
		if errors.Is(err, sandbox.ErrNotFound) {
			return fail(newError(http.StatusGone, codeSnapshotNotFound, "The snapshot's data is gone: %v", err))
		}
		return fail(internalError(fmt.Errorf("start the VM: %w", err)))
	}
	listeners := map[int]*routeListener{}
	for _, p := range ss.ports {
		l, err := openRoute(ss, backend, p, s.log)
		if err != nil {
			for _, l := range listeners {
				l.close()
			}
			_ = backend.Stop(context.Background())
			return fail(internalError(err))
		}
		listeners[p] = l
	}
	// Under the sessions' lock, as Close collects the live sessions: either Close sees this one
	// running or it sees the server closed.
	unlock = s.lock(onSandboxes | onSessions)
	if s.life.isClosed() {
		unlock()
		for _, l := range listeners {
			l.close()
		}
		_ = backend.Stop(context.Background())
		return fail(newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed."))
	}
	now = ms(time.Now())
	ss.backend = backend
	ss.listeners = listeners
	ss.status = statusRunning
	ss.startedAt = now
	ss.updatedAt = now
	if sb.current == ss {
		sb.statusUpdatedAt = now
	}
	s.armTimerLocked(ss)
	unlock()
	s.log.Info("vercelfake: session running", "sandbox", sb.name, "session", ss.id, "backend", backend.ID())
	return ss, nil
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
	unlock := s.lock(onSandboxes | onSessions)
	switch ss.status {
	case statusRunning:
	case statusPending:
		err := stateError(ss)
		unlock()
		return nil, err
	case statusStopping, statusSnapshotting:
		if how == endSnapshot || how == endTimeout {
			err := stateError(ss)
			unlock()
			return nil, err
		}
		done := ss.done
		unlock()
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
		unlock()
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
	unlock()

	for _, l := range listeners {
		l.close()
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var info sandbox.SnapshotInfo
	var err error
	if takeSnapshot {
		if how != endSnapshot {
			s.sessions.mu.Lock()
			ss.status = statusSnapshotting
			ss.snapshottedAt = ms(time.Now())
			ss.updatedAt = ss.snapshottedAt
			s.sessions.mu.Unlock()
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

	unlock = s.lock(onSandboxes | onSessions | onSnapshots)
	end := time.Now()
	if err != nil {
		s.log.Error("vercelfake: snapshot failed", "session", ss.id, "err", err)
		ss.status = statusFailed
		s.finishSessionLocked(ss, end)
		unlock()
		return nil, internalError(fmt.Errorf("snapshot of session %s failed: %w", ss.id, err))
	}
	s.finishSessionLocked(ss, end)
	if !takeSnapshot {
		unlock()
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
	if parent := s.snapshots.all[ss.sourceSnapshotID]; parent != nil {
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
	s.snapshots.all[sn.id] = sn
	sb.currentSnapshotID = sn.id
	sb.updatedAt = ms(end)
	drop := s.snapshots.applyRetentionLocked(sb)
	unlock()
	s.deleteBackendSnapshots(drop)
	s.log.Info("vercelfake: snapshot taken", "session", ss.id, "snapshot", sn.id, "method", sn.creationMethod)
	return sn, nil
}

// finishSessionLocked records that ss has stopped: its metrics, the sandbox's totals, and wakes
// everyone waiting for it. Call with the sandboxes' and sessions' locks held.
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

// armTimerLocked (re)arms the timer that ends ss at its deadline. Call with the sessions' lock
// held.
func (s *Server) armTimerLocked(ss *session) {
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.timer = time.AfterFunc(time.Until(time.UnixMilli(ss.deadline())), func() {
		s.sessions.mu.Lock()
		defer s.sessions.mu.Unlock()
		if ss.status != statusRunning {
			return
		}
		if time.Now().Before(time.UnixMilli(ss.deadline())) {
			s.armTimerLocked(ss) // extended meanwhile
			return
		}
		s.life.goUnlessClosed(func() {
			if _, err := s.endSession(s.ctx, ss, endTimeout, nil, false); err != nil {
				s.log.Warn("vercelfake: ending a timed-out session failed", "session", ss.id, "err", err)
			}
		})
	})
}
