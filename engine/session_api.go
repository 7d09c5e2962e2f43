package engine

import (
	"context"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Holder identifies who acts on a session: one MCP connection. Conn must be unique per connection
// for the life of the process (the tools layer derives it from the MCP session); Client is the
// client's self-reported name, shown to others in lease errors.
type Holder struct {
	Conn   string
	Client string
}

// Session limits.
const (
	DefaultSessionTimeout = 30 * time.Minute
	MaxSessionTimeout     = 24 * time.Hour
)

// Session is the agent-facing view of a session.
type Session struct {
	store.Session
	WorkspaceName string `json:"workspace"`
	// Holder is the client name of the holder (never the connection id of another client).
	Holder string `json:"holder,omitempty"`
	// ExposedPorts are the session's ports session_url can publish: its workspace's exposed ports
	// when it opened, plus open_session's own.
	ExposedPorts []int    `json:"exposed_ports,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// OpenSessionRequest holds open_session's arguments.
type OpenSessionRequest struct {
	Workspace string
	// Timeout is the session's lifetime (0: DefaultSessionTimeout); extend_session prolongs it.
	Timeout time.Duration
	// Policy overrides the workspace policy for this session. It may hold literal secrets: they
	// reach the sandbox's proxy and are stored only redacted.
	Policy *policies.Policy
	// ExposedPorts are ports this session exposes in addition to the workspace's exposed ports
	// (validated like them; the two together must fit the limits of a workspace's).
	ExposedPorts []int
}

// SessionExecRequest holds session_exec's arguments.
type SessionExecRequest struct {
	SessionID string
	// Command and Args as in RunCommandRequest: Args nil makes Command a shell command line.
	Command string
	Args    []string
	Cwd     string
	Env     map[string]string
	Stdin   []byte
	// Timeout bounds a foreground command (0: DefaultTimeout), also after its yield; a
	// background command takes none (CheckBackgroundTimeout).
	Timeout time.Duration
	// Yield bounds how long a foreground call waits (0: DefaultYield; at most MaxYield; none with
	// Background). A command still running then keeps running and the call returns its process
	// id, Running and the output so far (see session_fg.go for what session_logs and
	// session_kill do with it).
	Yield time.Duration
	// Background starts the command and returns its process id at once.
	Background bool
	// Progress as in RunCommandRequest.
	Progress func(line string)
}

// SessionExecResult is a foreground command's outcome; or, with Running, the process id of a
// background command, or of a foreground command still running after its yield.
type SessionExecResult struct {
	ProcessID string
	// Running is set when the command is still running (ProcessID names it).
	Running bool
	// ExitCode, TimedOut and DurationMS are a finished command's (DurationMS is the time so far
	// for a yielded one).
	ExitCode   int
	TimedOut   bool
	DurationMS int64
	// Stdout and Stderr are the command's output (so far, for a yielded foreground command; none
	// for a background one).
	Stdout Output
	Stderr Output
	// LogOffset, for a yielded foreground command, is the session_logs offset just past the
	// output returned here (Stdout.Total + Stderr.Total): session_logs from it returns only
	// newer output, stdout and stderr interleaved.
	LogOffset int64
}

// ProcessStatus is what session_logs reports.
type ProcessStatus = sandbox.ProcessStatus

// PreviewTarget is what a preview URL token stands for.
type PreviewTarget struct {
	SessionID string
	Port      int
}

type callerKey struct{}

// WithCaller returns a ctx that says which connection is calling, so that errors about a lease can
// tell the caller whether the holder is itself. The tools layer sets it for every call.
func WithCaller(ctx context.Context, h Holder) context.Context {
	return context.WithValue(ctx, callerKey{}, h)
}

// CallerFrom returns the caller WithCaller put in ctx (zero when none).
func CallerFrom(ctx context.Context) Holder {
	h, _ := ctx.Value(callerKey{}).(Holder)
	return h
}
