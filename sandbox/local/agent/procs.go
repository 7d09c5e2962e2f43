package agent

import (
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Background processes: started by OpStart, reported by OpProcess, signalled by OpSignal. Each
// keeps its stdout and stderr, interleaved as produced, in a ring of MaxLog bytes; offsets count
// every byte the process ever wrote, so they never go backwards and a reader can tell how much
// it missed.

// MaxLog is how much output the agent keeps per background process (sandbox.MaxProcessLog).
const MaxLog = 1 << 20

// maxEnded bounds how many processes that have exited the agent remembers; older ones are
// forgotten first.
const maxEnded = 256

// maxWait bounds how long one OpProcess request waits for output.
const maxWait = 10 * time.Minute

type procTable struct {
	mu    sync.Mutex
	m     map[string]*process
	order []string // ids in start order
	next  int
}

type process struct {
	id      string
	argv    []string
	started time.Time

	mu      sync.Mutex
	child   *child // nil when the process could not start
	log     ring
	running bool
	exit    int
	ended   time.Time
	changed chan struct{} // closed and replaced on new output or exit
}

// Write appends output; it implements io.Writer for the output copier.
func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.log.write(b)
	p.notifyLocked()
	p.mu.Unlock()
	return len(b), nil
}

func (p *process) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *process) finish(code int) {
	p.mu.Lock()
	p.running = false
	p.exit = code
	p.ended = time.Now()
	p.notifyLocked()
	p.mu.Unlock()
}

// add registers a new process and forgets the oldest ended ones beyond maxEnded.
func (t *procTable) add(argv []string) *process {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	p := &process{
		id:      "p" + strconv.Itoa(t.next),
		argv:    argv,
		started: time.Now(),
		log:     newRing(MaxLog),
		running: true,
		changed: make(chan struct{}),
	}
	t.m[p.id] = p
	t.order = append(t.order, p.id)
	ended := 0
	for _, id := range t.order {
		if q := t.m[id]; q != nil && !q.isRunning() {
			ended++
		}
	}
	for i := 0; ended > maxEnded && i < len(t.order); {
		q := t.m[t.order[i]]
		if q != nil && !q.isRunning() {
			delete(t.m, q.id)
			t.order = append(t.order[:i], t.order[i+1:]...)
			ended--
			continue
		}
		i++
	}
	return p
}

func (t *procTable) get(id string) *process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (p *process) isRunning() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

func notFound(id string) *WireError {
	return &WireError{Kind: KindNotFound, Message: fmt.Sprintf("no background process %q in this sandbox", id)}
}

func (a *agent) startProcess(ac *conn, req *Request) Result {
	var stdin []byte
	if req.HasStdin {
		var err error
		if stdin, err = ReadBlob(ac.r, 1<<30); err != nil {
			return Result{Err: invalid("stdin: %v", err)}
		}
		if stdin == nil {
			stdin = []byte{}
		}
	}
	if len(req.Argv) == 0 {
		return Result{Err: invalid("empty command")}
	}
	p := a.procs.add(req.Argv)
	path, msg := a.prepare(req)
	if msg == "" {
		cmd, err := a.spawn(path, req.Argv, req.Env, req.Cwd, stdin, p)
		if err == nil {
			p.mu.Lock()
			p.child = cmd.child
			p.mu.Unlock()
			go func() {
				ws := cmd.wait(waitDelay, false)
				p.finish(exitCode(ws))
			}()
			return Result{Proc: p.id}
		}
		msg = startError(req.Argv[0], err)
	}
	// Could not start: like a shell, exit status 127 and the reason as output.
	_, _ = p.Write([]byte("sandbox: " + msg + "\n"))
	p.finish(127)
	return Result{Proc: p.id}
}

// processStatus answers OpProcess: the process and its output from req.Since, waiting up to
// req.WaitMs for output past Since or the exit when there is neither yet.
func (a *agent) processStatus(ac *conn, req *Request) {
	p := a.procs.get(req.Proc)
	if p == nil {
		ac.result(Result{Err: notFound(req.Proc)})
		return
	}
	if req.Since < 0 {
		ac.result(Result{Err: invalid("negative offset %d", req.Since)})
		return
	}
	wait := min(time.Duration(req.WaitMs)*time.Millisecond, maxWait)
	var timeout <-chan time.Time
	var cancelled <-chan struct{}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
		cancelled = ac.closed()
	}
	for {
		p.mu.Lock()
		if req.Since > p.log.total {
			total := p.log.total
			p.mu.Unlock()
			ac.result(Result{Err: invalid("offset %d is past the end of process %s's output (%d bytes so far)", req.Since, p.id, total)})
			return
		}
		if p.log.total > req.Since || !p.running || wait <= 0 {
			info, data := p.infoLocked(req.Since)
			p.mu.Unlock()
			ac.resultBlob(Result{Process: info}, data)
			return
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			wait = 0
		case <-cancelled:
			return
		}
	}
}

func (p *process) infoLocked(since int64) (*ProcessInfo, []byte) {
	data, off := p.log.readFrom(since)
	info := &ProcessInfo{
		ID:        p.id,
		Argv:      p.argv,
		Running:   p.running,
		StartedNs: p.started.UnixNano(),
		Offset:    off,
		Dropped:   max(off-since, 0),
	}
	if !p.running {
		code := p.exit
		info.ExitCode = &code
		info.EndedNs = p.ended.UnixNano()
	}
	return info, data
}

func (a *agent) signalProcess(req *Request) Result {
	p := a.procs.get(req.Proc)
	if p == nil {
		return Result{Err: notFound(req.Proc)}
	}
	if req.Signal < 0 || req.Signal > 64 {
		return Result{Err: invalid("%d is not a signal number", req.Signal)}
	}
	p.mu.Lock()
	c := p.child
	p.mu.Unlock()
	if c == nil {
		return Result{} // it never started
	}
	if err := a.reaper.signalGroup(c, syscall.Signal(req.Signal)); err != nil {
		return Result{Err: &WireError{Kind: KindIO, Message: fmt.Sprintf("signal process %s: %v", p.id, err)}}
	}
	return Result{}
}
