//go:build linux

package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// How a local sandbox is put together (see also helper.go and package agent):
//
//	provider ──(re-exec, new mount ns; or a spare of the warm pool, spare.go)──► helper: mount overlays, drop to the sandbox uid
//	                                         │ exec
//	                                         ▼
//	                                      bwrap (outer) ──► agent (PID 1 in the sandbox) ──► commands
//
// The provider creates the agent's listening Unix socket, sandboxes/<id>/ctl/agent.sock, and
// hands it down as fd 4; every request is a new connection to it, so a provider that restarted
// reaches a live agent the same way. Ending a sandbox kills the agent: the kernel then kills
// everything else in its PID namespace, bwrap exits, and with the last process gone the overlay
// mounts disappear, so the upper directory is quiescent and can be renamed into a layer. The
// provider follows the agent and bwrap through pidfds, which work for processes that are not its
// children (an adopted sandbox's).
//
// A durable sandbox dies with the provider (parent-death signal on the helper, bwrap
// --die-with-parent). A detached one (StartOptions.Detached) has neither and runs in a session
// of its own: it outlives the provider, records what a later provider needs in meta.json
// (meta.go), and ends itself at its deadline — the agent exits then, whether or not a provider
// runs.

// Sandbox states.
const (
	stateRunning = iota
	stateEnding
	stateEnded
	// stateReleased: the provider was closed while this detached sandbox ran on. The handle
	// is inert; the sandbox is not (another provider can Reconnect to it).
	stateReleased
)

const (
	bootTimeout = 30 * time.Second
	killTimeout = 5 * time.Second
	// outerGrace is how long bwrap's monitor may outlive the agent before it is killed.
	outerGrace = 2 * time.Second
	// maxSunPath is the longest socket path connect(2) takes (sun_path holds 108 bytes with
	// the terminating NUL).
	maxSunPath = 107
)

type localSandbox struct {
	p        *Provider
	id       string
	label    string
	from     sandbox.SnapshotRef // what it started from ("" empty)
	chain    []string
	dir      string
	detached bool
	warnings []string
	egress   *sbEgress

	sock  string // the agent's socket, as connect(2) is given it
	ctlFd int    // O_PATH descriptor of ctl/ when its path is too long for sun_path; else -1

	cmd      *exec.Cmd     // helper → bwrap; nil for a sandbox adopted from an earlier provider
	reaped   chan struct{} // closed once cmd has been waited for
	childPid int           // the agent's host pid: PID 1 inside the sandbox
	agent    *pidWatch
	outerPid int // bwrap's monitor outside the sandbox
	outer    *pidWatch
	exited   chan struct{} // closed once the agent and bwrap are gone
	cg       *sandboxCgroup

	endMu     sync.Mutex // serializes Snapshot, Stop and the other ways to end
	mu        sync.Mutex
	state     int
	endReason string
	env       map[string]string // nil for an adopted sandbox until Reconnect asked its agent
	deadline  time.Time
	// agentDeadline is the deadline the agent was last given (it ends itself then).
	agentDeadline time.Time
	timer         *time.Timer
	meta          sandboxMeta // detached sandboxes: what meta.json holds
}

var _ sandbox.Sandbox = (*localSandbox)(nil)

func newLocalSandbox(p *Provider, id string, chain []string) *localSandbox {
	return &localSandbox{
		p:      p,
		id:     id,
		chain:  chain,
		dir:    filepath.Join(p.store.sandboxes, id),
		ctlFd:  -1,
		exited: make(chan struct{}),
		reaped: make(chan struct{}),
	}
}

// ID implements sandbox.Sandbox.
func (s *localSandbox) ID() string { return s.id }

// Warnings implements sandbox.Sandbox.
func (s *localSandbox) Warnings() []string {
	w := append([]string(nil), s.warnings...)
	if s.egress != nil {
		w = append(w, s.egress.policy().warnings...)
	}
	return w
}

func (s *localSandbox) upper() string   { return filepath.Join(s.dir, "upper") }
func (s *localSandbox) ctlDir() string  { return filepath.Join(s.dir, "ctl") }
func (s *localSandbox) logPath() string { return filepath.Join(s.ctlDir(), "agent.log") }

