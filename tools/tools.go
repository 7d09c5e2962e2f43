// Package tools is the MCP surface of sandkit-mcp: the agent-facing tools, their input schemas
// (reflected from the argument structs with invopop/jsonschema), their handlers, and the mapping
// of engine errors to tool errors.
//
// The contract with agents:
//
//   - Tool names and argument names are public (DESIGN §7); the golden files in
//     testdata/toolsnaps/ pin every tool definition, so a change to the surface is a reviewed diff.
//   - Every tool declares all four behaviour annotations, honestly, a title, and an outputSchema
//     reflected from its Go result type.
//   - Every call, successful or not, returns structuredContent and a text block that carry the
//     same facts and next steps, each complete (result.go): clients show the model one or the
//     other.
//   - A failed call is a tool result with isError set whose structuredContent is
//     {"error": {kind, message, fields…}, "next": […]} (errors.go maps engine errors once).
//     Domain failures are never protocol errors; handlers never return Go errors.
//   - Descriptions state limits through placeholders expanded from the engine's constants and
//     the Options in force (limits.go), so they are never out of date.
//   - Output for a model is bounded (head + tail, with a marker saying how much was left out and
//     how to read more).
//   - Long calls send notifications/progress when the client asked for it, and
//     notifications/cancelled stops the work.
//   - The session tools act for the MCP connection that calls them: the lease holder is derived
//     from the request's MCP session (HolderFromContext), and the server must carry Hooks so the
//     engine hears when a connection ends.
//
// The engine enforces every rule; this package only translates.
package tools

import (
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Options tunes the tools. The zero value gives the documented defaults.
type Options struct {
	// Logger receives handler faults (panics, unexpected errors); nil discards them.
	Logger *slog.Logger

	// RunHeadBytes and RunTailBytes bound each output stream that run_command returns: at most
	// this many bytes from the start and from the end, with a marker line between them.
	// Defaults: 8 KiB each.
	RunHeadBytes, RunTailBytes int
	// PollHeadBytes and PollTailBytes bound each output stream that get_run returns.
	// Defaults: 8 KiB head, 64 KiB tail.
	PollHeadBytes, PollTailBytes int
	// LogsTailBytes bounds the output session_logs returns: at most the last this many bytes of
	// what was asked for. Default 64 KiB.
	LogsTailBytes int
	// ReadDefaultBytes is read_file's window when max_bytes is not given. Default 128 KiB.
	ReadDefaultBytes int

	// ProgressInterval is the least time between two progress notifications. Default 250 ms.
	ProgressInterval time.Duration
	// ProgressHeartbeat is how often a progress notification is sent while a command prints
	// nothing, so clients that reset their timeout on progress keep waiting. Default 5 s.
	ProgressHeartbeat time.Duration

	// HostRoots are host directories every connection may import from and export to (absolute,
	// clean; see engine.WithHostRoots). A session implementing SessionWithHostRoots adds its own.
	HostRoots []string
}

// Defaults for Options.
const (
	defaultRunHead     = 8 << 10
	defaultRunTail     = 8 << 10
	defaultPollHead    = 8 << 10
	defaultPollTail    = 64 << 10
	defaultLogsTail    = 64 << 10
	defaultReadWindow  = 128 << 10
	defaultProgressGap = 250 * time.Millisecond
	defaultHeartbeat   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.RunHeadBytes, defaultRunHead)
	def(&o.RunTailBytes, defaultRunTail)
	def(&o.PollHeadBytes, defaultPollHead)
	def(&o.PollTailBytes, defaultPollTail)
	def(&o.LogsTailBytes, defaultLogsTail)
	def(&o.ReadDefaultBytes, defaultReadWindow)
	if o.ReadDefaultBytes > engine.MaxFileSize {
		o.ReadDefaultBytes = engine.MaxFileSize
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = defaultProgressGap
	}
	if o.ProgressHeartbeat <= 0 {
		o.ProgressHeartbeat = defaultHeartbeat
	}
	return o
}

// Register adds the workspace, run, file, history and session tools to s, served by e, and the
// resources (resources.go). For completions (completions.go), s must have been created with
// ServerOptions(e).
//
// The session tools tie a session to the MCP connection that holds it; for the engine to learn
// that a connection has gone (so another may attach_session), s must have been created with
// server.WithHooks(Hooks(e)).
func Register(s *server.MCPServer, e *engine.Engine, opts Options) {
	t := newToolset(s, e, opts)
	s.AddTools(t.all()...)
	t.registerResources(s)
}

// toolset holds what the handlers share.
type toolset struct {
	srv    *server.MCPServer
	eng    *engine.Engine
	opts   Options
	log    *slog.Logger
	limits *limits
}

func newToolset(s *server.MCPServer, e *engine.Engine, opts Options) *toolset {
	opts = opts.withDefaults()
	return &toolset{srv: s, eng: e, opts: opts, log: opts.Logger, limits: newLimits(opts)}
}

// all lists every tool of this package, in the order a reader meets them.
func (t *toolset) all() []server.ServerTool {
	return []server.ServerTool{
		t.createWorkspace(),
		t.listWorkspaces(),
		t.getWorkspace(),
		t.updateWorkspace(),
		t.deleteWorkspace(),
		t.setPolicy(),
		t.runCommand(),
		t.getRun(),
		t.cancelRun(),
		t.listRuns(),
		t.writeFiles(),
		t.editFile(),
		t.readFile(),
		t.listFiles(),
		t.workspaceHistory(),
		t.workspaceDiff(),
		t.restoreWorkspace(),
		t.forkWorkspace(),
		t.exportWorkspace(),
		t.openSession(),
		t.attachSession(),
		t.sessionExec(),
		t.sessionLogs(),
		t.sessionKill(),
		t.sessionURL(),
		t.extendSession(),
		t.commitSession(),
		t.discardSession(),
	}
}
