package vercelfake

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// DefaultMaxTimeout is the plan maximum of a session's run time, extensions included, when
// Options.MaxTimeout is zero (the Hobby plan's 45 minutes).
const DefaultMaxTimeout = 45 * time.Minute

// backendGrace is how much longer than the session's timeout its backend sandbox may live: the
// fake's own timer ends the session at its deadline (taking the automatic snapshot of a
// persistent sandbox, which needs the backend alive); the backend's lifetime only bounds a
// sandbox whose fake died without stopping it.
const backendGrace = time.Minute

// Options configures a Server.
type Options struct {
	// Backend runs every session's VM: each session is Backend.Start(... Detached: true ...).
	// Required.
	Backend sandbox.Provider
	// Token is the only bearer token accepted. Required.
	Token string
	// TeamID must be the ?teamId= of every request (or TeamSlug its ?slug=); "" accepts any.
	TeamID string
	// TeamSlug is accepted as ?slug= instead of teamId (optional).
	TeamSlug string
	// ProjectID and ProjectName name the one project: projectId/project parameters must equal
	// one of them. ProjectID is required; ProjectName is optional.
	ProjectID   string
	ProjectName string
	// MaxTimeout is the plan maximum per session, extensions included (zero:
	// DefaultMaxTimeout); beyond it extend-timeout answers 400 sandbox_timeout_invalid.
	MaxTimeout time.Duration
	// SnapshotDelay is an artificial duration added to every snapshot (manual or automatic),
	// during which the session is "snapshotting" and its operations answer 422.
	SnapshotDelay time.Duration
	// RejectPolicyShape makes the fake refuse one network-policy request shape with a 400 naming
	// its property, as production once refused the V2 shape (reference §4.7, "`networkPolicy`
	// should NOT have additional property `allow`"), on create, fork, PATCH and the session's
	// network-policy: "v2" or "legacy" ("" accepts both, like the documented API).
	RejectPolicyShape string
	// CLIToken is a Vercel CLI login's token (the one in its auth.json), accepted besides Token
	// by the OIDC token endpoint, POST /v1/projects/{project}/token (see IssueOIDCToken). ""
	// accepts only Token there.
	CLIToken string
	// CLIRefreshToken is a Vercel CLI login's refresh token (auth.json's refreshToken) that the
	// fake's OAuth token endpoint accepts once (oauth.go); "" accepts only those it issued.
	CLIRefreshToken string
	// CLITokenTTL is the lifetime of the login tokens the OAuth endpoint issues (zero:
	// DefaultCLITokenTTL).
	CLITokenTTL time.Duration
	// OIDCTokenTTL is the lifetime of the OIDC tokens the fake issues (zero: DefaultOIDCTokenTTL).
	OIDCTokenTTL time.Duration
	// Clock is the fake's clock for the expiry of OIDC tokens; nil means time.Now.
	Clock func() time.Time
	// Logger receives the fake's logs; nil discards them.
	Logger *slog.Logger
}

// Server is the fake Vercel Sandbox API. It is an http.Handler; serve it with httptest or any
// http.Server. Safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	home   string // the backend's home directory, which the VM's HomeDir maps onto
	mux    *http.ServeMux
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	life   lifecycle // closed, and the background goroutines (command pollers, timers' stops)

	oidcKey []byte     // signs the OIDC tokens the fake issues
	logins  loginState // the OAuth logins issued (oauth.go)

	// The API's state, one store and lock each (state.go says what each lock guards, and the
	// order they are taken in).
	sandboxes sandboxState
	sessions  sessionState
	snapshots snapshotState
	// traffic is what tests look at and inject: the requests received and the faults.
	traffic requestLog
}

