//go:build linux

package local

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// BenchmarkCommitSeries: 100 runs in a row, each changing one file, on a 50,000-file workspace,
// with the default MaxLayers (so about three squashes happen along the way, in the background).
// Reports the median and the slowest commit (start, write, snapshot) and their ratio (target:
// slowest ≤ 2× median), and the disk the series added per commit (the layers directory's growth).
//
//	go test ./sandbox/local/ -run '^$' -bench CommitSeries -benchtime 1x
func BenchmarkCommitSeries(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	sb := startSandbox(b, p, sandbox.StartOptions{})
	shOK(b, sb, `python3 - <<'EOF'
import os
for pkg in range(2500):
    d = "/workspace/node_modules/pkg%04d" % pkg
    os.makedirs(d)
    for f in range(20):
        with open("%s/f%02d.js" % (d, f), "w") as fh:
            fh.write("x" * 100)
EOF`)
	ref := snapshot(b, sb).Ref
	for b.Loop() {
		var times []time.Duration
		before := diskUsage(b, p.store.layers)
		for i := 0; i < 100; i++ {
			t := time.Now()
			sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: ref})
			if err != nil {
				b.Fatal(err)
			}
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: fmt.Sprintf("node_modules/pkg%04d/f00.js", i), Content: []byte(fmt.Sprint(i))}}); err != nil {
				b.Fatal(err)
			}
			info, err := sb.Snapshot(ctx)
			if err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t))
			ref = info.Ref
		}
		p.store.idleSquasher()
		added := diskUsage(b, p.store.layers) - before
		slices.Sort(times)
		median, slowest := times[len(times)/2], times[len(times)-1]
		b.ReportMetric(float64(median.Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-ms")
		b.ReportMetric(float64(slowest)/float64(median), "slowest/median")
		b.ReportMetric(float64(added)/100/1024, "KiB/commit")
	}
	b.ReportMetric(0, "ns/op")
}

// diskUsage is the space the tree under dir takes (allocated blocks, each inode counted once,
// as du does).
func diskUsage(b *testing.B, dir string) int64 {
	b.Helper()
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}
