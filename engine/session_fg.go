package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Foreground session commands that outlive their yield.
//
// A foreground session_exec runs the command through the provider's Exec, with its stdout and
// stderr captured apart, in a goroutine of the engine rather than of the call. When the command
// ends within the call's Yield, the call returns its exit code and both streams, as it always did.
// When it is still running then, the call returns a process id (prefix fg_), the output so far
// and Running; the command keeps going (its timeout still applies), and from then on it is a
// process of the session like a background one:
//
//   - SessionLogs reads its output as one stream of stdout and stderr interleaved as produced,
//     counted from the command's start (so SessionExecResult.LogOffset, the bytes returned so far
//     on both streams, is where to go on), keeping at least the last sandbox.MaxProcessLog bytes,
//     and waits for new output or its end like any process.
//   - SessionKill stops it: a foreground command has no signal channel, so TERM, INT, HUP, QUIT
//     and KILL all kill its whole process tree (it then reads exit code 137, as after SIGKILL);
//     other signals are refused.
//   - It ends at the latest with the session, or when the server stops. Its exit code -1 means it
//     timed out; a note at the end of its log says so, or why it ended without an exit status.
//
// Cancelling the call before the yield kills the command, as before.

// fgPrefix starts the process id of a yielded foreground command (providers' ids differ).
const fgPrefix = "fg_"

// maxFgProcs bounds how many yielded foreground commands a session remembers; the oldest ended
// ones are forgotten first.
const maxFgProcs = 64

// fgProc is a foreground session command in flight, or one that yielded.
type fgProc struct {
	id      string
	command string
	args    []string
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{} // closed when the command has ended and its outcome is recorded
	pulse   pulse         // fires on new output and at the end

	mu      sync.Mutex
	stdout  *capture // the separate streams, until the call yields
	stderr  *capture
	yielded bool
	log     ringLog // stdout and stderr interleaved, from the start
	res     sandbox.ExecResult
	err     error
	killed  bool
	ended   time.Time
}

// fgStream is one of a foreground command's output streams.
type fgStream struct {
	p   *fgProc
	out *capture
}

func (s fgStream) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	if !s.p.yielded {
		_, _ = s.out.Write(b)
	}
	s.p.log.write(b)
	s.p.mu.Unlock()
	s.p.pulse.fire()
	return len(b), nil
}

// finish records how the command ended.
func (p *fgProc) finish(res sandbox.ExecResult, err error) {
	p.mu.Lock()
	p.res, p.err, p.ended = res, err, time.Now().UTC()
	switch {
	case p.killed:
	case err != nil:
		p.log.write(fmt.Appendf(nil, "\n[sandkit: the command ended without an exit status: %v]\n", err))
	case res.TimedOut:
		p.log.write(fmt.Appendf(nil, "\n[sandkit: the command timed out after %d ms and was killed]\n", res.Duration.Milliseconds()))
	}
	p.mu.Unlock()
	close(p.done)
	p.pulse.fire()
}

// status reports the command and its log from offset since.
func (p *fgProc) status(since int64) ProcessStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProcessStatus{ID: p.id, Command: p.command, Args: p.args, Started: p.started, Running: p.ended.IsZero()}
	if !st.Running {
		st.Ended = p.ended
		switch {
		case p.killed:
			st.ExitCode = ptr(128 + int(syscall.SIGKILL))
		case p.err == nil:
			st.ExitCode = ptr(p.res.ExitCode)
		}
	}
	st.Output, st.Offset, st.Dropped = p.log.read(since)
	st.Next = st.Offset + int64(len(st.Output))
	return st
}

// ringLog keeps the last sandbox.MaxProcessLog bytes (at least) of a stream and its length.
type ringLog struct {
	buf   []byte
	total int64
}

func (l *ringLog) write(b []byte) {
	l.total += int64(len(b))
	l.buf = append(l.buf, b...)
	if len(l.buf) > 2*sandbox.MaxProcessLog {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-sandbox.MaxProcessLog:]...)
	}
}

// read returns a copy of the bytes from since on (since past the end reads nothing at the end),
// where they start, and how many bytes after since are no longer kept.
func (l *ringLog) read(since int64) ([]byte, int64, int64) {
	start := l.total - int64(len(l.buf))
	since = min(since, l.total)
	if since < start {
		return slices.Clone(l.buf), start, start - since
	}
	return slices.Clone(l.buf[since-start:]), since, 0
}

