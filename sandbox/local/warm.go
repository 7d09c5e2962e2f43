//go:build linux

package local

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// Warm sandboxes: a durable run does not have to wait for a sandbox to start. When a sandbox ends
// in a snapshot (Snapshot: the new one, or the one it started from when it changed nothing), the
// provider starts, in the background, a sandbox from that snapshot and keeps it, idle, for the
// next Start from the same snapshot, which is what a workspace's next run asks for. Such a Start
// takes the warm sandbox instead of booting one: it gets the caller's label, environment,
// lifetime and egress policy there and then (nothing ran in it before: its egress is not even
// started, and its processes are the agent alone), and it is used for exactly one Start, so every
// command still gets a fresh sandbox. A Start that finds the warm sandbox still booting waits for
// it (it began earlier than a new one would).
//
// Bounded: at most Options.WarmSandboxes (DefaultWarmSandboxes) are kept, the least recently
// made one goes first, and one unclaimed for warmIdle ends. Each costs what an idle sandbox costs
// (the agent and bwrap's monitor: a few MiB of memory, no CPU) and holds its snapshot's layers.
// DeleteSnapshot ends the one of its snapshot. Detached sandboxes (sessions) never take one. Warm
// sandboxes are durable sandboxes: they die with the provider, and a crash leaves nothing the
// next provider on the directory does not remove.

// warmIdle is how long a warm sandbox waits for its Start before it ends.
const warmIdle = 2 * time.Minute

// afterRun is how long after a sandbox ended the work it leaves for the background starts: the
// warm sandbox from its snapshot and the replacement of the spare helper it took. By then the
// run that ended is recorded and answered; started at once, that work competed with the run's
// last steps for the CPU (on 2 cores, run_command true took 8.6 ms with the warm sandbox's boot
// started at once and 8.0 ms with it started 15 ms later). A Start in the meantime waits for the
// warm sandbox, whose boot then begins at once.
const afterRun = 10 * time.Millisecond

// warmPool holds the warm sandboxes of a provider.
type warmPool struct {
	p    *Provider
	size int
	idle time.Duration // warmIdle

	mu     sync.Mutex
	bySnap map[sandbox.SnapshotRef]*warmEntry
	closed bool
	wg     sync.WaitGroup
	cancel context.CancelFunc
	ctx    context.Context

	hits, misses atomic.Int64
}

// warmEntry is one warm sandbox, or one being started (ready not yet closed).
type warmEntry struct {
	ref   sandbox.SnapshotRef
	made  time.Time
	ready chan struct{} // closed once s is set (nil: the start failed)
	s     *localSandbox
	// hurry, closed by a Start waiting for this one, ends the wait of afterRun.
	hurry     chan struct{}
	hurryOnce sync.Once
	cancel    context.CancelFunc // stops the start
	done      chan struct{}      // closed once the start is over (kept or ended)
}

