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

type runCommandArgs struct {
	Workspace      string            `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	Command        string            `json:"command" jsonschema:"required" jsonschema_description:"{shell_rule}"`
	Args           []string          `json:"args,omitempty" jsonschema_description:"Arguments of the program command names, passed as they are; present (even []) means no shell."`
	Cwd            string            `json:"cwd,omitempty" jsonschema_description:"Working directory, relative to /workspace or absolute under it. Default /workspace."`
	Env            map[string]string `json:"env,omitempty" jsonschema_description:"Extra environment variables for this command; values are never stored."`
	Stdin          string            `json:"stdin,omitempty" jsonschema_description:"Text fed to standard input (at most {max_stdin})."`
	TimeoutMS      int64             `json:"timeout_ms,omitempty" jsonschema_description:"Kill the command and everything it started after this long: default {timeout_default_ms}, at most {timeout_max_ms}. A timed-out command still commits."`
	Policy         *policyArg        `json:"policy,omitempty" jsonschema_description:"Egress policy for this run only, instead of the workspace's (grammar as in set_policy); may carry literal secrets, never stored."`
	Background     bool              `json:"background,omitempty" jsonschema_description:"Return at once with run_id; follow it with get_run."`
	YieldMS        int64             `json:"yield_ms,omitempty" jsonschema_description:"Return after this long with status running, the output so far and run_id, if the command is still going (it goes on and commits): default {yield_default_ms}, at most {yield_max_ms}."`
	IdempotencyKey string            `json:"idempotency_key,omitempty" jsonschema_description:"A unique string (at most 256 bytes): a retry with the same key returns the run already made instead of running it again."`
}

func (t *toolset) runCommand() server.ServerTool {
	return define(t, toolDef[runCommandArgs, runView]{
		name:  "run_command",
		title: "Run command",
		description: "Run one command durably in a fresh sandbox from the workspace's head; when it ends (any exit code, or timeout) " +
			"its changes to /workspace and home are committed (none if it changed nothing) for the next command. One at a time per workspace, in order. " +
			"/tmp and processes do not persist; the network follows the egress policy (none by default). " +
			"A non-zero exit is a result, not a tool failure. Output: first {run_head} and last {run_tail} per stream; get_run shows more.",
		hints:  hints{openWorld: true},
		handle: t.handleRunCommand,
	})
}

func (t *toolset) handleRunCommand(ctx context.Context, req mcp.CallToolRequest, a *runCommandArgs) (runView, error) {
	if err := workspaceRef(a.Workspace); err != nil {
		return runView{}, err
	}
	pol, err := a.Policy.policy("policy")
	if err != nil {
		return runView{}, err
	}
	progress := t.startProgressIf(ctx, req, !a.Background)
	res, err := t.eng.RunCommand(ctx, engine.RunCommandRequest{
		Workspace: a.Workspace, Command: a.Command, Args: a.Args, Cwd: a.Cwd, Env: a.Env, Stdin: stdinBytes(a.Stdin),
		Timeout: time.Duration(a.TimeoutMS) * time.Millisecond, Policy: pol,
		Background: a.Background, IdempotencyKey: a.IdempotencyKey, Yield: time.Duration(a.YieldMS) * time.Millisecond,
		Progress: progress.callback(),
	})
	progress.Stop()
	if err != nil {
		return runView{}, err
	}
	v := t.runView(res, t.opts.RunHeadBytes, t.opts.RunTailBytes)
	// A foreground run that did not run to an end is a failure of the call: the command's changes
	// were not committed. The result still describes the run.
	v.failedCall = !a.Background && (v.Status == engine.RunFailed || v.Status == engine.RunCancelled || v.Status == engine.RunLost)
	return v, nil
}

type getRunArgs struct {
	RunID        string `json:"run_id" jsonschema:"required" jsonschema_description:"The run (run_…)."`
	WaitMS       int64  `json:"wait_ms,omitempty" jsonschema_description:"Wait up to this long (at most {wait_max_ms}; keep it below your client's timeout) for the run to finish, or with offsets for new output. Default 0."`
	StdoutOffset *int64 `json:"stdout_offset,omitempty" jsonschema_description:"Return stdout only from this byte offset on (a previous result's stdout_next_offset)."`
	StderrOffset *int64 `json:"stderr_offset,omitempty" jsonschema_description:"Return stderr only from this byte offset on (a previous result's stderr_next_offset)."`
}

func (t *toolset) getRun() server.ServerTool {
	return define(t, toolDef[getRunArgs, runView]{
		name:  "get_run",
		title: "Get run",
		description: "Status and output of a run: queued, running, exited (ran to an exit code or timeout; commit_id holds its changes, if any), " +
			"failed, cancelled or lost (these three committed nothing). Shows the first {poll_head} and last {poll_tail} of each stream, " +
			"or with offsets only what is new (at most {poll_tail} per stream). Run records survive restarts.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *getRunArgs) (runView, error) {
			if strings.TrimSpace(a.RunID) == "" {
				return runView{}, argError("run_id", "missing; give the run_id (run_…) that run_command returned")
			}
			progress := t.startProgressIf(ctx, req, a.WaitMS > 0) // heartbeats while waiting
			res, err := t.eng.GetRun(ctx, engine.GetRunRequest{ID: a.RunID, Wait: time.Duration(a.WaitMS) * time.Millisecond,
				StdoutOffset: a.StdoutOffset, StderrOffset: a.StderrOffset})
			progress.Stop()
			if err != nil {
				return runView{}, err
			}
			if a.StdoutOffset != nil || a.StderrOffset != nil {
				return t.runWindowView(res), nil
			}
			return t.runView(res, t.opts.PollHeadBytes, t.opts.PollTailBytes), nil
		},
	})
}

type cancelRunArgs struct {
	RunID string `json:"run_id" jsonschema:"required" jsonschema_description:"The run (run_…) to cancel."`
}

func (t *toolset) cancelRun() server.ServerTool {
	return define(t, toolDef[cancelRunArgs, runView]{
		name:  "cancel_run",
		title: "Cancel run",
		description: "Cancel a queued or running run: the command and everything it started are killed, nothing is committed, " +
			"and the workspace stays at its head. A finished run cannot be cancelled.",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *cancelRunArgs) (runView, error) {
			if strings.TrimSpace(a.RunID) == "" {
				return runView{}, argError("run_id", "missing; give the run_id (run_…) to cancel")
			}
			run, err := t.eng.CancelRun(ctx, a.RunID)
			if err != nil {
				return runView{}, err
			}
			return t.runView(engine.RunResult{Run: run}, 0, 0), nil
		},
	})
}

type listRunsArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	Status    string `json:"status,omitempty" jsonschema_description:"Only runs with this status: queued, running, exited, failed, cancelled or lost."`
	Limit     int    `json:"limit,omitempty" jsonschema_description:"At most this many runs: default {list_runs_default}, at most {list_runs_max}."`
	Cursor    string `json:"cursor,omitempty" jsonschema_description:"A previous result's next_cursor, to list older runs."`
}

// runSummary is one run of list_runs.
type runSummary struct {
	RunID    string   `json:"run_id" jsonschema:"required"`
	Command  string   `json:"command"`
	Args     []string `json:"args,omitempty"`
	Shell    bool     `json:"shell,omitempty"`
	Status   string   `json:"status" jsonschema:"required"`
	ExitCode *int     `json:"exit_code,omitempty"`
	TimedOut bool     `json:"timed_out,omitempty"`
	CommitID string   `json:"commit_id,omitempty"`
	// Unchanged is set when it ran to an end without changing anything (no commit).
	Unchanged bool       `json:"unchanged,omitempty"`
	Created   time.Time  `json:"created_at"`
	Finished  *time.Time `json:"finished_at,omitempty"`
}

// runList is list_runs' result.
type runList struct {
	Workspace  string       `json:"workspace" jsonschema:"required"`
	Runs       []runSummary `json:"runs" jsonschema:"required"`
	NextCursor string       `json:"next_cursor,omitempty"`
	Steps
}

func (l runList) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d run(s) of workspace %s, newest first", len(l.Runs), l.Workspace)
	if l.NextCursor != "" {
		b.WriteString(" (older runs follow: next_cursor " + l.NextCursor + ")")
	}
	for _, r := range l.Runs {
		fmt.Fprintf(&b, "\n%s  %s  %-9s", r.RunID, r.Created.Format(time.RFC3339), r.Status)
		if r.ExitCode != nil {
			fmt.Fprintf(&b, " exit %d", *r.ExitCode)
		}
		if r.CommitID != "" {
			b.WriteString(" commit " + r.CommitID)
		}
		if r.Unchanged {
			b.WriteString(" (no change)")
		}
		b.WriteString("  " + commandLine(r.Command, r.Args))
	}
	return b.String()
}

func (t *toolset) listRuns() server.ServerTool {
	return define(t, toolDef[listRunsArgs, runList]{
		name:  "list_runs",
		title: "List runs",
		description: "List a workspace's runs, newest first, including background runs, runs still going after a yield " +
			"and runs whose call was cancelled or lost; get_run shows one with its output.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *listRunsArgs) (runList, error) {
			runs, next, err := t.eng.ListRuns(ctx, engine.ListRunsRequest{Workspace: a.Workspace, Status: a.Status, Limit: a.Limit, Cursor: a.Cursor})
			if err != nil {
				return runList{}, err
			}
			l := runList{Workspace: a.Workspace, Runs: make([]runSummary, 0, len(runs)), NextCursor: next}
			for _, r := range runs {
				l.Runs = append(l.Runs, runSummary{RunID: r.ID, Command: r.Command, Args: r.Args, Shell: r.Shell, Status: r.Status,
					ExitCode: r.ExitCode, TimedOut: r.TimedOut, CommitID: r.CommitID, Unchanged: r.Unchanged, Created: r.Created.UTC(), Finished: r.Finished})
			}
			if next != "" {
				args := map[string]any{"workspace": a.Workspace, "cursor": next}
				if a.Status != "" {
					args["status"] = a.Status
				}
				l.then("list_runs", "older runs", args)
			}
			return l, nil
		},
	})
}

// runView is a run as run_command, get_run and cancel_run return it.
type runView struct {
	RunID       string   `json:"run_id" jsonschema:"required"`
	WorkspaceID string   `json:"workspace_id" jsonschema:"required"`
	Command     string   `json:"command"`
	Args        []string `json:"args,omitempty"`
	// Shell is set when command ran as a shell line.
	Shell bool   `json:"shell,omitempty"`
	Cwd   string `json:"cwd,omitempty"`
	// Status is queued, running, exited, failed, cancelled or lost; Running is set while the
	// command still goes on (after a yield, or in the background).
	Status   string `json:"status" jsonschema:"required"`
	Running  bool   `json:"running,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Reason explains a failed, cancelled or lost run, or a timeout.
	Reason string `json:"reason,omitempty"`

	outputView

	DurationMS int64  `json:"duration_ms"`
	BaseCommit string `json:"base_commit,omitempty"`
	CommitID   string `json:"commit_id,omitempty"`
	// Unchanged is set when the command changed nothing: no commit, the head stays at
	// base_commit. ChangesUnknown when the provider cannot tell (it committed anyway).
	Unchanged      bool       `json:"unchanged,omitempty"`
	ChangesUnknown bool       `json:"changes_unknown,omitempty"`
	Policy         string     `json:"policy,omitempty"`
	Created        time.Time  `json:"created_at"`
	Finished       *time.Time `json:"finished_at,omitempty"`
	Warnings       []string   `json:"warnings,omitempty"`
	Steps

	failedCall bool
}