// execForeground runs a foreground command in the session, returning when it ends or when yield
// has passed (then the command is registered as one of the session's processes).
func (e *Engine) execForeground(ctx context.Context, ls *liveSession, req SessionExecRequest, x sandbox.ExecRequest, yield time.Duration) (SessionExecResult, error) {
	lines := &lineWatch{notify: req.Progress}
	ectx, cancel := context.WithCancel(e.ctx) // the command's life is not the call's after the yield
	p := &fgProc{
		id: newID(fgPrefix), command: req.Command, args: req.Args, started: time.Now().UTC(), cancel: cancel,
		done: make(chan struct{}), stdout: newCapture(OutputKeep, lines), stderr: newCapture(OutputKeep, lines),
	}
	x.Stdout, x.Stderr = fgStream{p, p.stdout}, fgStream{p, p.stderr}
	go func() {
		defer cancel()
		res, err := ls.sb.Exec(ectx, x)
		p.finish(res, err)
	}()
	t := time.NewTimer(yield)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		cancel()
		<-p.done
		return SessionExecResult{}, errorf(ErrCancelled, "the command was killed: %v", ctx.Err())
	case <-t.C:
		lines.stop()
		p.mu.Lock()
		if p.ended.IsZero() {
			p.yielded = true
			out := SessionExecResult{
				ProcessID: p.id, Running: true, Stdout: p.stdout.output(), Stderr: p.stderr.output(),
				DurationMS: time.Since(p.started).Milliseconds(),
			}
			out.LogOffset = out.Stdout.Total + out.Stderr.Total
			p.stdout, p.stderr = nil, nil
			p.mu.Unlock()
			ls.addFg(p)
			e.log.Info("session command yielded", "session", ls.id, "process", p.id, "after", yield)
			return out, nil
		}
		p.mu.Unlock()
		<-p.done
	}
	if p.err != nil {
		return SessionExecResult{}, e.sessionErr(ls, p.err)
	}
	return SessionExecResult{
		ExitCode: p.res.ExitCode, TimedOut: p.res.TimedOut, DurationMS: p.res.Duration.Milliseconds(),
		Stdout: p.stdout.output(), Stderr: p.stderr.output(),
	}, nil
}

// addFg registers a yielded foreground command with its session, forgetting the oldest ended
// ones beyond maxFgProcs.
func (ls *liveSession) addFg(p *fgProc) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.fg == nil {
		ls.fg = map[string]*fgProc{}
	}
	ls.fg[p.id] = p
	for len(ls.fg) > maxFgProcs {
		var oldest *fgProc
		for _, q := range ls.fg {
			select {
			case <-q.done:
				if oldest == nil || q.started.Before(oldest.started) {
					oldest = q
				}
			default:
			}
		}
		if oldest == nil {
			return
		}
		delete(ls.fg, oldest.id)
	}
}

func (ls *liveSession) fgProc(id string) *fgProc {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.fg[id]
}

// fgLogs is SessionLogs for a yielded foreground command.
func fgLogs(ctx context.Context, p *fgProc, since int64, wait time.Duration) ProcessStatus {
	var expired <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		expired = t.C
	}
	for {
		changed := p.pulse.wait()
		st := p.status(since)
		if !st.Running || st.Next > since || st.Dropped > 0 || expired == nil || ctx.Err() != nil {
			return st
		}
		select {
		case <-changed:
		case <-expired:
			expired = nil
		case <-ctx.Done():
		}
	}
}

// fgKill is SessionKill for a yielded foreground command: the signals that end a process kill
// its tree; the others are refused.
func fgKill(ctx context.Context, sessionID string, p *fgProc, sig syscall.Signal) (ProcessStatus, error) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL:
	default:
		return ProcessStatus{}, badArg("signal", nil, ptr(int64(sig)), "process %s of session %s is a foreground command that outlived its yield; it has no signal channel and can only be stopped (TERM, INT, HUP, QUIT or KILL, which all kill its process tree)", p.id, sessionID).
			with(ErrorFields{Argument: "signal", Got: ptr(int64(sig)), Session: sessionID, Process: p.id})
	}
	p.mu.Lock()
	if p.ended.IsZero() {
		p.killed = true
	}
	p.mu.Unlock()
	p.cancel()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	st := p.status(0)
	st.Output, st.Offset, st.Dropped = nil, st.Next, 0
	return st, nil
}
