package local

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Benchmarks print each figure of the provider next to a raw baseline measured in the same run:
// sub-benchmarks named baseline=... and local=... .
//
//	go test ./sandbox/local/ -run '^$' -bench . -benchtime 200x

// BenchmarkExec: one command in a warm sandbox versus a plain fork+exec on the host.
func BenchmarkExec(b *testing.B) {
	b.Run("baseline=host-sh-c-true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("sh", "-c", "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=agent-exec-sh-c-true", func(b *testing.B) {
		p := newTestProvider(b, Options{})
		sb := startSandbox(b, p, sandbox.StartOptions{})
		ctx := context.Background()
		for b.Loop() {
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "true"}})
			if err != nil || res.ExitCode != 0 {
				b.Fatal(res, err)
			}
		}
	})
}

// BenchmarkSandbox: a whole sandbox life. The baseline is the provider's own helper and bwrap
// argv (overlay mounted by the helper, same namespaces, mounts and seccomp filter) running
// /usr/bin/true instead of the agent; the provider adds the agent, its init request, the snapshot.
func BenchmarkSandbox(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	b.Run("baseline=bwrap-overlay-true", func(b *testing.B) {
		for b.Loop() {
			if err := p.RunBare(context.Background(), "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=start-exec-true-stop", func(b *testing.B) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
				b.Fatal(err)
			}
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local=start-exec-true-snapshot", func(b *testing.B) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
				b.Fatal(err)
			}
			info, err := sb.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = p.DeleteSnapshot(ctx, info.Ref)
			b.StartTimer()
		}
	})
}

// BenchmarkSnapshots: commit (start, write one file, snapshot) and fork (start + stop) on an
// empty workspace versus a 200 MB / 20,000-file one, built once per run. Targets: both big/empty
// ratios at most 2.
func BenchmarkSnapshots(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	big := buildBigSnapshot(b, p)

	commit := func(b *testing.B, base sandbox.SnapshotRef) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: base})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "node_modules/changed.txt", Content: []byte("one change\n")}}); err != nil {
				b.Fatal(err)
			}
			info, err := sb.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = p.DeleteSnapshot(ctx, info.Ref)
			b.StartTimer()
		}
	}
	fork := func(b *testing.B, base sandbox.SnapshotRef) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: base})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("commit/baseline=empty", func(b *testing.B) { commit(b, "") })
	b.Run("commit/local=200MB-20k-files", func(b *testing.B) { commit(b, big) })
	b.Run("fork/baseline=empty", func(b *testing.B) { fork(b, "") })
	b.Run("fork/local=200MB-20k-files", func(b *testing.B) { fork(b, big) })
}

// buildBigSnapshot makes a node_modules-like workspace: 20,000 files of 10 KiB (200 MB) in
// 1,000 package directories, committed as one snapshot.
func buildBigSnapshot(b *testing.B, p *Provider) sandbox.SnapshotRef {
	b.Helper()
	sb := startSandbox(b, p, sandbox.StartOptions{})
	shOK(b, sb, `python3 - <<'EOF'
import os
blob = os.urandom(10240)
for pkg in range(1000):
    d = "/workspace/node_modules/pkg%04d/lib" % pkg
    os.makedirs(d)
    for f in range(20):
        with open("%s/f%02d.js" % (d, f), "wb") as fh:
            fh.write(blob)
EOF`)
	info := snapshot(b, sb)
	if info.ChangedFiles != 20000 || info.ChangedBytes != 20000*10240 {
		b.Fatalf("big snapshot: %+v", info)
	}
	return info.Ref
}

// Live (detached) sandboxes, with the static agent built from this source. Each pair reports the
// local figure's ratio to its baseline as x-baseline. Targets: exec at most 5x a host fork+exec
// (the MCP overhead is measured elsewhere), start + first exec and a snapshot each at most 10x a
// raw bwrap start, idle memory at most 15 MiB.
//
//	go test ./sandbox/local/ -run '^$' -bench Live -benchtime 200x

// pair runs a baseline and then the local figure, and reports the ratio of their ns/op.
func pair(b *testing.B, baseName string, base func(*testing.B), localName string, local func(*testing.B)) {
	var baseNs float64
	b.Run(baseName, func(b *testing.B) {
		base(b)
		baseNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run(localName, func(b *testing.B) {
		local(b)
		if baseNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baseNs, "x-baseline")
		}
	})
}

