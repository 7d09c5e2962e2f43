//go:build linux

package local

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// waitWarm waits until p has a ready warm sandbox from ref and returns it.
func waitWarm(t *testing.T, p *Provider, ref sandbox.SnapshotRef) *localSandbox {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.warm.mu.Lock()
		e := p.warm.bySnap[ref]
		var s *localSandbox
		if e != nil {
			s = e.s
		}
		p.warm.mu.Unlock()
		if s != nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warm sandbox from %q after 10 s", ref)
		}
	}
}

// warmRefs lists the snapshots p has warm sandboxes (ready or starting) of.
func warmRefs(p *Provider) map[sandbox.SnapshotRef]bool {
	p.warm.mu.Lock()
	defer p.warm.mu.Unlock()
	out := map[sandbox.SnapshotRef]bool{}
	for ref := range p.warm.bySnap {
		out[ref] = true
	}
	return out
}

// running reports whether the sandbox's agent still runs on the host.
func running(s *localSandbox) bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// TestWarmSandbox: a sandbox that ends in a snapshot leaves a warm sandbox from it; the next Start
// from that snapshot gets it, with the caller's environment, lifetime and egress policy applied
// then; it serves one Start only; a snapshot that changed nothing leaves one from where it started;
// DeleteSnapshot ends the snapshot's one; an unclaimed one ends after the idle time; at most
// WarmSandboxes are kept; Close ends them all.
func TestWarmSandbox(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Options{WarmSandboxes: 2, warmIdle: time.Hour})

	first := startSandbox(t, p, sandbox.StartOptions{Label: "ws-1"})
	shOK(t, first, "echo one > f.txt")
	r1 := snapshot(t, first).Ref
	warm := waitWarm(t, p, r1)
	if warm.egress.started() {
		t.Fatal("a warm sandbox's egress runs before it is claimed")
	}

	pol := policies.Policy{Mode: policies.AllowAll}
	sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: r1, Label: "ws-2", Env: map[string]string{"WARM_VAR": "x1"}, Lifetime: time.Minute, Policy: pol})
	if sb.ID() != warm.id || p.warm.hits.Load() != 1 {
		t.Fatalf("Start from %s did not take the warm sandbox %s (got %s, hits %d)", r1, warm.id, sb.ID(), p.warm.hits.Load())
	}
	if got := shOK(t, sb, "cat f.txt; echo $WARM_VAR"); got != "one\nx1" {
		t.Fatalf("the warm sandbox shows %q, want the snapshot's file and the caller's env", got)
	}
	if d := time.Until(sb.(*localSandbox).Deadline()); d < 50*time.Second || d > time.Minute {
		t.Fatalf("deadline in %v, want the caller's lifetime of 1m", d)
	}
	ls := sb.(*localSandbox)
	if got := ls.egress.pol.Load().desc; got != string(policies.AllowAll) || !ls.egress.started() || ls.label != "ws-2" {
		t.Fatalf("claimed sandbox: policy %q, egress started %v, label %q", got, ls.egress.started(), ls.label)
	}
	if _, ok := warmRefs(p)[r1]; ok {
		t.Fatal("the warm sandbox is still offered after it was claimed")
	}

	// Served once: the next Start from r1 boots a new one.
	again := startSandbox(t, p, sandbox.StartOptions{Snapshot: r1})
	if again.ID() == warm.id || p.warm.hits.Load() != 1 {
		t.Fatalf("a second Start from %s took a warm sandbox (hits %d)", r1, p.warm.hits.Load())
	}
	// Nothing changed: the warm one is from where it started.
	snapshotAllowUnchanged(t, again)
	w1 := waitWarm(t, p, r1)

	// A change: the warm one is from the new snapshot; deleting that snapshot ends it.
	shOK(t, sb, "echo two > g.txt")
	r2 := snapshot(t, sb).Ref
	w2 := waitWarm(t, p, r2)
	if err := p.DeleteSnapshot(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if running(w2) || warmRefs(p)[r2] {
		t.Fatal("the warm sandbox of a deleted snapshot lives on")
	}

	// Bounded: a third snapshot evicts the oldest of two.
	third := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, third, "echo three > h.txt")
	r3 := snapshot(t, third).Ref
	waitWarm(t, p, r3)
	fourth := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, fourth, "echo four > i.txt")
	r4 := snapshot(t, fourth).Ref
	w4 := waitWarm(t, p, r4)
	if refs := warmRefs(p); len(refs) != 2 || refs[r1] || running(w1) {
		t.Fatalf("warm sandboxes of %v (r1 alive %v), want at most 2, the oldest (r1) gone", refs, running(w1))
	}

	// Close ends them.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if running(w4) {
		t.Fatal("a warm sandbox outlived Close")
	}
	if left := childrenOf(os.Getpid(), "bwrap"); len(left) > 0 {
		t.Fatalf("sandbox processes left after Close: %v", left)
	}
}

// TestWarmSandboxIdle: a warm sandbox nobody claims ends after the idle time, and its layers go
// with it; a detached Start never takes one.
func TestWarmSandboxIdle(t *testing.T) {
	p := newTestProvider(t, Options{warmIdle: 300 * time.Millisecond})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, "echo x > x")
	ref := snapshot(t, sb).Ref
	w := waitWarm(t, p, ref)
	live := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref, Detached: true})
	if live.ID() == w.id {
		t.Fatal("a detached Start took the warm sandbox")
	}
	for deadline := time.Now().Add(10 * time.Second); running(w) || warmRefs(p)[ref]; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an unclaimed warm sandbox still runs 10 s after its idle time")
		}
	}
	w.mu.Lock()
	reason := w.endReason
	w.mu.Unlock()
	if !strings.Contains(reason, "lifetime") {
		t.Fatalf("the warm sandbox ended for %q", reason)
	}
}
