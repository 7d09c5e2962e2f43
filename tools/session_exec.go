package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/engine"
)

// What runs inside a session: session_exec (foreground or background), session_logs and
// session_kill. Nothing here commits; the session's changes are saved by commit_session.

type sessionExecArgs struct {
	SessionID  string            `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	Command    string            `json:"command" jsonschema:"required" jsonschema_description:"A shell line, or with args a program (as in run_command)."`
	Args       []string          `json:"args,omitempty" jsonschema_description:"Arguments of the program command names; present (even []) means no shell."`
	Cwd        string            `json:"cwd,omitempty" jsonschema_description:"Working directory, relative to /workspace or absolute under it. Default /workspace."`
	Env        map[string]string `json:"env,omitempty" jsonschema_description:"Extra environment variables; values are never stored."`
	Stdin      string            `json:"stdin,omitempty" jsonschema_description:"Text fed to standard input (at most {max_stdin})."`
	TimeoutMS  int64             `json:"timeout_ms,omitempty" jsonschema_description:"Foreground only: kill it after this long, default {timeout_default_ms}, at most {timeout_max_ms}."`
	Background bool              `json:"background,omitempty" jsonschema_description:"Start it and return its process_id at once (servers, watchers); follow it with session_logs, stop it with session_kill."`
	YieldMS    int64             `json:"yield_ms,omitempty" jsonschema_description:"Foreground: if still running after this long, return its process_id and the output so far; it goes on. Default {yield_default_ms}, at most {yield_max_ms}."`
}

// execView is session_exec's result: a foreground command's outcome, or the process_id of a
// background one.
type execView struct {
	SessionID string   `json:"session_id" jsonschema:"required"`
	Command   string   `json:"command"`
	Args      []string `json:"args,omitempty"`
	// Status is running (a background process, or a foreground one that outlived its yield) or
	// exited.
	Status    string `json:"status" jsonschema:"required"`
	ProcessID string `json:"process_id,omitempty"`
	// Yielded is set for a foreground command still running after yield_ms.
	Yielded bool `json:"yielded,omitempty"`

	ExitCode   *int  `json:"exit_code,omitempty"`
	TimedOut   bool  `json:"timed_out,omitempty"`
	DurationMS int64 `json:"duration_ms,omitempty"`
	outputView
	Steps
}

// Process statuses of session_exec and session_logs.
const (
	procRunning = "running"
	procExited  = "exited"
)

// procStatus is a process's status and, once it has exited, its exit code.
func procStatus(st engine.ProcessStatus) (string, *int) {
	if st.Running {
		return procRunning, nil
	}
	return procExited, st.ExitCode
}

func (t *toolset) sessionExec() server.ServerTool {
	return define(t, toolDef[sessionExecArgs, execView]{
		name:  "session_exec",
		title: "Run command in live session",
		description: "Run a command in a live session; nothing is committed (commit_session saves the session). Commands may run at once. " +
			"Foreground: waits, returns exit_code and output (first {run_head} and last {run_tail} of each stream). " +
			"background=true: returns a process_id and leaves it running until it exits, session_kill, or the session ends; " +
			"a server listening on an exposed port is reachable through session_url.",
		hints:  hints{openWorld: true},
		handle: t.handleSessionExec,
	})
}

func (t *toolset) handleSessionExec(ctx context.Context, req mcp.CallToolRequest, a *sessionExecArgs) (execView, error) {
	h, err := t.sessionHolder(ctx, "session_exec", a.SessionID)
	if err != nil {
		return execView{}, err
	}
	progress := t.startProgressIf(ctx, req, !a.Background)
	res, err := t.eng.SessionExec(ctx, h, engine.SessionExecRequest{
		SessionID: a.SessionID, Command: a.Command, Args: a.Args, Cwd: a.Cwd, Env: a.Env, Stdin: stdinBytes(a.Stdin),
		Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Background: a.Background,
		Yield:    time.Duration(a.YieldMS) * time.Millisecond,
		Progress: progress.callback(),
	})
	progress.Stop()
	if err != nil {
		return execView{}, err
	}
	v := execView{SessionID: a.SessionID, Command: a.Command, Args: a.Args}
	if a.Background || res.Running {
		v.ProcessID, v.Status, v.DurationMS = res.ProcessID, procRunning, res.DurationMS
		if res.Running && !a.Background {
			// A foreground command that outlived its yield: the output so far, and session_logs
			// goes on from just after it.
			v.Yielded = true
			v.outputView = newOutputView(res.Stdout, res.Stderr, t.opts.RunHeadBytes, t.opts.RunTailBytes)
		}
		v.then("session_logs", "follow its output (wait_ms waits for more)", map[string]any{"session_id": a.SessionID, "process_id": res.ProcessID, "offset": res.LogOffset, "wait_ms": 5000})
		v.then("session_kill", "stop it", map[string]any{"session_id": a.SessionID, "process_id": res.ProcessID})
		return v, nil
	}
	code := res.ExitCode
	v.Status, v.ExitCode, v.TimedOut, v.DurationMS = procExited, &code, res.TimedOut, res.DurationMS
	v.outputView = newOutputView(res.Stdout, res.Stderr, t.opts.RunHeadBytes, t.opts.RunTailBytes)
	return v, nil
}

// text is session_exec's human text: a summary line, then the output streams.
func (v execView) text() string {
	var b strings.Builder
	if v.Status == procRunning && v.Yielded {
		fmt.Fprintf(&b, "%s is still running after %d ms in session %s as process %s (not committed)", commandLine(v.Command, v.Args), v.DurationMS, v.SessionID, v.ProcessID)
		v.outputView.write(&b)
		return b.String()
	}
	if v.Status == procRunning {
		fmt.Fprintf(&b, "started %s in session %s as background process %s", commandLine(v.Command, v.Args), v.SessionID, v.ProcessID)
		return b.String()
	}
	b.WriteString(exitLine(commandLine(v.Command, v.Args), exitCodeOf(v.ExitCode), v.TimedOut, v.DurationMS))
	fmt.Fprintf(&b, " (session %s; not committed)", v.SessionID)
	v.outputView.write(&b)
	return b.String()
}

// commandLine renders a command for a summary line, shortened.
func commandLine(cmd string, args []string) string {
	s := strings.Join(append([]string{cmd}, args...), " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return strconv.Quote(s)
}

// exitCodeOf is an exit code, 0 when there is none.
func exitCodeOf(code *int) int {
	if code == nil {
		return 0
	}
	return *code
}

// exitLine says how a foreground command (what: the run or the command line) ended: its exit code
// and duration, or that it timed out and was killed.
func exitLine(what string, code int, timedOut bool, durationMS int64) string {
	if timedOut {
		return fmt.Sprintf("%s timed out after %d ms and was killed (exit %d)", what, durationMS, code)
	}
	return fmt.Sprintf("%s exited %d%s in %d ms", what, code, signalNote(code), durationMS)
}

// signalNote explains an exit code of 128+N: " (killed by SIGTERM)".
func signalNote(code int) string {
	if code > 128 && code < 128+65 {
		if name := unix.SignalName(syscall.Signal(code - 128)); name != "" {
			return " (killed by " + name + ")"
		}
	}
	return ""
}

type sessionLogsArgs struct {
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	ProcessID string `json:"process_id" jsonschema:"required" jsonschema_description:"The process_id from session_exec background=true."`
	Offset    int64  `json:"offset,omitempty" jsonschema_description:"Byte offset in its output to read from (the previous result's next_offset). Default 0."`
	WaitMS    int64  `json:"wait_ms,omitempty" jsonschema_description:"With no output past offset yet, wait up to this long (at most {wait_max_ms}) for some or for the exit. Default 0."`
}

// logsView is session_logs' result.
type logsView struct {
	SessionID string   `json:"session_id" jsonschema:"required"`
	ProcessID string   `json:"process_id" jsonschema:"required"`
	Command   string   `json:"command,omitempty"`
	Args      []string `json:"args,omitempty"`
	// Status is running or exited.
	Status    string     `json:"status" jsonschema:"required"`
	ExitCode  *int       `json:"exit_code,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Output is the process's output (stdout and stderr interleaved) from OutputOffset to
	// NextOffset. OmittedBytes counts the bytes between the offset asked for and OutputOffset
	// that are not shown (dropped by the sandbox's buffer, or beyond the size of one answer).
	Output       string `json:"output"`
	OutputOffset int64  `json:"output_offset"`
	NextOffset   int64  `json:"next_offset"`
	OmittedBytes int64  `json:"omitted_bytes,omitempty"`
	Replaced     bool   `json:"replaced_invalid_utf8,omitempty"`
	Steps
}

