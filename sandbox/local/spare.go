//go:build linux

package local

import (
	"encoding/json"
	"fmt"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A warm pool of helpers for durable sandboxes. Starting a helper costs, on a run's critical path,
// the re-exec of this (large) executable and, with limits on, the helper's first write to a cgroup
// v1 cgroup.procs (the kernel waits for an RCU grace period the first time in a burst). A spare is
// a helper started ahead of time, exactly as a durable sandbox's helper is started (same
// SysProcAttr: new mount namespace, plus a user namespace when not root, parent-death signal, its
// own process group), already joined to cgroups made for it, and blocked waiting for a sandbox.
// It holds no per-sandbox state: its cgroups (named like a sandbox's, "sandkit-<id>", so
// removeStaleCgroups cleans leftovers) become the sandbox's.
//
// The spare's fd 3 is one end of a socketpair. It writes one byte there once it is ready, then
// waits. Start of a durable sandbox takes a ready spare (a cold start when there is none) and
// sends, in one message, the sandbox's descriptors by SCM_RIGHTS (the agent's listening socket,
// bwrap's info pipe, the log file), then the helper spec as JSON, and closes its end. The spare
// puts the descriptors on fds 4, 5, 1 and 2 and continues as the helper (helper.SpareMain), which reads the spec
// from fd 3. A replacement is started in the background, off the run's path: a moment after the
// sandbox ends (afterRun), or at once when no other spare is ready. Detached sandboxes
// never take a spare: they need their own session and no parent-death signal.
//
// Spares die with the provider (parent-death signal; their end of the socketpair also reads EOF
// when the provider's end closes). A spare that died is noticed (its process was reaped) and not
// used. Provider.Close kills and reaps them and removes their cgroups.

// spareCount is how many ready helpers a provider keeps: two, so that back-to-back runs find one
// while the next is being started.
const spareCount = 2

// spare is one started helper waiting for a sandbox.
type spare struct {
	cmd  *exec.Cmd
	sock int // the provider's end of the socketpair; -1 once handed or closed
	cg   *sandboxCgroup
	done chan struct{} // closed once cmd has been waited for

	discardOnce sync.Once
	discardErr  error
}

// alive reports whether the spare's process has not been reaped.
func (sp *spare) alive() bool {
	select {
	case <-sp.done:
		return false
	default:
		return true
	}
}

// hand gives the spare its sandbox: the descriptors, then the spec. The spare owns its cgroup's
// fate no longer: on success the sandbox does; on failure the caller discards it.
func (sp *spare) hand(spec helper.Spec, listener, info, log *os.File) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	// MSG_NOSIGNAL: a spare that died is an EPIPE, not a SIGPIPE.
	rights := unix.UnixRights(int(listener.Fd()), int(info.Fd()), int(log.Fd()))
	if err := unix.Sendmsg(sp.sock, []byte{'s'}, rights, nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("send descriptors: %w", err)
	}
	for len(b) > 0 {
		n, err := unix.SendmsgN(sp.sock, b, nil, nil, unix.MSG_NOSIGNAL)
		if err != nil {
			return fmt.Errorf("send spec: %w", err)
		}
		b = b[n:]
	}
	unix.Close(sp.sock)
	sp.sock = -1
	return nil
}

// discard kills the spare, waits for it and removes its cgroups; once, whoever calls it.
func (sp *spare) discard() error {
	sp.discardOnce.Do(func() {
		if sp.cmd != nil {
			_ = sp.cmd.Process.Kill() // a pidfd: safe after the wait
			<-sp.done
		}
		if sp.sock >= 0 {
			unix.Close(sp.sock)
			sp.sock = -1
		}
		sp.discardErr = sp.cg.remove()
	})
	return sp.discardErr
}

// sparePool keeps up to size ready spares. A nil pool has none (every start is cold).
type sparePool struct {
	p    *Provider
	size int

	mu       sync.Mutex
	ready    []*spare
	all      map[*spare]bool // started and not yet handed or discarded
	starting int
	closed   bool
	wg       sync.WaitGroup

	hits, misses atomic.Int64
}

func newSparePool(p *Provider, size int) *sparePool {
	if size <= 0 {
		return nil
	}
	sp := &sparePool{p: p, size: size, all: map[*spare]bool{}}
	sp.fill()
	return sp
}

