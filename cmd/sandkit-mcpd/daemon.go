package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/door"
	"github.com/sandkit/sandkit-mcp/tools"
)

// The daemon is the one process that owns a data dir: its engine, provider and store, behind
// every door. It is started by `sandkit-mcp serve` (in the foreground) or by a stdio door that
// found none (detached, with --idle-exit).
type daemon struct {
	cfg   config
	flags serveFlags
	log   *slog.Logger

	rt    *runtime
	calls *callTracker
	conns *connCounter
	state *daemonState
	mcp   *server.MCPServer
	unix  *unixDoor

	httpDoor *httpDoor
	httpSrv  *http.Server
	httpLn   net.Listener
	previews *previewPorts // a loopback port per preview, unless --public-url

	fail chan error // a listener failed
}

// Shutdown budget.
const (
	shutdownConnsWait = 10 * time.Second
	shutdownHTTPWait  = 5 * time.Second
	// lockWait is how long a starting daemon waits for the state file: long enough for a daemon
	// that stopped accepting (idle exit) to finish shutting down.
	lockWait = 15 * time.Second
)

// runDaemon owns the data dir, opens the doors and serves until ctx ends (a signal) or the
// daemon has been idle for --idle-exit; then it shuts down in order: the MCP connections (their
// calls cancelled), the HTTP servers, and the engine, provider and store.
func runDaemon(ctx context.Context, cfg config, f serveFlags, log *slog.Logger) error {
	// A daemon that answers owns the data dir: fail at once rather than queue behind its lock.
	if door.SocketAnswers(door.SocketPath(cfg.dataDir)) {
		info, _ := door.Running(cfg.dataDir)
		return fmt.Errorf("data dir %s is already served by a sandkit-mcp daemon (%s)\n"+
			"agents reach it through `sandkit-mcp --data-dir %s` (the stdio door); stop it with `sandkit-mcp stop --data-dir %s`, "+
			"or give this server its own --data-dir", cfg.dataDir, infoSummary(info), cfg.dataDir, cfg.dataDir)
	}
	d := &daemon{cfg: cfg, flags: f, log: log, calls: newCallTracker(), conns: newConnCounter(), fail: make(chan error, 4)}

	// Where previews are served: under --public-url on the HTTP door (a URL per token), or a
	// loopback port each; the engine resolves the tokens, so the listeners learn it once it is open.
	var previews engine.PreviewServer
	resolver := &lateResolver{}
	switch {
	case f.site != nil:
		previews = engine.PreviewURLFunc(f.site.url)
	case f.previewHost.IsValid():
		d.previews = newPreviewPorts(f.previewHost, resolver, log.With("door", "preview"))
		previews = d.previews
	}
	rt, err := openRuntime(ctx, cfg, runtimeOptions{lockWait: lockWait, previews: previews}, log)
	if err != nil {
		return err
	}
	d.rt = rt
	resolver.eng = rt.engine
	d.state = &daemonState{started: time.Now(), conns: d.conns, calls: d.calls, status: rt.engine.Status}
	tpls, err := rt.engine.Templates(ctx)
	if err != nil {
		d.rt.Close()
		return err
	}
	// Roots for every connection: serve's --host-root and the config's host_roots.
	roots := append(append([]string{}, f.hostRoots...), rt.opcfg.hostRoots...)
	d.mcp = newMCPServer(rt.engine, tools.Instructions(tools.ServerFacts{DefaultPolicy: rt.opcfg.defaultPolicy, MaxPolicy: rt.opcfg.maxPolicy, Templates: tpls}), d.calls, d.conns, roots, log)
	d.unix = newUnixDoor(d.mcp, door.SocketPath(cfg.dataDir), log.With("door", "unix"))

	if err := d.listen(); err != nil {
		d.shutdown("start-up failed")
		return err
	}
	info := door.Info{
		PID: os.Getpid(), Version: version, Started: d.state.started.UTC(), DataDir: cfg.dataDir,
		Socket: door.SocketPath(cfg.dataDir), PublicURL: f.publicURL,
	}
	if st, ok := door.ProcStat(os.Getpid()); ok {
		info.StartTicks = st.StartTicks
	}
	if d.httpLn != nil {
		info.HTTP = d.httpLn.Addr().String()
	}
	if d.previews != nil {
		info.Preview = d.previews.host.String() + ", a port per preview"
	}
	if f.idleExit > 0 {
		info.IdleExit = f.idleExit.String()
	}
	if err := door.WriteInfo(cfg.dataDir, info); err != nil {
		log.Warn("could not write the daemon pidfile", "err", err)
	}
	log.Info("sandkit-mcp daemon serving", "version", version, "pid", info.PID, "data_dir", cfg.dataDir,
		"socket", info.Socket, "http", info.HTTP, "preview", info.Preview, "public_url", f.publicURL, "idle_exit", info.IdleExit)

	idle := make(chan struct{})
	if f.idleExit > 0 {
		go d.watchIdle(ctx, idle)
	}
	var reason string
	select {
	case <-ctx.Done():
		reason = "signal"
	case <-idle:
		reason = fmt.Sprintf("idle for %v", f.idleExit)
	case err = <-d.fail:
		reason = "a listener failed"
	}
	d.shutdown(reason)
	return err
}

