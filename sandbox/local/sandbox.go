package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// How a local sandbox is put together (see also helper.go and agent.go):
//
//	provider ──(re-exec, new mount ns)──► helper: mount overlays, drop to the sandbox uid
//	                                         │ exec
//	                                         ▼
//	                                      bwrap (outer) ──► bwrap init (PID 1 in the sandbox)
//	                                                           └─► agent (PID 2) ──► commands
//
// The provider keeps the master end of a socketpair whose other end the agent inherited; every
// request gets a fresh socketpair whose far end travels to the agent over the master socket.
// Ending a sandbox kills bwrap's init: the kernel then kills everything in the sandbox's PID
// namespace, bwrap exits, and with the last process gone the overlay mounts disappear, so the
// upper directory is quiescent and can be renamed into a layer.

// Sandbox states.
const (
	stateRunning = iota
	stateEnding
	stateEnded
)

const (
	bootTimeout = 30 * time.Second
	killTimeout = 5 * time.Second
)

type localSandbox struct {
	p        *Provider
	id       string
	label    string
	chain    []string
	dir      string
	env      map[string]string
	warnings []string

	cmd      *exec.Cmd
	stderr   *capBuffer
	childPid int
	pidfd    int
	master   *net.UnixConn
	masterMu sync.Mutex
	exited   chan struct{} // closed once bwrap has exited
	cg       *sandboxCgroup
	timer    *time.Timer

	endMu     sync.Mutex // serializes Snapshot, Stop and the other ways to end
	mu        sync.Mutex
	state     int
	endReason string
}

var _ sandbox.Sandbox = (*localSandbox)(nil)

func newLocalSandbox(p *Provider, chain []string, opts sandbox.StartOptions) *localSandbox {
	id := newID()
	s := &localSandbox{
		p:      p,
		id:     id,
		label:  opts.Label,
		chain:  chain,
		dir:    filepath.Join(p.store.sandboxes, id),
		env:    baseEnv(),
		pidfd:  -1,
		exited: make(chan struct{}),
		stderr: &capBuffer{max: 64 << 10},
	}
	for k, v := range opts.Env {
		s.env[k] = v
	}
	if opts.Policy.Mode != "" && opts.Policy.Mode != policies.DenyAll {
		s.warnings = append(s.warnings, fmt.Sprintf("egress policy %q is not enforced by the local provider yet: this sandbox has no network access at all", opts.Policy.String()))
	}
	return s
}

// ID implements sandbox.Sandbox.
func (s *localSandbox) ID() string { return s.id }

// Warnings implements sandbox.Sandbox.
func (s *localSandbox) Warnings() []string { return append([]string(nil), s.warnings...) }

func (s *localSandbox) upper() string { return filepath.Join(s.dir, "upper") }