func (v runView) failed() bool { return v.failedCall }

// outputView is a command's two output streams, each bounded: its head and tail around a marker
// (boundOutput), or the window after an offset (get_run with offsets). *_bytes is a stream's whole
// length so far, *_omitted the bytes of it not shown, *_offset where the shown part starts (when
// not at 0) and *_next_offset where to read on.
type outputView struct {
	Stdout           string `json:"stdout"`
	Stderr           string `json:"stderr"`
	StdoutBytes      int64  `json:"stdout_bytes"`
	StderrBytes      int64  `json:"stderr_bytes"`
	StdoutOmitted    int64  `json:"stdout_omitted,omitempty"`
	StderrOmitted    int64  `json:"stderr_omitted,omitempty"`
	StdoutOffset     int64  `json:"stdout_offset,omitempty"`
	StderrOffset     int64  `json:"stderr_offset,omitempty"`
	StdoutNextOffset int64  `json:"stdout_next_offset"`
	StderrNextOffset int64  `json:"stderr_next_offset"`
	// Notes explain the output (invalid UTF-8 replaced, ...).
	Notes []string `json:"notes,omitempty"`
}

// newOutputView bounds two streams to head and tail bytes each.
func newOutputView(stdout, stderr engine.Output, head, tail int) outputView {
	o := boundOutput(stdout, head, tail)
	e := boundOutput(stderr, head, tail)
	v := outputView{Stdout: o.Text, Stderr: e.Text, StdoutBytes: o.Total, StderrBytes: e.Total, StdoutOmitted: o.Omitted, StderrOmitted: e.Omitted,
		StdoutNextOffset: o.Total, StderrNextOffset: e.Total}
	v.noteReplaced(o.Replaced, e.Replaced)
	return v
}