// fill starts spares in the background until ready and starting ones make size. A spare that
// fails to start is not retried until the next take, so a host that cannot start helpers does
// not spin.
func (sp *sparePool) fill() {
	if sp == nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for !sp.closed && len(sp.ready)+sp.starting < sp.size {
		sp.starting++
		sp.wg.Add(1)
		go func() {
			defer sp.wg.Done()
			s, err := sp.start()
			sp.mu.Lock()
			sp.starting--
			if err == nil && !sp.closed {
				sp.ready = append(sp.ready, s)
				s = nil
			}
			sp.mu.Unlock()
			if err != nil {
				sp.p.log.Debug("local: no spare helper", "err", err)
			}
			if s != nil {
				sp.forget(s)
				_ = s.discard()
			}
		}()
	}
}

// take returns a ready, live spare, or nil (then the start is cold).
func (sp *sparePool) take() *spare {
	if sp == nil {
		return nil
	}
	var got *spare
	var dead []*spare
	sp.mu.Lock()
	for len(sp.ready) > 0 && got == nil {
		s := sp.ready[0]
		sp.ready = sp.ready[1:]
		delete(sp.all, s)
		if s.alive() {
			got = s
		} else {
			dead = append(dead, s)
		}
	}
	sp.mu.Unlock()
	if got != nil {
		sp.hits.Add(1)
	} else {
		sp.misses.Add(1)
	}
	// The replacement starts now only when the pool ran dry; otherwise once the sandbox that
	// took this spare ends (finish calls fill): a start overlapping the run it serves competes
	// with it for the CPU.
	sp.mu.Lock()
	dry := len(sp.ready)+sp.starting == 0
	sp.mu.Unlock()
	if got == nil || dry {
		sp.fill()
	}
	for _, s := range dead {
		sp.p.log.Debug("local: a spare helper died; not used", "pid", s.cmd.Process.Pid)
		_ = s.discard() // reaped already: this removes its cgroups
	}
	return got
}

func (sp *sparePool) forget(s *spare) {
	sp.mu.Lock()
	delete(sp.all, s)
	sp.mu.Unlock()
}

// start starts one spare and waits until it is ready: in its cgroups, waiting for a sandbox.
func (sp *sparePool) start() (*spare, error) {
	p := sp.p
	s := &spare{sock: -1, done: make(chan struct{})}
	if p.limits.any() {
		cg, err := newSandboxCgroup(newID(), p.limits)
		if err != nil {
			p.log.Debug("local: no cgroup limits for a spare helper", "reason", err)
		}
		s.cg = cg
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		_ = s.cg.remove()
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	s.sock = fds[0]
	theirs := os.NewFile(uintptr(fds[1]), "spare")
	defer theirs.Close()
	// Placeholders hold fds 4 and 5 until the sandbox's descriptors replace them, so nothing the
	// helper opens meanwhile lands there.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		unix.Close(s.sock)
		_ = s.cg.remove()
		return nil, err
	}
	defer devnull.Close()
	cmd := exec.Command(p.helperExe())
	cmd.Args = append([]string{"sandkit-local-spare"}, s.cg.procsFiles()...)
	cmd.Env = []string{helper.Env + "=" + helper.RoleSpare}
	cmd.ExtraFiles = []*os.File{theirs, devnull, devnull}
	cmd.SysProcAttr = helperSysProcAttr(p.drop, p.uid, p.gid, false)
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		unix.Close(s.sock)
		_ = s.cg.remove()
		return nil, fmt.Errorf("the provider was closed")
	}
	err = cmd.Start()
	if err == nil {
		s.cmd = cmd
		sp.all[s] = true
	}
	sp.mu.Unlock()
	if err != nil {
		unix.Close(s.sock)
		_ = s.cg.remove()
		return nil, fmt.Errorf("start a spare helper: %w", err)
	}
	theirs.Close()
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	// The spare writes one byte once ready; EOF means it died (its end closes with it).
	var b [1]byte
	n, err := unix.Read(s.sock, b[:])
	if n != 1 || err != nil {
		sp.forget(s)
		_ = s.discard()
		return nil, fmt.Errorf("a spare helper did not get ready (exit %v): %v", cmd.ProcessState, err)
	}
	return s, nil
}

// close kills every spare, waits for them and removes their cgroups.
func (sp *sparePool) close() error {
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	sp.closed = true
	var all []*spare
	for s := range sp.all {
		all = append(all, s)
	}
	sp.all = map[*spare]bool{}
	sp.ready = nil
	sp.mu.Unlock()
	var errs []error
	for _, s := range all {
		if err := s.discard(); err != nil {
			errs = append(errs, err)
		}
	}
	sp.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("remove spare helpers' cgroups: %v", errs)
	}
	return nil
}
