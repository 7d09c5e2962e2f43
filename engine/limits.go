package engine

import (
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Limits on agent input that the tools layer describes besides those below.
const (
	// MinSessionTimeout is the shortest session lifetime.
	MinSessionTimeout = time.Second
	// DefaultHistoryLimit and MaxHistoryLimit bound workspace_history.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
	// MaxExposedPorts bounds a workspace's exposed_ports.
	MaxExposedPorts = 16
	// MaxLabels bounds a workspace's labels.
	MaxLabels = 32
	// MaxProcessLog is the least output a live session keeps per background process.
	MaxProcessLog = sandbox.MaxProcessLog
)

// The rules and limits of commands, waiting, yielding, offsets, signals and listings. Each is
// written once, here; the engine enforces it and the tools layer derives its schema text and
// messages from these names (the limits of files and stdin are in api.go, of sessions in
// session_api.go). Every violation is an *Error of kind ErrInvalid whose Fields name the argument
// (in the tools' snake_case), the limit it broke and what was given.

// ShellRule says how Command and Args are run, in words for a tool description.
const ShellRule = "A shell line, run with `sh -lc` in cwd (the login PATH applies; pipes, && and cd work: \"cd app && npm test\"); " +
	"with args (even []), a program run directly with exactly those arguments, no shell."

// Limits of commands.
const (
	// MaxArgs bounds the number of args of one command.
	MaxArgs = 4096
	// MaxIdempotencyKey bounds an idempotency key, in bytes.
	MaxIdempotencyKey = 256
)

// Limits of waiting and yielding.
const (
	// MaxWait bounds wait_ms of get_run and session_logs.
	MaxWait = 10 * time.Minute
	// DefaultYield is how long a foreground run_command or session_exec waits for its command
	// before it returns with the command still running (Yield 0). It stays below the minute after
	// which many MCP clients give up on a call.
	DefaultYield = 45 * time.Second
	// MaxYield bounds Yield.
	MaxYield = 10 * time.Minute
)

// Limits of listings.
const (
	// DefaultListRuns is list_runs' page size when no limit is given; MaxListRuns its largest.
	DefaultListRuns = 20
	MaxListRuns     = 200
	// DefaultListWorkspaces is list_workspaces' page size when no limit is given;
	// MaxListWorkspaces its largest.
	DefaultListWorkspaces = 100
	MaxListWorkspaces     = 1000
	// listRunsScan bounds how many runs one list_runs call examines when it filters by status,
	// so a call over a long history answers in bounded time (it then returns a cursor).
	listRunsScan = 10 * MaxListRuns
)

// Signals session_kill may send: the standard signals 1–31 (SIGHUP … SIGSYS), which every
// provider delivers. Real-time signals (32–64) are not offered: glibc reserves the first ones and
// no tool an agent runs expects the others.
const (
	MinSignal = 1
	MaxSignal = 31
)

// badArg makes the ErrInvalid error of an argument, with the argument's name, and the limit and
// the value given when they are numbers (nil otherwise).
func badArg(arg string, limit, got *int64, format string, a ...any) *Error {
	return errorf(ErrInvalid, format, a...).with(ErrorFields{Argument: arg, Limit: limit, Got: got})
}

// CheckCommand checks a command and its args: a command that is not blank, no NUL bytes, at most
// MaxArgs args. Args nil means a shell command line (ShellRule).
func CheckCommand(command string, args []string) error {
	if strings.TrimSpace(command) == "" {
		return badArg("command", nil, nil, "command is empty; give a shell line such as \"ls -la\" (without args), or a program such as \"ls\" with its arguments in args")
	}
	if strings.ContainsRune(command, 0) {
		return badArg("command", nil, nil, "command contains a NUL byte; remove it (put binary input in stdin or a file)")
	}
	if i := slices.IndexFunc(args, func(a string) bool { return strings.ContainsRune(a, 0) }); i >= 0 {
		return badArg("args", nil, nil, "args[%d] contains a NUL byte; remove it (put binary input in stdin or a file)", i)
	}
	if len(args) > MaxArgs {
		return badArg("args", ptr(int64(MaxArgs)), ptr(int64(len(args))), "%d args is too many (at most %d); put long input in a file with write_files", len(args), MaxArgs)
	}
	return nil
}

// CheckStdin checks stdin against MaxStdin.
func CheckStdin(n int) error {
	if n > MaxStdin {
		return badArg("stdin", ptr(int64(MaxStdin)), ptr(int64(n)), "stdin is %d bytes, more than the %d-byte limit; write it to a file with write_files and redirect from it", n, MaxStdin)
	}
	return nil
}

// CheckTimeout checks a command's timeout and returns the one that applies: 0 means
// DefaultTimeout; otherwise 1 ms to MaxTimeout.
func CheckTimeout(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultTimeout, nil
	case d < 0:
		return 0, badArg("timeout_ms", ptr(int64(1)), ptr(d.Milliseconds()), "timeout_ms %d is not positive; give 1 to %d, or omit it for the default of %d ms", d.Milliseconds(), MaxTimeout.Milliseconds(), DefaultTimeout.Milliseconds())
	case d > MaxTimeout:
		return 0, badArg("timeout_ms", ptr(MaxTimeout.Milliseconds()), ptr(d.Milliseconds()), "timeout_ms %d is larger than the maximum %d ms (24 h); use background=true with a shorter timeout per step", d.Milliseconds(), MaxTimeout.Milliseconds())
	}
	return d, nil
}

