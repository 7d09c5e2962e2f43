package vercelfake

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The session endpoints (§5.2); session_lifecycle.go has the state machine they drive.

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
	ss := s.sessions.get(id)
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
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
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
	s.sessions.mu.Lock()
	serr := stateError(ss)
	s.sessions.mu.Unlock()
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
	s.sessions.mu.Lock()
	out := map[string]any{"session": ss.view(), "routes": ss.routes()}
	s.sessions.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	desc, err := s.listOrder(q)
	if err != nil {
		writeError(w, err)
		return
	}
	name := q.Get("name")
	s.sessions.mu.Lock()
	views := listViews(s.sessions.all, func(ss *session) bool { return name == "" || ss.sb.name == name }, desc, (*session).view)
	s.sessions.mu.Unlock()
	writePage(w, q, "sessions", views)
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
	unlock := s.lock(onSandboxes | onSessions | onSnapshots)
	out := map[string]any{"session": ss.view(), "sandbox": ss.sb.view()}
	if sn != nil {
		out["snapshot"] = sn.view()
	}
	unlock()
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
	s.sessions.mu.Lock()
	total := ss.timeout + *req.Duration
	maxMs := s.opts.MaxTimeout.Milliseconds()
	if total > maxMs {
		s.sessions.mu.Unlock()
		writeError(w, newError(http.StatusBadRequest, codeTimeoutInvalid,
			"The sandbox timeout cannot be extended to %d ms: the maximum duration of a sandbox on this plan is %d ms (%s), and %d ms are already allowed.",
			total, maxMs, s.opts.MaxTimeout, ss.timeout))
		return
	}
	base := ss.startedAt
	backend := ss.backend
	s.sessions.mu.Unlock()
	until := time.UnixMilli(base + total).Add(backendGrace)
	if err := backend.Extend(context.WithoutCancel(r.Context()), until); err != nil {
		writeError(w, s.backendError(ss, err))
		return
	}
	s.sessions.mu.Lock()
	if err := stateError(ss); err != nil {
		s.sessions.mu.Unlock()
		writeError(w, err)
		return
	}
	ss.timeout += *req.Duration
	ss.updatedAt = ms(time.Now())
	s.armTimerLocked(ss)
	out := map[string]any{"session": ss.view()}
	s.sessions.mu.Unlock()
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
	s.sessions.mu.Lock()
	backend := ss.backend
	s.sessions.mu.Unlock()
	if err := backend.SetPolicy(context.WithoutCancel(r.Context()), pol); err != nil {
		if errors.Is(err, sandbox.ErrInvalid) {
			writeError(w, badRequest("the network policy cannot be applied: %v", err))
			return
		}
		writeError(w, s.backendError(ss, err))
		return
	}
	s.sessions.mu.Lock()
	ss.policy = p
	ss.updatedAt = ms(time.Now())
	out := map[string]any{"session": ss.view()}
	s.sessions.mu.Unlock()
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
	unlock := s.lock(onSessions | onSnapshots)
	out := map[string]any{"snapshot": sn.view(), "session": ss.view()}
	unlock()
	writeJSON(w, http.StatusOK, out)
}

// handleInteractive answers the interactive-shell endpoint, which the fake does not offer.
func (s *Server) handleInteractive(w http.ResponseWriter, r *http.Request) {
	if _, err := s.liveSession(r); err != nil {
		writeError(w, err)
		return
	}
	writeError(w, badRequest("interactive shells are not supported by the fake Sandbox API"))
}
