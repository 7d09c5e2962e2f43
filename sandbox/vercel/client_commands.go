package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Commands: run (NDJSON stream), start detached, get, wait, logs, kill.
//
// Long streams get cut by Vercel's edge after minutes while the command keeps running in the VM,
// so a broken stream is never answered by sending the command again: the client reads the rest
// of the output from the logs endpoint (which replays from the start, so what was already
// delivered is skipped) and the exit code from the wait endpoint.

// cmdKillTimeout bounds the best-effort kill sent after the caller's context was cancelled.
const cmdKillTimeout = 10 * time.Second

// cmdSignalKill is SIGKILL's number.
const cmdSignalKill = 9

// commandRequest is a command to run in a session.
type commandRequest struct {
	// Command is the executable; Args follow it (sent as [] when empty).
	Command string
	Args    []string
	// Cwd is the working directory; "" means the session's cwd (omitted from the body).
	Cwd string
	// Env is merged over the sandbox's environment (sent as {} when empty).
	Env map[string]string
	// Sudo runs the command as root.
	Sudo bool
	// Timeout makes the sandbox SIGKILL the command after this long; sent as "timeout" (ms)
	// when > 0.
	Timeout time.Duration
}

type commandBody struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Cwd     string            `json:"cwd,omitempty"`
	Env     map[string]string `json:"env"`
	Sudo    bool              `json:"sudo"`
	Wait    bool              `json:"wait,omitempty"`
	Logs    bool              `json:"logs,omitempty"`
	Timeout int64             `json:"timeout,omitempty"`
}

func newCommandBody(req commandRequest, attached bool) []byte {
	b := commandBody{
		Command: req.Command,
		Args:    req.Args,
		Cwd:     req.Cwd,
		Env:     req.Env,
		Sudo:    req.Sudo,
		Wait:    attached,
		Logs:    attached,
	}
	if b.Args == nil {
		b.Args = []string{}
	}
	if b.Env == nil {
		b.Env = map[string]string{}
	}
	if req.Timeout > 0 {
		b.Timeout = max(req.Timeout.Milliseconds(), 1)
	}
	return marshalBody(b)
}

// commandAnswer is {command}.
type commandAnswer struct {
	Command command `json:"command"`
}

// ndjsonLine is one line of a command stream ({"command":...}) or a log stream
// ({"stream":"stdout"|"stderr"|"error","data":...}). Data is a string on log lines and an
// object on error lines; decoding it as any keeps the hot path (log lines) to one pass.
type ndjsonLine struct {
	Command *command `json:"command"`
	Stream  string   `json:"stream"`
	Data    any      `json:"data"`
}

// streamBreak is a stream that could not be read to its end: a connection cut or reset, a line
// cut in the middle, or a line that is not a JSON object.
type streamBreak struct{ err error }

func (e *streamBreak) Error() string { return "stream broke: " + e.err.Error() }
func (e *streamBreak) Unwrap() error { return e.err }

// outputError is a failed write to the caller's stdout or stderr.
type outputError struct{ err error }

func (e *outputError) Error() string { return "writing the output: " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// errFinalLine stops reading a command stream at its final line.
var errFinalLine = errors.New("final line")

// readNDJSON calls fn for each line of body as soon as the line has arrived (a JSON object is
// complete at its closing brace; the decoder does not wait for more). It returns nil at a clean
// end of the body, fn's error, or a *streamBreak.
func readNDJSON(body io.Reader, fn func(ndjsonLine) error) error {
	dec := json.NewDecoder(body)
	for {
		var l ndjsonLine
		err := dec.Decode(&l)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if errors.As(err, &syn) || errors.As(err, &typ) {
				return &streamBreak{fmt.Errorf("a line is not a JSON object: %v", err)}
			}
			return &streamBreak{err}
		}
		if err := fn(l); err != nil {
			return err
		}
	}
}

