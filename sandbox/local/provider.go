//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// Provider is the local bubblewrap provider. It is safe for concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	bw      *bwrapInfo
	store   *store
	profile *sandboxProfile
	seccomp []byte
	limits  cgroupLimits
	agent   agentBinary
	ca      *egressCA
	egress  *egressProxy
	getenv  policies.Getenv

	// The sandbox runs as uid/gid on the host; drop is true when the helper must switch to
	// them (the provider is root).
	uid, gid int
	drop     bool

	lock *os.File // flock on Dir/lock

	spares *sparePool     // ready helpers for durable sandboxes (spare.go); nil: none
	tidy   sync.WaitGroup // removals of ended sandboxes' directories (finishBehind)
	warm   *warmPool      // sandboxes started ahead for the next Start (warm.go); nil: none
	sweep  *time.Timer    // the second removeStaleCgroups; nil without limits

	mu      sync.Mutex
	running map[string]*localSandbox
	closed  bool
}

var _ sandbox.Provider = (*Provider)(nil)

// New opens (creating if needed) the provider directory, adopts the live (Detached) sandboxes a
// previous provider left running there, cleans up everything else a previous run left behind
// (dead sandboxes, durable sandboxes' directories, unreferenced layers), and checks that bwrap
// is installed. A missing bwrap yields an error wrapping sandbox.ErrUnavailable that says how to
// install it. Live sandboxes whose deadline passed while no provider ran are stopped.
func New(opts Options) (*Provider, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: local provider: Options.Dir is required", sandbox.ErrInvalid)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bw, err := findBwrap(opts.Bwrap)
	if err != nil {
		return nil, err
	}
	stage, err := stageDir()
	if err != nil {
		return nil, err
	}
	if opts.DefaultLifetime <= 0 {
		opts.DefaultLifetime = DefaultLifetime
	}
	if opts.WarmSandboxes == 0 {
		opts.WarmSandboxes = DefaultWarmSandboxes
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.MaxLayers <= 0 {
		opts.MaxLayers = DefaultMaxLayers
	}
	opts.MaxLayers = min(opts.MaxLayers, 64)
	if opts.TmpSize <= 0 {
		opts.TmpSize = DefaultTmpSize
	}
	if opts.HomeDir == "" {
		opts.HomeDir = DefaultHomeDir
	}
	if name, ok := strings.CutPrefix(opts.HomeDir, "/home/"); !ok || name == "" || strings.ContainsAny(name, "/:\x00\n") || name == "." || name == ".." {
		return nil, fmt.Errorf("%w: local provider: home directory %q must be /home/<name>", sandbox.ErrInvalid, opts.HomeDir)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local provider: create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockSoon(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: local provider directory %s is in use by another process (%v); stop it or use another data directory", sandbox.ErrUnavailable, dir, err)
	}
	var live []sandboxMeta
	st, err := openStore(dir, log, func(sbDir string) ([]string, bool) {
		m, ok := liveSandbox(sbDir)
		if ok {
			live = append(live, m)
		}
		return m.Chain, ok
	})
	if err != nil {
		lock.Close()
		return nil, err
	}
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("local provider: %w", err)
	}
	if err := ensureEtc(filepath.Join(dir, "etc"), ca.certPEM, opts.HomeDir); err != nil {
		lock.Close()
		return nil, fmt.Errorf("local provider: prepare the sandbox /etc: %w", err)
	}
	ag, err := chooseAgent(dir, opts.agent)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("local provider: %w", err)
	}
	p := &Provider{
		opts:    opts,
		log:     log,
		bw:      bw,
		store:   st,
		lock:    lock,
		running: map[string]*localSandbox{},
		limits:  cgroupLimits{memory: opts.MemoryLimit, pids: opts.PidsLimit, parent: opts.CgroupParent},
		profile: &sandboxProfile{bw: bw, stage: stage, links: rootLinks(), tmpSize: opts.TmpSize, home: opts.HomeDir},
		seccomp: seccompProgram(),
		agent:   ag,
		ca:      ca,
		egress:  newEgressProxy(opts.Egress, ca, log),
		getenv:  opts.Egress.Getenv,
	}
	if p.getenv == nil {
		p.getenv = os.LookupEnv
	}
	if os.Geteuid() == 0 {
		p.drop = true
		p.uid, p.gid = opts.HostUID, opts.HostGID
		if p.uid == 0 {
			p.uid = DefaultHostUID
		}
		if p.gid == 0 {
			p.gid = DefaultHostGID
		}
	} else {
		p.uid, p.gid = os.Geteuid(), os.Getegid()
	}
	if p.seccomp == nil {
		log.Warn("local: no seccomp filter for this architecture; sandboxes can create Unix sockets", "arch", runtime.GOARCH)
	}
	if p.limits.any() {
		removeStaleCgroups(p.limits)
		p.sweep = time.AfterFunc(staleCgroupAge+time.Second, func() { removeStaleCgroups(p.limits) })
		if ok, why := cgroupSupport(p.limits.parent); !ok {
			log.Warn("local: memory/pids limits requested but not enforceable here", "reason", why)
		}
	}
	if ag.kind == agentReexec {
		log.Info("local: sandboxes run this executable as their agent", "reason", ag.why)
	}
	st.startSquasher(opts.MaxLayers)
	for _, m := range live {
		p.adopt(m)
	}
	if !opts.coldOnly {
		p.spares = newSparePool(p, spareCount)
		p.warm = newWarmPool(p, opts.WarmSandboxes)
	}
	log.Debug("local: provider ready", "dir", dir, "bwrap", bw.Path, "bwrap_version", bw.Version, "uid", p.uid, "drop", p.drop, "agent", ag.why, "adopted", len(p.running))
	return p, nil
}

