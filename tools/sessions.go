package tools

import (
	"context"
	"fmt"
	"strconv"
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

// sessionLeaseModel is the paragraph every session tool's description can lean on.
const sessionLeaseModel = "A session is an exclusive live sandbox on a workspace: while it is open, run_command, write_files with workspace, " +
	"restore_workspace, fork_workspace, delete_workspace and another open_session on that workspace fail with an error naming the session " +
	"(read_file and list_files with workspace still show the committed head), and only the connection that opened it (the holder) can use it. "

type openSessionArgs struct {
	Workspace string     `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
	TimeoutMS int64      `json:"timeout_ms,omitempty" jsonschema:"minimum=1000,maximum=86400000,default=1800000" jsonschema_description:"Lifetime of the session in milliseconds: it expires this long after opening unless extended with extend_session, and then its uncommitted changes are dropped. Default 1800000 (30 minutes), minimum 1000, maximum 86400000 (24 hours)."`
	Policy    *policyArg `json:"policy,omitempty" jsonschema_description:"Network egress policy for this session only, instead of the workspace's default policy (same shape as create_workspace's). Unlike the default, it may carry a literal secret (credential {\"value\": \"…\"}): the egress proxy injects it into requests, and it is never stored or shown (records say redacted). It must lie within the limit the server's operator set."`
}

func (t *toolset) openSession() server.ServerTool {
	return define(t, toolDef[openSessionArgs]{
		name:  "open_session",
		title: "Open live session",
		description: "Open a live session on a workspace: a sandbox started from the workspace's head that keeps running between calls " +
			"(files, /tmp, installed packages and background processes all stay) until you commit it, discard it, or it expires. " +
			"Use a session instead of run_command for processes that must keep running (dev servers, watchers, databases), " +
			"for looking at a running app through session_url, and for interactive multi-step work you want to keep or drop as a whole at the end; " +
			"for one-off commands run_command is simpler and commits every step. " + sessionLeaseModel +
			"Nothing is saved until commit_session, which records the session's /workspace and home directory as ONE new commit and ends the session; " +
			"discard_session, or expiry, drops the changes. The workspace's head and history are never lost either way. " +
			"If your connection drops, the session keeps running: call attach_session from the new connection to take it back. " +
			"Inside it use session_exec (background=true for servers, then session_logs and session_kill), " +
			"write_files/read_file/list_files with session_id, and session_url for ports in the workspace's exposed_ports. " +
			"Lifetime: timeout_ms, default 30 minutes, maximum 24 hours; extend_session prolongs it. " +
			"Returns session_id, expires_at, base_commit (the head it started from) and the exposed ports.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *openSessionArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			if msg := sessionTimeoutArg("timeout_ms", a.TimeoutMS, true); msg != "" {
				return errorText(msg)
			}
			pol, msg := a.Policy.policy("policy")
			if msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "open_session")
			if fail != nil {
				return fail
			}
			s, err := t.eng.OpenSession(ctx, h, engine.OpenSessionRequest{
				Workspace: a.Workspace, Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Policy: pol,
			})
			if err != nil {
				return t.fail("open_session", err)
			}
			v := newSessionView(s, h, time.Now())
			return result(v, "opened "+sessionLine(v)+"\n"+sessionNextSteps(v))
		},
	})
}

func (t *toolset) attachSession() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs]{
		name:  "attach_session",
		title: "Attach to live session",
		description: "Take over the open session of a workspace after your MCP connection was lost (the client restarted, the network dropped, " +
			"a new conversation continues the work). A session whose holder's connection closed is \"detached\": its sandbox, processes and " +
			"uncommitted changes keep running until it expires. attach_session makes this connection its holder, with the same session_id, " +
			"so session_exec, session_logs, commit_session and the rest work again. It fails while another live connection still holds the " +
			"session (the error names the holder and when the session expires: wait, or ask that agent to commit or discard it). " +
			"Calling it while you already hold the session just returns it. get_workspace shows whether a workspace has a session. " +
			"Returns the session (session_id, state, holder, expires_at, base_commit).",
		hints: hints{idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "attach_session")
			if fail != nil {
				return fail
			}
			s, err := t.eng.AttachSession(ctx, h, a.Workspace)
			if err != nil {
				return t.fail("attach_session", err)
			}
			v := newSessionView(s, h, time.Now())
			return result(v, "attached "+sessionLine(v)+"\n"+sessionNextSteps(v))
		},
	})
}

type sessionURLArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) that open_session or attach_session returned."`
	Port      int    `json:"port" jsonschema:"required,minimum=1,maximum=65535" jsonschema_description:"The TCP port inside the session (1-65535). It must be one of the workspace's exposed_ports."`
}

// urlView is session_url's structured result.
type urlView struct {
	SessionID string `json:"session_id"`
	Port      int    `json:"port"`
	URL       string `json:"url"`
}

func (t *toolset) sessionURL() server.ServerTool {
	return define(t, toolDef[sessionURLArgs]{
		name:  "session_url",
		title: "Session port URL",
		description: "Get a URL on the host that reaches a TCP port inside a live session, to open a dev server, web app or API running in the session " +
			"from a browser, curl or an HTTP client outside the sandbox. The port must be listed in the workspace's exposed_ports " +
			"(set with create_workspace; open_session returns them), and something in the session must listen on it (127.0.0.1 or 0.0.0.0): " +
			"start the server with session_exec background=true first and check session_logs that it is up. " +
			"The URL carries an unguessable token: anyone who has it can reach the port, so share it only with whoever should see the app. " +
			"On the vercel provider it is the sandbox's public Vercel URL (https://sb-….vercel.run), ports are 1024-65535, and the server must listen on 0.0.0.0. " +
			"It works until the session ends. Only the session's holder can ask for it.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *sessionURLArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			if a.Port < 1 || a.Port > 65535 {
				return errorText(invalidArg("port", fmt.Sprintf("%d is not a TCP port: give 1 to 65535, one of the workspace's exposed_ports", a.Port)))
			}
			h, fail := t.holder(ctx, "session_url")
			if fail != nil {
				return fail
			}
			url, err := t.eng.SessionURL(ctx, h, a.SessionID, a.Port)
			if err != nil {
				return t.fail("session_url", err)
			}
			return result(urlView{SessionID: a.SessionID, Port: a.Port, URL: url},
				fmt.Sprintf("port %d of session %s: %s\n(open it from the host with a browser or curl; it carries a secret token and works until the session ends)",
					a.Port, a.SessionID, url))
		},
	})
}

type extendSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) to extend."`
	TimeoutMS int64  `json:"timeout_ms" jsonschema:"required,minimum=1000,maximum=86400000" jsonschema_description:"The session expires this many milliseconds from now (not from its current expiry): 1000 to 86400000 (24 hours)."`
}

func (t *toolset) extendSession() server.ServerTool {
	return define(t, toolDef[extendSessionArgs]{
		name:  "extend_session",
		title: "Extend live session",
		description: "Set a live session to expire timeout_ms from now (at most 24 hours from now), to keep it for longer work; a smaller value shortens it. " +
			"When a session expires its sandbox stops and its uncommitted changes are dropped (the workspace stays at its head), " +
			"so extend it before expires_at, or commit_session what you want to keep. Only the holder can extend. " +
			"Returns the session with its new expires_at.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *extendSessionArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			if msg := sessionTimeoutArg("timeout_ms", a.TimeoutMS, false); msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "extend_session")
			if fail != nil {
				return fail
			}
			s, err := t.eng.ExtendSession(ctx, h, a.SessionID, time.Duration(a.TimeoutMS)*time.Millisecond)
			if err != nil {
				return t.fail("extend_session", err)
			}
			v := newSessionView(s, h, time.Now())
			return result(v, "extended "+sessionLine(v))
		},
	})
}

type commitSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) to commit."`
	Message   string `json:"message,omitempty" jsonschema_description:"What the session did, shown in workspace_history (e.g. \"add login page\"). Optional."`
}

// committedSession is commit_session's structured result.
type committedSession struct {
	SessionID   string        `json:"session_id"`
	WorkspaceID string        `json:"workspace_id"`
	CommitID    string        `json:"commit_id"`
	Commit      engine.Commit `json:"commit"`
}