// newWindowView shows the windows after two offsets, at most max bytes of each from its start.
// While running is set, an incomplete UTF-8 character at a window's end is held back for the next
// call.
func newWindowView(stdout, stderr engine.OutputWindow, max int, running bool) outputView {
	cut := func(w engine.OutputWindow) (string, int64, bool) {
		data := w.Data
		if len(data) > max {
			data = data[:max]
		}
		if len(data) < len(w.Data) || running {
			data = data[:len(data)-incompleteSuffix(data)]
		}
		text, replaced := validUTF8(data)
		return text, w.Offset + int64(len(data)), replaced
	}
	o, on, or := cut(stdout)
	e, en, er := cut(stderr)
	v := outputView{Stdout: o, Stderr: e, StdoutBytes: stdout.Total, StderrBytes: stderr.Total,
		StdoutOffset: stdout.Offset, StderrOffset: stderr.Offset, StdoutNextOffset: on, StderrNextOffset: en,
		StdoutOmitted: stdout.Omitted, StderrOmitted: stderr.Omitted}
	v.noteReplaced(or, er)
	return v
}

func (o *outputView) noteReplaced(stdout, stderr bool) {
	for _, s := range []struct {
		name     string
		replaced bool
	}{{"stdout", stdout}, {"stderr", stderr}} {
		if s.replaced {
			o.Notes = append(o.Notes, s.name+" is not valid UTF-8 (binary output?): invalid bytes are shown as U+FFFD; write it to a file and read_file it (base64) for the exact bytes")
		}
	}
}