func (t *toolset) sessionLogs() server.ServerTool {
	return define(t, toolDef[sessionLogsArgs, logsView]{
		name:  "session_logs",
		title: "Read background process output",
		description: "Output (stdout and stderr interleaved) and status of a session's background process, from offset to now, " +
			"at most the last {logs_tail}; exit_code is 128+N when killed by signal N. Call again with offset=next_offset for only what is new. " +
			"The sandbox keeps at least the last {process_log} per process.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *sessionLogsArgs) (logsView, error) {
			if err := sessionRef(a.SessionID); err != nil {
				return logsView{}, err
			}
			if err := processRef(a.ProcessID); err != nil {
				return logsView{}, err
			}
			h, err := t.holder(ctx, "session_logs")
			if err != nil {
				return logsView{}, err
			}
			progress := t.startProgressIf(ctx, req, a.WaitMS > 0) // heartbeats while waiting
			st, err := t.eng.SessionLogs(ctx, h, a.SessionID, a.ProcessID, a.Offset, time.Duration(a.WaitMS)*time.Millisecond)
			progress.Stop()
			if err != nil {
				return logsView{}, err
			}
			return newLogsView(a.SessionID, a.Offset, st, t.opts.LogsTailBytes), nil
		},
	})
}

// newLogsView bounds a process status's output window to its last tail bytes. The shown part
// starts on a line (or at least a character) boundary; while the process runs, an incomplete
// UTF-8 character at the end is held back for the next call (next_offset stays before it).
func newLogsView(sessionID string, asked int64, st engine.ProcessStatus, tail int) logsView {
	v := logsView{SessionID: sessionID, ProcessID: st.ID, Command: st.Command, Args: st.Args}
	v.Status, v.ExitCode = procStatus(st)
	if v.ProcessID == "" {
		v.ProcessID = "?"
	}
	if !st.Started.IsZero() {
		s := st.Started
		v.StartedAt = &s
	}
	if !st.Ended.IsZero() && !st.Running {
		e := st.Ended
		v.EndedAt = &e
	}
	out, start := st.Output, st.Offset
	end := start + int64(len(out))
	if st.Running {
		if cut := incompleteSuffix(out); cut > 0 {
			out = out[:len(out)-cut]
			end -= int64(cut)
		}
	}
	if len(out) > tail {
		skip := len(out) - tail
		kept := trimTail(out[skip:])
		skip = len(out) - len(kept)
		out, start = kept, start+int64(skip)
	}
	v.Output, v.Replaced = validUTF8(out)
	v.OutputOffset, v.NextOffset = start, end
	v.OmittedBytes = max(0, start-asked)
	if v.Status == procRunning {
		v.then("session_logs", "read new output", map[string]any{"session_id": sessionID, "process_id": v.ProcessID, "offset": v.NextOffset, "wait_ms": 5000})
	}
	return v
}

