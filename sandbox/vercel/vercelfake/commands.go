package vercelfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

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
// Each command keeps its whole log (up to maxCommandLog bytes; older output is dropped beyond)
// so GET logs can replay it; the command outlives the request that started it.

// maxCommandLog bounds the output kept per command.
const maxCommandLog = 16 << 20

// nonTerminating are signals whose default action does not end a process: killing an attached
// command with one of them does nothing (an attached command cannot receive real signals).
var nonTerminating = map[int]bool{0: true, 17: true, 18: true, 19: true, 20: true, 21: true, 22: true, 23: true, 28: true}

type logChunk struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
}

// command is one command of a session. Guarded by sessionState.mu.
type command struct {
	id        string
	name      string
	args      []string
	cwd       string
	sessionID string
	startedAt int64

	exitCode   *int
	durationMs int64

	chunks   []logChunk
	base     int // index of chunks[0] in the whole log (older chunks were dropped)
	logBytes int
	carry    map[string][]byte // an incomplete UTF-8 sequence held back, per stream
	// changed is closed (and replaced) whenever output arrives or the command finishes.
	changed chan struct{}
	// pins holds, per reader that must not miss output (the stream of the request that ran an
	// attached command), the index of the next chunk it needs; output beyond maxCommandLog waits
	// for it instead of dropping chunks it has not read. advanced is closed (and replaced) when a
	// pinned reader moves on or goes.
	pins     map[int]int
	advanced chan struct{}
	// execDone ends with an attached command's Exec (a kill), so a writer waiting for room stops.
	execDone <-chan struct{}

	cancel     context.CancelFunc // attached: ends the Exec
	killSignal int                // attached: the signal of the kill that ended it
	procID     string             // detached: the backend process
	timer      *time.Timer        // detached: the command's timeout
	timedOut   bool
}

func (c *command) view() wireCommand {
	w := wireCommand{ID: c.id, Name: c.name, Args: c.args, Cwd: c.cwd, SessionID: c.sessionID,
		ExitCode: c.exitCode, StartedAt: c.startedAt}
	if w.Args == nil {
		w.Args = []string{}
	}
	if c.exitCode != nil {
		d := c.durationMs
		w.DurationMs = &d
	}
	return w
}

