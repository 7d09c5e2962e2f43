package agent

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultListenFd is the descriptor of the inherited listening socket.
const DefaultListenFd = 4

// Resource limits every command inherits.
const (
	nofileSoft = 4096
	nofileHard = 65536
)

type agent struct {
	reaper *reaper

	mu        sync.Mutex
	env       []string
	inited    bool
	deadline  time.Time
	timer     *time.Timer
	bootTimer *time.Timer
	procs     procTable
	egress    *egress // nil when the forwarder could not listen
}

// Main runs the agent until the sandbox's deadline; it returns only on a setup error. args is
// the command line after the program name (see the package doc for the flags).
func Main(args []string) error {
	fl := flag.NewFlagSet("sandkit-agent", flag.ContinueOnError)
	listenFd := fl.Int("listen-fd", DefaultListenFd, "inherited listening Unix socket to serve on")
	deadlineMs := fl.Int64("deadline", 0, "Unix milliseconds at which to exit, ending the sandbox (0: never)")
	boot := fl.Duration("boot-timeout", 30*time.Second, "exit unless the provider's init request arrives within this time (0: wait forever)")
	egressPort := fl.Int("egress-port", 0, "serve the egress forwarder on 127.0.0.1:PORT (0: none)")
	life := fl.String("life-fd", "", "R:W: a pipe whose write end W only bwrap's monitor keeps; exit once R reads EOF")
	if err := fl.Parse(args); err != nil {
		return err
	}
	lifeR := -1
	if *life != "" {
		r, w, ok := strings.Cut(*life, ":")
		rfd, err1 := strconv.Atoi(r)
		wfd, err2 := strconv.Atoi(w)
		if !ok || err1 != nil || err2 != nil || rfd < 3 || wfd < 3 {
			return fmt.Errorf("-life-fd %q: want R:W, two descriptors", *life)
		}
		unix.Close(wfd)
		lifeR = rfd
	}
	if errNotHere != nil {
		return errNotHere
	}
	syscall.Umask(0o022)
	setRlimits()
	protectSelf()
	lf := os.NewFile(uintptr(*listenFd), "listener")
	if lf == nil {
		return fmt.Errorf("no listening socket on fd %d", *listenFd)
	}
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("listening socket on fd %d: %w", *listenFd, err)
	}
	// Nothing bwrap or the helper left open may leak into commands.
	closeInherited()

	// PID 1 gets only the signals it handles. Handle the termination signals (and drop them)
	// instead of ignoring them: ignored dispositions would be inherited by every command.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	go func() {
		for range sigs {
		}
	}()

	a := &agent{reaper: newReaper()}
	a.procs.m = map[string]*process{}
	if *egressPort > 0 {
		e := newEgress()
		if err := e.listen(*egressPort); err != nil {
			logf("egress forwarder: %v; the sandbox has no egress", err)
		} else {
			a.egress = e
		}
	}
	if *deadlineMs > 0 {
		a.setDeadline(time.UnixMilli(*deadlineMs))
	}
	if lifeR >= 0 {
		go watchMonitor(lifeR)
	}
	if *boot > 0 {
		a.bootTimer = time.AfterFunc(*boot, func() {
			a.mu.Lock()
			inited := a.inited
			a.mu.Unlock()
			if !inited {
				logf("no init request from the provider within %s; ending the sandbox", *boot)
				os.Exit(1)
			}
		})
	}
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		go a.serve(c)
	}
}

// watchMonitor ends the sandbox once the life pipe's read end fd reads EOF: bwrap's monitor,
// which held the only write end, is gone (killed with the provider before --die-with-parent
// took hold in its child, or on its own). Without it the agent would wait for its init request
// (-boot-timeout) or its deadline, a sandbox nobody can reach.
func watchMonitor(fd int) {
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n == 0 || err != nil {
			logf("bwrap's monitor is gone; ending the sandbox")
			os.Exit(1)
		}
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sandkit-agent: "+format+"\n", args...)
}

func setRlimits() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil {
		lim := unix.Rlimit{Cur: min(nofileSoft, cur.Max), Max: min(nofileHard, cur.Max)}
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
}

