package vercelfake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The command endpoints (§5.3). Every command runs for real in the session's backend sandbox:
//
//   - attached (wait:true) with Sandbox.Exec: stdout and stderr arrive apart and are streamed as
//     produced; a kill cancels the Exec (the whole process tree is killed) and the command
//     reports 128+signal;
//   - detached with Sandbox.StartProcess: kill delivers the real signal (Sandbox.Signal); the
//     output is polled (Sandbox.Process) into the command's log, all as "stdout" because the
//     backend interleaves the two streams.
//
// The log each command keeps, and how it is followed, is command_log.go.

// nonTerminating are signals whose default action does not end a process: killing an attached
// command with one of them does nothing (an attached command cannot receive real signals).
var nonTerminating = map[int]bool{0: true, 17: true, 18: true, 19: true, 20: true, 21: true, 22: true, 23: true, 28: true}

type runRequest struct {
	Command *string           `json:"command"`
	Args    []string          `json:"args"`
	Cwd     *string           `json:"cwd"`
	Env     map[string]string `json:"env"`
	Sudo    bool              `json:"sudo"`
	Wait    bool              `json:"wait"`
	Logs    bool              `json:"logs"`
	Timeout *int64            `json:"timeout"`
}

func (s *Server) handleRunCommand(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req runRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	if req.Command == nil || *req.Command == "" {
		writeError(w, badRequest("should have required property `command`"))
		return
	}
	var timeout time.Duration
	if req.Timeout != nil {
		if *req.Timeout < 1 {
			writeError(w, badRequest("`timeout` should be >= 1"))
			return
		}
		timeout = time.Duration(*req.Timeout) * time.Millisecond
	}
	for k := range req.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			writeError(w, badRequest("`env` has an invalid variable name %q", k))
			return
		}
	}
	cwd := sessionCwd
	if req.Cwd != nil && *req.Cwd != "" {
		cwd = resolvePath(*req.Cwd, sessionCwd)
	}
	c := &command{
		id: newCommandID(), name: *req.Command, args: req.Args, cwd: cwd, sessionID: ss.id,
		carry: map[string][]byte{}, changed: make(chan struct{}),
	}
	exec := sandbox.ExecRequest{Command: *req.Command, Args: req.Args, Cwd: s.backendPath(cwd), Env: req.Env}

	s.sessions.mu.Lock()
	if err := stateError(ss); err != nil {
		s.sessions.mu.Unlock()
		writeError(w, err)
		return
	}
	backend := ss.backend
	s.sessions.mu.Unlock()

	if req.Wait {
		s.startAttached(ss, c, backend, exec, timeout)
	} else if err := s.startDetached(r.Context(), ss, c, backend, exec, timeout); err != nil {
		writeError(w, err)
		return
	}
	if !req.Wait {
		s.sessions.mu.Lock()
		out := map[string]any{"command": c.view()}
		s.sessions.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
		return
	}

	// Attached: NDJSON of the command line, the log lines (with logs:true) and the final line.
	nd := newNDJSON(w)
	s.sessions.mu.Lock()
	first := map[string]any{"command": c.view()}
	s.sessions.mu.Unlock()
	first["command"] = withRunning(first["command"].(wireCommand))
	if nd.line(first) != nil {
		return
	}
	emit := func(ch logChunk) error {
		if !req.Logs {
			return nil
		}
		return nd.line(ch)
	}
	finished, err := s.follow(r.Context(), ss, c, requesterPin, emit)
	switch {
	case err != nil:
		if errors.Is(err, errServerClosed) {
			_ = nd.line(streamError("sandbox_stream_closed", "Sandbox stream was closed and is not accepting commands."))
		}
	case finished:
		s.sessions.mu.Lock()
		last := map[string]any{"command": c.view()}
		s.sessions.mu.Unlock()
		_ = nd.line(last)
	default:
		_ = nd.line(streamError(codeStopped, "The Sandbox has stopped execution and is no longer available."))
	}
}

// withRunning shows a command as running (the first line of an attached run says so even when
// a fast command has already finished).
func withRunning(c wireCommand) wireCommand {
	c.ExitCode = nil
	c.DurationMs = nil
	return c
}

func streamError(code, message string) map[string]any {
	return map[string]any{"stream": "error", "data": map[string]string{"code": code, "message": message}}
}

// registerLocked adds c to ss's commands.
func (ss *session) registerLocked(c *command) {
	c.startedAt = ms(time.Now())
	ss.commands[c.id] = c
	ss.order = append(ss.order, c)
}

