package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Sessions: a live, exclusive sandbox on a workspace (DESIGN §2). The lifecycle tools live here
// (open_session, attach_session, session_url, extend_session, commit_session, discard_session);
// what runs inside a session is in session_exec.go. The engine enforces the lease rules; every
// tool derives the caller's holder identity from the MCP connection (holder.go) and passes it on.

type openSessionArgs struct {
	Workspace string     `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	TimeoutMS int64      `json:"timeout_ms,omitempty" jsonschema_description:"Lifetime: {session_min_ms} to {session_max_ms}, default {session_default_ms}; extend_session prolongs it. At expiry uncommitted changes are dropped."`
	Policy    *policyArg `json:"policy,omitempty" jsonschema_description:"Egress policy for this session only, instead of the workspace's (grammar as in set_policy); may carry literal secrets, never stored."`
	Ports     []int      `json:"exposed_ports,omitempty" jsonschema_description:"More ports for session_url, this session only."`
}

// sessionResult is the result of the tools that return a session.
type sessionResult struct {
	sessionView
	Steps
	verb string
}

// newSessionResult is s as the tool that did verb to it returns it to h.
func newSessionResult(s engine.Session, h engine.Holder, verb string) sessionResult {
	return sessionResult{sessionView: newSessionView(s, h, time.Now()), verb: verb}
}

func (r sessionResult) text() string {
	s := r.verb + " " + r.line()
	if r.State == "discarded" && r.verb == "discarded" {
		s += fmt.Sprintf("\nits changes were dropped; workspace %s stays at %s", r.Workspace, r.BaseCommit)
	}
	return s
}

// withSteps adds what the holder of an open session can do next.
func (r sessionResult) withSteps() sessionResult {
	if !r.open || !r.HeldByYou {
		return r
	}
	r.then("session_exec", "run commands (background=true for servers)", map[string]any{"session_id": r.SessionID})
	for _, p := range r.ExposedPorts {
		r.then("session_url", "a URL for the port (it waits for a listener)", map[string]any{"session_id": r.SessionID, "port": p})
	}
	r.then("commit_session", "save the changes as one commit and end the session", map[string]any{"session_id": r.SessionID})
	return r
}

func (t *toolset) openSession() server.ServerTool {
	return define(t, toolDef[openSessionArgs, sessionResult]{
		name:  "open_session",
		title: "Open live session",
		description: "Open a live session: an exclusive sandbox from the head that keeps running between calls (files, /tmp, background processes), " +
			"for dev servers, previews (session_url) and work to keep or drop as a whole. While open, durable tools on the workspace fail and only " +
			"this connection may use it. commit_session saves it as one commit; discard_session or expiry drops it, never the history.",
		hints: hints{openWorld: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *openSessionArgs) (sessionResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return sessionResult{}, err
			}
			pol, err := a.Policy.policy("policy")
			if err != nil {
				return sessionResult{}, err
			}
			h, err := t.holder(ctx, "open_session")
			if err != nil {
				return sessionResult{}, err
			}
			s, err := t.eng.OpenSession(ctx, h, engine.OpenSessionRequest{
				Workspace: a.Workspace, Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Policy: pol, ExposedPorts: a.Ports,
			})
			if err != nil {
				return sessionResult{}, err
			}
			return newSessionResult(s, h, "opened").withSteps(), nil
		},
	})
}

func (t *toolset) attachSession() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs, sessionResult]{
		name:  "attach_session",
		title: "Attach to live session",
		description: "Take over a workspace's detached session (its holder's connection closed; it keeps running until it expires) after your connection was lost: " +
			"this connection becomes its holder, same session_id. Fails while another live connection holds it.",
		hints: hints{idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) (sessionResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return sessionResult{}, err
			}
			h, err := t.holder(ctx, "attach_session")
			if err != nil {
				return sessionResult{}, err
			}
			s, err := t.eng.AttachSession(ctx, h, a.Workspace)
			if err != nil {
				return sessionResult{}, err
			}
			return newSessionResult(s, h, "attached").withSteps(), nil
		},
	})
}

type sessionURLArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	Port      int    `json:"port" jsonschema:"required" jsonschema_description:"A TCP port inside the session, one of its exposed_ports."`
	WaitMS    int64  `json:"wait_ms,omitempty" jsonschema_description:"Default {port_wait_ms}, at most {wait_max_ms}."`
}

// urlView is session_url's result.
type urlView struct {
	SessionID string `json:"session_id" jsonschema:"required"`
	Port      int    `json:"port" jsonschema:"required"`
	URL       string `json:"url" jsonschema:"required"`
	// Listening is true when the port accepted a connection, false when nothing did within the
	// wait; absent when the provider serves the port itself and it cannot be checked.
	Listening *bool `json:"listening,omitempty"`
	WaitedMS  int64 `json:"waited_ms,omitempty"`
	// Note says what the answer means when the port is not known to be listening.
	Note string `json:"note,omitempty"`
	// Processes, unless listening, are the session's newest processes, newest first, with the
	// last lines of their output: a server that crashed shows why.
	Processes []processTail `json:"processes,omitempty"`
	Steps
}

// processTail is a process of the session with the end of its output.
type processTail struct {
	ProcessID string   `json:"process_id" jsonschema:"required"`
	Command   string   `json:"command,omitempty"`
	Args      []string `json:"args,omitempty"`
	// Status is running or exited.
	Status   string `json:"status" jsonschema:"required"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// LastOutput is the end of its output (stdout and stderr interleaved), from OutputOffset;
	// session_logs reads more.
	LastOutput   string `json:"last_output"`
	OutputOffset int64  `json:"output_offset"`
}