// openCtl sets the path the agent's socket is reached by: its real path, or one through
// /proc/self/fd when the data directory is nested too deep for sun_path.
func (s *localSandbox) openCtl() error {
	path := filepath.Join(s.ctlDir(), "agent.sock")
	if len(path) <= maxSunPath {
		s.sock = path
		return nil
	}
	fd, err := unix.Open(s.ctlDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.ctlDir(), err)
	}
	s.ctlFd = fd
	s.sock = fmt.Sprintf("/proc/self/fd/%d/agent.sock", fd)
	return nil
}

// listenUnix creates the agent's listening socket. The agent inherits it; the provider's copy is
// closed once the helper started.
func listenUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind agent socket %s: %w", path, err)
	}
	if err := unix.Listen(fd, 1024); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on agent socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "agent-listener"), nil
}

// boot prepares the directories, starts helper → bwrap → agent, and initializes the agent.
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
	if err := os.Mkdir(s.ctlDir(), 0o700); err != nil {
		return err
	}
	_ = os.Chmod(s.dir, 0o700)
	if err := s.openCtl(); err != nil {
		return err
	}
	listener, err := listenUnix(s.sock)
	if err != nil {
		return err
	}
	defer listener.Close()
	logFile, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	infoR, infoW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer infoR.Close()
	defer infoW.Close()

	rel := func(p string) string {
		r, _ := filepath.Rel(s.p.store.layers, p)
		return r
	}
	s.mu.Lock()
	deadline := s.deadline
	s.mu.Unlock()
	spec := helper.Spec{
		Protocol:  helper.Protocol,
		LayersDir: p.store.layers,
		Stage:     p.profile.stage,
		Etc:       "../etc",
		Agent:     p.agent.path,
		Detached:  s.detached,
		Drop:      p.drop,
		UID:       p.uid,
		GID:       p.gid,
		ParentPid: os.Getpid(),
		Bwrap:     p.bw.Path,
		Args:      p.profile.args(launch{detached: s.detached, reexec: p.agent.kind == agentReexec}),
		Seccomp:   p.seccomp,
		LifePipe:  true,
		Command: []string{agentPath,
			"-listen-fd=" + strconv.Itoa(helper.FdListener),
			"-deadline=" + strconv.FormatInt(deadline.UnixMilli(), 10),
			"-boot-timeout=" + bootTimeout.String(),
			egressPortFlag()},
	}
	for _, o := range []struct{ sub, target string }{{"workspace", "ws"}, {"home", "home"}} {
		spec.Overlays = append(spec.Overlays, helper.Overlay{
			Lower:  p.store.lowerDirs(s.chain, o.sub),
			Upper:  rel(filepath.Join(s.dir, "upper", o.sub)),
			Work:   rel(filepath.Join(s.dir, "work", o.sub)),
			Target: o.target,
		})
	}
	// A durable sandbox takes a ready helper of the warm pool (spare.go), already in its own
	// cgroups, when there is one; else (and for a detached one) its helper starts here.
	var sp *spare
	if !s.detached {
		sp = p.spares.take()
	}
	if sp != nil {
		if err := sp.hand(spec, listener, infoW, logFile); err != nil {
			p.log.Debug("local: a spare helper could not take the sandbox; starting one", "sandbox", s.id, "err", err)
			_ = sp.discard()
			sp = nil
		}
	}
	if sp != nil {
		s.cg = sp.cg
		s.cmd = sp.cmd
		s.reaped = sp.done
	} else if err := s.startHelper(spec, listener, infoW, logFile); err != nil {
		return err
	}
	infoW.Close()
	s.outerPid = s.cmd.Process.Pid
	defer func() {
		if err != nil {
			// Ended before it started: the caller cleans up, the watcher must not.
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
			case <-s.reaped:
			case <-time.After(2 * time.Second):
			}
			return s.bootError("bwrap did not start")
		}
	case <-ctx.Done():
		return fmt.Errorf("start sandbox: %w", ctx.Err())
	}
	s.childPid = inf.ChildPid
	if s.agent, err = watchPid(inf.ChildPid, 0); err != nil {
		return s.bootError(fmt.Sprintf("the sandbox agent (pid %d) is gone: %v", inf.ChildPid, err))
	}
	if s.outer, err = watchPid(s.outerPid, 0); err != nil {
		return s.bootError(fmt.Sprintf("bwrap (pid %d) is gone: %v", s.outerPid, err))
	}
	go s.watch()
	if s.detached {
		// On disk before the agent is initialized: a provider that crashes from here on
		// leaves a sandbox the next one can find (an uninitialized agent ends itself).
		s.meta = sandboxMeta{
			ID: s.id, Label: s.label, Chain: s.chain, Detached: true, Created: time.Now().UTC(),
			Deadline: deadline.UTC(), AgentPid: s.childPid, AgentStart: procStartTime(s.childPid),
			OuterPid: s.outerPid, OuterStart: procStartTime(s.outerPid), Cgroups: s.cg.dirList(),
			Warnings: s.warnings, Agent: p.agent.kind, Protocol: agent.Protocol,
		}
		if s.egress != nil {
			stored := s.egress.policy().stored
			s.meta.Policy = &stored
		}
		if s.meta.Chain == nil {
			s.meta.Chain = []string{}
		}
		if err := writeMeta(s.dir, s.meta); err != nil {
			return fmt.Errorf("start sandbox: record it: %w", err)
		}
	}
	env, err := s.commandEnv(nil)
	if err != nil {
		env = nil // reported by every Exec; the agent only keeps it for a later Reconnect
	}
	res, _, err := s.call(ctx, agent.Request{Op: agent.OpInit, Env: env, DeadlineMs: deadline.UnixMilli()}, nil, 0)
	if err != nil {
		select {
		case <-s.exited:
			return s.bootError("the sandbox agent did not start")
		default:
		}
		return fmt.Errorf("start sandbox: the agent did not answer: %w", err)
	}
	if res.Protocol != agent.Protocol {
		return fmt.Errorf("%w: start sandbox: the agent speaks %q, want %q (rebuild the embedded agent with `go generate ./sandbox/local`)", sandbox.ErrUnavailable, res.Protocol, agent.Protocol)
	}
	return nil
}

