//go:build linux

package engine_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
)

// BenchmarkParallelRuns: durable runs per second with 8 workspaces driven at once, each run
// writing a file (so each commits), against plain bwrap running `true` 8 at a time, interleaved
// in the same run. Reports both rates and their ratio (target ≥ 0.5).
//
//	go test ./engine/ -run '^$' -bench ParallelRuns -benchtime 5x
func BenchmarkParallelRuns(b *testing.B) {
	const workers, perWorker = 8, 10
	v := newEnvB(b)
	ctx := context.Background()
	for i := 0; i < workers; i++ {
		if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: fmt.Sprintf("p%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	plain := func() error {
		return exec.Command("bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
			"--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			"--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
			"--tmpfs", "/tmp", "--bind", dir, "/workspace", "--chdir", "/workspace",
			"--clearenv", "--setenv", "PATH", "/usr/bin", "true").Run()
	}
	parallel := func(one func(w, i int) error) time.Duration {
		t := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					if err := one(w, i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	run := func(w, i int) error {
		r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: fmt.Sprintf("p%d", w), Command: "sh", Args: []string{"-c", fmt.Sprintf("echo %d > f", i)}})
		if err == nil && r.Run.CommitID == "" {
			err = fmt.Errorf("run %s made no commit: %s %s", r.Run.ID, r.Run.Status, r.Run.Error)
		}
		return err
	}
	var bw, sk time.Duration
	for b.Loop() {
		bw += parallel(func(int, int) error { return plain() })
		sk += parallel(run)
	}
	total := float64(b.N * workers * perWorker)
	b.ReportMetric(total/bw.Seconds(), "bwrap-runs/s")
	b.ReportMetric(total/sk.Seconds(), "sandkit-runs/s")
	b.ReportMetric(bw.Seconds()/sk.Seconds(), "sandkit/bwrap")
	b.ReportMetric(0, "ns/op")
}