// flockSoon takes the provider directory's lock, waiting a little for it: a process another
// goroutine of this one is forking (a helper, a spare) holds a copy of every descriptor until it
// execs, so a lock a provider of this process has just released can look taken for a moment.
func flockSoon(f *os.File) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// liveSandbox reads a sandbox directory a previous provider left and says whether it is a live
// detached sandbox to keep: its meta.json is complete and its agent still runs.
func liveSandbox(dir string) (sandboxMeta, bool) {
	m, err := readMeta(dir)
	if err != nil || !m.Detached || m.ID != filepath.Base(dir) || m.AgentPid <= 0 || m.AgentStart == 0 {
		return m, false
	}
	if procStartTime(m.AgentPid) != m.AgentStart {
		return m, false
	}
	return m, true
}

// adopt takes over a live detached sandbox a previous provider started: the store already
// holds references on its layers. One whose deadline passed is stopped.
func (p *Provider) adopt(m sandboxMeta) {
	s := newLocalSandbox(p, m.ID, m.Chain)
	s.label = m.Label
	s.detached = true
	s.warnings = m.Warnings
	var stored policies.Policy
	if m.Policy != nil {
		stored = *m.Policy
	}
	s.egress = newSbEgress(p.egress, s.id, s.label, recompileStored(stored, p.getenv))
	s.meta = m
	s.deadline = m.Deadline
	s.childPid = m.AgentPid
	s.outerPid = m.OuterPid
	if len(m.Cgroups) > 0 {
		s.cg = &sandboxCgroup{dirs: m.Cgroups}
	}
	close(s.reaped) // not our child
	fail := func(why string, err error) {
		p.log.Info("local: removing a sandbox of a previous run", "sandbox", m.ID, "reason", why, "err", err)
		_ = s.cleanup()
		p.store.release(s.chain)
	}
	var err error
	if s.agent, err = watchPid(m.AgentPid, m.AgentStart); err != nil {
		fail("its agent is gone", err)
		return
	}
	if s.outer, err = watchPid(m.OuterPid, m.OuterStart); err != nil {
		s.outer = nil // bwrap's monitor is gone; the agent alone is the sandbox
	}
	if err := s.openCtl(); err != nil {
		_ = s.agent.kill()
		s.agent.exitedWithin(killTimeout)
		fail("cannot reach its control socket", err)
		return
	}
	go s.watch()
	p.mu.Lock()
	p.running[s.id] = s
	p.mu.Unlock()
	if !time.Now().Before(m.Deadline) {
		p.log.Info("local: stopping a live sandbox whose lifetime elapsed while no provider ran", "sandbox", s.id, "label", s.label, "deadline", m.Deadline)
		_ = s.end(lifetimeReason(m.Deadline))
		return
	}
	if m.Protocol != agent.Protocol {
		// Started by another version of this provider: its agent may not understand us.
		p.log.Warn("local: stopping a live sandbox started by another version of the provider", "sandbox", s.id, "label", s.label, "its_protocol", m.Protocol, "ours", agent.Protocol)
		_ = s.end(fmt.Sprintf("it was started by another version of the local provider (agent protocol %q, this one speaks %q)", m.Protocol, agent.Protocol))
		return
	}
	s.mu.Lock()
	s.armTimerLocked()
	s.mu.Unlock()
	s.egress.start(s.sock, s.exited)
	pol := s.egress.policy()
	for _, w := range pol.warnings {
		p.log.Warn("local: "+w, "sandbox", s.id, "label", s.label)
	}
	p.log.Info("local: adopted a live sandbox of a previous run", "sandbox", s.id, "label", s.label, "deadline", m.Deadline, "policy", pol.desc)
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return "local" }

// Dir is the provider's directory (Options.Dir, absolute).
func (p *Provider) Dir() string { return p.opts.Dir }

// Capabilities implements sandbox.Provider: egress policies are enforced by the provider's
// proxy (see doc.go).
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Egress: true, MaxFileSize: p.opts.MaxFileSize, HomeDir: p.opts.HomeDir, Changes: true, Diff: true}
}