func (t *toolset) commitSession() server.ServerTool {
	return define(t, toolDef[commitSessionArgs]{
		name:  "commit_session",
		title: "Commit live session",
		description: "Save a live session's changes and end it: the session's /workspace and home directory become ONE new commit " +
			"(kind \"session\") and the workspace's head moves to it. Then the sandbox stops (background processes end, /tmp and anything " +
			"outside /workspace and home is dropped, URLs stop working) and the lease is released, so run_command and the other workspace tools work again. " +
			"message describes the commit in workspace_history. Only the holder can commit. To keep working live, open_session again: it starts from the new head. " +
			"Returns commit_id.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *commitSessionArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "commit_session")
			if fail != nil {
				return fail
			}
			c, err := t.eng.CommitSession(ctx, h, a.SessionID, a.Message)
			if err != nil {
				return t.fail("commit_session", err)
			}
			return result(committedSession{SessionID: a.SessionID, WorkspaceID: c.Workspace, CommitID: c.ID, Commit: c},
				fmt.Sprintf("committed session %s as %s (%s); it is the workspace's new head, and the session has ended", a.SessionID, c.ID, changeText(c)))
		},
	})
}

type discardSessionArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) to discard."`
}

func (t *toolset) discardSession() server.ServerTool {
	return define(t, toolDef[discardSessionArgs]{
		name:  "discard_session",
		title: "Discard live session",
		description: "End a live session and drop everything it changed: the sandbox stops, its processes end, its URLs stop working, " +
			"and the workspace stays at the head it had when the session opened (base_commit); nothing from the session is saved. " +
			"The lease is released, so run_command and the other workspace tools work again. " +
			"Use it to abandon an experiment or to free the workspace. Only the holder can discard. " +
			"This cannot be undone: to keep the changes, use commit_session instead.",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *discardSessionArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "discard_session")
			if fail != nil {
				return fail
			}
			s, err := t.eng.DiscardSession(ctx, h, a.SessionID)
			if err != nil {
				return t.fail("discard_session", err)
			}
			v := newSessionView(s, h, time.Now())
			return result(v, fmt.Sprintf("discarded session %s: its changes were dropped; workspace %s stays at %s", v.SessionID, v.Workspace, v.BaseCommit))
		},
	})
}

// sessionRef checks the session_id argument every session tool takes.
func sessionRef(id string) string {
	if strings.TrimSpace(id) == "" {
		return invalidArg("session_id", "missing; give the session_id (ses_…) that open_session or attach_session returned; "+
			"get_workspace shows a workspace's open session")
	}
	return ""
}

// minSessionTimeout is the shortest session lifetime the engine accepts.
const minSessionTimeout = time.Second

// sessionTimeoutArg checks a session lifetime in milliseconds; optional allows 0 (the default).
func sessionTimeoutArg(name string, ms int64, optional bool) string {
	lo, hi := minSessionTimeout.Milliseconds(), engine.MaxSessionTimeout.Milliseconds()
	switch {
	case optional && ms == 0, ms >= lo && ms <= hi:
		return ""
	case ms == 0:
		return invalidArg(name, fmt.Sprintf("missing; give the new lifetime from now in milliseconds, %d to %d (e.g. 1800000 for 30 minutes)", lo, hi))
	}
	why := fmt.Sprintf("%d is out of range: give %d to %d milliseconds (24 hours)", ms, lo, hi)
	if optional {
		why += fmt.Sprintf(", or omit it for the default %d (30 minutes)", engine.DefaultSessionTimeout.Milliseconds())
	}
	return invalidArg(name, why)
}

// sessionView is the structured result describing a session. It leaves out the provider's
// sandbox id and the holder's connection id (another client's identity is not shown).
type sessionView struct {
	SessionID   string `json:"session_id"`
	Workspace   string `json:"workspace"`
	WorkspaceID string `json:"workspace_id"`
	// State is attached, detached (both open), committed, discarded or expired.
	State string `json:"state"`
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

// sessionLine is a one-line summary of a session.
func sessionLine(v sessionView) string {
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

// sessionNextSteps tells an agent that just got hold of a session what it can do with it.
func sessionNextSteps(v sessionView) string {
	ports := "the workspace exposes no ports, so session_url is not available (create_workspace exposed_ports sets them)"
	if len(v.ExposedPorts) > 0 {
		ps := make([]string, len(v.ExposedPorts))
		for i, p := range v.ExposedPorts {
			ps[i] = strconv.Itoa(p)
		}
		ports = "session_url gives a URL for ports " + strings.Join(ps, ", ")
	}
	return fmt.Sprintf("use session_exec with session_id %s (background=true for servers); %s; commit_session saves the changes, discard_session drops them",
		v.SessionID, ports)
}

// changeText summarizes a commit's size.
func changeText(c engine.Commit) string {
	return fmt.Sprintf("%d file(s) changed, %s", c.ChangedFiles, sizeText(c.ChangedBytes))
}