// logLineData returns the data of a stdout/stderr line (a JSON string) as bytes.
func logLineData(data any) ([]byte, error) {
	s, ok := data.(string)
	if !ok {
		return nil, &streamBreak{fmt.Errorf("a log line's data is not a string")}
	}
	return []byte(s), nil
}

// checkNDJSON requires the exact NDJSON content type, as the official SDK does.
func checkNDJSON(op string, resp *http.Response) error {
	if ct := resp.Header.Get("Content-Type"); ct != contentTypeNDJSON {
		return fmt.Errorf("vercel: %s: the response has content-type %q, not %s", op, ct, contentTypeNDJSON)
	}
	return nil
}

// writerOrDiscard returns w, or io.Discard when w is nil.
func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// apiCommandPath is /v2/sandboxes/sessions/{sid}/cmd/{cid}.
func apiCommandPath(sessionID, cmdID string) string {
	return apiSessionPath(sessionID) + "/cmd/" + url.PathEscape(cmdID)
}

// runCommand runs a command and waits for it, streaming its output.
//
// It sends POST cmd {command, args, env, sudo, cwd?, timeout?, wait:true, logs:true} and reads
// the application/x-ndjson answer line by line: the first {"command":...} line (exitCode null),
// then {"stream":"stdout"|"stderr","data":...} lines, each written to stdout or stderr (nil
// discards) as soon as it arrives, then the final {"command":...} line with a numeric exitCode,
// which is returned. A non-zero exit code is not an error.
//
// The POST is never sent twice once it may have reached the server; a 429 and failures before
// sending are retried. If the stream breaks after the first line (EOF without the final line,
// a reset, a cut line), the rest of the output comes from followLogs, skipping the bytes already
// delivered, and the exit code from waitCommand: nothing is duplicated or lost. If it breaks
// before the first line, the error wraps errStreamCut and says the command may or may not have
// started. A {"stream":"error"} line is returned as an *APIError with Status 0.
//
// When ctx is cancelled while the command runs, or writing to stdout or stderr fails,
// runCommand kills the command (SIGKILL, best effort, with a fresh 10s context) and returns
// ctx.Err() or the write error: it never returns leaving the command running unless it cannot
// know the command's ID.
func (c *Client) runCommand(ctx context.Context, sessionID string, req commandRequest, stdout, stderr io.Writer) (command, error) {
	const op = "run command"
	stdout, stderr = writerOrDiscard(stdout), writerOrDiscard(stderr)
	resp, err := c.send(ctx, &apiCall{
		op: op, method: http.MethodPost, path: apiSessionPath(sessionID) + "/cmd",
		body: newCommandBody(req, true), long: true,
	})
	if err != nil {
		if ctx.Err() != nil {
			return command{}, ctx.Err()
		}
		return command{}, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentTypeNDJSON {
		// Not a stream: if it is a plain {command}, the command runs detached; follow it.
		var ans commandAnswer
		if err := c.decodeJSON(ctx, op, resp, &ans); err != nil || ans.Command.ID == "" {
			if ctx.Err() != nil {
				return command{}, ctx.Err()
			}
			return command{}, fmt.Errorf("vercel: %s: the response has content-type %q, not %s; the command may or may not have started",
				op, ct, contentTypeNDJSON)
		}
		return c.finishCommand(ctx, sessionID, ans.Command.ID, 0, 0, stdout, stderr)
	}

	var started, last, final *command
	var delivered [2]int64
	writers := [2]io.Writer{stdout, stderr}
	rerr := readNDJSON(resp.Body, func(l ndjsonLine) error {
		switch {
		case l.Command != nil:
			last = l.Command
			if started == nil {
				started = l.Command
				return nil
			}
			if l.Command.ExitCode != nil {
				final = l.Command
				return errFinalLine
			}
		case l.Stream == "stdout" || l.Stream == "stderr":
			data, err := logLineData(l.Data)
			if err != nil {
				return err
			}
			i := logStreamIndex(l.Stream)
			if _, err := writers[i].Write(data); err != nil {
				return &outputError{err}
			}
			delivered[i] += int64(len(data))
		case l.Stream == "error":
			return streamLineError(op, l.Data)
		}
		return nil
	})
	_ = resp.Body.Close()

	switch {
	case final != nil:
		return *final, nil
	case rerr == nil && last != nil && last.ExitCode != nil:
		// A clean end after a command line that already carries the exit code.
		return *last, nil
	case ctx.Err() != nil:
		if started != nil {
			c.killAfterCancel(ctx, sessionID, started.ID)
		}
		return command{}, ctx.Err()
	}
	var outErr *outputError
	if errors.As(rerr, &outErr) {
		if started != nil {
			c.killAfterCancel(ctx, sessionID, started.ID)
		}
		return command{}, fmt.Errorf("vercel: %s: %w", op, outErr)
	}
	var apiErr *APIError
	if errors.As(rerr, &apiErr) {
		return command{}, apiErr
	}
	cause := "it ended"
	if rerr != nil {
		cause = rerr.Error()
	}
	if started == nil {
		return command{}, fmt.Errorf("vercel: %s: the response stream broke before the command was acknowledged (%s), so it may or may not have started: %w",
			op, cause, errStreamCut)
	}
	c.log.Debug("vercel: command stream broke; following its logs", "session", sessionID, "command", started.ID, "cause", cause)
	return c.finishCommand(ctx, sessionID, started.ID, delivered[0], delivered[1], stdout, stderr)
}

// finishCommand delivers the rest of a running command's output and waits for its exit code,
// killing it when ctx ends or the output cannot be written.
func (c *Client) finishCommand(ctx context.Context, sessionID, cmdID string, outN, errN int64, stdout, stderr io.Writer) (command, error) {
	_, _, err := c.followLogs(ctx, sessionID, cmdID, outN, errN, stdout, stderr)
	var cmd command
	if err == nil {
		cmd, err = c.waitCommand(ctx, sessionID, cmdID)
	}
	if err == nil {
		return cmd, nil
	}
	if ctx.Err() != nil {
		c.killAfterCancel(ctx, sessionID, cmdID)
		return command{}, ctx.Err()
	}
	var outErr *outputError
	if errors.As(err, &outErr) {
		c.killAfterCancel(ctx, sessionID, cmdID)
	}
	return command{}, fmt.Errorf("vercel: run command: the stream broke and recovering command %s failed: %w", cmdID, err)
}

// killAfterCancel sends SIGKILL to a command, best effort, with a fresh context.
func (c *Client) killAfterCancel(ctx context.Context, sessionID, cmdID string) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmdKillTimeout)
	defer cancel()
	if _, err := c.killCommand(kctx, sessionID, cmdID, cmdSignalKill); err != nil {
		c.log.Debug("vercel: killing an abandoned command failed", "session", sessionID, "command", cmdID, "error", err.Error())
	}
}

