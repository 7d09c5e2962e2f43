package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Session URLs. session_url hands out a URL that reaches a TCP port inside a live session. The
// rules, enforced here:
//
//  1. The port must be one of the session's ports (sessionPorts): its workspace's exposed ports
//     when it opened, plus open_session's exposed_ports. They are fixed for the session's life.
//  2. On a provider that relays ports (Capabilities.PortURLs false: local), the URL is on this
//     server's PreviewServer (rule 5), and the call waits up to its wait (DefaultPortWait, at most
//     MaxWait) for the port to accept a connection: DialPort is polled with a short backoff,
//     and the call returns as soon as one is accepted (Listening true). A server started in
//     the background a moment before is the common case, not an error.
//  3. When nothing listens by then the answer is still no error: the URL (it works as soon as
//     something listens), Listening false, and the session's latest processes with the last
//     lines of their output, so that a server that crashed, or is still installing, says so.
//  4. A provider that serves ports itself (Capabilities.PortURLs: Vercel's public routes)
//     cannot be dialled from this server, and its routes answer whether or not something
//     listens: the URL is the provider's, Listening is unknown (nil), nothing is waited for, and
//     the processes are reported as in 3.
//  5. A URL of this server's own stands for a random token, opened by its PreviewServer the first
//     time session_url asks for the session's port; it works until the session ends, when the
//     PreviewServer closes it.

// Limits of session_url.
const (
	// DefaultPortWait is how long session_url waits for something to listen on the port when
	// the call gives no wait; MaxWait bounds a wait given.
	DefaultPortWait = 10 * time.Second
	// PortProcesses bounds how many of the session's processes (the newest) a session_url that
	// found nothing listening reports; PortLogLines and PortLogBytes bound the output shown of
	// each (its last lines).
	PortProcesses = 4
	PortLogLines  = 10
	PortLogBytes  = 2048
	// portPollMin and portPollMax bound the backoff between two connection attempts.
	portPollMin = 25 * time.Millisecond
	portPollMax = 500 * time.Millisecond
	// maxSessionProcs bounds the background process ids a session record keeps (the newest).
	maxSessionProcs = 64
)

// SessionURLRequest holds session_url's arguments.
type SessionURLRequest struct {
	SessionID string
	Port      int
	// Wait bounds how long to wait for something to listen on the port (0: DefaultPortWait; at
	// most MaxWait). Providers that serve ports themselves are not waited for.
	Wait time.Duration
	// Progress, when set, hears a line about the wait about once a second while it lasts.
	Progress func(line string)
}

// SessionURLResult is session_url's outcome.
type SessionURLResult struct {
	URL  string
	Port int
	// Listening is true when the port accepted a connection, false when nothing did within the
	// wait, and nil when the provider serves the port itself and this server cannot tell.
	Listening *bool
	// Waited is how long the call waited for the port.
	Waited time.Duration
	// Processes are set unless Listening is true: the session's newest processes (background
	// ones, and foreground commands that outlived their yield), newest first, at most
	// PortProcesses, each with only the end of its output (at most PortLogLines lines and
	// PortLogBytes bytes; Offset says where that starts, Dropped counts what is not shown).
	Processes []ProcessStatus
}

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// SessionURL returns a URL that reaches a port of the session, waiting for something to listen
// there when this server relays the port (see the rules above).
func (e *Engine) SessionURL(ctx context.Context, h Holder, req SessionURLRequest) (SessionURLResult, error) {
	port := req.Port
	if port < 1 || port > 65535 {
		return SessionURLResult{}, badArg("port", ptr(int64(65535)), ptr(int64(port)), "port %d is not a TCP port: give 1 to 65535, one of the session's exposed_ports", port)
	}
	wait, err := checkPortWait(req.Wait)
	if err != nil {
		return SessionURLResult{}, err
	}
	ls, s, err := e.holding(h, req.SessionID)
	if err != nil {
		return SessionURLResult{}, err
	}
	var w store.Workspace
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		w, err = tx.Workspace(s.Workspace)
		return err
	}); err != nil {
		return SessionURLResult{}, err
	}
	ports := sessionPorts(s, w)
	if !slices.Contains(ports, port) {
		exposed := "none"
		if len(ports) > 0 {
			exposed = fmt.Sprint(ports)
		}
		return SessionURLResult{}, errorf(ErrInvalid, "port %d is not exposed by session %s (its ports: %s); a session's ports are the workspace's exposed_ports "+
			"when it opened plus open_session's exposed_ports, fixed for its life", port, s.ID, exposed).
			with(ErrorFields{Argument: "port", Got: ptr(int64(port)), Session: s.ID, Workspace: w.Name})
	}
	out := SessionURLResult{Port: port}
	if e.prov.Capabilities().PortURLs {
		if out.URL, err = ls.sb.PortURL(ctx, port); err != nil {
			return SessionURLResult{}, e.sessionErr(ls, err)
		}
		out.Processes = e.recentProcesses(ctx, ls)
		return out, nil
	}
	if e.previews == nil {
		return SessionURLResult{}, errorf(ErrProvider, "this server was started without a preview listener, so it cannot hand out URLs")
	}
	start := time.Now()
	listening, err := e.waitPort(ctx, ls, port, wait, req.Progress)
	if err != nil {
		return SessionURLResult{}, err
	}
	out.Waited = time.Since(start)
	out.Listening = &listening
	if out.URL, err = e.previewURL(s.ID, port); err != nil {
		return SessionURLResult{}, err
	}
	if !listening {
		out.Processes = e.recentProcesses(ctx, ls)
	}
	return out, nil
}