// startHelper makes the sandbox's cgroups and starts its helper (the cold start).
func (s *localSandbox) startHelper(spec helper.Spec, listener, info, logFile *os.File) error {
	p := s.p
	if p.limits.any() {
		cg, err := newSandboxCgroup(s.id, p.limits)
		if err != nil {
			p.log.Debug("local: no cgroup limits for sandbox", "sandbox", s.id, "reason", err)
		}
		s.cg = cg
	}
	spec.Cgroups = s.cg.procsFiles()
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specR.Close()
	cmd := exec.Command(p.helperExe())
	cmd.Args = []string{"sandkit-local-helper"}
	cmd.Env = []string{helper.Env + "=" + helper.RoleHelper}
	cmd.ExtraFiles = []*os.File{specR, listener, info}
	// A file, not a pipe: a detached sandbox must not die of SIGPIPE once the provider is gone.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = helperSysProcAttr(p.drop, p.uid, p.gid, s.detached)
	if err := cmd.Start(); err != nil {
		specW.Close()
		return fmt.Errorf("%w: start sandbox helper: %v", sandbox.ErrUnavailable, err)
	}
	s.cmd = cmd
	go func() {
		_ = json.NewEncoder(specW).Encode(spec)
		specW.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(s.reaped)
	}()
	return nil
}

// bootError explains a failed start with what bwrap, the helper or the agent printed.
func (s *localSandbox) bootError(what string) error {
	msg := s.logTail()
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Errorf("%w: start sandbox: %s: %s (run `sandkit-mcp doctor` to check the host)", sandbox.ErrUnavailable, what, msg)
}

// logTail returns the end of what bwrap, the helper and the agent wrote to their log.
func (s *localSandbox) logTail() string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-tail, 0)
	b := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(b, off)
	return strings.TrimSpace(string(b[:n]))
}