// logStreamIndex maps "stdout" to 0 and "stderr" to 1.
func logStreamIndex(stream string) int {
	if stream == "stderr" {
		return 1
	}
	return 0
}

// startCommand starts a command detached: POST cmd without wait answers {command} at once, with
// a nil ExitCode. Like runCommand it is never sent twice once it may have reached the server.
func (c *Client) startCommand(ctx context.Context, sessionID string, req commandRequest) (command, error) {
	var out commandAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "start command", method: http.MethodPost, path: apiSessionPath(sessionID) + "/cmd",
		body: newCommandBody(req, false),
	}, &out)
	return out.Command, err
}

// getCommand returns a command's current state: GET cmd/{id}. ExitCode is nil while it runs.
func (c *Client) getCommand(ctx context.Context, sessionID, cmdID string) (command, error) {
	var out commandAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "get command", method: http.MethodGet, path: apiCommandPath(sessionID, cmdID), idempotent: true,
	}, &out)
	return out.Command, err
}

// waitCommand waits until a command has exited and returns it with its exit code: GET
// cmd/{id}?wait=true, which the server holds open until then. When the connection is cut, the
// answer is a 5xx or 429, or it comes back without an exit code, it asks again with backoff: it
// never gives up on such failures while ctx lives. Other API errors (404, 410, ...) are
// returned.
func (c *Client) waitCommand(ctx context.Context, sessionID, cmdID string) (command, error) {
	const op = "wait command"
	for failures := 0; ; failures++ {
		var out commandAnswer
		err := c.doJSON(ctx, &apiCall{
			op: op, method: http.MethodGet, path: apiCommandPath(sessionID, cmdID),
			query: [][2]string{{"wait", "true"}}, idempotent: true, long: true,
		}, &out)
		switch {
		case err == nil && out.Command.ExitCode != nil:
			return out.Command, nil
		case err != nil && ctx.Err() != nil:
			return command{}, ctx.Err()
		case err != nil && !c.transient(ctx, err):
			return command{}, err
		}
		delay := c.loopDelay(failures, err)
		c.log.Debug("vercel: waiting for a command again", "command", cmdID, "delay", delay, "error", fmt.Sprint(err))
		if err := c.sleepFn(ctx, delay); err != nil {
			return command{}, err
		}
	}
}