// more reports whether either stream has bytes after what was shown.
func (o outputView) more() bool {
	return o.StdoutNextOffset < o.StdoutBytes || o.StderrNextOffset < o.StderrBytes
}

// write appends the streams (and notes) to a result text.
func (o outputView) write(b *strings.Builder) {
	for _, n := range o.Notes {
		b.WriteString("\nnote: " + n)
	}
	o.writeOne(b, "stdout", o.Stdout, o.StdoutBytes, o.StdoutOffset, o.StdoutNextOffset, o.StdoutOmitted)
	o.writeOne(b, "stderr", o.Stderr, o.StderrBytes, o.StderrOffset, o.StderrNextOffset, o.StderrOmitted)
}

// writeOne writes one stream: the whole bounded stream under its size, or a window under its
// byte range (saying how many bytes before it are gone).
func (o outputView) writeOne(b *strings.Builder, name, text string, total, from, next, omitted int64) {
	switch {
	case from == 0 && next == total:
		writeStream(b, name, text, total)
		return
	case from == next && omitted == 0:
		return // nothing new
	}
	fmt.Fprintf(b, "\n--- %s bytes %d-%d of %d ---\n", name, from, next, total)
	if omitted > 0 {
		fmt.Fprintf(b, "[… %d bytes before offset %d are no longer kept …]\n", omitted, from)
	}
	b.WriteString(text)
	if text != "" && !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
}

