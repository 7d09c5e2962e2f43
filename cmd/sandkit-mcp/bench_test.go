package main_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/sandbox/local"
)

// BenchmarkRunCommandTrue measures, interleaved in one loop so machine noise hits all three alike:
//
//   - sh: plain `sh -c true` on the host (fork+exec);
//   - bwrap-bind: plain bubblewrap with the reference profile of local-isolation-measured.md and a
//     bind-mounted directory (no overlay, no helper): the floor of any bwrap sandbox;
//   - bwrap: the raw sandbox of the local provider running `true` (helper + bwrap + overlay, no
//     agent, nothing kept);
//   - sandkit: `run_command true` through MCP over stdio to the built binary, including the
//     sandbox start, the snapshot and the commit recorded in bbolt.
//
// It reports each as ms/op and the ratios sandkit/bwrap and sandkit/bwrap-bind (target ≤ 6).
//
//	go test ./cmd/sandkit-mcp/ -run '^$' -bench RunCommandTrue -benchtime 100x
func BenchmarkRunCommandTrue(b *testing.B) {
	ctx := context.Background()
	prov, err := local.New(local.Options{Dir: filepath.Join(b.TempDir(), "bare")})
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	c := connect(b, b.TempDir())
	c.ok("create_workspace", map[string]any{"name": "bench"})
	args := map[string]any{"workspace": "bench", "command": "true"}
	bindDir := b.TempDir()
	plain := func() *exec.Cmd {
		return exec.Command("bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
			"--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			"--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
			"--tmpfs", "/tmp", "--bind", bindDir, "/workspace", "--chdir", "/workspace",
			"--clearenv", "--setenv", "PATH", "/usr/bin", "true")
	}
	_ = plain().Run()
	// Warm up all three paths once.
	_ = exec.Command("sh", "-c", "true").Run()
	_ = prov.RunBare(ctx, "/usr/bin/true")
	c.ok("run_command", args)

	var sh, bb, bw, sk time.Duration
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
		sh += time.Since(t)
		t = time.Now()
		if err := plain().Run(); err != nil {
			b.Fatal(err)
		}
		bb += time.Since(t)
		t = time.Now()
		if err := prov.RunBare(ctx, "/usr/bin/true"); err != nil {
			b.Fatal(err)
		}
		bw += time.Since(t)
		t = time.Now()
		res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: args})
		if err != nil || res.IsError {
			b.Fatalf("run_command: %v %+v", err, res)
		}
		sk += time.Since(t)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(sh), "sh-ms/op")
	b.ReportMetric(ms(bb), "bwrap-bind-ms/op")
	b.ReportMetric(ms(bw), "bwrap-ms/op")
	b.ReportMetric(ms(sk), "sandkit-ms/op")
	b.ReportMetric(float64(sk)/float64(bw), "sandkit/bwrap")
	b.ReportMetric(float64(sk)/float64(bb), "sandkit/bwrap-bind")
	b.ReportMetric(0, "ns/op")
}
