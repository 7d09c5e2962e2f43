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
	SessionID  string            `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) that open_session or attach_session returned."`
	Command    string            `json:"command" jsonschema:"required" jsonschema_description:"The program to run, looked up in PATH (e.g. \"npm\", \"python3\"). It is not a shell line: for pipes, redirects, globs, \"&&\" or \"cd\", use \"sh\" with args [\"-c\", \"your shell line\"]."`
	Args       []string          `json:"args,omitempty" jsonschema_description:"Arguments passed to the program as they are (no shell quoting needed)."`
	Cwd        string            `json:"cwd,omitempty" jsonschema_description:"Working directory, relative to /workspace or absolute under /workspace. Default /workspace."`
	Env        map[string]string `json:"env,omitempty" jsonschema_description:"Extra environment variables for this command only. Their values are never stored."`
	Stdin      string            `json:"stdin,omitempty" jsonschema_description:"Text fed to the command's standard input (at most 16 MiB). Default: empty input."`
	TimeoutMS  int64             `json:"timeout_ms,omitempty" jsonschema:"minimum=1,maximum=86400000,default=600000" jsonschema_description:"Foreground only: kill the command (and everything it started) after this many milliseconds. Default 600000 (10 minutes), maximum 86400000 (24 hours). A background process has no timeout: it runs until it exits, session_kill stops it, or the session ends."`
	Background bool              `json:"background,omitempty" jsonschema_description:"Start the command and return its process_id at once, leaving it running (dev servers, watchers, long builds). Read its output with session_logs and stop it with session_kill."`
}

