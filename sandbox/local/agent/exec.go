package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitDelay is how long a command's output is still read, after the command exited, while
// processes it started in the background ("cmd &") hold its stdout/stderr; then an exec returns.
const waitDelay = 250 * time.Millisecond

// defaultPath is the PATH a command without one searches.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// exec runs one command in the foreground, streaming its output as frames.
func (a *agent) exec(ac *conn, req *Request) {
	var stdin []byte
	if req.HasStdin {
		var err error
		if stdin, err = ReadBlob(ac.r, 1<<30); err != nil {
			return
		}
		if stdin == nil {
			stdin = []byte{}
		}
	}
	if len(req.Argv) == 0 {
		ac.result(Result{Err: invalid("empty command")})
		return
	}
	stdout := streamWriter{ac, FrameStdout}
	stderr := streamWriter{ac, FrameStderr}
	path, msg := a.prepare(req)
	if msg != "" {
		_, _ = stderr.Write([]byte("sandbox: " + msg + "\n"))
		ac.result(Result{ExitCode: 127})
		return
	}
	start := time.Now()
	cmd, err := a.spawn(path, req.Argv, req.Env, req.Cwd, stdin, stdout, stderr)
	if err != nil {
		_, _ = stderr.Write([]byte("sandbox: " + startError(req.Argv[0], err) + "\n"))
		ac.result(Result{ExitCode: 127})
		return
	}
	var timedOut atomic.Bool
	var killOnce sync.Once
	kill := func() { killOnce.Do(func() { a.reaper.whileAlive(cmd.child, killTree) }) }
	if req.TimeoutMs > 0 {
		t := time.AfterFunc(time.Duration(req.TimeoutMs)*time.Millisecond, func() {
			timedOut.Store(true)
			kill()
		})
		defer t.Stop()
	}
	// The provider half-closes the connection to cancel.
	cancelled := ac.closed()
	go func() {
		select {
		case <-cancelled:
			kill()
		case <-cmd.child.done:
		}
	}()
	ws := cmd.wait(waitDelay, true)
	res := Result{ExitCode: exitCode(ws), DurationNs: int64(time.Since(start))}
	if timedOut.Load() {
		res.TimedOut = true
		res.ExitCode = -1
	}
	ac.result(res)
}

// prepare checks the working directory and finds the program; a non-empty message says why the
// command cannot start, in a shell's words.
func (a *agent) prepare(req *Request) (path, msg string) {
	if fi, err := os.Stat(req.Cwd); err != nil || !fi.IsDir() {
		why := "not a directory"
		var pe *os.PathError
		if errors.As(err, &pe) {
			why = pe.Err.Error()
		}
		return "", fmt.Sprintf("cannot change to working directory %s: %s", req.Cwd, why)
	}
	path, err := lookPath(req.Argv[0], envValue(req.Env, "PATH"), req.Cwd)
	if err != nil {
		return "", err.Error()
	}
	return path, ""
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
// forked while it ran. The caller guarantees that pid is not reaped yet.
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
