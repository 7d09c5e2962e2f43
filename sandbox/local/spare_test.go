//go:build linux

package local

import (
	"context"
	"errors"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// spares returns the pool's ready spares (the pool full first).
func readySpares(t *testing.T, p *Provider) []*spare {
	t.Helper()
	waitSpares(t, p)
	p.spares.mu.Lock()
	defer p.spares.mu.Unlock()
	return append([]*spare(nil), p.spares.ready...)
}

// readyCount is how many spares are ready now.
func readyCount(p *Provider) int {
	p.spares.mu.Lock()
	defer p.spares.mu.Unlock()
	return len(p.spares.ready)
}

// TestWarmSandboxLimited: a durable sandbox started from a spare is limited like a cold one (its
// agent in its memory and pids cgroups, the limits enforced), and Stop removes the cgroups. A
// detached sandbox never takes a spare.
func TestWarmSandboxLimited(t *testing.T) {
	if ok, why := cgroupSupport(""); !ok {
		t.Skipf("no cgroup limits here: %s", why)
	}
	p := newTestProvider(t, Options{MemoryLimit: 64 << 20, PidsLimit: 40})
	first := readySpares(t, p)[0]
	sb := startSandbox(t, p, sandbox.StartOptions{})
	ls := sb.(*localSandbox)
	if ls.cmd != first.cmd || ls.cg != first.cg || p.spares.hits.Load() != 1 {
		t.Fatalf("the sandbox did not start from the first spare (hits %d)", p.spares.hits.Load())
	}
	for _, d := range ls.cg.dirs {
		if strings.Contains(d, ls.id) {
			t.Fatalf("cgroup %s is named for the sandbox, not the spare", d)
		}
	}
	checkLimited(t, ls)

	hits := p.spares.hits.Load()
	live := startSandbox(t, p, sandbox.StartOptions{Detached: true})
	shOK(t, live, "true")
	if p.spares.hits.Load() != hits || live.(*localSandbox).cmd.SysProcAttr.Pdeathsig != 0 {
		t.Fatalf("a detached sandbox took a spare")
	}
}

// TestWarmSandboxCold: the same sandbox life without the pool (the cold path of helperMain).
func TestWarmSandboxCold(t *testing.T) {
	if ok, why := cgroupSupport(""); !ok {
		t.Skipf("no cgroup limits here: %s", why)
	}
	p := newTestProvider(t, Options{MemoryLimit: 64 << 20, PidsLimit: 40, coldOnly: true})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	checkLimited(t, sb.(*localSandbox))
}

// TestSparesClose: Close kills and reaps every spare and removes their cgroups; nothing of the
// pool is left on the host.
func TestSparesClose(t *testing.T) {
	p, err := New(Options{Dir: t.TempDir(), MemoryLimit: 64 << 20, PidsLimit: 40})
	if err != nil {
		t.Fatal(err)
	}
	spares := readySpares(t, p)
	var dirs []string
	for _, s := range spares {
		if !s.alive() {
			t.Fatalf("spare %d is not running", s.cmd.Process.Pid)
		}
		dirs = append(dirs, s.cg.dirList()...)
	}
	if ok, _ := cgroupSupport(""); ok && len(dirs) != 2*len(spares) {
		t.Fatalf("spares' cgroups: %v", dirs)
	}
	sb, err := p.Start(context.Background(), sandbox.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shOK(t, sb, "true")
	dirs = append(dirs, sb.(*localSandbox).cg.dirList()...)
	// The replacement too: it starts once the sandbox that took a spare has ended.
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range readySpares(t, p) {
		spares = append(spares, s)
		dirs = append(dirs, s.cg.dirList()...)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range spares {
		if s.alive() {
			t.Errorf("spare %d still runs", s.cmd.Process.Pid)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left after Close: %v", d, err)
		}
	}
	if left := childrenOf(os.Getpid(), "sandkit-local-spare"); len(left) > 0 {
		t.Errorf("helpers left after Close: %v", left)
	}
}

// TestDeadSpare: a spare killed by someone is not used; the start is warm from another spare or
// cold, the pool replaces it, and its cgroups are removed.
func TestDeadSpare(t *testing.T) {
	p := newTestProvider(t, Options{MemoryLimit: 64 << 20, PidsLimit: 40})
	spares := readySpares(t, p)
	for _, s := range spares {
		if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-s.done
	}
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, "true")
	if p.spares.hits.Load() != 0 || p.spares.misses.Load() != 1 {
		t.Fatalf("hits %d misses %d, want a cold start", p.spares.hits.Load(), p.spares.misses.Load())
	}
	for _, s := range spares {
		for _, d := range s.cg.dirList() {
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(d); os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a dead spare's cgroup %s is left", d)
				}
			}
		}
	}
	// Refilled: the next start is warm.
	readySpares(t, p)
	sb2 := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb2, "true")
	if p.spares.hits.Load() != 1 {
		t.Fatalf("hits %d after a refill", p.spares.hits.Load())
	}
	// One spare is left; the other is replaced once sb2 ends.
	if n := readyCount(p); n != 1 {
		t.Fatalf("%d spares ready while sb2 runs, want 1 (the replacement waits for its end)", n)
	}
	if err := sb2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A spare that dies between the take and the hand-off refuses it (EPIPE, not SIGPIPE).
	s := readySpares(t, p)[0]
	_ = s.cmd.Process.Kill()
	<-s.done
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.hand(helper.Spec{}, f, f, f); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("hand to a dead spare: %v", err)
	}
}

// childrenOf lists pid's child processes whose command line contains marker.
func childrenOf(pid int, marker string) []string {
	var out []string
	for _, c := range hostProcsWith(marker) {
		id, _, _ := strings.Cut(c, ":")
		b, err := os.ReadFile("/proc/" + id + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}