// listen opens the HTTP door and then the Unix socket (last: a door that connects finds
// everything ready). Previews of our own open their ports when session_url asks.
func (d *daemon) listen() error {
	f := d.flags
	errLog := slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)
	var publicPreview *previewProxy
	if f.site != nil {
		publicPreview = newPreviewProxy(*f.site, true, d.rt.engine, d.log.With("door", "preview"))
	}
	if f.httpAddr != "" {
		opts := httpDoorOptions{
			token: f.token, allowedOrigins: f.origins, idleTTL: f.idleTTL, preview: publicPreview, health: d.state,
		}
		opts.previewPort = previewOrigins(d.previews)
		d.httpDoor = newHTTPDoor(d.mcp, d.calls, opts, d.log)
		ln, err := net.Listen("tcp", f.httpAddr)
		if err != nil {
			return fmt.Errorf("HTTP door on %s: %w (choose another --http address)", f.httpAddr, err)
		}
		d.httpLn = ln
		d.httpSrv = &http.Server{Handler: d.httpDoor, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
		go d.serveHTTP(d.httpSrv, ln, "HTTP door")
	}
	return d.unix.listen()
}

func (d *daemon) serveHTTP(srv *http.Server, ln net.Listener, what string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.fail <- fmt.Errorf("%s: %w", what, err)
	}
}

// watchIdle closes idle once the daemon has had nothing to do for --idle-exit: no connection, no
// call in flight, no active run, no open session. Before giving up it stops accepting and checks
// again, so a door that connected at the last moment is served (the daemon then goes on).
func (d *daemon) watchIdle(ctx context.Context, idle chan<- struct{}) {
	limit := d.flags.idleExit
	t := time.NewTicker(min(max(limit/10, 100*time.Millisecond), 30*time.Second))
	defer t.Stop()
	lastBusy := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, since := d.state.idle()
		if !ok {
			lastBusy = time.Now()
			continue
		}
		if since.Before(lastBusy) {
			since = lastBusy
		}
		if time.Since(since) < limit {
			continue
		}
		d.unix.pause()
		if ok, _ := d.state.idle(); ok && d.unix.count() == 0 {
			close(idle)
			return
		}
		if err := d.unix.listen(); err != nil {
			d.fail <- err
			return
		}
		lastBusy = time.Now()
	}
}

// shutdown stops everything, in order, each step bounded.
func (d *daemon) shutdown(reason string) {
	d.log.Info("sandkit-mcp daemon stopping", "reason", reason)
	start := time.Now()
	d.unix.close(shutdownConnsWait)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownHTTPWait)
	defer cancel()
	if d.httpDoor != nil {
		d.httpDoor.shutdown(ctx)
	}
	d.calls.cancelAll(shutdownConnsWait)
	if d.httpSrv != nil {
		if err := d.httpSrv.Shutdown(ctx); err != nil {
			d.httpSrv.Close()
		}
	}
	if d.previews != nil {
		d.previews.closeAll()
	}
	if err := d.rt.Close(); err != nil {
		d.log.Warn("closing the engine", "err", err)
	}
	door.RemoveInfo(d.cfg.dataDir)
	d.log.Info("sandkit-mcp daemon stopped", "took", time.Since(start).Round(time.Millisecond))
}

// lateResolver resolves preview tokens with the engine, which opens after the preview server
// it is given; no preview is asked for before then.
type lateResolver struct{ eng *engine.Engine }

func (r *lateResolver) Preview(token string) (engine.PreviewTarget, func(context.Context) (net.Conn, error), error) {
	if r.eng == nil {
		return engine.PreviewTarget{}, nil, fmt.Errorf("%w: the engine is not open yet", engine.ErrNotFound)
	}
	return r.eng.Preview(token)
}

// describeDaemon says who serves dataDir, for error messages.
func describeDaemon(dataDir string) string {
	if info, ok := door.Running(dataDir); ok {
		return "a sandkit-mcp daemon: " + infoSummary(info)
	}
	return "not a daemon that answers on its socket: perhaps `sandkit-mcp doctor`, or a daemon still starting or stopping"
}

// infoSummary describes a running daemon in one line.
func infoSummary(i door.Info) string {
	if i.PID == 0 {
		return "socket " + i.Socket
	}
	s := fmt.Sprintf("pid %d, version %s, since %s, socket %s", i.PID, i.Version, i.Started.Local().Format(time.DateTime), i.Socket)
	if i.HTTP != "" {
		s += ", http " + i.HTTP
	}
	return s
}