func newURLView(sessionID string, u engine.SessionURLResult) urlView {
	v := urlView{SessionID: sessionID, Port: u.Port, URL: u.URL, Listening: u.Listening, WaitedMS: u.Waited.Milliseconds()}
	for _, st := range u.Processes {
		p := processTail{ProcessID: st.ID, Command: st.Command, Args: st.Args, OutputOffset: st.Offset}
		p.Status, p.ExitCode = procStatus(st)
		p.LastOutput, _ = validUTF8(st.Output)
		v.Processes = append(v.Processes, p)
	}
	switch {
	case u.Listening == nil:
		v.Note = fmt.Sprintf("the provider serves port %d itself, so whether something listens there is not checked: request the URL "+
			"(an error page from the provider means nothing listens on 0.0.0.0:%d yet)", u.Port, u.Port)
	case !*u.Listening:
		v.Note = fmt.Sprintf("nothing listened on port %d within %d ms; the URL works as soon as something does (bound to 127.0.0.1 or 0.0.0.0)", u.Port, v.WaitedMS)
	}
	if u.Listening != nil && *u.Listening {
		return v
	}
	if len(v.Processes) == 0 {
		v.then("session_exec", "start the server, background=true", map[string]any{"session_id": sessionID, "background": true})
	} else {
		p := v.Processes[0]
		v.then("session_logs", "all of its output, to see why", map[string]any{"session_id": sessionID, "process_id": p.ProcessID})
	}
	if u.Listening != nil {
		v.then("session_url", "wait again", map[string]any{"session_id": sessionID, "port": u.Port, "wait_ms": engine.DefaultPortWait.Milliseconds()})
	}
	return v
}

func (v urlView) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d of session %s: %s", v.Port, v.SessionID, v.URL)
	if v.Listening == nil {
		b.WriteString("\n(the provider's public URL for the port; it works until the session ends)")
	} else {
		b.WriteString("\n(for HTTP clients of this server's host user: browser, curl, fetch; it works until the session ends)")
	}
	if v.Listening != nil && *v.Listening {
		b.WriteString("\nlistening: yes")
	}
	if v.Note != "" {
		b.WriteString("\nnote: " + v.Note)
	}
	if len(v.Processes) > 0 {
		b.WriteString("\nthe session's newest processes:")
	}
	for _, p := range v.Processes {
		fmt.Fprintf(&b, "\n- %s %s", p.ProcessID, commandLine(p.Command, p.Args))
		switch {
		case p.Status == procRunning:
			b.WriteString(": running")
		case p.ExitCode != nil:
			fmt.Fprintf(&b, ": exited %d%s", *p.ExitCode, signalNote(*p.ExitCode))
		default:
			b.WriteString(": exited")
		}
		if out := strings.TrimRight(p.LastOutput, "\n"); out != "" {
			b.WriteString(", last output:\n    " + strings.ReplaceAll(out, "\n", "\n    "))
		}
	}
	return b.String()
}