// incompleteSuffix is the length of an incomplete UTF-8 sequence at the end of b (0 if none).
func incompleteSuffix(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		if utf8.RuneStart(b[len(b)-k]) {
			if !utf8.FullRune(b[len(b)-k:]) {
				return k
			}
			return 0
		}
	}
	return 0
}

// text is session_logs' human text: a status line, then the output.
func (v logsView) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "process %s", v.ProcessID)
	if v.Command != "" {
		b.WriteString(" " + commandLine(v.Command, v.Args))
	}
	if v.Status == procRunning {
		b.WriteString(" is running")
	} else {
		code := exitCodeOf(v.ExitCode)
		fmt.Fprintf(&b, " exited %d%s", code, signalNote(code))
	}
	n := v.NextOffset - v.OutputOffset
	switch {
	case n == 0 && v.Status == procRunning:
		fmt.Fprintf(&b, "; no new output since offset %d", v.NextOffset)
	case n == 0:
		fmt.Fprintf(&b, "; no output after offset %d", v.NextOffset)
	default:
		fmt.Fprintf(&b, "; output bytes %d-%d", v.OutputOffset, v.NextOffset)
	}
	if v.OmittedBytes > 0 {
		fmt.Fprintf(&b, "\n[… %d earlier bytes not shown (only the last part of the output is returned, and the sandbox keeps about the last 1 MiB); "+
			"for complete logs redirect the output to a file and read it with read_file …]", v.OmittedBytes)
	}
	if v.Replaced {
		b.WriteString("\nnote: the output is not valid UTF-8: invalid bytes are shown as U+FFFD")
	}
	if v.Output != "" {
		b.WriteString("\n" + v.Output)
	}
	return b.String()
}