// truncated reports whether part of either stream is not shown.
func (o outputView) truncated() bool { return o.StdoutOmitted > 0 || o.StderrOmitted > 0 }

// readOn is the get_run call that reads both streams on from where this view ends.
func (o outputView) readOn(runID string, wait bool) map[string]any {
	args := map[string]any{"run_id": runID, "stdout_offset": o.StdoutNextOffset, "stderr_offset": o.StderrNextOffset}
	if wait {
		args["wait_ms"] = 30000
	}
	return args
}

// runView bounds a run's output and flattens it with the run record, with the next steps.
func (t *toolset) runView(res engine.RunResult, head, tail int) runView {
	r := res.Run
	v := runView{
		RunID: r.ID, WorkspaceID: r.Workspace, Command: r.Command, Args: r.Args, Shell: r.Shell, Cwd: r.Cwd,
		Status: r.Status, Running: !r.Done(), ExitCode: r.ExitCode, TimedOut: r.TimedOut, Reason: r.Error,
		DurationMS: r.DurationMS, BaseCommit: r.BaseCommit, CommitID: r.CommitID, Unchanged: r.Unchanged, ChangesUnknown: r.ChangesUnknown, Policy: r.Policy,
		Created: r.Created.UTC(), Finished: r.Finished, Warnings: r.Warnings,
	}
	if head > 0 || tail > 0 {
		v.outputView = newOutputView(res.Stdout, res.Stderr, head, tail)
	}
	switch {
	case !r.Done():
		v.then("get_run", "wait for it and read only the new output", v.readOn(r.ID, true))
		v.then("cancel_run", "stop it", map[string]any{"run_id": r.ID})
	case v.truncated() && (head < t.opts.PollHeadBytes || tail < t.opts.PollTailBytes):
		v.then("get_run", "see more of the output", map[string]any{"run_id": r.ID})
	}
	return v
}

// runWindowView is get_run's result when it was given offsets: only what is new after them.
func (t *toolset) runWindowView(res engine.RunResult) runView {
	v := t.runView(engine.RunResult{Run: res.Run}, 0, 0)
	v.Next = nil
	v.outputView = newWindowView(res.StdoutWindow, res.StderrWindow, t.opts.PollTailBytes, !res.Run.Done())
	switch {
	case !res.Run.Done():
		v.then("get_run", "wait for it and read only the new output", v.readOn(res.Run.ID, true))
		v.then("cancel_run", "stop it", map[string]any{"run_id": res.Run.ID})
	case v.more():
		v.then("get_run", "read on", v.readOn(res.Run.ID, false))
	}
	return v
}

// text is a run's human text: a summary line, then the output streams.
func (v runView) text() string {
	var b strings.Builder
	switch v.Status {
	case engine.RunExited:
		b.WriteString(exitLine("run "+v.RunID, exitCodeOf(v.ExitCode), v.TimedOut, v.DurationMS))
		switch {
		case v.CommitID != "" && v.ChangesUnknown:
			fmt.Fprintf(&b, "; commit %s (the provider cannot tell what changed)", v.CommitID)
		case v.CommitID != "":
			fmt.Fprintf(&b, "; commit %s", v.CommitID)
		case v.Unchanged:
			fmt.Fprintf(&b, "; it changed nothing, so no commit (head stays %s)", v.BaseCommit)
		}
	case engine.RunQueued, engine.RunRunning:
		fmt.Fprintf(&b, "run %s is %s", v.RunID, v.Status)
	default:
		fmt.Fprintf(&b, "run %s %s", v.RunID, v.Status)
		if v.Reason != "" {
			b.WriteString(": " + strings.TrimPrefix(v.Reason, v.Status+": "))
		}
	}
	for _, w := range v.Warnings {
		b.WriteString("\nwarning: " + w)
	}
	v.outputView.write(&b)
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