// execView is session_exec's structured result: a foreground command's outcome, or the
// process_id of a background one.
type execView struct {
	SessionID  string   `json:"session_id"`
	Command    string   `json:"command"`
	Args       []string `json:"args,omitempty"`
	Cwd        string   `json:"cwd,omitempty"`
	Background bool     `json:"background,omitempty"`
	// ProcessID and Status are set for a background command.
	ProcessID string `json:"process_id,omitempty"`
	Status    string `json:"status"`

	ExitCode        *int   `json:"exit_code,omitempty"`
	TimedOut        bool   `json:"timed_out,omitempty"`
	DurationMS      int64  `json:"duration_ms,omitempty"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	StdoutBytes     int64  `json:"stdout_bytes"`
	StderrBytes     int64  `json:"stderr_bytes"`
	// Notes explain the output fields (invalid UTF-8 replaced, ...).
	Notes []string `json:"notes,omitempty"`
}

// Process statuses of session_exec and session_logs.
const (
	procRunning = "running"
	procExited  = "exited"
)

func (t *toolset) sessionExec() server.ServerTool {
	return define(t, toolDef[sessionExecArgs]{
		name:  "session_exec",
		title: "Run command in live session",
		description: "Run a command in a live session (see open_session). Unlike run_command nothing is committed: the changes stay in the running " +
			"sandbox, together with /tmp, installed packages and running processes, until commit_session saves /workspace and home as one commit " +
			"(or discard_session drops them). Commands may run at the same time. The network follows the session's egress policy. " +
			"Foreground (default): waits and returns exit_code, stdout, stderr and duration_ms; a non-zero exit code is reported, not a tool failure; " +
			"timeout_ms kills it (default 600000 = 10 min, maximum 24 h). Output is bounded: about 8 KiB from the start and 8 KiB from the end of each stream, " +
			"with a marker line saying how many bytes were left out; for complete output redirect it to a file and read it with read_file (session_id). " +
			"background=true: starts the command, returns a process_id at once and leaves it running: use it for dev servers, watchers and anything that " +
			"must keep running; follow its output with session_logs, stop it with session_kill; it ends at the latest with the session. " +
			"A server started this way is reachable from outside through session_url when it listens on one of the workspace's exposed_ports. " +
			"Only the session's holder can run commands.",
		hints:  hints{},
		handle: t.handleSessionExec,
	})
}

func (t *toolset) handleSessionExec(ctx context.Context, req mcp.CallToolRequest, a *sessionExecArgs) *mcp.CallToolResult {
	if msg := sessionRef(a.SessionID); msg != "" {
		return errorText(msg)
	}
	if msg := commandArgs(a.Command, a.TimeoutMS); msg != "" {
		return errorText(msg)
	}
	if a.Background && a.TimeoutMS != 0 {
		return errorText(invalidArg("timeout_ms", "applies to foreground commands only; a background process runs until it exits, "+
			"session_kill stops it, or the session ends; omit timeout_ms, or wrap the command: \"timeout\" with args [\"60\", …]"))
	}
	h, fail := t.holder(ctx, "session_exec")
	if fail != nil {
		return fail
	}
	var stdin []byte
	if a.Stdin != "" {
		stdin = []byte(a.Stdin)
	}
	var progress *progressReporter
	if !a.Background {
		progress = t.startProgress(ctx, req)
	}
	res, err := t.eng.SessionExec(ctx, h, engine.SessionExecRequest{
		SessionID: a.SessionID, Command: a.Command, Args: a.Args, Cwd: a.Cwd, Env: a.Env, Stdin: stdin,
		Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Background: a.Background,
		Progress: progress.callback(),
	})
	progress.Stop()
	if err != nil {
		return t.fail("session_exec", err)
	}
	v := execView{SessionID: a.SessionID, Command: a.Command, Args: a.Args, Cwd: a.Cwd, Background: a.Background}
	if a.Background {
		v.ProcessID, v.Status = res.ProcessID, procRunning
		return result(v, fmt.Sprintf("started %s in session %s as background process %s; follow its output with session_logs "+
			"(session_id %s, process_id %s, wait_ms to wait for output), stop it with session_kill",
			commandLine(a.Command, a.Args), a.SessionID, res.ProcessID, a.SessionID, res.ProcessID))
	}
	hint := fmt.Sprintf("; for all of it, redirect the output to a file and read it with read_file (session_id %s)", a.SessionID)
	stdout := boundOutput(res.Stdout, t.opts.RunHeadBytes, t.opts.RunTailBytes, hint)
	stderr := boundOutput(res.Stderr, t.opts.RunHeadBytes, t.opts.RunTailBytes, hint)
	code := res.ExitCode
	v.Status, v.ExitCode, v.TimedOut, v.DurationMS = procExited, &code, res.TimedOut, res.DurationMS
	v.Stdout, v.Stderr = stdout.Text, stderr.Text
	v.StdoutTruncated, v.StderrTruncated = stdout.Truncated, stderr.Truncated
	v.StdoutBytes, v.StderrBytes = stdout.Total, stderr.Total
	for _, s := range []struct {
		name string
		b    boundedStream
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if s.b.Replaced {
			v.Notes = append(v.Notes, s.name+" is not valid UTF-8 (binary output?): invalid bytes are shown as U+FFFD; write it to a file and read_file it (which returns base64) for the exact bytes")
		}
	}
	return result(v, execText(v))
}

// execText is a foreground session_exec's human text: a summary line, then the output streams.
func execText(v execView) string {
	var b strings.Builder
	code := 0
	if v.ExitCode != nil {
		code = *v.ExitCode
	}
	if v.TimedOut {
		fmt.Fprintf(&b, "%s timed out after %d ms and was killed (exit %d)", commandLine(v.Command, v.Args), v.DurationMS, code)
	} else {
		fmt.Fprintf(&b, "%s exited %d%s in %d ms", commandLine(v.Command, v.Args), code, signalNote(code), v.DurationMS)
	}
	fmt.Fprintf(&b, " (session %s; not committed)", v.SessionID)
	for _, n := range v.Notes {
		b.WriteString("\nnote: " + n)
	}
	writeStream(&b, "stdout", v.Stdout, v.StdoutBytes)
	writeStream(&b, "stderr", v.Stderr, v.StderrBytes)
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
	SessionID string `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) the process runs in."`
	ProcessID string `json:"process_id" jsonschema:"required" jsonschema_description:"The process_id that session_exec with background=true returned."`
	Offset    int64  `json:"offset,omitempty" jsonschema:"minimum=0" jsonschema_description:"Byte offset in the process's output to read from. Default 0: from the start. To get only new output, pass the next_offset of the previous session_logs result."`
	WaitMS    int64  `json:"wait_ms,omitempty" jsonschema:"minimum=0,maximum=600000" jsonschema_description:"If there is no output past offset yet and the process still runs, wait up to this many milliseconds for new output or its exit (returns as soon as either happens). Default 0: answer at once. Maximum 600000; keep it below your client's request timeout (often 60000)."`
}

