package agent

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The reaper owns every child of the agent. As PID 1 of the sandbox the agent inherits every
// orphan, and a zombie that nobody waits for stays forever; so one goroutine reaps every exit on
// SIGCHLD (wait4(-1)), and the commands the agent started get their status from it. os/exec
// cannot be used: its Wait would race the reaper for the same exit statuses.
//
// The lock makes two things atomic: starting a child and registering it (so the reaper always
// finds the child whose exit it collected), and checking that a child is unreaped and
// signalling it (a reaped pid may belong to someone else a moment later).
type reaper struct {
	mu       sync.Mutex
	children map[int]*child
}

// child is a process the agent started.
type child struct {
	pid    int
	done   chan struct{} // closed once reaped
	reaped bool          // under reaper.mu
	status syscall.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{children: map[int]*child{}}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	go func() {
		for range sig {
			r.reap()
		}
	}()
	r.reap() // children we inherited before the handler was installed
	return r
}

// reap collects every exited child.
func (r *reaper) reap() {
	for {
		r.mu.Lock()
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid > 0 {
			if c := r.children[pid]; c != nil {
				delete(r.children, pid)
				c.status = ws
				c.reaped = true
				close(c.done)
			}
		}
		r.mu.Unlock()
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}

// start runs path in a new session with files as its descriptors 0, 1, 2.
func (r *reaper) start(path string, argv, env []string, dir string, files []*os.File) (*child, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return nil, err
	}
	c := &child{pid: pid, done: make(chan struct{})}
	r.children[pid] = c
	return c, nil
}

// whileAlive runs fn with the child's pid if the child has not been reaped yet, so the pid
// still names it.
func (r *reaper) whileAlive(c *child, fn func(pid int)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.reaped {
		return false
	}
	fn(c.pid)
	return true
}

// signalGroup sends sig to the process group the child leads. Once the child is reaped, its
// group may live on in processes it started; the group id cannot be reused while any of them
// lives, and if no process of that group is left, a process now holding the number is someone
// else's and is left alone.
func (r *reaper) signalGroup(c *child, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.reaped {
		if _, err := os.Stat("/proc/" + strconv.Itoa(c.pid)); err == nil {
			return nil
		}
	}
	err := syscall.Kill(-c.pid, sig)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

// exitCode is a wait status as a shell reports it: the exit status, or 128+N after signal N.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// command is a started child and the goroutines copying its output.
type command struct {
	child   *child
	readers []*os.File
	stdinW  *os.File
	copied  chan struct{} // closed when every output pipe reached EOF
}

// spawn starts path with stdin fed from stdin (nil: /dev/null) and its output copied to outs:
// two writers get stdout and stderr on two pipes; one writer gets both streams through one pipe,
// interleaved as produced.
func (a *agent) spawn(path string, argv, env []string, dir string, stdin []byte, outs ...io.Writer) (*command, error) {
	cmd := &command{copied: make(chan struct{})}
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()
	fail := func(err error) (*command, error) {
		for _, f := range cmd.readers {
			f.Close()
		}
		if cmd.stdinW != nil {
			cmd.stdinW.Close()
		}
		return nil, err
	}
	if stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		childFiles = append(childFiles, pr)
		cmd.stdinW = pw
	} else {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return fail(err)
		}
		childFiles = append(childFiles, devnull)
	}
	for range outs {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		childFiles = append(childFiles, pw)
		cmd.readers = append(cmd.readers, pr)
	}
	if len(outs) == 1 {
		childFiles = append(childFiles, childFiles[1])
	}
	c, err := a.reaper.start(path, argv, env, dir, childFiles)
	if err != nil {
		return fail(err)
	}
	cmd.child = c
	if cmd.stdinW != nil {
		go func() {
			_, _ = cmd.stdinW.Write(stdin)
			cmd.stdinW.Close()
		}()
	}
	var wg sync.WaitGroup
	for i, r := range cmd.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(outs[i], r)
		}()
	}
	go func() {
		wg.Wait()
		close(cmd.copied)
	}()
	return cmd, nil
}

// wait waits for the child to exit, then up to drain for the output pipes to reach EOF
// (processes the child started in the background may hold them). With stopReading, the pipes
// are then closed so the copiers end; without, the copiers go on until EOF.
func (cmd *command) wait(drain time.Duration, stopReading bool) syscall.WaitStatus {
	<-cmd.child.done
	t := time.NewTimer(drain)
	select {
	case <-cmd.copied:
	case <-t.C:
	}
	t.Stop()
	if stopReading {
		for _, f := range cmd.readers {
			f.Close()
		}
		<-cmd.copied
	}
	if cmd.stdinW != nil {
		cmd.stdinW.Close()
	}
	return cmd.child.status
}

// startError words a failed start like a shell would.
func startError(name string, err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return name + ": permission denied (not executable)"
	case errors.Is(err, os.ErrNotExist):
		return name + ": cannot execute: no such file or interpreter"
	default:
		return name + ": " + err.Error()
	}
}