// CheckBackgroundTimeout enforces that a background session process takes no timeout: it runs
// until it exits, session_kill stops it, or the session ends.
func CheckBackgroundTimeout(background bool, timeout time.Duration) error {
	if background && timeout != 0 {
		return badArg("timeout_ms", nil, ptr(timeout.Milliseconds()), "timeout_ms applies to foreground commands only; a background process runs until it exits, "+
			"session_kill stops it, or the session ends; omit timeout_ms, or wrap the command: \"timeout 60 your-command\"")
	}
	return nil
}

// CheckWait checks a wait (wait_ms): 0 (do not wait) to MaxWait.
func CheckWait(d time.Duration) error {
	if d < 0 || d > MaxWait {
		return badArg("wait_ms", ptr(MaxWait.Milliseconds()), ptr(d.Milliseconds()), "wait_ms %d is out of range: give 0 (do not wait) to %d milliseconds", d.Milliseconds(), MaxWait.Milliseconds())
	}
	return nil
}

// CheckYield checks a foreground call's yield (yield_ms) and returns the one that applies: 0
// means DefaultYield; otherwise 1 ms to MaxYield. A background call takes none.
func CheckYield(background bool, d time.Duration) (time.Duration, error) {
	switch {
	case background && d != 0:
		return 0, badArg("yield_ms", nil, ptr(d.Milliseconds()), "yield_ms applies to foreground calls only; a background call returns at once; omit yield_ms")
	case d == 0:
		return DefaultYield, nil
	case d < time.Millisecond || d > MaxYield:
		return 0, badArg("yield_ms", ptr(MaxYield.Milliseconds()), ptr(d.Milliseconds()), "yield_ms %d is out of range: give 1 to %d milliseconds, or omit it for the default of %d", d.Milliseconds(), MaxYield.Milliseconds(), DefaultYield.Milliseconds())
	}
	return d, nil
}

// CheckOffset checks an offset into an output stream (arg names it, e.g. "stdout_offset"): 0 or
// more.
func CheckOffset(arg string, off int64) error {
	if off < 0 {
		return badArg(arg, ptr(int64(0)), ptr(off), "%s %d is negative; give 0 for the start, or the next offset a previous call returned", arg, off)
	}
	return nil
}

// CheckListLimit checks list_runs' limit and returns the one that applies: 0 means
// DefaultListRuns; otherwise 1 to MaxListRuns.
func CheckListLimit(n int) (int, error) { return checkLimit(n, DefaultListRuns, MaxListRuns) }

// CheckListWorkspacesLimit checks list_workspaces' limit the same way, with
// DefaultListWorkspaces and MaxListWorkspaces.
func CheckListWorkspacesLimit(n int) (int, error) {
	return checkLimit(n, DefaultListWorkspaces, MaxListWorkspaces)
}

func checkLimit(n, def, most int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || n > most:
		return 0, badArg("limit", ptr(int64(most)), ptr(int64(n)), "limit %d is out of range: give 1 to %d, or omit it for %d", n, most, def)
	}
	return n, nil
}

// ValidSignal checks a signal number for session_kill: MinSignal to MaxSignal.
func ValidSignal(sig syscall.Signal) error {
	if sig < MinSignal || sig > MaxSignal {
		return badArg("signal", ptr(int64(MaxSignal)), ptr(int64(sig)), "signal %d is not one session_kill sends; give a name (TERM, the default, INT, HUP, QUIT, KILL, USR1, USR2, STOP, CONT) or a number from %d to %d", int(sig), MinSignal, MaxSignal)
	}
	return nil
}

// ParseSignal reads a signal as an agent gives it: a name with or without the SIG prefix, in any
// case ("term", "SIGKILL"), or a number from MinSignal to MaxSignal; "" is SIGTERM. It returns
// the signal and its name ("SIGTERM").
func ParseSignal(s string) (syscall.Signal, string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return syscall.SIGTERM, "SIGTERM", nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		sig := syscall.Signal(n)
		if err := ValidSignal(sig); err != nil {
			return 0, "", err
		}
		return sig, unix.SignalName(sig), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 || ValidSignal(sig) != nil {
		return 0, "", badArg("signal", nil, nil, "%q is not a signal; give TERM (the default), INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT (with or without the SIG prefix), or a number from %d to %d", s, MinSignal, MaxSignal)
	}
	return sig, name, nil
}

// RunStatuses lists the statuses of a run, for list_runs' filter and schemas.
func RunStatuses() []string {
	return []string{RunQueued, RunRunning, RunExited, RunFailed, RunCancelled, RunLost}
}

// checkRunStatus checks list_runs' status filter ("" means any).
func checkRunStatus(s string) error {
	if s != "" && !slices.Contains(RunStatuses(), s) {
		return badArg("status", nil, nil, "status %q is not a run status; give one of %s, or omit it for every run", s, strings.Join(RunStatuses(), ", "))
	}
	return nil
}

// shellArgv turns a command into what the provider executes: a shell command line (args nil)
// becomes sh -lc <command>; a program with args runs as given.
func shellArgv(command string, args []string) (string, []string) {
	if args == nil {
		return "sh", []string{"-lc", command}
	}
	return command, args
}
