package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// unixDoor serves MCP on the daemon's Unix socket: newline-delimited JSON-RPC, one MCP
// connection (and so one lease holder) per accepted socket connection.
//
// mcp-go's stdio server cannot do this: it has one process-wide session. So each connection gets
// its own connSession, registered with the MCPServer; requests are handled concurrently (a
// notifications/cancelled, handled inline on the read loop, cancels a running call); one writer
// goroutine puts responses and notifications on the wire, one line each. When the client closes
// its side, the connection's calls are cancelled, then its session is unregistered (the hooks
// tell the engine the holder is gone), then the socket is closed.
type unixDoor struct {
	srv  *server.MCPServer
	path string
	log  *slog.Logger
	seq  atomic.Uint64

	mu         sync.Mutex
	ln         net.Listener
	dir        *os.File // keeps a /proc/self/fd address valid (see door.UnixAddr)
	acceptDone chan struct{}
	conns      map[*unixConn]struct{}
	closed     bool
	wg         sync.WaitGroup
}

type unixConn struct {
	nc net.Conn
}

func newUnixDoor(srv *server.MCPServer, path string, log *slog.Logger) *unixDoor {
	return &unixDoor{srv: srv, path: path, log: log, conns: map[*unixConn]struct{}{}}
}

// listen binds the socket (mode 0600), replacing a stale socket file, and starts accepting. The
// caller owns the data dir, so a socket file there is a leftover of a daemon that died.
func (d *unixDoor) listen() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("the Unix-socket door is closed")
	}
	if d.ln != nil {
		return nil
	}
	if fi, err := os.Lstat(d.path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%s exists and is not a socket; move it away", d.path)
		}
		if err := os.Remove(d.path); err != nil {
			return fmt.Errorf("remove the stale socket %s: %w", d.path, err)
		}
	}
	addr, dir, err := door.UnixAddr(d.path)
	if err != nil {
		return fmt.Errorf("socket %s: %w", d.path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", addr)
	syscall.Umask(old)
	if err != nil {
		if dir != nil {
			dir.Close()
		}
		return fmt.Errorf("listen on %s: %w", d.path, err)
	}
	if err := os.Chmod(d.path, 0o600); err != nil {
		ln.Close()
		if dir != nil {
			dir.Close()
		}
		return err
	}
	d.ln, d.dir = ln, dir
	d.acceptDone = make(chan struct{})
	go d.accept(ln, d.acceptDone)
	return nil
}

func (d *unixDoor) accept(ln net.Listener, done chan struct{}) {
	defer close(done)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.log.Error("unix door: accept", "err", err)
			}
			return
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			nc.Close()
			return
		}
		uc := &unixConn{nc: nc}
		d.conns[uc] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go d.serveConn(uc)
	}
}

// pause stops accepting (the socket file goes away); connections already accepted keep going.
// listen starts again.
func (d *unixDoor) pause() {
	d.mu.Lock()
	ln, dir, done := d.ln, d.dir, d.acceptDone
	d.ln, d.dir = nil, nil
	d.mu.Unlock()
	if ln == nil {
		return
	}
	ln.Close()
	<-done
	if dir != nil {
		dir.Close()
	}
}

// close stops accepting, ends every connection (their calls are cancelled, their sessions
// unregistered) and waits up to wait for them.
func (d *unixDoor) close(wait time.Duration) {
	d.pause()
	d.mu.Lock()
	d.closed = true
	for uc := range d.conns {
		uc.nc.Close()
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		d.log.Warn("unix door: connections still ending at shutdown")
	}
}

// count is the number of open connections.
func (d *unixDoor) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

