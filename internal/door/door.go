// Package door is the stdio door of sandkit-mcp, shared by both binaries: the thin front
// (cmd/sandkit-mcp, what an agent launches) and the full server (cmd/sandkit-mcpd, whose own
// stdio door is this one too). It parses the flags every subcommand shares, finds the data dir,
// connects to the data dir's daemon over its Unix socket (starting one under a lock when none
// runs), sends the door's hello and relays the MCP stream; it also owns the daemon's files in the
// data dir (socket, pidfile, lock, log).
//
// It must stay light: the front starts in a few milliseconds only because it links nothing
// heavy, and Go runs the init of every linked package before main. This package imports a light
// part of the standard library (not net: see Conn), golang.org/x/sys/unix,
// github.com/lmittmann/tint and internal/buildinfo; nothing of the engine, the tools, the
// providers or an MCP library (TestFrontLinksNothingHeavy in cmd/sandkit-mcp checks).
package door

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/buildinfo"
)

// Limits of the stdio door.
const (
	// closeWait bounds how long a door whose client closed stdin waits for the daemon to finish
	// answering (its calls are being cancelled) before exiting anyway.
	closeWait = 30 * time.Second
	// maxReplay bounds what a door keeps to replay on a new connection (see relay).
	maxReplay = 1 << 20
	// maxRedials bounds how often a door reconnects a connection the daemon never answered.
	maxRedials = 3
)

// Options are what the two binaries' doors differ in.
type Options struct {
	// Daemon returns the executable to start as the daemon (with DaemonArgs): the full
	// sandkit-mcpd. It is called only when no daemon answers, so a door works without it
	// while a daemon runs.
	Daemon func() (string, error)
	// Preflight, when set, checks the door's flags before a daemon is started; its error is the
	// door's (the full binary refuses a provider this system cannot run). Without it the
	// daemon's own refusal reaches the user through the daemon log's tail.
	Preflight func(Config) error
}

// Run is `sandkit-mcp` with no subcommand (or `stdio`), what an agent launches, with args its
// flags: it connects to the daemon of the data dir over its Unix socket (starting one if none
// runs) and relays the MCP stream byte for byte, stdin → socket and socket → stdout. Each door is
// its own MCP connection at the daemon, hence its own lease holder. Logs go to stderr, never
// stdout. A mistake in args is a UsageError; messages do not start with "sandkit-mcp:".
func Run(ctx context.Context, args []string, o Options) error {
	var rootFlags StringList
	cfg, _, err := ParseFlags("", args, func(fs *flag.FlagSet) { HostRootFlag(fs, &rootFlags) })
	if err != nil {
		return err
	}
	roots, err := ResolveHostRoots(rootFlags, "--host-root")
	if err != nil {
		return err
	}
	logger, err := NewLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	// Every connection starts with the door's hello (hostroots.go), before anything relayed. A
	// connection dropped before the hello is written (a daemon that was exiting, idle, as the
	// door connected) is made again, a few times.
	dial := func() (*Conn, error) {
		for attempt := 1; ; attempt++ {
			c, err := connectDaemon(ctx, cfg, o, logger)
			if err != nil {
				return nil, err
			}
			err = sendHello(c, roots)
			if err == nil {
				return c, nil
			}
			c.Close()
			if !isConnError(err) || attempt == maxRedials {
				return nil, fmt.Errorf("cannot talk to the sandkit-mcp daemon: %w", err)
			}
			logger.Debug("the daemon dropped the connection before the hello; connecting again", "err", err)
			time.Sleep(20 * time.Millisecond)
		}
	}
	conn, err := dial()
	if err != nil {
		return err
	}
	if info, ok := ReadInfo(cfg.DataDir); ok && info.Version != "" && info.Version != buildinfo.Version {
		logger.Warn("the running daemon is another version of sandkit-mcp; stop it (`sandkit-mcp stop`) to run this one",
			"daemon_version", info.Version, "door_version", buildinfo.Version, "data_dir", cfg.DataDir)
	}
	r := &relay{conn: conn, dial: dial, replayable: true, log: logger}
	return r.run(ctx, os.Stdin, os.Stdout, cfg.DataDir)
}