// followLogs streams a command's output (GET cmd/{id}/logs) to stdout and stderr (nil
// discards) until the command has ended and its stream was read to the end. The stream replays
// the output from the start, so the first skipOut stdout bytes and skipErr stderr bytes are not
// written (they were delivered before).
//
// When the stream breaks, followLogs reconnects with backoff, again skipping everything already
// delivered; a clean end of the stream counts as the end only if getCommand shows an exit code,
// otherwise it reconnects too. It gives up on ctx's end, on an API error that is not transient
// (e.g. 410 once the session stopped), on a {"stream":"error"} line (*APIError, Status 0), and
// on a failed write. It returns the bytes delivered per stream in total, skipped ones included.
func (c *Client) followLogs(ctx context.Context, sessionID, cmdID string, skipOut, skipErr int64, stdout, stderr io.Writer) (outN, errN int64, err error) {
	const op = "follow logs"
	delivered := [2]int64{max(skipOut, 0), max(skipErr, 0)}
	writers := [2]io.Writer{writerOrDiscard(stdout), writerOrDiscard(stderr)}
	for failures := 0; ; failures++ {
		progress, clean, err := c.followOnce(ctx, op, sessionID, cmdID, &delivered, writers)
		switch {
		case err != nil && ctx.Err() != nil:
			return delivered[0], delivered[1], ctx.Err()
		case err != nil && !c.transient(ctx, err):
			return delivered[0], delivered[1], err
		case clean:
			cmd, gerr := c.getCommand(ctx, sessionID, cmdID)
			switch {
			case gerr == nil && cmd.ExitCode != nil:
				return delivered[0], delivered[1], nil
			case gerr != nil && ctx.Err() != nil:
				return delivered[0], delivered[1], ctx.Err()
			case gerr != nil && !c.transient(ctx, gerr):
				return delivered[0], delivered[1], gerr
			}
			err = gerr
		}
		if progress {
			failures = 0
		}
		delay := c.loopDelay(failures, err)
		c.log.Debug("vercel: following logs again", "command", cmdID, "delay", delay, "error", fmt.Sprint(err))
		if serr := c.sleepFn(ctx, delay); serr != nil {
			return delivered[0], delivered[1], serr
		}
	}
}