func (d *unixDoor) serveConn(uc *unixConn) {
	defer d.wg.Done()
	defer func() {
		uc.nc.Close()
		d.mu.Lock()
		delete(d.conns, uc)
		d.mu.Unlock()
	}()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	sess := newConnSession(fmt.Sprintf("%s%d-%s", unixSessionPrefix, d.seq.Add(1), hex.EncodeToString(rnd[:])))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = d.srv.WithContext(ctx, sess)
	if err := d.srv.RegisterSession(ctx, sess); err != nil {
		d.log.Error("unix door: register session", "session", sess.id, "err", err)
		return
	}
	log := d.log.With("conn", sess.id)
	log.Debug("unix door: connection opened")

	out := make(chan []byte, 16)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go d.writeLoop(uc.nc, sess, out, stop, writerDone, log)
	send := func(b []byte) {
		select {
		case out <- b:
		case <-writerDone:
		}
	}

	var handlers sync.WaitGroup
	br := bufio.NewReaderSize(uc.nc, 64<<10)
	first := true
	for {
		line, err := br.ReadBytes('\n')
		if first {
			// A stdio door's hello (internal/door/hostroots.go) counts only as the first line.
			first = false
			if h, ok := door.ParseHello(line); ok {
				sess.hostRoots = announcedRoots(h.HostRoots, log)
				if len(sess.hostRoots) > 0 {
					log.Info("unix door: connection with host roots", "host_roots", sess.hostRoots)
				}
				line = nil
			}
		}
		if len(bytes.TrimSpace(line)) > 0 {
			d.dispatch(ctx, line, send, &handlers)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Debug("unix door: read", "err", err)
			}
			break
		}
	}

	// The client is gone (or closed its side): cancel its calls, let them answer (the client may
	// still read), then tell the server and the engine that this connection has ended.
	cancel()
	if !waitGroupTimeout(&handlers, callDrainTimeout) {
		log.Warn("unix door: calls still running after their connection ended")
	}
	d.srv.UnregisterSession(context.Background(), sess.id)
	close(stop)
	<-writerDone
	log.Debug("unix door: connection closed")
}

// dispatch hands one message to the server: requests on their own goroutine, notifications
// inline (so notifications/cancelled is never queued behind a call).
func (d *unixDoor) dispatch(ctx context.Context, line []byte, send func([]byte), handlers *sync.WaitGroup) {
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		send(errorLine(nil, mcp.PARSE_ERROR, "Parse error: each line must be one JSON-RPC message"))
		return
	}
	if head.Method == "" {
		return // a response to a server-initiated request; this server sends none
	}
	raw := json.RawMessage(bytes.Clone(line))
	if len(head.ID) == 0 || string(head.ID) == "null" {
		if resp := d.handle(ctx, nil, raw); resp != nil {
			send(marshalLine(resp))
		}
		return
	}
	var id any
	_ = json.Unmarshal(head.ID, &id)
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		if resp := d.handle(ctx, id, raw); resp != nil {
			send(marshalLine(resp))
		}
	}()
}

func (d *unixDoor) handle(ctx context.Context, id any, raw json.RawMessage) (resp mcp.JSONRPCMessage) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("unix door: panic in message handler", "panic", r)
			resp = nil
			if id != nil {
				resp = mcp.NewJSONRPCError(mcp.NewRequestId(id), mcp.INTERNAL_ERROR, fmt.Sprintf("internal error: %v", r), nil)
			}
		}
	}()
	return d.srv.HandleMessage(ctx, raw)
}

// writeLoop is the connection's only writer: responses from out, notifications from the
// session. After a write error it keeps draining (and discarding) until stop.
func (d *unixDoor) writeLoop(w io.Writer, sess *connSession, out <-chan []byte, stop <-chan struct{}, done chan<- struct{}, log *slog.Logger) {
	defer close(done)
	broken := false
	write := func(b []byte) {
		if broken || b == nil {
			return
		}
		if _, err := w.Write(b); err != nil {
			broken = true
			log.Debug("unix door: write", "err", err)
		}
	}
	// Notifications a handler queued before its response go out before that response.
	flushNotifications := func() {
		for {
			select {
			case n := <-sess.notifications:
				write(marshalLine(n))
			default:
				return
			}
		}
	}
	for {
		select {
		case b := <-out:
			flushNotifications()
			write(b)
		case n := <-sess.notifications:
			write(marshalLine(n))
		case <-stop:
			for {
				select {
				case b := <-out:
					flushNotifications()
					write(b)
				default:
					return
				}
			}
		}
	}
}

func marshalLine(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return errorLine(nil, mcp.INTERNAL_ERROR, "could not encode the response: "+err.Error())
	}
	return append(b, '\n')
}

func errorLine(id any, code int, msg string) []byte {
	b, _ := json.Marshal(mcp.NewJSONRPCError(mcp.NewRequestId(id), code, msg, nil))
	return append(b, '\n')
}

// waitGroupTimeout waits for wg up to d; it reports whether wg finished.
func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// announcedRoots checks the roots a door announced in its hello (absolute directories); the others are
// dropped with a warning.
func announcedRoots(roots []string, log *slog.Logger) []string {
	var out []string
	for _, r := range roots {
		clean, err := door.CleanHostRoots([]string{r})
		if err != nil || len(clean) != 1 || clean[0] != r {
			log.Warn("a door announced a host root that is not an absolute directory; ignoring it", "root", r, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out
}