// New returns a fake API server running its sessions on opts.Backend.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("vercelfake: Options.Backend is required")
	}
	if opts.Token == "" {
		return nil, errors.New("vercelfake: Options.Token is required")
	}
	if opts.ProjectID == "" {
		return nil, errors.New("vercelfake: Options.ProjectID is required")
	}
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = DefaultMaxTimeout
	}
	if opts.CLITokenTTL <= 0 {
		opts.CLITokenTTL = DefaultCLITokenTTL
	}
	if opts.OIDCTokenTTL <= 0 {
		opts.OIDCTokenTTL = DefaultOIDCTokenTTL
	}
	if opts.RejectPolicyShape != "" && opts.RejectPolicyShape != "v2" && opts.RejectPolicyShape != "legacy" {
		return nil, fmt.Errorf("vercelfake: Options.RejectPolicyShape %q: want \"v2\", \"legacy\" or \"\"", opts.RejectPolicyShape)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		log:       log,
		home:      opts.Backend.Capabilities().HomeDir,
		ctx:       ctx,
		cancel:    cancel,
		sandboxes: sandboxState{registry[*namedSandbox]{all: map[string]*namedSandbox{}}},
		sessions:  sessionState{registry[*session]{all: map[string]*session{}}},
		snapshots: snapshotState{registry[*snapshot]{all: map[string]*snapshot{}}},
		oidcKey:   make([]byte, 32),
	}
	_, _ = rand.Read(s.oidcKey)
	s.mux = s.routes()
	return s, nil
}

// routes registers every endpoint. Paths are matched without the "/api" prefix.
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	// Named sandboxes (§5.1).
	m.HandleFunc("POST /v2/sandboxes", s.handleCreate)
	m.HandleFunc("POST /v3/sandboxes", s.handleCreate)
	m.HandleFunc("GET /v2/sandboxes", s.handleListSandboxes)
	m.HandleFunc("GET /v2/sandboxes/{name}", s.handleGetSandbox)
	m.HandleFunc("PATCH /v2/sandboxes/{name}", s.handleUpdateSandbox)
	m.HandleFunc("DELETE /v2/sandboxes/{name}", s.handleDeleteSandbox)
	m.HandleFunc("POST /v2/sandboxes/{name}/fork", s.handleFork)
	// Sessions (§5.2).
	m.HandleFunc("GET /v2/sandboxes/sessions", s.handleListSessions)
	m.HandleFunc("GET /v2/sandboxes/sessions/{sid}", s.handleGetSession)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/stop", s.handleStop)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/extend-timeout", s.handleExtend)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/network-policy", s.handleNetworkPolicy)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/snapshot", s.handleSnapshot)
	m.HandleFunc("POST /v3/sandboxes/sessions/{sid}/snapshot", s.handleSnapshot)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/interactive", s.handleInteractive)
	// Commands (§5.3).
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/cmd", s.handleRunCommand)
	m.HandleFunc("GET /v2/sandboxes/sessions/{sid}/cmd", s.handleListCommands)
	m.HandleFunc("GET /v2/sandboxes/sessions/{sid}/cmd/{cid}", s.handleGetCommand)
	m.HandleFunc("GET /v2/sandboxes/sessions/{sid}/cmd/{cid}/logs", s.handleLogs)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/cmd/{cid}/kill", s.handleKill)
	// Files (§8).
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/fs/write", s.handleWriteFiles)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/fs/read", s.handleReadFile)
	m.HandleFunc("POST /v2/sandboxes/sessions/{sid}/fs/mkdir", s.handleMkdir)
	// Snapshots (§5.5).
	m.HandleFunc("GET /v2/sandboxes/snapshots", s.handleListSnapshots)
	m.HandleFunc("GET /v2/sandboxes/snapshots/{id}", s.handleGetSnapshot)
	m.HandleFunc("DELETE /v2/sandboxes/snapshots/{id}", s.handleDeleteSnapshot)
	// The OIDC token endpoint (oidc.go), on api.vercel.com in production.
	m.HandleFunc("POST /v1/projects/{project}/token", s.handleOIDCToken)
	// The OAuth endpoints the CLI login is refreshed at (oauth.go), on vercel.com and
	// api.vercel.com in production.
	m.HandleFunc("GET /.well-known/openid-configuration", s.handleOpenIDConfiguration)
	m.HandleFunc("POST /login/oauth/token", s.handleOAuthToken)
	return m
}