func liveProvider(b *testing.B) *Provider {
	return newTestProvider(b, Options{agent: agentChoice{binary: freshAgent(b)}})
}

// BenchmarkLiveExec: `true` through the agent of a live sandbox versus a plain fork+exec of
// `true` on the host.
func BenchmarkLiveExec(b *testing.B) {
	p := liveProvider(b)
	sb := startSandbox(b, p, sandbox.StartOptions{Detached: true})
	ctx := context.Background()
	pair(b, "baseline=host-fork-exec-true", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	}, "local=live-exec-true", func(b *testing.B) {
		for b.Loop() {
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"})
			if err != nil || res.ExitCode != 0 {
				b.Fatal(res, err)
			}
		}
	})
}

// BenchmarkLiveStart: Start(Detached) until the first Exec has answered, versus the raw bwrap
// start of RunBare (same helper, mounts and profile, running /usr/bin/true). Stopping the
// sandbox is not timed.
func BenchmarkLiveStart(b *testing.B) {
	p := liveProvider(b)
	ctx := context.Background()
	pair(b, "baseline=bwrap-overlay-true", func(b *testing.B) {
		for b.Loop() {
			if err := p.RunBare(ctx, "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
		}
	}, "local=start-detached-first-exec", func(b *testing.B) {
		for b.Loop() {
			sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := sb.Stop(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// BenchmarkLiveSnapshot: Snapshot of a live sandbox that changed one file (kill everything,
// wait for it to be gone, commit the upper directory) versus a raw bwrap start.
func BenchmarkLiveSnapshot(b *testing.B) {
	p := liveProvider(b)
	ctx := context.Background()
	pair(b, "baseline=bwrap-overlay-true", func(b *testing.B) {
		for b.Loop() {
			if err := p.RunBare(ctx, "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
		}
	}, "local=snapshot-live", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "changed.txt", Content: []byte("one change\n")}}); err != nil {
				b.Fatal(err)
			}
			if _, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sleep", Args: []string{"1000"}}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			info, err := sb.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = p.DeleteSnapshot(ctx, info.Ref)
			b.StartTimer()
		}
	})
}

// BenchmarkLiveIdleRSS: resident memory of an idle live sandbox — its agent plus bwrap outside
// it — with the static agent and with the re-exec fallback, versus a raw bwrap sandbox idling
// in `sleep` (bwrap outside, bwrap's init, sleep). Reported in MiB per sandbox.
func BenchmarkLiveIdleRSS(b *testing.B) {
	b.Run("baseline=bwrap-sleep", func(b *testing.B) {
		requireBwrap(b)
		var sum float64
		for b.Loop() {
			cmd := exec.Command("bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent",
				"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
				"--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "sleep", "1000")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			var mib float64
			for _, pid := range append([]int{cmd.Process.Pid}, descendantsOf(cmd.Process.Pid)...) {
				mib += vmRSS(b, pid)
			}
			sum += mib
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		b.ReportMetric(sum/float64(b.N), "MiB/sandbox")
	})
	for _, kind := range []string{agentStatic, agentReexec} {
		b.Run("local="+kind+"-agent", func(b *testing.B) {
			opts := Options{agent: agentChoice{reexec: kind == agentReexec}}
			if kind == agentStatic {
				opts.agent.binary = freshAgent(b)
			}
			p := newTestProvider(b, opts)
			ctx := context.Background()
			var sum float64
			for b.Loop() {
				sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true})
				if err != nil {
					b.Fatal(err)
				}
				shOK(b, sb, "true")
				sum += idleRSS(b, sb).total()
				if err := sb.Stop(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(sum/float64(b.N), "MiB/sandbox")
		})
	}
}

// descendantsOf lists pid's descendants on the host.
func descendantsOf(pid int) []int {
	ents, _ := os.ReadDir("/proc")
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
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for q := []int{pid}; len(q) > 0; q = q[1:] {
		for _, c := range children[q[0]] {
			out = append(out, c)
			q = append(q, c)
		}
	}
	return out
}
