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

// maxWaitMS bounds get_run's wait_ms.
const maxWaitMS = 600_000

type runCommandArgs struct {
	Workspace      string            `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
	Command        string            `json:"command" jsonschema:"required" jsonschema_description:"The program to run, looked up in PATH (e.g. \"python3\", \"npm\"). It is not a shell line: for pipes, redirects, globs or command chains, use \"sh\" with args [\"-c\", \"your shell line\"]."`
	Args           []string          `json:"args,omitempty" jsonschema_description:"Arguments passed to the program as they are (no shell quoting needed)."`
	Cwd            string            `json:"cwd,omitempty" jsonschema_description:"Working directory, relative to /workspace or absolute under /workspace. Default /workspace."`
	Env            map[string]string `json:"env,omitempty" jsonschema_description:"Extra environment variables for this command only. Their values are never stored (only their names)."`
	Stdin          string            `json:"stdin,omitempty" jsonschema_description:"Text fed to the command's standard input (at most 16 MiB). Default: empty input. For binary input, write a file with write_files and redirect from it."`
	TimeoutMS      int64             `json:"timeout_ms,omitempty" jsonschema:"minimum=1,maximum=86400000,default=600000" jsonschema_description:"Kill the command (and everything it started) after this many milliseconds. Default 600000 (10 minutes), maximum 86400000 (24 hours). A timed-out command still commits what it wrote."`
	Policy         *policyArg        `json:"policy,omitempty" jsonschema_description:"Network egress policy for this command only, instead of the workspace's default policy (same shape as create_workspace's). Unlike the default, it may carry a literal secret (credential {\"value\": \"…\"}): the egress proxy injects it into requests, and it is never stored or shown (records say redacted). It must lie within the limit the server's operator set."`
	Background     bool              `json:"background,omitempty" jsonschema_description:"Return at once with a run_id and status queued instead of waiting; poll get_run with that run_id for the outcome and output. Use it for commands that take longer than a few minutes."`
	IdempotencyKey string            `json:"idempotency_key,omitempty" jsonschema_description:"Any unique string (at most 256 bytes) naming this request. Calling again with the same key on the same workspace returns the run already made instead of running the command twice: use it when a call may be retried after a lost connection."`
}

func (t *toolset) runCommand() server.ServerTool {
	return define(t, toolDef[runCommandArgs]{
		name:  "run_command",
		title: "Run command",
		description: "Run one command durably in a workspace's sandbox. It starts from the workspace's current state (head), " +
			"and when it ends a snapshot is committed after EVERY command, whatever its exit code (also on timeout), " +
			"so its file changes persist for the next command. It is not committed if you cancel it or the sandbox fails. " +
			"Commands in one workspace run one at a time, in order. Only /workspace (the default cwd) and the home directory persist; " +
			"/tmp, processes and the network do not. The network is governed by the workspace's egress policy (deny-all by default). " +
			"Waits for the command and returns exit_code, stdout, stderr, duration_ms and the new commit_id. " +
			"A non-zero exit code is reported, not treated as a tool failure. " +
			"Output is bounded: at most about 8 KiB from the start and 8 KiB from the end of each stream, with a marker line saying how many bytes were left out; " +
			"stdout_truncated/stderr_truncated say when that happened, stdout_bytes/stderr_bytes give the full sizes, " +
			"and get_run returns up to the last 64 KiB. For complete logs, redirect to a file and page through it with read_file. " +
			"With background=true it returns a run_id at once; poll it with get_run. " +
			"Defaults: timeout_ms 600000 (10 min), maximum 86400000 (24 h).",
		hints:  hints{},
		handle: t.handleRunCommand,
	})
}

// commandArgs checks the command and timeout_ms arguments run_command and session_exec share;
// it returns a message for the agent, or "".
func commandArgs(command string, timeoutMS int64) string {
	if strings.TrimSpace(command) == "" {
		return invalidArg("command", "missing or empty; give a program such as \"ls\", with its arguments in args, or \"sh\" with args [\"-c\", \"a shell line\"]")
	}
	if timeoutMS < 0 || timeoutMS > engine.MaxTimeout.Milliseconds() {
		return invalidArg("timeout_ms", fmt.Sprintf("%d is out of range: give 1 to %d milliseconds, or omit it for the default %d (10 minutes)",
			timeoutMS, engine.MaxTimeout.Milliseconds(), engine.DefaultTimeout.Milliseconds()))
	}
	return ""
}

func (t *toolset) handleRunCommand(ctx context.Context, req mcp.CallToolRequest, a *runCommandArgs) *mcp.CallToolResult {
	if msg := workspaceRef(a.Workspace); msg != "" {
		return errorText(msg)
	}
	if msg := commandArgs(a.Command, a.TimeoutMS); msg != "" {
		return errorText(msg)
	}
	pol, msg := a.Policy.policy("policy")
	if msg != "" {
		return errorText(msg)
	}
	var stdin []byte
	if a.Stdin != "" {
		stdin = []byte(a.Stdin)
	}
	var progress *progressReporter
	if !a.Background {
		progress = t.startProgress(ctx, req)
	}
	res, err := t.eng.RunCommand(ctx, engine.RunCommandRequest{
		Workspace: a.Workspace, Command: a.Command, Args: a.Args, Cwd: a.Cwd, Env: a.Env, Stdin: stdin,
		Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Policy: pol,
		Background: a.Background, IdempotencyKey: a.IdempotencyKey,
		Progress: progress.callback(),
	})
	progress.Stop()
	if err != nil {
		return t.fail("run_command", err)
	}
	hint := fmt.Sprintf("; get_run with run_id %s shows up to the last %s of each stream", res.Run.ID, sizeText(int64(t.opts.PollTailBytes)))
	v := t.runView(res, t.opts.RunHeadBytes, t.opts.RunTailBytes, hint)
	out := result(v, runText(v))
	// A foreground run that did not run to an end is a failure of the call: the command's changes
	// were not committed. The structured content still describes the run.
	if !a.Background && (v.Status == engine.RunFailed || v.Status == engine.RunCancelled || v.Status == engine.RunLost) {
		out.IsError = true
	}
	return out
}

type getRunArgs struct {
	RunID  string `json:"run_id" jsonschema:"required" jsonschema_description:"The run (run_…) that run_command returned."`
	WaitMS int64  `json:"wait_ms,omitempty" jsonschema:"minimum=0,maximum=600000" jsonschema_description:"Wait up to this many milliseconds for the run to finish before answering (returns as soon as it finishes). Default 0: answer at once. Maximum 600000; keep it below your client's request timeout (often 60000)."`
}

func (t *toolset) getRun() server.ServerTool {
	return define(t, toolDef[getRunArgs]{
		name:  "get_run",
		title: "Get run",
		description: "Get the status and output of a run made by run_command: queued, running, exited (it ran to an exit code or timed out; " +
			"commit_id is its commit), failed (the sandbox could not run it), cancelled or lost (the server stopped meanwhile); " +
			"the last three committed nothing. Use it to poll a background run (with wait_ms to wait for the end), " +
			"or to see more of a finished run's output than run_command showed: up to the first 8 KiB and the last 64 KiB of each stream. " +
			"Run records survive server restarts.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *getRunArgs) *mcp.CallToolResult {
			if strings.TrimSpace(a.RunID) == "" {
				return errorText(invalidArg("run_id", "missing; give the run_id (run_…) that run_command returned"))
			}
			if a.WaitMS < 0 || a.WaitMS > maxWaitMS {
				return errorText(invalidArg("wait_ms", fmt.Sprintf("%d is out of range: give 0 to %d milliseconds", a.WaitMS, maxWaitMS)))
			}
			var progress *progressReporter
			if a.WaitMS > 0 {
				progress = t.startProgress(ctx, req) // heartbeats while waiting
			}
			res, err := t.eng.GetRun(ctx, engine.GetRunRequest{ID: a.RunID, Wait: time.Duration(a.WaitMS) * time.Millisecond})
			progress.Stop()
			if err != nil {
				return t.fail("get_run", err)
			}
			hint := fmt.Sprintf("; only the first %s and the last %s of each stream are shown; for complete output, redirect it to a file in the workspace and read it with read_file",
				sizeText(int64(t.opts.PollHeadBytes)), sizeText(int64(t.opts.PollTailBytes)))
			v := t.runView(res, t.opts.PollHeadBytes, t.opts.PollTailBytes, hint)
			text := runText(v)
			if !res.Run.Done() && a.WaitMS > 0 {
				text = fmt.Sprintf("still %s after waiting %d ms; call get_run again\n", res.Run.Status, a.WaitMS) + text
			}
			return result(v, text)
		},
	})
}

type cancelRunArgs struct {
	RunID string `json:"run_id" jsonschema:"required" jsonschema_description:"The run (run_…) to cancel."`
}

func (t *toolset) cancelRun() server.ServerTool {
	return define(t, toolDef[cancelRunArgs]{
		name:  "cancel_run",
		title: "Cancel run",
		description: "Cancel a queued or running run (typically a background one): the command and everything it started are killed, " +
			"its changes are discarded, nothing is committed, and the workspace stays at the head it had before. " +
			"The run then reads cancelled. A run that already finished cannot be cancelled (the error says how it finished). " +
			"To cancel a foreground run_command, cancel the tool call itself in your client.",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *cancelRunArgs) *mcp.CallToolResult {
			if strings.TrimSpace(a.RunID) == "" {
				return errorText(invalidArg("run_id", "missing; give the run_id (run_…) to cancel"))
			}
			run, err := t.eng.CancelRun(ctx, a.RunID)
			if err != nil {
				return t.fail("cancel_run", err)
			}
			text := fmt.Sprintf("run %s is %s", run.ID, run.Status)
			if run.Error != "" {
				text += ": " + strings.TrimPrefix(run.Error, run.Status+": ")
			}
			return result(run, text)
		},
	})
}

// runView is the structured result of run_command and get_run.
type runView struct {
	RunID       string   `json:"run_id"`
	WorkspaceID string   `json:"workspace_id"`
	Command     string   `json:"command"`
	Args        []string `json:"args,omitempty"`
	Cwd         string   `json:"cwd,omitempty"`
	// Status is queued, running, exited, failed, cancelled or lost.
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	Error    string `json:"error,omitempty"`

	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	StdoutBytes     int64  `json:"stdout_bytes"`
	StderrBytes     int64  `json:"stderr_bytes"`

	DurationMS     int64      `json:"duration_ms"`
	BaseCommit     string     `json:"base_commit,omitempty"`
	CommitID       string     `json:"commit_id,omitempty"`
	Background     bool       `json:"background,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Policy         string     `json:"policy,omitempty"`
	Created        time.Time  `json:"created_at"`
	Started        *time.Time `json:"started_at,omitempty"`
	Finished       *time.Time `json:"finished_at,omitempty"`
	Warnings       []string   `json:"warnings,omitempty"`
	// Notes explain the output fields (invalid UTF-8 replaced, ...).
	Notes []string `json:"notes,omitempty"`
}