func newWarmPool(p *Provider, size int) *warmPool {
	if size <= 0 {
		return nil
	}
	idle := p.opts.warmIdle
	if idle <= 0 {
		idle = warmIdle
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &warmPool{p: p, size: size, idle: idle, bySnap: map[sandbox.SnapshotRef]*warmEntry{}, ctx: ctx, cancel: cancel}
}

// prestart starts a warm sandbox from ref in the background unless there is one (or one
// starting) already; label names it in logs until it is claimed.
func (wp *warmPool) prestart(ref sandbox.SnapshotRef, label string) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	if wp.closed || wp.bySnap[ref] != nil {
		wp.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(wp.ctx)
	e := &warmEntry{ref: ref, made: time.Now(), ready: make(chan struct{}), hurry: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	wp.bySnap[ref] = e
	evict := wp.evictLocked()
	wp.wg.Add(1)
	wp.mu.Unlock()
	for _, s := range evict {
		_ = s.end("a newer warm sandbox took its place")
	}
	go func() {
		defer wp.wg.Done()
		defer close(e.done)
		defer cancel()
		select {
		case <-time.After(afterRun):
		case <-e.hurry:
		case <-ctx.Done():
		}
		var s *localSandbox
		err := ctx.Err()
		if err == nil {
			s, err = wp.p.start(ctx, sandbox.StartOptions{Snapshot: ref, Label: label}, denyPolicy(), true)
		}
		wp.mu.Lock()
		keep := err == nil && !wp.closed && wp.bySnap[ref] == e
		var evict []*localSandbox
		if keep {
			e.s = s
			evict = wp.evictLocked() // starts that overlapped may have left more than size
		} else if wp.bySnap[ref] == e {
			delete(wp.bySnap, ref)
		}
		close(e.ready)
		wp.mu.Unlock()
		for _, old := range evict {
			_ = old.end("a newer warm sandbox took its place")
		}
		if err != nil {
			wp.p.log.Debug("local: no warm sandbox", "snapshot", ref, "err", err)
		} else if !keep {
			_ = s.end("not needed as a warm sandbox any more")
		}
	}()
}

// evictLocked takes out the oldest ready entries while there are more than size, and returns
// their sandboxes for the caller to end (outside the lock).
func (wp *warmPool) evictLocked() []*localSandbox {
	var out []*localSandbox
	for len(wp.bySnap) > wp.size {
		var oldest *warmEntry
		for _, e := range wp.bySnap {
			if e.s != nil && (oldest == nil || e.made.Before(oldest.made)) {
				oldest = e
			}
		}
		if oldest == nil {
			return out // the rest are starting; they are counted when ready
		}
		delete(wp.bySnap, oldest.ref)
		out = append(out, oldest.s)
	}
	return out
}

// take returns the warm sandbox of ref, waiting for one being started, or nil.
func (wp *warmPool) take(ctx context.Context, ref sandbox.SnapshotRef) *localSandbox {
	if wp == nil {
		return nil
	}
	wp.mu.Lock()
	e := wp.bySnap[ref]
	wp.mu.Unlock()
	if e == nil {
		wp.misses.Add(1)
		return nil
	}
	e.hurryOnce.Do(func() { close(e.hurry) })
	select {
	case <-e.ready:
	case <-ctx.Done():
		wp.misses.Add(1)
		return nil
	}
	wp.mu.Lock()
	if wp.bySnap[ref] != e || e.s == nil {
		wp.mu.Unlock()
		wp.misses.Add(1)
		return nil
	}
	delete(wp.bySnap, ref)
	wp.mu.Unlock()
	if e.s.checkRunning() != nil {
		wp.misses.Add(1)
		return nil
	}
	wp.hits.Add(1)
	return e.s
}

// forget drops s if it is a warm sandbox (it ended).
func (wp *warmPool) forget(s *localSandbox) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	for ref, e := range wp.bySnap {
		if e.s == s {
			delete(wp.bySnap, ref)
		}
	}
	wp.mu.Unlock()
}

// drop ends the warm sandbox of ref (its snapshot is being deleted), or stops its start, and
// returns once nothing of it holds the snapshot's layers.
func (wp *warmPool) drop(ref sandbox.SnapshotRef) {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	e := wp.bySnap[ref]
	delete(wp.bySnap, ref)
	wp.mu.Unlock()
	if e == nil {
		return
	}
	e.cancel()
	<-e.done // a start that got through ends its sandbox: the entry is gone
	if e.s != nil {
		_ = e.s.end("its snapshot was deleted")
	}
}

// close ends every warm sandbox and waits for those being started.
func (wp *warmPool) close() {
	if wp == nil {
		return
	}
	wp.mu.Lock()
	wp.closed = true
	var all []*localSandbox
	for _, e := range wp.bySnap {
		if e.s != nil {
			all = append(all, e.s)
		}
	}
	clear(wp.bySnap)
	wp.mu.Unlock()
	wp.cancel()
	for _, s := range all {
		_ = s.end("the local provider was closed")
	}
	wp.wg.Wait()
}

// claim gives a warm sandbox to the Start that took it: its label, environment, lifetime and
// egress policy, then starts its egress. The agent's deadline (set far at its start) is moved
// only when the lifetime asks for more.
func (s *localSandbox) claim(ctx context.Context, opts sandbox.StartOptions, pol *egressPolicy) error {
	p := s.p
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = p.opts.DefaultLifetime
	}
	deadline := time.Now().Add(lifetime)
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if err := s.checkRunning(); err != nil {
		return err
	}
	if deadline.After(s.agentDeadline) {
		if _, _, err := s.call(ctx, agent.Request{Op: agent.OpDeadline, DeadlineMs: deadline.UnixMilli()}, nil, 0); err != nil {
			return err
		}
		s.agentDeadline = deadline
	}
	env := baseEnv(p.opts.HomeDir)
	for k, v := range opts.Env {
		env[k] = v
	}
	s.mu.Lock()
	s.label = opts.Label
	s.env = env
	s.deadline = deadline
	s.armTimerLocked()
	s.mu.Unlock()
	s.egress.label = opts.Label
	s.egress.pol.Store(pol)
	s.egress.start(s.sock, s.exited)
	return nil
}