func (t *toolset) sessionURL() server.ServerTool {
	return define(t, toolDef[sessionURLArgs, urlView]{
		name:  "session_url",
		title: "Session port URL",
		description: "A URL on the host (browser, curl, fetch) reaching a port inside a live session, e.g. a dev server started with session_exec background=true " +
			"on 127.0.0.1 or 0.0.0.0. It waits for a listener, else shows the session's processes. It works until the session ends; " +
			"on vercel it is the sandbox's public URL (ports 1024-65535, listen on 0.0.0.0).",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *sessionURLArgs) (urlView, error) {
			h, err := t.sessionHolder(ctx, "session_url", a.SessionID)
			if err != nil {
				return urlView{}, err
			}
			progress := t.startProgress(ctx, req) // lines while it waits for the port
			u, err := t.eng.SessionURL(ctx, h, engine.SessionURLRequest{
				SessionID: a.SessionID, Port: a.Port, Wait: time.Duration(a.WaitMS) * time.Millisecond, Progress: progress.callback(),
			})
			progress.Stop()
			if err != nil {
				return urlView{}, err
			}
			return newURLView(a.SessionID, u), nil
		},
	})
}

type extendSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	TimeoutMS int64  `json:"timeout_ms" jsonschema:"required" jsonschema_description:"Expire this long from now (not from the current expiry): {session_min_ms} to {session_max_ms}."`
}

func (t *toolset) extendSession() server.ServerTool {
	return define(t, toolDef[extendSessionArgs, sessionResult]{
		name:        "extend_session",
		title:       "Extend live session",
		description: "Set a live session to expire timeout_ms from now (a smaller value shortens it); at expiry its uncommitted changes are dropped.",
		hints:       hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *extendSessionArgs) (sessionResult, error) {
			h, err := t.sessionHolder(ctx, "extend_session", a.SessionID)
			if err != nil {
				return sessionResult{}, err
			}
			s, err := t.eng.ExtendSession(ctx, h, a.SessionID, time.Duration(a.TimeoutMS)*time.Millisecond)
			if err != nil {
				return sessionResult{}, err
			}
			return newSessionResult(s, h, "extended"), nil
		},
	})
}

type commitSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	Message   string `json:"message,omitempty" jsonschema_description:"What the session did, shown in workspace_history."`
}

// committedSession is commit_session's result.
type committedSession struct {
	SessionID   string `json:"session_id" jsonschema:"required"`
	WorkspaceID string `json:"workspace_id" jsonschema:"required"`
	madeChange
	Steps
}

func (c committedSession) text() string {
	if c.Unchanged {
		return fmt.Sprintf("session %s has ended; it changed nothing, so there is no commit and the workspace's head stays", c.SessionID)
	}
	return fmt.Sprintf("committed session %s as %s (%s); it is the workspace's new head, and the session has ended", c.SessionID, c.Commit.ID, c.Commit.changeText())
}

func (t *toolset) commitSession() server.ServerTool {
	return define(t, toolDef[commitSessionArgs, committedSession]{
		name:  "commit_session",
		title: "Commit live session",
		description: "Save a live session's /workspace and home as ONE commit (kind session; none if nothing changed), move the head to it and end the session: " +
			"its processes stop, /tmp is dropped, URLs stop working, the lease is released.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *commitSessionArgs) (committedSession, error) {
			h, err := t.sessionHolder(ctx, "commit_session", a.SessionID)
			if err != nil {
				return committedSession{}, err
			}
			c, err := t.eng.CommitSession(ctx, h, a.SessionID, a.Message)
			if err != nil {
				return committedSession{}, err
			}
			r := committedSession{SessionID: a.SessionID, WorkspaceID: c.Workspace}
			r.madeChange = madeCommit(c, c.ID)
			return r, nil
		},
	})
}

type discardSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
}

func (t *toolset) discardSession() server.ServerTool {
	return define(t, toolDef[discardSessionArgs, sessionResult]{
		name:  "discard_session",
		title: "Discard live session",
		description: "End a live session and drop everything it changed: its processes and URLs stop, the workspace stays at the head it had " +
			"when the session opened, the lease is released. Cannot be undone.",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *discardSessionArgs) (sessionResult, error) {
			h, err := t.sessionHolder(ctx, "discard_session", a.SessionID)
			if err != nil {
				return sessionResult{}, err
			}
			s, err := t.eng.DiscardSession(ctx, h, a.SessionID)
			if err != nil {
				return sessionResult{}, err
			}
			return newSessionResult(s, h, "discarded"), nil
		},
	})
}