type sessionKillArgs struct {
	SessionID string    `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…)."`
	ProcessID string    `json:"process_id" jsonschema:"required" jsonschema_description:"The process_id from session_exec background=true."`
	Signal    signalArg `json:"signal,omitempty" jsonschema_description:"TERM (default), INT, HUP, QUIT, KILL, USR1, USR2, STOP, CONT, with or without SIG, or a number."`
}

// killView is session_kill's result.
type killView struct {
	SessionID string `json:"session_id" jsonschema:"required"`
	ProcessID string `json:"process_id" jsonschema:"required"`
	Signal    string `json:"signal" jsonschema:"required"`
	// Status is the process's status right after the signal: running or exited.
	Status   string `json:"status" jsonschema:"required"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Steps
}

func (v killView) text() string {
	text := fmt.Sprintf("sent %s to process %s in session %s", v.Signal, v.ProcessID, v.SessionID)
	if v.Status == procRunning {
		return text + "; it is still running"
	}
	code := exitCodeOf(v.ExitCode)
	return text + fmt.Sprintf("; it has exited %d%s", code, signalNote(code))
}

func (t *toolset) sessionKill() server.ServerTool {
	return define(t, toolDef[sessionKillArgs, killView]{
		name:  "session_kill",
		title: "Signal background process",
		description: "Send a signal (default TERM; KILL stops at once) to a session's background process and its process group. " +
			"Returns its status right after; signalling an exited process is not an error.",
		hints: hints{destructive: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *sessionKillArgs) (killView, error) {
			if err := sessionRef(a.SessionID); err != nil {
				return killView{}, err
			}
			if err := processRef(a.ProcessID); err != nil {
				return killView{}, err
			}
			sig, name, err := engine.ParseSignal(string(a.Signal))
			if err != nil {
				return killView{}, err
			}
			h, err := t.holder(ctx, "session_kill")
			if err != nil {
				return killView{}, err
			}
			st, err := t.eng.SessionKill(ctx, h, a.SessionID, a.ProcessID, sig)
			if err != nil {
				return killView{}, err
			}
			v := killView{SessionID: a.SessionID, ProcessID: a.ProcessID, Signal: name}
			v.Status, v.ExitCode = procStatus(st)
			if st.Running {
				v.then("session_logs", "check whether it stops", map[string]any{"session_id": a.SessionID, "process_id": a.ProcessID, "wait_ms": 5000})
				v.then("session_kill", "stop it at once", map[string]any{"session_id": a.SessionID, "process_id": a.ProcessID, "signal": "KILL"})
			}
			return v, nil
		},
	})
}

// processRef checks the process_id argument of session_logs and session_kill.
func processRef(id string) error {
	if strings.TrimSpace(id) == "" {
		return argError("process_id", "missing; give the process_id that session_exec with background=true returned")
	}
	return nil
}

// signalArg is session_kill's signal: a name, or a number given as a string or a JSON number.
type signalArg string

// UnmarshalJSON accepts "TERM" as well as 15 (a model may send either); null means the default.
func (s *signalArg) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = signalArg(str)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*s = signalArg(n.String())
		return nil
	}
	kind := "value"
	switch b[0] {
	case 't', 'f':
		kind = "bool"
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	}
	return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[string]()}
}