// relay copies a client's stream to the daemon and back.
//
// A connection the daemon closes before answering anything is replaced: the door connects again
// (starting a daemon if needed) and replays what the client had sent. That is safe because an MCP
// client sends nothing but initialize (and notifications) before the first answer, and it covers a
// daemon that was dying, or stopping for idleness, when the door connected. A daemon that closes
// after answering stopped or crashed mid-stream: the door exits with a message on stderr, and
// the agent starts a new door.
type relay struct {
	dial func() (*Conn, error)
	log  *slog.Logger

	mu         sync.Mutex
	conn       *Conn
	answered   bool   // the daemon has sent something on conn
	sent       []byte // what the client sent before the first answer
	replayable bool   // sent holds all of it
	inputEnded bool   // the client closed stdin
}

func (r *relay) run(ctx context.Context, in io.Reader, out io.Writer, dataDir string) error {
	go r.upload(in)
	down := make(chan error, 1)
	go func() { down <- r.download(out) }()
	select {
	case <-ctx.Done():
		r.mu.Lock()
		r.conn.Close()
		r.mu.Unlock()
		return nil
	case err := <-down:
		var lost lostError
		if errors.As(err, &lost) {
			detail := ""
			if lost.err != nil && !errors.Is(lost.err, io.EOF) {
				detail = " (" + lost.err.Error() + ")"
			}
			return fmt.Errorf("lost the connection to the sandkit-mcp daemon for data dir %s%s: it stopped or crashed (see %s). "+
				"Restart this MCP server to reconnect: a new daemon starts on demand, and attach_session takes back a live session",
				dataDir, detail, filepath.Join(dataDir, LogFile))
		}
		return err
	}
}

// upload copies stdin to the current connection; at the end of stdin it half-closes it.
func (r *relay) upload(in io.Reader) {
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			r.mu.Lock()
			if !r.answered && r.replayable {
				if len(r.sent)+n > maxReplay {
					r.replayable, r.sent = false, nil
				} else {
					r.sent = append(r.sent, buf[:n]...)
				}
			}
			// A write to a dead connection fails fast; download decides what happens next.
			_, _ = r.conn.Write(buf[:n])
			r.mu.Unlock()
		}
		if err != nil {
			r.mu.Lock()
			r.inputEnded = true
			_ = r.conn.CloseWrite()
			c := r.conn
			r.mu.Unlock()
			time.AfterFunc(closeWait, func() { c.Close() })
			return
		}
	}
}

// download copies the connection to stdout until the daemon side ends; it returns nil when that
// is the normal end (the client closed stdin first, or stdout is gone).
func (r *relay) download(out io.Writer) error {
	buf := make([]byte, 64<<10)
	redials := 0
	for {
		r.mu.Lock()
		c := r.conn
		r.mu.Unlock()
		var rerr error
		for {
			n, err := c.Read(buf)
			if n > 0 {
				r.mu.Lock()
				if !r.answered {
					r.answered, r.sent = true, nil
				}
				r.mu.Unlock()
				if _, werr := out.Write(buf[:n]); werr != nil {
					c.Close()
					return nil // stdout is gone: so is the client
				}
			}
			if err != nil {
				rerr = err
				break
			}
		}
		r.mu.Lock()
		ended, answered, replayable, pending := r.inputEnded, r.answered, r.replayable, len(r.sent)
		r.mu.Unlock()
		if ended && (answered || pending == 0) {
			return nil
		}
		if answered || !replayable || redials >= maxRedials {
			return lostError{rerr}
		}
		// Nothing was answered on this connection: connect again and replay.
		redials++
		r.log.Debug("the daemon closed the connection before answering; reconnecting", "attempt", redials)
		c.Close()
		nc, err := r.dial()
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.conn = nc
		_, werr := nc.Write(r.sent)
		if r.inputEnded {
			_ = nc.CloseWrite()
			time.AfterFunc(closeWait, func() { nc.Close() })
		}
		r.mu.Unlock()
		if werr != nil && !isConnError(werr) {
			return werr
		}
	}
}

// lostError is a daemon connection that ended mid-stream.
type lostError struct{ err error }

func (e lostError) Error() string { return fmt.Sprintf("lost the connection to the daemon: %v", e.err) }

// isConnError reports whether err came from a daemon connection.
func isConnError(err error) bool {
	var pe *os.PathError // what a Conn's Read and Write return
	return errors.As(err, &pe) || errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