// runView bounds a run's output and flattens it with the run record.
func (t *toolset) runView(res engine.RunResult, head, tail int, hint string) runView {
	r := res.Run
	stdout := boundOutput(res.Stdout, head, tail, hint)
	stderr := boundOutput(res.Stderr, head, tail, hint)
	v := runView{
		RunID: r.ID, WorkspaceID: r.Workspace, Command: r.Command, Args: r.Args, Cwd: r.Cwd,
		Status: r.Status, ExitCode: r.ExitCode, TimedOut: r.TimedOut, Error: r.Error,
		Stdout: stdout.Text, Stderr: stderr.Text,
		StdoutTruncated: stdout.Truncated, StderrTruncated: stderr.Truncated,
		StdoutBytes: stdout.Total, StderrBytes: stderr.Total,
		DurationMS: r.DurationMS, BaseCommit: r.BaseCommit, CommitID: r.CommitID,
		Background: r.Background, IdempotencyKey: r.IdempotencyKey, Policy: r.Policy,
		Created: r.Created, Started: r.Started, Finished: r.Finished, Warnings: r.Warnings,
	}
	for _, s := range []struct {
		name string
		b    boundedStream
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if s.b.Replaced {
			v.Notes = append(v.Notes, s.name+" is not valid UTF-8 (binary output?): invalid bytes are shown as U+FFFD; write it to a file and read_file it (which returns base64) for the exact bytes")
		}
	}
	return v
}