// Start implements sandbox.Provider. A Detached sandbox outlives this provider (and its
// process); the others end with Close or when the process exits.
func (p *Provider) Start(ctx context.Context, opts sandbox.StartOptions) (sandbox.Sandbox, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: local provider is closed", sandbox.ErrUnavailable)
	}
	pol, err := compilePolicy(opts.Policy, p.getenv)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	if !opts.Detached {
		if s := p.warm.take(ctx, opts.Snapshot); s != nil {
			if err := s.claim(ctx, opts, pol); err == nil {
				return s, nil
			} else {
				p.log.Debug("local: a warm sandbox could not be claimed; starting one", "sandbox", s.id, "err", err)
				_ = s.end("could not be claimed")
			}
		}
	}
	return p.start(ctx, opts, pol, false)
}

// start boots a sandbox. A warm one (warm.go) starts with the agent's deadline far (the default
// lifetime) and the provider's at warmIdle, and without its egress, which claim starts.
func (p *Provider) start(ctx context.Context, opts sandbox.StartOptions, pol *egressPolicy, warm bool) (*localSandbox, error) {
	chain, err := p.store.acquire(opts.Snapshot)
	if err != nil {
		return nil, err
	}
	s := newLocalSandbox(p, newID(), chain)
	s.from = opts.Snapshot
	s.label = opts.Label
	s.detached = opts.Detached
	s.egress = newSbEgress(p.egress, s.id, s.label, pol)
	s.env = baseEnv(p.opts.HomeDir)
	for k, v := range opts.Env {
		s.env[k] = v
	}
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = p.opts.DefaultLifetime
	}
	s.deadline = time.Now().Add(lifetime)
	s.agentDeadline = s.deadline
	if err := s.boot(ctx); err != nil {
		s.cleanup()
		p.store.release(chain)
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = s.Stop(context.Background())
		return nil, fmt.Errorf("%w: local provider is closed", sandbox.ErrUnavailable)
	}
	p.running[s.id] = s
	p.mu.Unlock()
	s.mu.Lock()
	if warm {
		s.deadline = time.Now().Add(p.warm.idle)
	}
	if s.state == stateRunning {
		s.armTimerLocked()
	}
	s.mu.Unlock()
	if !warm {
		s.egress.start(s.sock, s.exited)
	}
	return s, nil
}

func (p *Provider) unregister(id string) {
	p.mu.Lock()
	delete(p.running, id)
	p.mu.Unlock()
}

// DeleteSnapshot implements sandbox.Provider. Layers the snapshot shares with other snapshots or
// with running sandboxes are kept; the others are deleted.
func (p *Provider) DeleteSnapshot(ctx context.Context, ref sandbox.SnapshotRef) error {
	p.warm.drop(ref)
	return p.store.delete(ref)
}

// Diff implements sandbox.Provider: it walks only the layers the two chains do not share
// (changes.go). Both chains are held while it runs, so deleting either snapshot meanwhile is
// safe.
func (p *Provider) Diff(ctx context.Context, from, to sandbox.SnapshotRef) (sandbox.Changes, error) {
	a, err := p.store.acquire(from)
	if err != nil {
		return sandbox.Changes{}, err
	}
	defer p.store.release(a)
	b, err := p.store.acquire(to)
	if err != nil {
		return sandbox.Changes{}, err
	}
	defer p.store.release(b)
	c, err := p.store.diffChains(ctx, a, b)
	if err != nil {
		return sandbox.Changes{}, fmt.Errorf("diff snapshots %s and %s: %w", from, to, err)
	}
	return c, nil
}

// Snapshots implements sandbox.Provider.
func (p *Provider) Snapshots(ctx context.Context) ([]sandbox.SnapshotRef, error) {
	return p.store.list(), nil
}

// Close stops every durable sandbox and releases the provider directory. Live (Detached)
// sandboxes keep running; their handles from this provider stop working (ErrUnavailable), and a
// provider opened on the same directory adopts them (Reconnect).
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	spares := p.spares
	if p.sweep != nil {
		p.sweep.Stop()
	}
	p.mu.Unlock()
	// The spares first: a sandbox that ends would start a replacement.
	spareErr := spares.close()
	p.warm.close()
	p.mu.Lock()
	var all []*localSandbox
	for _, s := range p.running {
		all = append(all, s)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(all), len(all)+2)
	for i, s := range all {
		if s.detached {
			s.release()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.end("the local provider was closed")
		}()
	}
	wg.Wait()
	p.tidy.Wait()
	errs = append(errs, spareErr)
	p.store.stopSquasher()
	p.egress.close()
	// Unlock before closing: a child another goroutine is forking right now shares the lock's
	// open file until it execs, and would hold the lock for that moment after a mere close.
	_ = unix.Flock(int(p.lock.Fd()), unix.LOCK_UN)
	errs = append(errs, p.lock.Close())
	return errors.Join(errs...)
}