// boot prepares the directories, starts helper → bwrap → agent and waits for the agent.
func (s *localSandbox) boot(ctx context.Context) (err error) {
	p := s.p
	for _, sub := range []string{"workspace", "home"} {
		for _, d := range []string{filepath.Join(s.dir, "upper", sub), filepath.Join(s.dir, "work", sub)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		// The roots of /workspace and the home directory are the upper roots: the sandbox
		// user must own them.
		if err := os.Chown(filepath.Join(s.dir, "upper", sub), p.uid, p.gid); err != nil {
			return err
		}
	}
	_ = os.Chmod(s.dir, 0o700)
	if p.limits.any() {
		cg, err := newSandboxCgroup(s.id, p.limits)
		if err != nil {
			p.log.Debug("local: no cgroup limits for sandbox", "sandbox", s.id, "reason", err)
		}
		s.cg = cg
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	masterFile := os.NewFile(uintptr(pair[0]), "master")
	agentEnd := os.NewFile(uintptr(pair[1]), "agent-master")
	defer agentEnd.Close()
	mc, err := net.FileConn(masterFile)
	masterFile.Close()
	if err != nil {
		return err
	}
	s.master = mc.(*net.UnixConn)
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specR.Close()
	infoR, infoW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return err
	}
	defer infoR.Close()

	rel := func(p string) string {
		r, _ := filepath.Rel(s.p.store.layers, p)
		return r
	}
	spec := helperSpec{
		LayersDir: p.store.layers,
		Stage:     p.profile.stage,
		Etc:       "../etc",
		Cgroups:   s.cg.procsFiles(),
		Drop:      p.drop,
		UID:       p.uid,
		GID:       p.gid,
		ParentPid: os.Getpid(),
		Bwrap:     p.bw.Path,
		Args:      p.profile.args(),
		Seccomp:   p.seccomp,
		Command:   []string{agentPath},
	}
	for _, o := range []struct{ sub, target string }{{"workspace", "ws"}, {"home", "home"}} {
		spec.Overlays = append(spec.Overlays, overlaySpec{
			Lower:  p.store.lowerDirs(s.chain, o.sub),
			Upper:  rel(filepath.Join(s.dir, "upper", o.sub)),
			Work:   rel(filepath.Join(s.dir, "work", o.sub)),
			Target: o.target,
		})
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"sandkit-local-helper"}
	cmd.Env = []string{reexecEnv + "=" + roleHelper}
	cmd.ExtraFiles = []*os.File{specR, agentEnd, infoW}
	cmd.Stderr = s.stderr
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = helperSysProcAttr(p.drop, p.uid, p.gid)
	if err := cmd.Start(); err != nil {
		specW.Close()
		infoW.Close()
		return fmt.Errorf("%w: start sandbox helper: %v", sandbox.ErrUnavailable, err)
	}
	infoW.Close()
	s.cmd = cmd
	go func() {
		_ = json.NewEncoder(specW).Encode(spec)
		specW.Close()
	}()
	go s.wait()
	defer func() {
		if err != nil {
			// Ended before it started: the caller cleans up, the waiter must not.
			s.mu.Lock()
			s.state = stateEnded
			s.endReason = "never started"
			s.mu.Unlock()
			s.killAndWait()
		}
	}()

	type info struct {
		ChildPid int `json:"child-pid"`
	}
	infoCh := make(chan error, 1)
	var inf info
	go func() { infoCh <- json.NewDecoder(infoR).Decode(&inf) }()
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	select {
	case err := <-infoCh:
		if err != nil || inf.ChildPid <= 0 {
			select {
			case <-s.exited:
			case <-time.After(2 * time.Second):
			}
			return s.bootError("bwrap did not start")
		}
	case <-ctx.Done():
		return fmt.Errorf("start sandbox: %w", ctx.Err())
	}
	s.childPid = inf.ChildPid
	if fd, err := unix.PidfdOpen(inf.ChildPid, 0); err == nil {
		s.pidfd = fd
	}
	if _, _, err := s.call(ctx, request{Op: opPing}, nil, 0); err != nil {
		select {
		case <-s.exited:
			return s.bootError("the sandbox agent did not start")
		default:
		}
		return fmt.Errorf("start sandbox: the agent did not answer: %w", err)
	}
	return nil
}

// bootError explains a failed start with what bwrap or the helper printed.
func (s *localSandbox) bootError(what string) error {
	msg := strings.TrimSpace(s.stderr.String())
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Errorf("%w: start sandbox: %s: %s (run `sandkit-mcp doctor` to check the host)", sandbox.ErrUnavailable, what, msg)
}

func helperSysProcAttr(root bool, uid, gid int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if root {
		a.Cloneflags = syscall.CLONE_NEWNS
		return a
	}
	a.Cloneflags = syscall.CLONE_NEWNS | syscall.CLONE_NEWUSER
	a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
	a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	a.GidMappingsEnableSetgroups = false
	return a
}

// wait reaps bwrap and ends the sandbox if nobody asked it to end.
func (s *localSandbox) wait() {
	err := s.cmd.Wait()
	close(s.exited)
	s.mu.Lock()
	unexpected := s.state == stateRunning
	s.mu.Unlock()
	if unexpected {
		why := "exited"
		if err != nil {
			why = err.Error()
		}
		if msg := strings.TrimSpace(s.stderr.String()); msg != "" {
			why += ": " + msg
		}
		s.p.log.Warn("local: sandbox died", "sandbox", s.id, "label", s.label, "reason", why)
		_ = s.end("it died unexpectedly (" + why + ")")
	}
}

func (s *localSandbox) armLifetime(d time.Duration) {
	if d <= 0 {
		d = s.p.opts.DefaultLifetime
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = time.AfterFunc(d, func() {
		s.p.log.Info("local: sandbox lifetime elapsed; stopping it", "sandbox", s.id, "label", s.label, "lifetime", d)
		_ = s.end(fmt.Sprintf("its lifetime of %s elapsed", d))
	})
}

// beginEnd moves a running sandbox to ending; it fails with ErrEnded otherwise.
func (s *localSandbox) beginEnd(reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return s.endedErrLocked()
	}
	s.state = stateEnding
	s.endReason = reason
	if s.timer != nil {
		s.timer.Stop()
	}
	return nil
}

func (s *localSandbox) endedErrLocked() error {
	return fmt.Errorf("%w: sandbox %s was %s", sandbox.ErrEnded, s.id, s.endReason)
}

// checkRunning fails with ErrEnded unless the sandbox is running.
func (s *localSandbox) checkRunning() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return s.endedErrLocked()
	}
	return nil
}