func helperSysProcAttr(root bool, uid, gid int, detached bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if detached {
		// Its own session: no terminal or process-group signal aimed at the provider
		// reaches it, and nothing ties it to the provider's life.
		a.Setsid = true
	} else {
		a.Pdeathsig = syscall.SIGKILL
		a.Setpgid = true
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

// watch waits for the agent to exit (and bwrap after it), then ends the sandbox if nobody
// asked it to end: its lifetime elapsed (the agent exits at the deadline by itself), or it died.
func (s *localSandbox) watch() {
	<-s.agent.done
	if !s.outer.exitedWithin(outerGrace) {
		_ = s.outer.kill()
		s.outer.exitedWithin(killTimeout)
	}
	close(s.exited)
	s.mu.Lock()
	unexpected := s.state == stateRunning
	deadline := s.deadline
	s.mu.Unlock()
	if !unexpected {
		return
	}
	if !time.Now().Before(deadline) {
		s.p.log.Info("local: sandbox lifetime elapsed; it ended itself", "sandbox", s.id, "label", s.label, "deadline", deadline)
		_ = s.end(lifetimeReason(deadline))
		return
	}
	why := "its agent exited"
	if msg := s.logTail(); msg != "" {
		why += ": " + msg
	}
	s.p.log.Warn("local: sandbox died", "sandbox", s.id, "label", s.label, "reason", why)
	_ = s.end("it died unexpectedly (" + why + ")")
}

func lifetimeReason(deadline time.Time) string {
	return "its lifetime elapsed (deadline " + deadline.Format(time.RFC3339) + ")"
}

// armTimerLocked (re)arms the provider's own lifetime timer at s.deadline. The agent enforces
// the deadline too; this one also holds when the agent does not (the sandboxed user can take
// it over).
func (s *localSandbox) armTimerLocked() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(time.Until(s.deadline), func() {
		s.mu.Lock()
		d, label := s.deadline, s.label
		s.mu.Unlock()
		if time.Now().Before(d) {
			return // moved meanwhile; a new timer is armed
		}
		s.p.log.Info("local: sandbox lifetime elapsed; stopping it", "sandbox", s.id, "label", label, "deadline", d)
		_ = s.end(lifetimeReason(d))
	})
}

// beginEnd moves a running sandbox to ending; it fails with ErrEnded otherwise.
func (s *localSandbox) beginEnd(reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return s.stateErrLocked()
	}
	s.state = stateEnding
	s.endReason = reason
	if s.timer != nil {
		s.timer.Stop()
	}
	return nil
}

// stateErrLocked says why a sandbox that is not running cannot serve a call.
func (s *localSandbox) stateErrLocked() error {
	if s.state == stateReleased {
		return fmt.Errorf("%w: sandbox %s still runs, but the local provider this handle came from was closed; use Reconnect(%q) on a provider opened on the same directory", sandbox.ErrUnavailable, s.id, s.id)
	}
	return fmt.Errorf("%w: sandbox %s was %s", sandbox.ErrEnded, s.id, s.endReason)
}

// checkRunning fails with ErrEnded unless the sandbox is running.
func (s *localSandbox) checkRunning() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return s.stateErrLocked()
	}
	return nil
}

// end stops the sandbox for a reason other than Snapshot; a no-op once it has ended.
func (s *localSandbox) end(reason string) error {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.beginEnd("ended: " + reason); err != nil {
		if errors.Is(err, sandbox.ErrEnded) {
			return nil
		}
		return err
	}
	s.killAndWait()
	return s.finish()
}

// release lets go of a detached sandbox without ending it (Provider.Close).
func (s *localSandbox) release() {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		return
	}
	s.state = stateReleased
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.closeConns()
	s.p.unregister(s.id)
}

// killAndWait kills every process of the sandbox and waits until they are gone: the agent (and
// with it the whole PID namespace), then bwrap outside.
func (s *localSandbox) killAndWait() {
	if s.agent != nil {
		_ = s.agent.kill()
		select {
		case <-s.exited:
		case <-time.After(killTimeout + outerGrace + killTimeout):
			s.p.log.Error("local: sandbox processes did not exit after SIGKILL", "sandbox", s.id, "agent_pid", s.childPid)
		}
	}
	if s.cmd != nil {
		select {
		case <-s.reaped:
		default:
			if s.agent == nil {
				// Never got as far as the agent: kill the helper/bwrap's process group.
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			}
			select {
			case <-s.reaped:
			case <-time.After(killTimeout):
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				_ = s.cmd.Process.Kill()
				<-s.reaped
			}
		}
	}
}

