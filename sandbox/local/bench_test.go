package local

import (
	"context"
	"os/exec"
	"testing"

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
// /usr/bin/true instead of the agent; the provider adds the agent, the ping, the snapshot.
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