// ServeHTTP implements http.Handler. Paths are served with and without the "/api" prefix (the
// SDK's base URL is https://vercel.com/api, the REST docs' https://api.vercel.com).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/api" || strings.HasPrefix(p, "/api/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(p, "/api")
		r2.URL.RawPath = ""
		r = r2
		p = r.URL.Path
	}
	closed := s.life.isClosed()
	f := s.traffic.record(r, p)
	if f != nil && f.Status == 0 && !f.Cut {
		f = nil // a fault that does nothing
	}
	if closed {
		writeError(w, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed."))
		return
	}
	if f != nil && !f.AfterHandling && (f.Status != 0 || (f.Cut && !isStreaming(r))) {
		s.answerFault(w, r, f)
		return
	}
	if !hasOwnAuth(p) {
		if err := s.authorize(r); err != nil {
			writeError(w, err)
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, notFound("The requested endpoint %s %s does not exist.", r.Method, p))
		return
	}
	if f == nil {
		s.mux.ServeHTTP(w, r)
		return
	}
	s.serveWithFault(w, r, s.mux, f)
}

// authorize checks the bearer token (Options.Token, or an OIDC token the fake issued that has not
// expired) and the team scope.
func (s *Server) authorize(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if auth == "" {
		return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "The request is missing an authentication token", Extra: map[string]any{"missingToken": true}}
	}
	invalid := &apiError{Status: http.StatusForbidden, Code: codeForbidden,
		Message: "Not authorized", Extra: map[string]any{"invalidToken": true}}
	switch {
	case !ok:
		return invalid
	case token == s.opts.Token:
	default:
		issued, err := s.checkOIDCToken(token)
		if !issued {
			return invalid
		}
		if err != nil {
			return err
		}
	}
	return s.checkTeam(r)
}

// checkTeam checks the request's team scope (?teamId=, or ?slug=) against Options.TeamID.
func (s *Server) checkTeam(r *http.Request) error {
	if s.opts.TeamID == "" {
		return nil
	}
	q := r.URL.Query()
	team, slug := q.Get("teamId"), q.Get("slug")
	switch {
	case team == s.opts.TeamID, team == "" && slug != "" && (slug == s.opts.TeamSlug || slug == s.opts.TeamID):
		return nil
	case team == "" && slug == "":
		return newError(http.StatusForbidden, codeForbidden, "Not authorized: the request names no team; this token is scoped to the team %q (pass ?teamId=)", s.opts.TeamID)
	}
	scope := team
	if scope == "" {
		scope = slug
	}
	return newError(http.StatusForbidden, codeForbidden, "Not authorized: Trying to access resource under scope %q. You must re-authenticate to this scope or use a token with access to this scope.", scope)
}

// checkProject checks a projectId/project value against the configured project.
func (s *Server) checkProject(param, value string) error {
	if value == "" {
		return badRequest("missing required parameter `%s`", param)
	}
	if value != s.opts.ProjectID && (s.opts.ProjectName == "" || value != s.opts.ProjectName) {
		return notFound("Project not found")
	}
	return nil
}

// Close stops every backend sandbox and route listener the server started, ends its streams,
// and waits for its background work. Requests after Close answer 503.
func (s *Server) Close() error {
	// Closed and the live sessions collected under one hold of the sessions' lock: a session
	// that starts is either collected here or sees the server closed (startSession).
	s.sessions.mu.Lock()
	if !s.life.close() {
		s.sessions.mu.Unlock()
		return nil
	}
	var live []*session
	for _, ss := range s.sessions.all {
		if ss.backend != nil && !ss.stopped {
			live = append(live, ss)
		}
	}
	s.sessions.mu.Unlock()
	s.cancel()
	var errs []error
	for _, ss := range live {
		s.sessions.mu.Lock()
		if ss.timer != nil {
			ss.timer.Stop()
		}
		ls := ss.listeners
		ss.listeners = nil
		s.sessions.mu.Unlock()
		for _, l := range ls {
			l.close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := ss.backend.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop session %s: %w", ss.id, err))
		}
		cancel()
		unlock := s.lock(onSandboxes | onSessions)
		s.finishSessionLocked(ss, time.Now())
		unlock()
	}
	s.life.wg.Wait()
	return errors.Join(errs...)
}