// finish removes what the sandbox left and releases its layers; the sandbox has ended. It
// starts a replacement for the warm pool's spare the sandbox took (spare.go).
func (s *localSandbox) finish() error {
	err := s.cleanup()
	s.ended()
	return err
}

// finishBehind is finish with the removal of the sandbox's directory and cgroups done in the
// background (off the caller's path, which is a run's): its processes are gone and nothing of
// it is used any more. Provider.Close waits for it; a crash before it is done leaves a directory
// and cgroups the next provider on the directory removes (openStore, removeStaleCgroups).
func (s *localSandbox) finishBehind() {
	s.closeConns()
	p := s.p
	p.tidy.Add(1)
	go func() {
		defer p.tidy.Done()
		if err := s.removeDirs(); err != nil {
			p.log.Warn("local: cleanup after snapshot", "sandbox", s.id, "err", err)
		}
	}()
	s.ended()
}

// ended releases the sandbox's layers, forgets it (a warm one too) and, a moment later
// (afterRun), refills the warm pool of helpers.
func (s *localSandbox) ended() {
	s.p.warm.forget(s)
	s.p.store.release(s.chain)
	s.p.unregister(s.id)
	s.mu.Lock()
	s.state = stateEnded
	s.mu.Unlock()
	if s.p.spares != nil {
		time.AfterFunc(afterRun, s.p.spares.fill) // warm.go
	}
}

// closeConns closes the sandbox's egress proxy, its agent and outer connections and its control
// descriptor.
func (s *localSandbox) closeConns() {
	s.egress.close()
	s.agent.close()
	s.outer.close()
	if s.ctlFd >= 0 {
		unix.Close(s.ctlFd)
		s.ctlFd = -1
	}
}

// cleanup removes the sandbox's directory and cgroups and closes its descriptors.
func (s *localSandbox) cleanup() error {
	s.closeConns()
	return s.removeDirs()
}

// removeDirs removes the sandbox's cgroups and directory.
func (s *localSandbox) removeDirs() error {
	var errs []error
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

// Snapshot implements sandbox.Sandbox: it kills everything in the sandbox, waits until every
// process is gone, compares the upper directory with the chain below it (changes.go), commits it
// as a new layer unless nothing changed, and ends the sandbox.
func (s *localSandbox) Snapshot(ctx context.Context) (sandbox.SnapshotInfo, error) {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.beginEnd("snapshotted"); err != nil {
		return sandbox.SnapshotInfo{}, err
	}
	s.killAndWait()
	select {
	case <-s.exited:
	default:
		// Something of the sandbox may still write to the upper directory: do not commit it.
		ferr := s.finish()
		return sandbox.SnapshotInfo{}, errors.Join(fmt.Errorf("snapshot sandbox %s: its processes did not exit after SIGKILL; nothing was committed", s.id), ferr)
	}
	changes, err := s.p.store.upperChanges(ctx, s.chain, s.upper())
	var ref sandbox.SnapshotRef
	if err == nil && !changes.None() {
		ref, err = s.p.store.commit(s.chain, s.upper(), changes, s.p.opts.MaxLayers)
	}
	s.finishBehind()
	if err != nil {
		return sandbox.SnapshotInfo{}, fmt.Errorf("snapshot sandbox %s: %w", s.id, err)
	}
	// The next sandbox of this workspace most likely starts from here: have one ready (warm.go).
	next := ref
	if changes.None() {
		next = s.from
	}
	s.p.warm.prestart(next, s.label)
	// Nothing changed: the upper directory went with the sandbox, and no snapshot was made.
	return sandbox.SnapshotInfo{Ref: ref, Unchanged: changes.None(), Changes: changes, ChangedBytes: changes.Bytes, ChangedFiles: changes.Files}, nil
}

// commandEnv merges the sandbox's environment with extra variables into a sorted list.
func (s *localSandbox) commandEnv(extra map[string]string) ([]string, error) {
	s.mu.Lock()
	m := make(map[string]string, len(s.env)+len(extra))
	for k, v := range s.env {
		m[k] = v
	}
	s.mu.Unlock()
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