// sessionHolder checks the session_id argument of a session tool and derives the caller's holder
// identity (holder).
func (t *toolset) sessionHolder(ctx context.Context, tool, sessionID string) (engine.Holder, error) {
	if err := sessionRef(sessionID); err != nil {
		return engine.Holder{}, err
	}
	return t.holder(ctx, tool)
}

// sessionRef checks the session_id argument every session tool takes.
func sessionRef(id string) error {
	if strings.TrimSpace(id) == "" {
		return argError("session_id", "missing; give the session_id (ses_…) that open_session or attach_session returned; "+
			"get_workspace shows a workspace's open session")
	}
	return nil
}

// sessionView is the structured result describing a session. It leaves out the provider's
// sandbox id and the holder's connection id (another client's identity is not shown).
type sessionView struct {
	SessionID   string `json:"session_id" jsonschema:"required"`
	Workspace   string `json:"workspace" jsonschema:"required"`
	WorkspaceID string `json:"workspace_id"`
	// State is attached, detached (both open), committed, discarded or expired.
	State string `json:"state" jsonschema:"required"`
	// Holder is the holder's client name; HeldByYou says whether it is the calling connection.
	Holder       string     `json:"holder,omitempty"`
	HeldByYou    bool       `json:"held_by_you"`
	BaseCommit   string     `json:"base_commit"`
	CommitID     string     `json:"commit_id,omitempty"`
	Policy       string     `json:"policy,omitempty"`
	ExposedPorts []int      `json:"exposed_ports,omitempty"`
	OpenedAt     time.Time  `json:"opened_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	EndReason    string     `json:"end_reason,omitempty"`
	Warnings     []string   `json:"warnings,omitempty"`

	open bool      // attached or detached
	now  time.Time // for the text: "expires in …"
}

func newSessionView(s engine.Session, h engine.Holder, now time.Time) sessionView {
	v := sessionView{
		SessionID: s.ID, Workspace: s.WorkspaceName, WorkspaceID: s.Workspace, State: s.State,
		Holder: s.Holder, HeldByYou: s.Open() && s.HolderConn != "" && s.HolderConn == h.Conn,
		BaseCommit: s.Base, CommitID: s.CommitID, Policy: s.Policy, ExposedPorts: s.ExposedPorts,
		OpenedAt: s.Opened, ExpiresAt: s.Expires, EndReason: s.EndReason, Warnings: s.Warnings,
		open: s.Open(), now: now,
	}
	if v.Holder == "" {
		v.Holder = s.HolderClient
	}
	if v.Workspace == "" {
		v.Workspace = s.Workspace
	}
	if !s.Ended.IsZero() {
		ended := s.Ended
		v.EndedAt = &ended
	}
	return v
}

// line is a one-line summary of a session.
func (v sessionView) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "session %s on workspace %s", v.SessionID, v.Workspace)
	if v.WorkspaceID != "" && v.WorkspaceID != v.Workspace {
		fmt.Fprintf(&b, " (%s)", v.WorkspaceID)
	}
	fmt.Fprintf(&b, ": %s", v.State)
	if v.Holder != "" && v.open {
		b.WriteString(", held by " + v.Holder)
		if v.HeldByYou {
			b.WriteString(" (you)")
		}
	}
	if v.BaseCommit != "" {
		b.WriteString(", base " + v.BaseCommit)
	}
	if v.CommitID != "" {
		b.WriteString(", committed as " + v.CommitID)
	}
	if v.EndedAt == nil && !v.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, ", expires %s", v.ExpiresAt.UTC().Format(time.RFC3339))
		if left := v.ExpiresAt.Sub(v.now); left > 0 {
			fmt.Fprintf(&b, " (in %s)", left.Round(time.Second))
		}
	}
	if v.EndReason != "" {
		b.WriteString("; " + v.EndReason)
	}
	if v.Policy != "" {
		b.WriteString(", policy " + v.Policy)
	}
	for _, w := range v.Warnings {
		b.WriteString("\n  warning: " + w)
	}
	return b.String()
}