// startAttached runs c with Exec in the background.
func (s *Server) startAttached(ss *session, c *command, backend sandbox.Sandbox, req sandbox.ExecRequest, timeout time.Duration) {
	ctx, cancel := context.WithCancel(s.ctx)
	req.Timeout = timeout
	req.Stdout = logWriter{s, c, "stdout"}
	req.Stderr = logWriter{s, c, "stderr"}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	c.cancel = cancel
	c.execDone = ctx.Done()
	c.pins = map[int]int{requesterPin: 0} // the request's own stream must not miss output
	ss.registerLocked(c)
	started := time.Now()
	ok := s.life.goUnlessClosed(func() {
		defer cancel()
		res, err := backend.Exec(ctx, req)
		s.sessions.mu.Lock()
		defer s.sessions.mu.Unlock()
		switch {
		case err == nil && res.TimedOut:
			c.timedOut = true
			c.finishLocked(128+int(syscall.SIGKILL), res.Duration.Milliseconds())
		case err == nil:
			c.finishLocked(res.ExitCode, res.Duration.Milliseconds())
		case c.killSignal != 0:
			c.finishLocked(128+c.killSignal, time.Since(started).Milliseconds())
		case ss.status != statusRunning || s.ctx.Err() != nil:
			// The session ended under the command: it has no exit status to report, and its
			// readers get 410 / a sandbox_stopped stream error.
		default:
			s.log.Warn("vercelfake: command failed in the backend", "session", ss.id, "command", c.id, "err", err)
			c.appendLocked("stderr", []byte(fmt.Sprintf("vercelfake: the command could not run: %v\n", err)))
			c.finishLocked(1, time.Since(started).Milliseconds())
		}
	})
	if !ok {
		cancel()
	}
}

// startDetached starts c with StartProcess and polls its output in the background.
func (s *Server) startDetached(ctx context.Context, ss *session, c *command, backend sandbox.Sandbox, req sandbox.ExecRequest, timeout time.Duration) error {
	// The output goes to a file in the VM, read along by pollProcess: the backend keeps only the
	// last MiB of a background process's output, and a fast writer would outrun a poller.
	out := detachedOutFile(c.id)
	req.Args = append([]string{"-c", `exec "$@" >>"$0" 2>&1`, out, req.Command}, req.Args...)
	req.Command = "sh"
	pid, err := backend.StartProcess(context.WithoutCancel(ctx), req)
	if err != nil {
		if errors.Is(err, sandbox.ErrInvalid) {
			return badRequest("%v", err)
		}
		return s.backendError(ss, err)
	}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	c.procID = pid
	ss.registerLocked(c)
	if timeout > 0 {
		c.timer = time.AfterFunc(timeout, func() {
			s.sessions.mu.Lock()
			if c.exitCode != nil {
				s.sessions.mu.Unlock()
				return
			}
			c.timedOut = true
			s.sessions.mu.Unlock()
			_ = backend.Signal(s.ctx, pid, syscall.SIGKILL)
		})
	}
	s.life.goUnlessClosed(func() { s.pollProcess(ss, c, backend, pid) })
	return nil
}

// detachedOutFile is where a detached command's output is kept inside the VM.
func detachedOutFile(cmdID string) string { return "/tmp/.vercelfake-" + cmdID + ".out" }

// readOutFile reads up to 4 MiB of a detached command's output file from offset since.
func (s *Server) readOutFile(backend sandbox.Sandbox, cmdID string, since int64) ([]byte, error) {
	var out bytes.Buffer
	_, err := backend.Exec(s.ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c",
		`tail -c +"$1" -- "$2" 2>/dev/null | head -c 4194304`, "sh", strconv.FormatInt(since+1, 10), detachedOutFile(cmdID)}, Stdout: &out})
	return out.Bytes(), err
}

