//go:build linux

package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/benchutil"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// BenchmarkDurableCommit: what making a snapshot durable costs, interleaved in one run.
//
//   - one-file/quiet and one-file/dirty: a sandbox that writes one file, snapshotted, on a quiet
//     file system and right after another program wrote 512 MiB into the data dir's file system
//     without syncing it (a build's output, say). Target: dirty ≤ 1.5× quiet (dirty/quiet).
//     one-file/dirty-syncfs is the same with the whole file system synced (syncEntriesMax 0,
//     the cost before layers were synced one by one); one-file/quiet-syncfs likewise.
//
//   - 30k-files and 30k-files/syncfs: a run that writes 30,000 small files, with the current
//     rule and with syncfs (target ≤ 1×: 30k/syncfs).
//
//     go test ./sandbox/local/ -run '^$' -bench DurableCommit -benchtime 5x
func BenchmarkDurableCommit(b *testing.B) {
	p := newTestProvider(b, Options{})
	ctx := context.Background()
	// life times a sandbox that change changes, from its start to its snapshot.
	life := func(change func(sb sandbox.Sandbox)) time.Duration {
		t := time.Now()
		sb, err := p.Start(ctx, sandbox.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		change(sb)
		info, err := sb.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t)
		_ = p.DeleteSnapshot(ctx, info.Ref)
		return d
	}
	one := func() time.Duration {
		return life(func(sb sandbox.Sandbox) {
			if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "changed.txt", Content: []byte("one change\n")}}); err != nil {
				b.Fatal(err)
			}
		})
	}
	many := func() time.Duration {
		return life(func(sb sandbox.Sandbox) {
			shOK(b, sb, `python3 -c '
import os
for d in range(300):
    os.makedirs("/workspace/m/p%03d" % d)
    for f in range(100):
        open("/workspace/m/p%03d/f%03d" % (d, f), "w").write("x" * 200)
'`)
		})
	}
	dirtyFile := filepath.Join(p.store.layers, "..", "dirty.bin")
	dirty := func() {
		f, err := os.Create(dirtyFile)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		for i := 0; i < 512; i++ {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
	clean := func() {
		_ = os.Remove(dirtyFile)
		if err := syncFS(p.store.layers); err != nil {
			b.Fatal(err)
		}
	}
	defer clean()
	limit := syncEntriesMax
	defer func() { syncEntriesMax = limit }()
	var quiet, quietSyncfs, dirtied, dirtiedSyncfs, many1, manySyncfs time.Duration
	clean()
	for b.Loop() {
		syncEntriesMax = limit
		quiet += one()
		dirty()
		dirtied += one()
		clean()
		syncEntriesMax = 0
		quietSyncfs += one()
		dirty()
		dirtiedSyncfs += one()
		clean()
		syncEntriesMax = limit
		many1 += many()
		clean()
		syncEntriesMax = 0
		manySyncfs += many()
		clean()
	}
	benchutil.Report(b, benchutil.Ms{"one-file/quiet-ms": quiet, "one-file/quiet-syncfs-ms": quietSyncfs, "one-file/dirty-ms": dirtied,
		"one-file/dirty-syncfs-ms": dirtiedSyncfs, "30k-files-ms": many1, "30k-files/syncfs-ms": manySyncfs},
		benchutil.Ratios{"dirty/quiet": {dirtied, quiet}, "dirty-syncfs/quiet": {dirtiedSyncfs, quiet}, "30k/syncfs": {many1, manySyncfs}})
}