// end stops the sandbox for a reason other than Snapshot; a no-op once it has ended.
func (s *localSandbox) end(reason string) error {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.beginEnd("ended: " + reason); err != nil {
		return nil
	}
	s.killAndWait()
	return s.finish()
}

// killAndWait kills every process of the sandbox and waits until bwrap has exited.
func (s *localSandbox) killAndWait() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		if s.pidfd >= 0 {
			_ = unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0)
		} else {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		select {
		case <-s.exited:
		case <-time.After(killTimeout):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.master != nil {
		s.master.Close()
	}
}

// finish removes what the sandbox left and releases its layers; the sandbox has ended.
func (s *localSandbox) finish() error {
	var errs []error
	if err := s.cleanup(); err != nil {
		errs = append(errs, err)
	}
	s.p.store.release(s.chain)
	s.p.unregister(s.id)
	s.mu.Lock()
	s.state = stateEnded
	s.mu.Unlock()
	return errors.Join(errs...)
}

// cleanup removes the sandbox's directory and cgroups and closes its descriptors.
func (s *localSandbox) cleanup() error {
	var errs []error
	if s.pidfd >= 0 {
		unix.Close(s.pidfd)
		s.pidfd = -1
	}
	if s.master != nil {
		s.master.Close()
	}
	if err := s.cg.remove(); err != nil {
		errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
	}
	if err := removeTree(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove sandbox directory: %w", err))
	}
	return errors.Join(errs...)
}

// Stop implements sandbox.Sandbox.
func (s *localSandbox) Stop(ctx context.Context) error {
	return s.end("stopped")
}

// Snapshot implements sandbox.Sandbox: it kills everything in the sandbox, commits the upper
// directory as a new layer and ends the sandbox.
func (s *localSandbox) Snapshot(ctx context.Context) (sandbox.SnapshotInfo, error) {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.beginEnd("snapshotted"); err != nil {
		return sandbox.SnapshotInfo{}, err
	}
	s.killAndWait()
	st, err := measureLayer(s.upper())
	var ref sandbox.SnapshotRef
	if err == nil {
		ref, err = s.p.store.commit(s.chain, s.upper(), st, s.p.opts.MaxLayers)
	}
	ferr := s.finish()
	if err != nil {
		return sandbox.SnapshotInfo{}, fmt.Errorf("snapshot sandbox %s: %w", s.id, err)
	}
	if ferr != nil {
		s.p.log.Warn("local: cleanup after snapshot", "sandbox", s.id, "err", ferr)
	}
	return sandbox.SnapshotInfo{Ref: ref, ChangedBytes: st.bytes, ChangedFiles: st.files}, nil
}

// commandEnv merges the sandbox's environment with extra variables into a sorted list.
func (s *localSandbox) commandEnv(extra map[string]string) ([]string, error) {
	m := make(map[string]string, len(s.env)+len(extra))
	for k, v := range s.env {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: environment variable %q: names must be non-empty without '=' or NUL, values without NUL", sandbox.ErrInvalid, k)
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
