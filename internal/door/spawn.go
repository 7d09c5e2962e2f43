package door

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Waits of a door that looks for, or starts, the daemon.
const (
	// daemonStartWait bounds how long a door waits for a daemon it started to accept.
	daemonStartWait = 10 * time.Second
	// startLockWait bounds how long a door waits for another door that is starting the daemon.
	startLockWait = 30 * time.Second
	// maxLogSize: a daemon log larger than this is moved to daemon.log.1 before a new daemon starts.
	maxLogSize = 8 << 20
	// IdleExit is the --idle-exit of a daemon the stdio door starts.
	IdleExit = 15 * time.Minute
)

// connectDaemon connects to the daemon of the data dir, starting one if none answers.
//
// Race-free: a door takes an exclusive flock on <data-dir>/daemon.lock while it checks and
// starts, so two doors starting at once end with one daemon (the second, once it has the lock,
// finds the first one's daemon answering).
func connectDaemon(ctx context.Context, cfg Config, o Options, log *slog.Logger) (*Conn, error) {
	sock := SocketPath(cfg.DataDir)
	c, err := DialUnix(sock, 2*time.Second)
	if err == nil {
		return c, nil
	}
	if !noDaemon(err) {
		return nil, fmt.Errorf("cannot connect to the sandkit-mcp daemon at %s: %w", sock, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w (pass --data-dir or set SANDKIT_DATA_DIR to a writable directory)", cfg.DataDir, err)
	}
	unlock, err := lockStart(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c, err := DialUnix(sock, 2*time.Second); err == nil {
		return c, nil
	}
	if o.Preflight != nil {
		if err := o.Preflight(cfg); err != nil {
			return nil, err
		}
	}
	return startDaemon(ctx, cfg, o, log)
}

// noDaemon reports whether a dial error means nobody serves the socket.
func noDaemon(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// lockStart takes the exclusive start lock of the data dir.
func lockStart(ctx context.Context, dataDir string) (func(), error) {
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	deadline := time.Now().Add(startLockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("could not take %s (another sandkit-mcp is starting the daemon and has not finished after %v): %v", path, startLockWait, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// DaemonArgs are the arguments of a daemon started by a door: serve the same data dir with the
// door's sandbox settings and operator config, and exit when idle.
func DaemonArgs(cfg Config) []string {
	args := []string{"serve", "--data-dir", cfg.DataDir, "--idle-exit", IdleExit.String(),
		"--log-level", cfg.LogLevel, "--pids-limit", strconv.FormatInt(cfg.PidsLimit, 10),
		"--warm-sandboxes", strconv.Itoa(cfg.WarmSandboxes)}
	return AppendSetFlags(args, "--bwrap", cfg.Bwrap, "--memory-limit", cfg.MemoryFlag,
		"--disk-reserve", cfg.ReserveFlag, "--config", cfg.ConfigFile, "--provider", cfg.Provider)
}

// AppendSetFlags appends to args each flag of flagValues (pairs of a flag and its value) whose
// value is set, in order.
func AppendSetFlags(args []string, flagValues ...string) []string {
	for i := 0; i+1 < len(flagValues); i += 2 {
		if flagValues[i+1] != "" {
			args = append(args, flagValues[i], flagValues[i+1])
		}
	}
	return args
}

// startDaemon starts `sandkit-mcpd serve` (o.Daemon) detached (own session, no stdin, output
// appended to daemon.log) and waits until its socket accepts.
func startDaemon(ctx context.Context, cfg Config, o Options, log *slog.Logger) (*Conn, error) {
	daemon, err := o.Daemon()
	if err != nil {
		return nil, fmt.Errorf("no sandkit-mcp daemon serves data dir %s, and this door cannot start one: %w", cfg.DataDir, err)
	}
	logPath := filepath.Join(cfg.DataDir, LogFile)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".1")
	}
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the daemon log: %w", err)
	}
	offset, _ := lf.Seek(0, io.SeekEnd)
	cmd := exec.Command(daemon, DaemonArgs(cfg)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("start the sandkit-mcp daemon: %w", err)
	}
	log.Debug("started the sandkit-mcp daemon", "pid", cmd.Process.Pid, "data_dir", cfg.DataDir, "log", logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	sock := SocketPath(cfg.DataDir)
	deadline := time.Now().Add(daemonStartWait)
	var why string
	for {
		if c, err := DialUnix(sock, time.Second); err == nil {
			return c, nil
		}
		select {
		case err := <-exited:
			// It may have found another daemon serving (then the socket answers in a moment).
			why = fmt.Sprintf("it exited: %v", err)
			exited = nil
			if soon := time.Now().Add(time.Second); soon.Before(deadline) {
				deadline = soon
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			break
		}
	}
	if exited != nil {
		why = fmt.Sprintf("its socket did not accept within %v; stopped it", daemonStartWait)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	return nil, fmt.Errorf("the sandkit-mcp daemon for data dir %s did not start (%s); the end of %s:\n%s\nrun `sandkit-mcp doctor --data-dir %s` for a full check",
		cfg.DataDir, why, logPath, logTail(logPath, offset), cfg.DataDir)
}

// logTail returns the last lines written to a log after offset (at most 4 KiB).
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	const max = 4 << 10
	if fi.Size()-offset > max {
		offset = fi.Size() - max
	}
	b := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(b, offset)
	b = bytes.TrimSpace(b[:n])
	if len(b) == 0 {
		return "  (nothing)"
	}
	return "  " + string(bytes.ReplaceAll(b, []byte("\n"), []byte("\n  ")))
}