// logsView is session_logs' structured result.
type logsView struct {
	SessionID string   `json:"session_id"`
	ProcessID string   `json:"process_id"`
	Command   string   `json:"command,omitempty"`
	Args      []string `json:"args,omitempty"`
	// Status is running or exited.
	Status    string     `json:"status"`
	ExitCode  *int       `json:"exit_code,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Output is the process's output (stdout and stderr interleaved) from OutputOffset to
	// NextOffset. OmittedBytes counts the bytes between the offset asked for and OutputOffset
	// that are not shown (dropped by the sandbox's buffer, or beyond the size of one answer).
	Output       string `json:"output"`
	OutputOffset int64  `json:"output_offset"`
	NextOffset   int64  `json:"next_offset"`
	OmittedBytes int64  `json:"omitted_bytes"`
	Truncated    bool   `json:"truncated"`
	Replaced     bool   `json:"replaced_invalid_utf8,omitempty"`
}

func (t *toolset) sessionLogs() server.ServerTool {
	return define(t, toolDef[sessionLogsArgs]{
		name:  "session_logs",
		title: "Read background process output",
		description: "Read the output of a background process of a live session (started by session_exec with background=true) and whether it still runs: " +
			"status running or exited, with exit_code (128+N when killed by signal N). stdout and stderr come interleaved, as produced. " +
			"Returns the output from offset (default 0, the start) up to now, but at most the last 64 KiB of it; " +
			"next_offset is where to continue: call again with offset=next_offset to get only what is new. " +
			"wait_ms waits up to that long for new output or the process's exit before answering (it returns as soon as either happens): " +
			"use it to follow a server starting up. The sandbox keeps at least the last 1 MiB of each process's output; " +
			"omitted_bytes counts output you asked for but did not get. For complete logs, redirect the command's output to a file and read it " +
			"with read_file (session_id). Only the session's holder can read them.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *sessionLogsArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			if strings.TrimSpace(a.ProcessID) == "" {
				return errorText(invalidArg("process_id", "missing; give the process_id that session_exec with background=true returned"))
			}
			if a.Offset < 0 {
				return errorText(invalidArg("offset", "must be 0 or more: 0 for the start, or the next_offset of the previous result"))
			}
			if a.WaitMS < 0 || a.WaitMS > maxWaitMS {
				return errorText(invalidArg("wait_ms", fmt.Sprintf("%d is out of range: give 0 to %d milliseconds", a.WaitMS, maxWaitMS)))
			}
			h, fail := t.holder(ctx, "session_logs")
			if fail != nil {
				return fail
			}
			var progress *progressReporter
			if a.WaitMS > 0 {
				progress = t.startProgress(ctx, req) // heartbeats while waiting
			}
			st, err := t.eng.SessionLogs(ctx, h, a.SessionID, a.ProcessID, a.Offset, time.Duration(a.WaitMS)*time.Millisecond)
			progress.Stop()
			if err != nil {
				return t.fail("session_logs", err)
			}
			v := newLogsView(a.SessionID, a.Offset, st, t.opts.LogsTailBytes)
			return result(v, logsText(v))
		},
	})
}

// newLogsView bounds a process status's output window to its last tail bytes. The shown part
// starts on a line (or at least a character) boundary; while the process runs, an incomplete
// UTF-8 character at the end is held back for the next call (next_offset stays before it).
func newLogsView(sessionID string, asked int64, st engine.ProcessStatus, tail int) logsView {
	v := logsView{SessionID: sessionID, ProcessID: st.ID, Command: st.Command, Args: st.Args, Status: procExited, ExitCode: st.ExitCode}
	if v.ProcessID == "" {
		v.ProcessID = "?"
	}
	if st.Running {
		v.Status, v.ExitCode = procRunning, nil
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
	v.Truncated = v.OmittedBytes > 0
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

// logsText is session_logs' human text: a status line, then the output.
func logsText(v logsView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "process %s", v.ProcessID)
	if v.Command != "" {
		b.WriteString(" " + commandLine(v.Command, v.Args))
	}
	if v.Status == procRunning {
		b.WriteString(" is running")
	} else {
		code := 0
		if v.ExitCode != nil {
			code = *v.ExitCode
		}
		fmt.Fprintf(&b, " exited %d%s", code, signalNote(code))
	}
	n := v.NextOffset - v.OutputOffset
	switch {
	case n == 0 && v.Status == procRunning:
		fmt.Fprintf(&b, "; no new output since offset %d; call again with offset %d (and wait_ms to wait for some)", v.NextOffset, v.NextOffset)
	case n == 0:
		fmt.Fprintf(&b, "; no output after offset %d", v.NextOffset)
	default:
		fmt.Fprintf(&b, "; output bytes %d-%d", v.OutputOffset, v.NextOffset)
		if v.Status == procRunning {
			fmt.Fprintf(&b, "; for new output call again with offset %d", v.NextOffset)
		}
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
	SessionID string    `json:"session_id" jsonschema:"required" jsonschema_description:"The session (ses_…) the process runs in."`
	ProcessID string    `json:"process_id" jsonschema:"required" jsonschema_description:"The process_id that session_exec with background=true returned."`
	Signal    signalArg `json:"signal,omitempty" jsonschema_description:"The signal: TERM (default: ask it to stop), INT (like Ctrl-C), HUP, QUIT, KILL (stop at once, cannot be ignored), USR1, USR2, STOP, CONT; with or without the SIG prefix, or a number such as \"9\"."`
}

// killView is session_kill's structured result.
type killView struct {
	SessionID string `json:"session_id"`
	ProcessID string `json:"process_id"`
	Signal    string `json:"signal"`
	// Status is the process's status right after the signal: running or exited.
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code,omitempty"`
}