// runText is the human text of a run: a summary line, then the output streams.
func runText(v runView) string {
	var b strings.Builder
	switch v.Status {
	case engine.RunExited:
		code := 0
		if v.ExitCode != nil {
			code = *v.ExitCode
		}
		if v.TimedOut {
			fmt.Fprintf(&b, "run %s timed out after %d ms and was killed (exit %d); commit %s", v.RunID, v.DurationMS, code, v.CommitID)
		} else {
			fmt.Fprintf(&b, "run %s exited %d in %d ms; commit %s", v.RunID, code, v.DurationMS, v.CommitID)
		}
	case engine.RunQueued, engine.RunRunning:
		fmt.Fprintf(&b, "run %s is %s; poll it with get_run (run_id %s)", v.RunID, v.Status, v.RunID)
	default:
		fmt.Fprintf(&b, "run %s %s", v.RunID, v.Status)
		if v.Error != "" {
			b.WriteString(": " + strings.TrimPrefix(v.Error, v.Status+": "))
		}
	}
	for _, w := range v.Warnings {
		b.WriteString("\nwarning: " + w)
	}
	for _, n := range v.Notes {
		b.WriteString("\nnote: " + n)
	}
	writeStream(&b, "stdout", v.Stdout, v.StdoutBytes)
	writeStream(&b, "stderr", v.Stderr, v.StderrBytes)
	return b.String()
}

// writeStream appends one output stream (already bounded) to a result text under a header giving
// its full size; an empty stream adds nothing.
func writeStream(b *strings.Builder, name, text string, total int64) {
	if total == 0 {
		return
	}
	fmt.Fprintf(b, "\n--- %s (%d bytes) ---\n%s", name, total, text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
}