func (c *command) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// appendLocked adds output. Chunks are cut only between UTF-8 sequences: an incomplete sequence
// at the end of p waits for the next write (bytes that are not UTF-8 at all pass through and
// show up as U+FFFD in the JSON).
func (c *command) appendLocked(stream string, p []byte) {
	if c.exitCode != nil || len(p) == 0 {
		return
	}
	buf := append(c.carry[stream], p...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	c.carry[stream] = append([]byte(nil), buf[cut:]...)
	c.pushLocked(stream, buf[:cut])
}

func (c *command) pushLocked(stream string, data []byte) {
	if len(data) == 0 {
		return
	}
	c.chunks = append(c.chunks, logChunk{Stream: stream, Data: string(data)})
	c.logBytes += len(data)
	for c.logBytes > maxCommandLog && len(c.chunks) > 1 && c.base < c.minPinLocked() {
		c.logBytes -= len(c.chunks[0].Data)
		c.chunks[0] = logChunk{}
		c.chunks = c.chunks[1:]
		c.base++
	}
	c.notifyLocked()
}

// minPinLocked is the lowest chunk index a pinned reader still needs (no pin: no limit).
func (c *command) minPinLocked() int {
	m := int(^uint(0) >> 1)
	for _, next := range c.pins {
		m = min(m, next)
	}
	return m
}

// fullLocked reports whether new output must wait: the log is at its limit and its oldest chunk
// is still needed by a pinned reader.
func (c *command) fullLocked() bool {
	return c.logBytes > maxCommandLog && c.base >= c.minPinLocked()
}

// movePinLocked records that pinned reader id needs chunk next on (next < 0: it is gone).
func (c *command) movePinLocked(id, next int) {
	if c.pins == nil {
		return
	}
	if next < 0 {
		delete(c.pins, id)
	} else if _, ok := c.pins[id]; ok {
		c.pins[id] = next
	}
	if c.advanced != nil {
		close(c.advanced)
	}
	c.advanced = make(chan struct{})
}

// finishLocked records the exit; later calls do nothing.
func (c *command) finishLocked(exit int, duration int64) {
	if c.exitCode != nil {
		return
	}
	for _, stream := range []string{"stdout", "stderr"} {
		c.pushLocked(stream, c.carry[stream])
		delete(c.carry, stream)
	}
	c.exitCode = &exit
	c.durationMs = max(duration, 0)
	if c.timer != nil {
		c.timer.Stop()
	}
	c.notifyLocked()
}

// logWriter appends what it is given to a command's log.
type logWriter struct {
	s      *Server
	c      *command
	stream string
}

// Write waits while the log is full and its oldest output has not reached the client that ran
// the command (backpressure, as a real stream has, instead of losing output).
func (w logWriter) Write(p []byte) (int, error) {
	w.s.sessions.mu.Lock()
	for w.c.fullLocked() {
		if w.c.advanced == nil {
			w.c.advanced = make(chan struct{})
		}
		advanced, done := w.c.advanced, w.c.execDone
		w.s.sessions.mu.Unlock()
		select {
		case <-advanced:
		case <-done:
			return 0, context.Canceled
		case <-w.s.ctx.Done():
			return 0, errServerClosed
		}
		w.s.sessions.mu.Lock()
	}
	w.c.appendLocked(w.stream, p)
	w.s.sessions.mu.Unlock()
	return len(p), nil
}

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

var errServerClosed = errors.New("vercelfake: server closed")

// Pins of follow: requesterPin is the stream of the request that ran an attached command;
// noPin, any other reader (GET logs, waits), which may miss output dropped past the limit.
const (
	requesterPin = 0
	noPin        = -1
)

// follow replays c's log from the start through emit, then follows it live. It returns
// finished=true once the command has exited and every chunk was emitted; finished=false with a
// nil error when the session ended before the command did; an error when ctx ended, the server
// closed, or emit failed.
func (s *Server) follow(ctx context.Context, ss *session, c *command, pin int, emit func(logChunk) error) (bool, error) {
	if pin != noPin {
		defer func() {
			s.sessions.mu.Lock()
			c.movePinLocked(pin, -1)
			s.sessions.mu.Unlock()
		}()
	}
	next := 0
	for {
		s.sessions.mu.Lock()
		next = max(next, c.base)
		chunks := append([]logChunk(nil), c.chunks[next-c.base:]...)
		first := next
		next += len(chunks)
		finished := c.exitCode != nil
		changed := c.changed
		done := ss.done
		s.sessions.mu.Unlock()
		for i, ch := range chunks {
			if err := emit(ch); err != nil {
				return false, err
			}
			if pin != noPin {
				// Delivered: the writer may drop it now (and make room for more).
				chunks[i] = logChunk{}
				s.sessions.mu.Lock()
				c.movePinLocked(pin, first+i+1)
				s.sessions.mu.Unlock()
			}
		}
		if len(chunks) > 0 {
			continue
		}
		if finished {
			return true, nil
		}
		select {
		case <-changed:
		case <-done:
			// The session ended: send what is left; the command may have finished with it.
			s.sessions.mu.Lock()
			next = max(next, c.base)
			chunks := append([]logChunk(nil), c.chunks[next-c.base:]...)
			finished := c.exitCode != nil
			s.sessions.mu.Unlock()
			for _, ch := range chunks {
				if err := emit(ch); err != nil {
					return false, err
				}
			}
			return finished, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-s.ctx.Done():
			return false, errServerClosed
		}
	}
}

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

// ndjson writes an application/x-ndjson stream, one flushed line per value.
type ndjson struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	return &ndjson{w: w, rc: http.NewResponseController(w)}
}

// start sends the headers: exactly "application/x-ndjson" (the SDK compares it for equality).
func (n *ndjson) start() error {
	if n.started {
		return nil
	}
	n.started = true
	n.w.Header().Set("Content-Type", "application/x-ndjson")
	n.w.Header().Set("Cache-Control", "no-cache")
	n.w.WriteHeader(http.StatusOK)
	return n.rc.Flush()
}

func (n *ndjson) line(v any) error {
	if err := n.start(); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := n.w.Write(append(data, '\n')); err != nil {
		return err
	}
	return n.rc.Flush()
}
