package local

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The agent is the sandbox's main process (bwrap's child, PID 2 inside; bwrap's own init is PID
// 1 and reaps orphans). It runs as the sandbox user with no capabilities, under the seccomp
// filter, and serves the provider's requests. It receives each request connection as a
// descriptor over the master socket (fd 4), so it never creates a socket.
//
// The agent is not a security boundary: commands in the sandbox run as the same user and could
// take it over. Everything it does for the provider it does with the sandbox user's rights, and
// the provider validates what it answers.

// waitDelay is how long an exec waits, after its command exited, for processes that inherited
// its stdout/stderr (a background "cmd &") to let go, before it stops reading and returns.
const waitDelay = 250 * time.Millisecond

// Resource limits every command inherits.
const (
	nofileSoft = 4096
	nofileHard = 65536
)

type agent struct{}

func agentMain() error {
	syscall.Umask(0o022)
	setAgentRlimits()
	mf := os.NewFile(fdMaster, "master")
	c, err := net.FileConn(mf)
	mf.Close()
	if err != nil {
		return fmt.Errorf("master socket: %w", err)
	}
	// Nothing bwrap or the helper left open may leak into commands.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	master, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("master socket is a %T, not a unix socket", c)
	}
	a := &agent{}
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		_, oobn, _, _, err := master.ReadMsgUnix(buf, oob)
		if err != nil {
			// The provider is gone (or closed the master on purpose): end the sandbox.
			return nil
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			continue
		}
		for i := range msgs {
			fds, err := unix.ParseUnixRights(&msgs[i])
			if err != nil {
				continue
			}
			for _, fd := range fds {
				go a.serveFd(fd)
			}
		}
	}
}

func setAgentRlimits() {
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil {
		lim := unix.Rlimit{Cur: min(nofileSoft, cur.Max), Max: min(nofileHard, cur.Max)}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, (*syscall.Rlimit)(&lim))
	}
}

// agentConn is one request connection on the agent side; frames may be written from several
// goroutines (stdout and stderr copiers).
type agentConn struct {
	c  *net.UnixConn
	r  *bufio.Reader
	mu sync.Mutex
}

func (ac *agentConn) send(typ byte, p []byte) error {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return writeFrame(ac.c, typ, p)
}

func (ac *agentConn) result(res result) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	_ = writeJSON(ac.c, frameResult, res)
}

// streamWriter turns writes into stdout or stderr frames.
type streamWriter struct {
	ac  *agentConn
	typ byte
}

func (w streamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += chunkSize {
		end := min(off+chunkSize, len(p))
		if err := w.ac.send(w.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

func (a *agent) serveFd(fd int) {
	f := os.NewFile(uintptr(fd), "request")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return
	}
	defer uc.Close()
	ac := &agentConn{c: uc, r: bufio.NewReaderSize(uc, 64<<10)}
	var req request
	if err := readJSON(ac.r, frameRequest, &req); err != nil {
		return
	}
	switch req.Op {
	case opPing:
		ac.result(result{})
	case opExec:
		a.exec(ac, &req)
	case opWrite:
		ac.result(a.writeFiles(ac, &req))
	case opRead:
		data, res := a.readFile(&req)
		ac.mu.Lock()
		if writeJSON(ac.c, frameResult, res) == nil && res.Err == nil {
			_ = writeBlob(ac.c, data)
		}
		ac.mu.Unlock()
	case opList:
		ac.result(a.listFiles(&req))
	default:
		ac.result(result{Err: &wireError{Kind: kindInvalid, Message: fmt.Sprintf("unknown operation %q", req.Op)}})
	}
}

func (a *agent) exec(ac *agentConn, req *request) {
	var stdin []byte
	if req.HasStdin {
		var err error
		if stdin, err = readBlob(ac.r, 1<<30); err != nil {
			return
		}
	}
	if len(req.Argv) == 0 {
		ac.result(result{Err: &wireError{Kind: kindInvalid, Message: "empty command"}})
		return
	}
	stdout := streamWriter{ac, frameStdout}
	stderr := streamWriter{ac, frameStderr}
	fail := func(msg string) {
		_, _ = stderr.Write([]byte("sandbox: " + msg + "\n"))
		ac.result(result{ExitCode: 127})
	}
	if fi, err := os.Stat(req.Cwd); err != nil || !fi.IsDir() {
		msg := "not a directory"
		var pe *os.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		fail(fmt.Sprintf("cannot change to working directory %s: %s", req.Cwd, msg))
		return
	}
	path, err := lookPath(req.Argv[0], envValue(req.Env, "PATH"), req.Cwd)
	if err != nil {
		fail(err.Error())
		return
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        req.Argv,
		Env:         req.Env,
		Dir:         req.Cwd,
		Stdout:      stdout,
		Stderr:      stderr,
		WaitDelay:   waitDelay,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail(startError(req.Argv[0], req.Cwd, err))
		return
	}
	pid := cmd.Process.Pid
	var timedOut atomic.Bool
	var killOnce sync.Once
	kill := func() { killOnce.Do(func() { killTree(pid) }) }
	if req.TimeoutMs > 0 {
		t := time.AfterFunc(time.Duration(req.TimeoutMs)*time.Millisecond, func() {
			timedOut.Store(true)
			kill()
		})
		defer t.Stop()
	}
	// The provider half-closes the connection to cancel; any read result means stop.
	exited := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = ac.r.Read(b[:])
		select {
		case <-exited:
		default:
			kill()
		}
	}()
	err = cmd.Wait()
	close(exited)
	dur := time.Since(start)
	res := result{DurationNs: int64(dur)}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			res.ExitCode = 128 + int(ws.Signal())
		default:
			res.ExitCode = ws.ExitStatus()
		}
	} else if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		res.ExitCode = 127
	}
	if timedOut.Load() {
		res.TimedOut = true
		res.ExitCode = -1
	}
	ac.result(res)
}

// startError words a failed start like a shell would.
func startError(name, cwd string, err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "chdir" {
		return fmt.Sprintf("cannot change to working directory %s: %v", cwd, pe.Err)
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Sprintf("%s: permission denied (not executable)", name)
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("%s: cannot execute: no such file or interpreter", name)
	}
	return fmt.Sprintf("%s: %v", name, err)
}

// lookPath finds name in pathEnv like a shell does; a name with a slash is taken as is
// (relative to cwd).
func lookPath(name, pathEnv, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: no such file", name)
		}
		return p, nil
	}
	if pathEnv == "" {
		pathEnv = defaultPath
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		if unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", name)
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// killTree SIGKILLs a command's process group and every descendant still linked to it (those
// that moved to another session or group included), repeating a few times to catch processes
// forked while it ran.
func killTree(pid int) {
	// Find the descendants while the command is alive: once it dies, its children are
	// reparented to PID 1 and the link to them is lost.
	seen := map[int]bool{}
	for range 3 {
		for _, p := range descendants(pid) {
			seen[p] = true
		}
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for p := range seen {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants returns pid's descendants by walking /proc's parent links.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may contain spaces and parentheses; fields resume after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
