package vercelfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"
)

// A command's log (commands.go runs the commands). Each command keeps its whole log (up to
// maxCommandLog bytes; older output is dropped beyond) so GET logs can replay it; the command
// outlives the request that started it. The stream of the request that ran an attached command
// is pinned: output waits for it rather than being dropped unread. Logs are sent as NDJSON.

// maxCommandLog bounds the output kept per command.
const maxCommandLog = 16 << 20

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