// followOnce reads one logs stream, writing what lies past delivered. clean reports a clean end
// of the stream; a broken one is a *transportError.
func (c *Client) followOnce(ctx context.Context, op, sessionID, cmdID string, delivered *[2]int64, writers [2]io.Writer) (progress, clean bool, err error) {
	resp, err := c.send(ctx, &apiCall{
		op: op, method: http.MethodGet, path: apiCommandPath(sessionID, cmdID) + "/logs", idempotent: true, long: true,
	})
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if err := checkNDJSON(op, resp); err != nil {
		return false, false, err
	}
	var pos [2]int64 // bytes of each stream seen on this connection
	rerr := readNDJSON(resp.Body, func(l ndjsonLine) error {
		switch l.Stream {
		case "stdout", "stderr":
		case "error":
			return streamLineError(op, l.Data)
		default:
			return nil
		}
		data, err := logLineData(l.Data)
		if err != nil {
			return err
		}
		i := logStreamIndex(l.Stream)
		start := pos[i]
		pos[i] += int64(len(data))
		if pos[i] <= delivered[i] {
			return nil
		}
		if skip := delivered[i] - start; skip > 0 {
			data = data[skip:]
		}
		if _, err := writers[i].Write(data); err != nil {
			return &outputError{err}
		}
		delivered[i] = pos[i]
		progress = true
		return nil
	})
	var brk *streamBreak
	switch {
	case rerr == nil:
		return progress, true, nil
	case errors.As(rerr, &brk):
		return progress, false, &transportError{op: op, err: rerr}
	}
	return progress, false, rerr
}

// errReadLogsMaxWait ends a readLogs request whose time is up.
var errReadLogsMaxWait = errors.New("maximum wait reached")

// readLogs reads a command's logs stream (GET cmd/{id}/logs) once, calling fn with each
// stdout/stderr chunk as it arrives (stream is "stdout" or "stderr"; data is fn's to keep). It
// returns when the stream ends, or when maxWait has passed since the call (it then closes the
// request and returns ended false and a nil error); maxWait <= 0 means no limit but ctx. ended
// reports that the stream ended cleanly and getCommand confirms the command has exited. Used to
// poll background processes: the stream replays from the start on every call.
//
// A stream that breaks early yields an error wrapping errStreamCut; a {"stream":"error"} line
// an *APIError with Status 0.
func (c *Client) readLogs(ctx context.Context, sessionID, cmdID string, maxWait time.Duration, fn func(stream string, data []byte)) (ended bool, err error) {
	const op = "read logs"
	rctx := ctx
	if maxWait > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeoutCause(ctx, maxWait, errReadLogsMaxWait)
		defer cancel()
	}
	timeUp := func() bool { return ctx.Err() == nil && rctx.Err() != nil }
	resp, err := c.send(rctx, &apiCall{
		op: op, method: http.MethodGet, path: apiCommandPath(sessionID, cmdID) + "/logs", idempotent: true, long: true,
	})
	if err != nil {
		if timeUp() {
			return false, nil
		}
		return false, err
	}
	defer resp.Body.Close()
	if err := checkNDJSON(op, resp); err != nil {
		return false, err
	}
	rerr := readNDJSON(resp.Body, func(l ndjsonLine) error {
		switch l.Stream {
		case "stdout", "stderr":
			data, err := logLineData(l.Data)
			if err != nil {
				return err
			}
			fn(l.Stream, data)
		case "error":
			return streamLineError(op, l.Data)
		}
		return nil
	})
	switch {
	case rerr == nil:
		cmd, err := c.getCommand(ctx, sessionID, cmdID)
		if err != nil {
			return false, err
		}
		return cmd.ExitCode != nil, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case timeUp():
		return false, nil
	}
	var brk *streamBreak
	if errors.As(rerr, &brk) {
		return false, &transportError{op: op, err: fmt.Errorf("%w: %v", errStreamCut, brk.err)}
	}
	return false, rerr
}

// killCommand sends a signal (POSIX number: 9 KILL, 15 TERM, ...) to a command: POST
// cmd/{id}/kill {"signal": n}. Signalling again is harmless, so it is retried like an
// idempotent call.
func (c *Client) killCommand(ctx context.Context, sessionID, cmdID string, signal int) (command, error) {
	var out commandAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "kill command", method: http.MethodPost, path: apiCommandPath(sessionID, cmdID) + "/kill",
		body: marshalBody(map[string]int{"signal": signal}), idempotent: true,
	}, &out)
	return out.Command, err
}