// checkPortWait checks session_url's wait (wait_ms) and returns the one that applies: 0 means
// DefaultPortWait; otherwise at most MaxWait.
func checkPortWait(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultPortWait, nil
	case d < 0 || d > MaxWait:
		return 0, badArg("wait_ms", ptr(MaxWait.Milliseconds()), ptr(d.Milliseconds()), "wait_ms %d is out of range: give 1 to %d milliseconds, or omit it for the default of %d",
			d.Milliseconds(), MaxWait.Milliseconds(), DefaultPortWait.Milliseconds())
	}
	return d, nil
}

// sessionPorts are the ports a session exposes: its own record's, or, for a record from before
// sessions had their own, the workspace's (which cannot change while the session is open).
func sessionPorts(s store.Session, w store.Workspace) []int {
	if s.Ports != nil {
		return s.Ports
	}
	return w.ExposedPorts
}

// waitPort polls DialPort until port accepts a connection (true) or wait has passed (false).
func (e *Engine) waitPort(ctx context.Context, ls *liveSession, port int, wait time.Duration, progress func(string)) (bool, error) {
	start := time.Now()
	delay := portPollMin
	note := start.Add(time.Second)
	for {
		c, err := ls.sb.DialPort(ctx, port)
		if err == nil {
			c.Close()
			return true, nil
		}
		if ctx.Err() != nil {
			return false, errorf(ErrCancelled, "session_url was cancelled while waiting for port %d", port)
		}
		if !errors.Is(err, sandbox.ErrRefused) {
			return false, e.sessionErr(ls, err)
		}
		left := wait - time.Since(start)
		if left <= 0 {
			return false, nil
		}
		if progress != nil && !time.Now().Before(note) {
			progress(fmt.Sprintf("nothing listens on port %d yet; waited %s of %s", port, time.Since(start).Round(time.Second), wait))
			note = note.Add(time.Second)
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, errorf(ErrCancelled, "session_url was cancelled while waiting for port %d", port)
		case <-e.ctx.Done():
			t.Stop()
			return false, ErrClosed
		}
		delay = min(2*delay, portPollMax)
	}
}

// PreviewServer serves the preview URLs of this server's sessions (rule 5). The engine owns the
// tokens and their lifetimes; the server owns the listeners:
//
//   - Open is called once per token, the first time session_url asks for a session's port, and
//     returns the URL it serves the token at (a loopback port of its own, or a door that routes by
//     token). Requests it serves are resolved with Engine.Preview(token), which also says when
//     the token's session has ended.
//   - Close is called once for every token opened, when its session ends (committed, discarded,
//     expired, lost); the URL stops working then. It must not block on requests in flight.
//
// Tokens do not survive the server: the next one hands out new URLs.
type PreviewServer interface {
	Open(token string) (url string, err error)
	Close(token string)
}

// PreviewURLFunc is a PreviewServer with nothing to open or close: every token's URL is derived
// from the token, and one door serves them all, routing by token (--public-url).
type PreviewURLFunc func(token string) string

// Open returns f(token).
func (f PreviewURLFunc) Open(token string) (string, error) { return f(token), nil }

// Close does nothing: the door serving the URL asks Engine.Preview, which knows the token is gone.
func (PreviewURLFunc) Close(string) {}

