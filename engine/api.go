package engine

import (
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// Limits the engine enforces on agent input.
const (
	// DefaultTimeout applies to a run_command without timeout_ms.
	DefaultTimeout = 10 * time.Minute
	// MaxTimeout is the longest timeout a command may ask for.
	MaxTimeout = 24 * time.Hour
	// MaxFileSize is the largest single file write_files accepts and read_file returns at once.
	MaxFileSize = 16 << 20
	// MaxWriteTotal bounds the total content of one write_files call.
	MaxWriteTotal = 64 << 20
	// MaxStdin bounds stdin given to a command.
	MaxStdin = 16 << 20
	// MaxFilesPerWrite bounds the number of files in one write_files call.
	MaxFilesPerWrite = 1000
	// OutputKeep is how many bytes of each output stream a run keeps at its head and at its tail;
	// the middle of longer output is dropped (and counted).
	OutputKeep = 256 << 10
	// MaxListDepth bounds list_files depth.
	MaxListDepth = 16
	// MaxListEntries bounds how many entries list_files returns.
	MaxListEntries = 5000
)

// CreateWorkspaceRequest holds create_workspace's arguments.
type CreateWorkspaceRequest struct {
	// Name must be unique; empty means a generated name.
	Name string
	// Policy is the durable default egress policy; nil means the operator default.
	Policy *policies.Policy
	// ExposedPorts are the ports sessions may publish (1-65535).
	ExposedPorts []int
	Labels       map[string]string
	// Template names an operator-defined setup template (Options.Templates) whose snapshot the
	// workspace starts from; empty for an empty workspace.
	Template string
	// FromHostDir is a host directory (under one of the caller's host roots, see hostdir.go)
	// whose tree becomes the first commit (kind "import"; import.go). WithGit imports a git
	// work tree's .git too.
	FromHostDir string
	WithGit     bool
	// Progress, when set, receives the latest output line of the template's setup command while
	// this call waits for it (a cold template), or the progress of an import. It must not block.
	Progress func(line string)
}

// RunCommandRequest holds run_command's arguments.
type RunCommandRequest struct {
	// Workspace is an id or a name.
	Workspace string
	// Command with Args nil is a shell command line, run as sh -lc <command>; with Args non-nil
	// (even empty) it is the program to run directly with exactly those arguments (ShellRule).
	Command string
	Args    []string
	Cwd     string
	Env     map[string]string
	Stdin   []byte
	// Timeout of 0 means DefaultTimeout.
	Timeout time.Duration
	// Yield bounds how long a foreground call waits (0: DefaultYield; at most MaxYield; none with
	// Background). A command still running then keeps running, detached from the call: the call
	// returns the run with status queued or running and the output so far, and the run commits
	// when the command ends, as any run does (GetRun follows it). Cancelling ctx before the yield
	// cancels the run; after it, only CancelRun does.
	Yield time.Duration
	// Policy overrides the workspace policy for this run only. It may hold literal secrets: they
	// reach the sandbox's proxy and are stored only redacted.
	Policy *policies.Policy
	// Background returns at once with the run queued or running; poll it with GetRun.
	Background bool
	// IdempotencyKey makes a retried call return the same run instead of running again.
	IdempotencyKey string
	// Progress, when set, is called (rate-limited by the caller's choice) with the latest complete
	// output line while a foreground call waits for its command (never after the call returned).
	// It must not block.
	Progress func(line string)
}

// RunResult is a run plus its captured output.
type RunResult struct {
	Run Run
	// Stdout and Stderr are all the engine keeps of each stream so far (head and tail; their
	// Total is where a later get_run offset goes on from).
	Stdout Output
	Stderr Output
	// StdoutWindow and StderrWindow are what lies after the offsets GetRun was given; zero in
	// RunCommand's result.
	StdoutWindow OutputWindow
	StderrWindow OutputWindow
}
