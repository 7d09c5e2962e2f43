package main

import (
	"context"
	"flag"
	"fmt"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// stopCmd ends the daemon of a data dir: SIGTERM to the pid its pidfile names (it shuts down
// gracefully), then waits for it to go; after --timeout it is killed.
func stopCmd(ctx context.Context, args []string) error {
	var timeout time.Duration
	cfg, _, err := parseConfig("stop", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait before killing the daemon")
	})
	if err != nil {
		return err
	}
	pid, err := stopDaemon(ctx, cfg.dataDir, timeout)
	switch {
	case err != nil:
		return err
	case pid == 0:
		fmt.Printf("no sandkit-mcp daemon is running for %s\n", cfg.dataDir)
	default:
		fmt.Printf("stopped the sandkit-mcp daemon for %s (pid %d)\n", cfg.dataDir, pid)
	}
	return nil
}

// stopDaemon stops the daemon of dataDir and returns its pid (0: none was running).
func stopDaemon(ctx context.Context, dataDir string, timeout time.Duration) (int, error) {
	info, ok := door.ReadInfo(dataDir)
	if !ok || !info.Alive() {
		if door.SocketAnswers(door.SocketPath(dataDir)) {
			return 0, fmt.Errorf("something answers on %s but the pidfile %s names no live daemon; stop that process yourself",
				door.SocketPath(dataDir), door.InfoFile)
		}
		return 0, nil
	}
	if err := syscall.Kill(info.PID, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("signal the daemon (pid %d): %w", info.PID, err)
	}
	if waitGone(ctx, info, timeout) {
		return info.PID, nil
	}
	_ = syscall.Kill(info.PID, syscall.SIGKILL)
	waitGone(ctx, info, 5*time.Second)
	return 0, fmt.Errorf("the daemon (pid %d) did not stop within %v and was killed; its sandboxes and runs are reconciled at the next start", info.PID, timeout)
}

// waitGone waits up to d for the process to end; it reports whether it did.
func waitGone(ctx context.Context, info door.Info, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for info.Alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