// setDeadline (re)arms the timer that ends the sandbox at t.
func (a *agent) setDeadline(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.deadline = t
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timer = time.AfterFunc(time.Until(t), a.expire)
}

func (a *agent) expire() {
	a.mu.Lock()
	d := a.deadline
	a.mu.Unlock()
	if time.Now().Before(d) {
		return // moved meanwhile; a new timer is armed
	}
	logf("the sandbox's lifetime ended (deadline %s); exiting", d.UTC().Format(time.RFC3339))
	os.Exit(0)
}

// conn is one request connection; frames may be written from several goroutines (stdout and
// stderr copiers).
type conn struct {
	c  *net.UnixConn
	r  *bufio.Reader
	mu sync.Mutex
}

func (ac *conn) send(typ byte, p []byte) error {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return WriteFrame(ac.c, typ, p)
}

func (ac *conn) result(res Result) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	_ = WriteJSON(ac.c, FrameResult, res)
}

// resultBlob sends a result followed, when it carries no error, by a blob.
func (ac *conn) resultBlob(res Result, data []byte) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if WriteJSON(ac.c, FrameResult, res) == nil && res.Err == nil {
		_ = WriteBlob(ac.c, data)
	}
}

// closed returns a channel closed when the provider shuts down its side of the connection
// (how it cancels a request), or sends anything more. Call it once the request is read.
func (ac *conn) closed() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = ac.r.Read(b[:])
		close(ch)
	}()
	return ch
}

// streamWriter turns writes into stdout or stderr frames.
type streamWriter struct {
	ac  *conn
	typ byte
}

func (w streamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += ChunkSize {
		end := min(off+ChunkSize, len(p))
		if err := w.ac.send(w.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

func invalid(format string, args ...any) *WireError {
	return &WireError{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

func (a *agent) serve(c net.Conn) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return
	}
	defer uc.Close()
	ac := &conn{c: uc, r: bufio.NewReaderSize(uc, 64<<10)}
	var req Request
	if err := ReadJSON(ac.r, FrameRequest, &req); err != nil {
		return
	}
	switch req.Op {
	case OpInit:
		ac.result(a.init(&req))
	case OpHello:
		a.mu.Lock()
		res := Result{Protocol: Protocol, Env: a.env, DeadlineMs: a.deadlineMsLocked()}
		a.mu.Unlock()
		ac.result(res)
	case OpDeadline:
		if req.DeadlineMs <= 0 {
			ac.result(Result{Err: invalid("deadline %d is not a time", req.DeadlineMs)})
			return
		}
		a.setDeadline(time.UnixMilli(req.DeadlineMs))
		ac.result(Result{DeadlineMs: req.DeadlineMs})
	case OpExec:
		a.exec(ac, &req)
	case OpWrite:
		ac.result(a.writeFiles(ac, &req))
	case OpRead:
		data, res := a.readFile(&req)
		ac.resultBlob(res, data)
	case OpList:
		ac.result(a.listFiles(&req))
	case OpStart:
		ac.result(a.startProcess(ac, &req))
	case OpProcess:
		a.processStatus(ac, &req)
	case OpSignal:
		ac.result(a.signalProcess(&req))
	case OpPort:
		a.port(ac, &req)
	case OpEgress:
		a.subscribe(ac)
	default:
		ac.result(Result{Err: invalid("unknown operation %q", req.Op)})
	}
}

func (a *agent) init(req *Request) Result {
	a.mu.Lock()
	a.env = req.Env
	a.inited = true
	if a.bootTimer != nil {
		a.bootTimer.Stop()
	}
	a.mu.Unlock()
	if req.DeadlineMs > 0 {
		a.setDeadline(time.UnixMilli(req.DeadlineMs))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return Result{Protocol: Protocol, DeadlineMs: a.deadlineMsLocked()}
}

// deadlineMsLocked is the deadline in Unix milliseconds, 0 when there is none.
func (a *agent) deadlineMsLocked() int64 {
	if a.deadline.IsZero() {
		return 0
	}
	return a.deadline.UnixMilli()
}
