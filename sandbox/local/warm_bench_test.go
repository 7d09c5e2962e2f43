//go:build linux

package local

import (
	"context"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// BenchmarkWarmStart: a durable sandbox's life with the server's default limits (PidsLimit 4096,
// MemoryLimit 8 GiB) started from the warm pool of helpers (spare.go) and cold, interleaved in
// one loop, next to the raw bwrap start (RunBare) and to both without limits. Each figure is in
// ms per run; x-bare is a figure over the raw start of the same round; warm-hits is the share of
// warm starts that found a spare.
//
//   - spaced-100ms: 100 ms (untimed) before each run, so the pool has been refilled;
//   - back-to-back: each round runs four lives of a kind in a row, with nothing in between, so
//     a warm start finds only what the pool refilled while the previous run ran.
//
// start-exec-stop is Start, Exec true, Stop; start-exec-snapshot ends with Snapshot instead
// (true changes nothing, so no snapshot is made, as for `run_command true`).
//
//	go test ./sandbox/local/ -run '^$' -bench WarmStart -benchtime 30x
func BenchmarkWarmStart(b *testing.B) {
	limits := Options{PidsLimit: 4096, MemoryLimit: 8 << 30}
	coldLimits := limits
	coldLimits.coldOnly = true
	providers := map[string]*Provider{
		"warm":         newTestProvider(b, limits),
		"cold":         newTestProvider(b, coldLimits),
		"warm-nolimit": newTestProvider(b, Options{}),
		"cold-nolimit": newTestProvider(b, Options{coldOnly: true}),
	}
	bare := providers["cold-nolimit"]
	ctx := context.Background()
	life := func(b *testing.B, p *Provider, snap bool) time.Duration {
		t := time.Now()
		sb, err := p.Start(ctx, sandbox.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); err != nil {
			b.Fatal(err)
		}
		if snap {
			if _, err := sb.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		} else if err := sb.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	type kind struct {
		name string
		p    string
		snap bool
	}
	kinds := []kind{
		{"cold/start-exec-stop", "cold", false},
		{"warm/start-exec-stop", "warm", false},
		{"cold/start-exec-snapshot", "cold", true},
		{"warm/start-exec-snapshot", "warm", true},
		{"cold-nolimit/start-exec-stop", "cold-nolimit", false},
		{"warm-nolimit/start-exec-stop", "warm-nolimit", false},
	}
	run := func(b *testing.B, pause time.Duration, repeat int) {
		for _, p := range providers {
			waitSpares(b, p)
			life(b, p, false) // warm up
		}
		_ = bare.RunBare(ctx, "/usr/bin/true")
		hits0, misses0 := providers["warm"].spares.hits.Load(), providers["warm"].spares.misses.Load()
		sums := make([]time.Duration, len(kinds))
		var bareSum time.Duration
		for b.Loop() {
			time.Sleep(pause)
			t := time.Now()
			if err := bare.RunBare(ctx, "/usr/bin/true"); err != nil {
				b.Fatal(err)
			}
			bareSum += time.Since(t)
			for i, k := range kinds {
				for range repeat {
					time.Sleep(pause)
					sums[i] += life(b, providers[k.p], k.snap)
				}
			}
		}
		n := float64(b.N)
		ms := func(d time.Duration, runs int) float64 { return float64(d.Microseconds()) / 1000 / n / float64(runs) }
		b.ReportMetric(ms(bareSum, 1), "bare-ms")
		for i, k := range kinds {
			b.ReportMetric(ms(sums[i], repeat), k.name+"-ms")
			b.ReportMetric(ms(sums[i], repeat)/ms(bareSum, 1), k.name+"-x-bare")
		}
		hits := providers["warm"].spares.hits.Load() - hits0
		misses := providers["warm"].spares.misses.Load() - misses0
		b.ReportMetric(float64(hits)/float64(hits+misses), "warm-hits")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("spaced-100ms", func(b *testing.B) { run(b, 100*time.Millisecond, 1) })
	b.Run("back-to-back", func(b *testing.B) { run(b, 0, 4) })
}

// waitSpares waits until p's warm pool is full.
func waitSpares(t testing.TB, p *Provider) {
	t.Helper()
	if p.spares == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.spares.mu.Lock()
		n := len(p.spares.ready)
		p.spares.mu.Unlock()
		if n == p.spares.size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the warm pool has %d of %d spares after 10 s", n, p.spares.size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