func (t *toolset) sessionKill() server.ServerTool {
	return define(t, toolDef[sessionKillArgs]{
		name:  "session_kill",
		title: "Signal background process",
		description: "Send a signal to a background process of a live session (started by session_exec with background=true) and to every process it started " +
			"(its process group). Default TERM, which asks it to stop; KILL stops it at once; INT is like Ctrl-C. " +
			"Returns the process's status right after: one that handles TERM slowly may still read running, so check with session_logs " +
			"(wait_ms) and send KILL if it does not stop. Signalling a process that has already exited is not an error. " +
			"The session itself stays open. Only the session's holder can send signals.",
		hints: hints{destructive: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *sessionKillArgs) *mcp.CallToolResult {
			if msg := sessionRef(a.SessionID); msg != "" {
				return errorText(msg)
			}
			if strings.TrimSpace(a.ProcessID) == "" {
				return errorText(invalidArg("process_id", "missing; give the process_id that session_exec with background=true returned"))
			}
			sig, name, msg := parseSignal(string(a.Signal))
			if msg != "" {
				return errorText(msg)
			}
			h, fail := t.holder(ctx, "session_kill")
			if fail != nil {
				return fail
			}
			st, err := t.eng.SessionKill(ctx, h, a.SessionID, a.ProcessID, sig)
			if err != nil {
				return t.fail("session_kill", err)
			}
			v := killView{SessionID: a.SessionID, ProcessID: a.ProcessID, Signal: name, Status: procExited, ExitCode: st.ExitCode}
			if st.Running {
				v.Status, v.ExitCode = procRunning, nil
			}
			text := fmt.Sprintf("sent %s to process %s in session %s", name, a.ProcessID, a.SessionID)
			if v.Status == procRunning {
				text += "; it is still running: check with session_logs (wait_ms) and send KILL if it does not stop"
			} else {
				code := 0
				if v.ExitCode != nil {
					code = *v.ExitCode
				}
				text += fmt.Sprintf("; it has exited %d%s", code, signalNote(code))
			}
			return result(v, text)
		},
	})
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

// parseSignal resolves a signal name or number. It returns the signal and its canonical name, or
// an error message that lists the accepted names.
func parseSignal(s string) (syscall.Signal, string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return syscall.SIGTERM, "SIGTERM", ""
	}
	bad := func() (syscall.Signal, string, string) {
		return 0, "", invalidArg("signal", fmt.Sprintf("%q is not a signal; use TERM (the default), INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT "+
			"(with or without the SIG prefix), or a signal number from 1 to 31", s))
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 31 || unix.SignalName(syscall.Signal(n)) == "" {
			return bad()
		}
		return syscall.Signal(n), unix.SignalName(syscall.Signal(n)), ""
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return bad()
	}
	return sig, name, ""
}
