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
//   - bwrap: the raw sandbox of the local provider running `true` (helper + bwrap + overlay, no
//     agent, nothing kept);
//   - sandkit: `run_command true` through MCP over stdio to the built binary, including the
//     sandbox start, the snapshot and the commit recorded in bbolt.
//
// It reports each as ms/op and the ratio sandkit/bwrap (target ≤ 6).
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
	// Warm up all three paths once.
	_ = exec.Command("sh", "-c", "true").Run()
	_ = prov.RunBare(ctx, "/usr/bin/true")
	c.ok("run_command", args)

	var sh, bw, sk time.Duration
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
		sh += time.Since(t)
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
	b.ReportMetric(ms(bw), "bwrap-ms/op")
	b.ReportMetric(ms(sk), "sandkit-ms/op")
	b.ReportMetric(float64(sk)/float64(bw), "sandkit/bwrap")
	b.ReportMetric(0, "ns/op")
}