// previewURL returns the preview URL of the session's port, opening it on first use.
func (e *Engine) previewURL(sessionID string, port int) (string, error) {
	find := func() (string, bool) {
		for _, p := range e.sess.previews {
			if p.SessionID == sessionID && p.Port == port {
				return p.url, true
			}
		}
		return "", false
	}
	e.sess.mu.Lock()
	url, ok := find()
	e.sess.mu.Unlock()
	if ok {
		return url, nil
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := tokenEncoding.EncodeToString(b[:])
	// Open may allocate a listener: not under the lock, which every preview request takes.
	url, err := e.previews.Open(tok)
	if err != nil {
		return "", errorf(ErrProvider, "could not open a preview of port %d in session %s: %v", port, sessionID, err)
	}
	e.sess.mu.Lock()
	existing, raced := find()
	_, live := e.sess.live[sessionID]
	if !raced && live {
		e.sess.previews[tok] = preview{PreviewTarget{SessionID: sessionID, Port: port}, url}
	}
	e.sess.mu.Unlock()
	switch {
	case raced: // another call opened it meanwhile
		e.previews.Close(tok)
		return existing, nil
	case !live: // the session ended meanwhile
		e.previews.Close(tok)
		return "", errorf(ErrNotFound, "session %s ended while its preview was being opened", sessionID).with(ErrorFields{Session: sessionID})
	}
	return url, nil
}

// noteProcess remembers a background process started in the session, in memory and in its
// record (the newest maxSessionProcs), for session_url's report.
func (e *Engine) noteProcess(ls *liveSession, id string) {
	ls.mu.Lock()
	ls.bg = newest(append(ls.bg, id), maxSessionProcs)
	ls.mu.Unlock()
	err := e.st.Update(func(tx *store.Tx) error {
		s, err := tx.Session(ls.id)
		if err != nil {
			return err
		}
		s.Processes = newest(append(s.Processes, id), maxSessionProcs)
		return tx.PutSession(s)
	})
	if err != nil {
		e.log.Warn("could not record a session's background process", "session", ls.id, "process", id, "err", err)
	}
}

func newest(ids []string, n int) []string {
	if len(ids) > n {
		return slices.Clone(ids[len(ids)-n:])
	}
	return ids
}

// recentProcesses reports the session's newest processes (background ones and yielded
// foreground commands), newest first, each with the end of its output only. A process the
// provider no longer knows is left out.
func (e *Engine) recentProcesses(ctx context.Context, ls *liveSession) []ProcessStatus {
	ls.mu.Lock()
	bg := newest(slices.Clone(ls.bg), PortProcesses)
	fg := make([]*fgProc, 0, len(ls.fg))
	for _, p := range ls.fg {
		fg = append(fg, p)
	}
	ls.mu.Unlock()
	got := make([]*ProcessStatus, len(bg))
	var wg sync.WaitGroup
	for i, id := range bg {
		wg.Add(1)
		go func() { // Vercel replays a log stream per process: ask in parallel
			defer wg.Done()
			if st, err := ls.sb.Process(ctx, id, 0, 0); err == nil {
				shellView(&st)
				got[i] = &st
			}
		}()
	}
	wg.Wait()
	var all []ProcessStatus
	for _, st := range got {
		if st != nil {
			all = append(all, *st)
		}
	}
	for _, p := range fg {
		all = append(all, p.status(0))
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Started.After(all[j].Started) })
	if len(all) > PortProcesses {
		all = all[:PortProcesses]
	}
	for i := range all {
		st := &all[i]
		cut := tailStart(st.Output)
		st.Output = st.Output[cut:]
		st.Offset += int64(cut)
		st.Dropped = st.Offset // asked from 0: everything before the tail is not shown
		st.Next = st.Offset + int64(len(st.Output))
	}
	return all
}

// tailStart is where the end of out that session_url shows starts: at most PortLogLines lines
// (a final newline does not start another) and PortLogBytes bytes, on a line boundary when
// there is one, else on a character boundary.
func tailStart(out []byte) int {
	body := bytes.TrimSuffix(out, []byte("\n"))
	start, lines := 0, 0
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] == '\n' {
			if lines++; lines == PortLogLines {
				start = i + 1
				break
			}
		}
	}
	if len(out)-start <= PortLogBytes {
		return start
	}
	start = len(out) - PortLogBytes
	if i := bytes.IndexByte(out[start:len(body)], '\n'); i >= 0 {
		return start + i + 1
	}
	for start < len(out) && !utf8.RuneStart(out[start]) {
		start++
	}
	return start
}

// Preview resolves a preview URL token to its session and port, and a dialer reaching that port.
// Unknown tokens, and tokens of sessions that ended, yield ErrNotFound.
func (e *Engine) Preview(token string) (PreviewTarget, func(ctx context.Context) (net.Conn, error), error) {
	e.sess.mu.Lock()
	p, ok := e.sess.previews[token]
	t := p.PreviewTarget
	ls := e.sess.live[t.SessionID]
	e.sess.mu.Unlock()
	if !ok || ls == nil {
		return PreviewTarget{}, nil, errorf(ErrNotFound, "unknown or expired preview link; call session_url again for a fresh one")
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		c, err := ls.sb.DialPort(ctx, t.Port)
		if err != nil && errors.Is(err, sandbox.ErrRefused) {
			return nil, errorf(ErrInvalid, "nothing is listening on port %d inside session %s", t.Port, t.SessionID)
		}
		return c, err
	}
	return t, dial, nil
}

// preview is a token handed out by session_url: what it stands for and the URL it is served at.
type preview struct {
	PreviewTarget
	url string
}
