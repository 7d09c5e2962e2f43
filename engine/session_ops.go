package engine

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The operations of a live session: commands, processes and files. Each checks that the caller
// holds the session (holding, session_lease.go).

// SessionExec runs a command in the session: in the foreground (waits up to Yield, returns the
// outcome, or a process id when the command is still running then: see session_fg.go) or in the
// background (returns a process id for session_logs and session_kill at once).
func (e *Engine) SessionExec(ctx context.Context, h Holder, req SessionExecRequest) (SessionExecResult, error) {
	if err := CheckCommand(req.Command, req.Args); err != nil {
		return SessionExecResult{}, err
	}
	if err := CheckStdin(len(req.Stdin)); err != nil {
		return SessionExecResult{}, err
	}
	if err := validEnv(req.Env); err != nil {
		return SessionExecResult{}, err
	}
	if err := CheckBackgroundTimeout(req.Background, req.Timeout); err != nil {
		return SessionExecResult{}, err
	}
	timeout, err := CheckTimeout(req.Timeout)
	if err != nil {
		return SessionExecResult{}, err
	}
	yield, err := CheckYield(req.Background, req.Yield)
	if err != nil {
		return SessionExecResult{}, err
	}
	cwd := "."
	if req.Cwd != "" {
		if cwd, err = cleanPath(req.Cwd, true); err != nil {
			return SessionExecResult{}, err
		}
	}
	ls, _, err := e.holding(h, req.SessionID)
	if err != nil {
		return SessionExecResult{}, err
	}
	prog, args := shellArgv(req.Command, req.Args)
	x := sandbox.ExecRequest{Command: prog, Args: args, Cwd: cwd, Env: req.Env, Stdin: req.Stdin}
	if req.Background {
		id, err := ls.sb.StartProcess(ctx, x)
		if err != nil {
			return SessionExecResult{}, e.sessionErr(ls, err)
		}
		e.noteProcess(ls, id)
		return SessionExecResult{ProcessID: id, Running: true}, nil
	}
	x.Timeout = timeout
	return e.execForeground(ctx, ls, req, x, yield)
}

// checkProcessID checks session_logs' and session_kill's process_id.
func checkProcessID(id string) error {
	if strings.TrimSpace(id) == "" {
		return badArg("process_id", nil, nil, "process_id is empty; give the process_id session_exec returned (background=true, or a foreground command still running after its yield)")
	}
	return nil
}

func noProcess(sessionID, processID string) error {
	return errorf(ErrNotFound, "session %s has no process %q; session_exec returns process ids (with background=true, or for a foreground command still running after its yield)", sessionID, processID).
		with(ErrorFields{Session: sessionID, Process: processID})
}

// SessionLogs reports a process of the session (a background one, or a foreground command that
// outlived its yield) and its output from offset since, waiting up to wait (at most MaxWait) for
// new output or the process's end.
func (e *Engine) SessionLogs(ctx context.Context, h Holder, sessionID, processID string, since int64, wait time.Duration) (ProcessStatus, error) {
	if err := CheckOffset("offset", since); err != nil {
		return ProcessStatus{}, err
	}
	if err := CheckWait(wait); err != nil {
		return ProcessStatus{}, err
	}
	ls, fg, err := e.sessionProcess(h, sessionID, processID)
	if err != nil {
		return ProcessStatus{}, err
	}
	if fg != nil {
		return fgLogs(ctx, fg, since, wait), nil
	}
	st, err := ls.sb.Process(ctx, processID, since, wait)
	if err != nil {
		return ProcessStatus{}, e.processErr(ls, sessionID, processID, err)
	}
	shellView(&st)
	return st, nil
}

// sessionProcess checks a process id and that h holds the session; fg is set for a foreground
// command that outlived its yield (session_fg.go), nil for a background process of the sandbox.
func (e *Engine) sessionProcess(h Holder, sessionID, processID string) (*liveSession, *fgProc, error) {
	if err := checkProcessID(processID); err != nil {
		return nil, nil, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return nil, nil, err
	}
	if !hasPrefix(processID, fgPrefix) {
		return ls, nil, nil
	}
	fg := ls.fgProc(processID)
	if fg == nil {
		return nil, nil, noProcess(sessionID, processID)
	}
	return ls, fg, nil
}