// pollProcess copies a detached command's output into its log until it exits.
func (s *Server) pollProcess(ss *session, c *command, backend sandbox.Sandbox, pid string) {
	var since int64
	failures := 0
	for {
		// The process's status (its output is in the file): wait a little for an exit.
		st, err := backend.Process(s.ctx, pid, 0, pollEvery)
		var data []byte
		if err == nil {
			data, err = s.readOutFile(backend, c.id, since)
			st.Output = data
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.sessions.mu.Lock()
			ended := ss.status != statusRunning
			s.sessions.mu.Unlock()
			if ended || errors.Is(err, sandbox.ErrEnded) {
				return // the session ended: readers get 410 / sandbox_stopped
			}
			if failures++; failures < 5 {
				t := time.NewTimer(200 * time.Millisecond) // back off before asking again
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			s.sessions.mu.Lock()
			c.appendLocked("stderr", []byte(fmt.Sprintf("vercelfake: lost the command's process: %v\n", err)))
			c.finishLocked(1, ms(time.Now())-c.startedAt)
			s.sessions.mu.Unlock()
			return
		}
		failures = 0
		s.sessions.mu.Lock()
		c.appendLocked("stdout", st.Output)
		// Finished once the process has exited and its output is read to the end (one answer
		// may carry only part of what is left).
		if !st.Running && len(st.Output) == 0 {
			exit := 0
			if st.ExitCode != nil {
				exit = *st.ExitCode
			}
			if c.timedOut {
				exit = 128 + int(syscall.SIGKILL)
			}
			dur := ms(time.Now()) - c.startedAt
			if !st.Ended.IsZero() && !st.Started.IsZero() {
				dur = st.Ended.Sub(st.Started).Milliseconds()
			}
			c.finishLocked(exit, dur)
			s.sessions.mu.Unlock()
			return
		}
		s.sessions.mu.Unlock()
		since += int64(len(data))
	}
}

// pollEvery is how often pollProcess reads a running detached command's output.
const pollEvery = 50 * time.Millisecond

// commandFor looks up {cid} in a running session.
func (s *Server) commandFor(r *http.Request) (*session, *command, error) {
	ss, err := s.liveSession(r)
	if err != nil {
		return nil, nil, err
	}
	id := r.PathValue("cid")
	s.sessions.mu.Lock()
	c := ss.commands[id]
	s.sessions.mu.Unlock()
	if c == nil {
		return nil, nil, notFound("Command %s not found in sandbox session %s.", id, ss.id)
	}
	return ss, c, nil
}

func (s *Server) handleListCommands(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.sessions.mu.Lock()
	list := make([]wireCommand, 0, len(ss.order))
	for i := len(ss.order) - 1; i >= 0; i-- {
		list = append(list, ss.order[i].view())
	}
	s.sessions.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"commands": list})
}

func (s *Server) handleGetCommand(w http.ResponseWriter, r *http.Request) {
	ss, c, err := s.commandFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch r.URL.Query().Get("wait") {
	case "", "false":
	case "true":
		finished, err := s.follow(r.Context(), ss, c, noPin, func(logChunk) error { return nil })
		if err != nil {
			if errors.Is(err, errServerClosed) {
				writeError(w, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed."))
			}
			return
		}
		if !finished {
			writeError(w, newError(http.StatusGone, codeStopped, "The Sandbox has stopped execution and is no longer available."))
			return
		}
	default:
		writeError(w, badRequest("`wait` should be true or false"))
		return
	}
	s.sessions.mu.Lock()
	out := map[string]any{"command": c.view()}
	s.sessions.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	ss, c, err := s.commandFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	nd := newNDJSON(w)
	if nd.start() != nil {
		return
	}
	finished, err := s.follow(r.Context(), ss, c, noPin, func(ch logChunk) error { return nd.line(ch) })
	switch {
	case err != nil:
		if errors.Is(err, errServerClosed) {
			_ = nd.line(streamError("sandbox_stream_closed", "Sandbox stream was closed."))
		}
	case !finished:
		_ = nd.line(streamError(codeStopped, "The Sandbox has stopped execution and is no longer available."))
	}
}

func (s *Server) handleKill(w http.ResponseWriter, r *http.Request) {
	ss, c, err := s.commandFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		Signal *int `json:"signal"`
	}
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	sig := int(syscall.SIGTERM)
	if req.Signal != nil {
		sig = *req.Signal
	}
	if sig < 1 || sig > 64 {
		writeError(w, badRequest("`signal` should be a signal number between 1 and 64"))
		return
	}
	s.sessions.mu.Lock()
	running := c.exitCode == nil
	cancel, pid := c.cancel, c.procID
	if running && cancel != nil && !nonTerminating[sig] && c.killSignal == 0 {
		c.killSignal = sig
	}
	backend := ss.backend
	s.sessions.mu.Unlock()
	if running {
		switch {
		case pid != "":
			if err := backend.Signal(context.WithoutCancel(r.Context()), pid, syscall.Signal(sig)); err != nil {
				writeError(w, s.backendError(ss, err))
				return
			}
		case cancel != nil && !nonTerminating[sig]:
			cancel()
		}
	}
	s.sessions.mu.Lock()
	out := map[string]any{"command": c.view()}
	s.sessions.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