// processErr maps the sandbox's error about a background process.
func (e *Engine) processErr(ls *liveSession, sessionID, processID string, err error) error {
	if errors.Is(err, sandbox.ErrNotFound) {
		return noProcess(sessionID, processID)
	}
	return e.sessionErr(ls, err)
}

// shellView shows a process that runs a shell command line (sh -lc <line>, see shellArgv) as
// the line, as it was given: the two mean the same.
func shellView(st *ProcessStatus) {
	if st.Command == "sh" && len(st.Args) == 2 && st.Args[0] == "-lc" {
		st.Command, st.Args = st.Args[1], nil
	}
}

// SessionKill sends sig (ValidSignal) to a background process's process group and returns its
// status; a foreground command that outlived its yield is killed instead (session_fg.go).
func (e *Engine) SessionKill(ctx context.Context, h Holder, sessionID, processID string, sig syscall.Signal) (ProcessStatus, error) {
	if err := ValidSignal(sig); err != nil {
		return ProcessStatus{}, err
	}
	ls, fg, err := e.sessionProcess(h, sessionID, processID)
	if err != nil {
		return ProcessStatus{}, err
	}
	if fg != nil {
		return fgKill(ctx, sessionID, fg, sig)
	}
	if err := ls.sb.Signal(ctx, processID, sig); err != nil {
		return ProcessStatus{}, e.processErr(ls, sessionID, processID, err)
	}
	// Give the process a moment to act on the signal, so the status says whether it ended.
	st, err := ls.sb.Process(ctx, processID, 0, 0)
	if err == nil && st.Running {
		st, err = ls.sb.Process(ctx, processID, st.Next, 500*time.Millisecond)
	}
	if err != nil {
		return ProcessStatus{}, e.sessionErr(ls, err)
	}
	st.Output = nil // the caller asked for a signal, not for the log: session_logs reads it
	st.Offset = st.Next
	shellView(&st)
	return st, nil
}

// SessionWriteFiles applies a write_files call to the live session: files written, deletes
// removed, no commit (commit_session saves them with the rest). Every path is checked before
// anything changes, so a call with one bad path leaves the session's files as they were.
func (e *Engine) SessionWriteFiles(ctx context.Context, h Holder, sessionID string, req WriteRequest) error {
	ch, err := validWrite(req, e.homeDir())
	if err != nil {
		return err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return err
	}
	if err := ls.sb.ChangeFiles(ctx, ch.FileChanges); err != nil {
		return ch.attribute(e.sessionErr(ls, err), req)
	}
	return nil
}

// SessionReadFile reads a file from the live session (in /workspace or the home).
func (e *Engine) SessionReadFile(ctx context.Context, h Holder, sessionID, path string, offset, max int64) (FileContent, error) {
	p, max, err := readArgs(path, e.homeDir(), offset, max)
	if err != nil {
		return FileContent{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return FileContent{}, err
	}
	c, err := ls.sb.ReadFile(ctx, p.prov, offset, max)
	if err != nil {
		return FileContent{}, readErr(e.sessionErr(ls, err), p, path)
	}
	return FileContent{Path: p.show, Data: c.Data, Size: c.Size, Offset: offset}, nil
}

// SessionListFiles lists a directory of the live session (in /workspace or the home).
func (e *Engine) SessionListFiles(ctx context.Context, h Holder, sessionID, path string, depth int) ([]FileEntry, error) {
	home := e.homeDir()
	p, depth, err := listArgs(path, home, depth)
	if err != nil {
		return nil, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return nil, err
	}
	entries, err := ls.sb.ListFiles(ctx, p.prov, depth)
	if err != nil {
		return nil, listErr(e.sessionErr(ls, err), path)
	}
	return fileEntries(entries, home), nil
}
