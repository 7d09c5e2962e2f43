package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// previewPorts serves each preview (a session and one of its ports) on a loopback port of its
// own: engine.PreviewServer for the daemon without --public-url. The URL is
// http://127.0.0.1:<port>/, so the app is at the root of its origin (absolute asset paths work)
// and every HTTP client resolves it (no *.localhost name, which Node, Python, wget and Go do not
// resolve on stock Debian). A port on loopback can be reached by every user of the machine, so a
// preview serves only connections whose peer socket belongs to the daemon's own uid (socketOwner);
// others are closed at once, with a log line. The port is opened the first time session_url asks
// and closed when the session ends.
//
// The HTTP door trusts loopback origins; a preview page's origin is one. The door refuses
// loopback origins on a preview port (previewOrigins): every port in the kernel's ephemeral range,
// where the previews of every daemon on the machine, of this start or an earlier one, get their
// ports, and every port a preview of this daemon has been served on. So no page a preview served,
// even one still open after its session ended or its daemon restarted, can drive MCP.
type previewPorts struct {
	host  netip.Addr // loopback address the listeners bind
	uid   uint32     // the only uid served
	log   *slog.Logger
	proxy *previewProxy // resolves a token and relays to the session

	mu     sync.Mutex
	owner  func(local, remote netip.AddrPort) (uint32, error) // socketOwner; tests replace it
	open   map[string]*http.Server                            // token → its server
	used   map[int]bool                                       // every port a preview was served on by this daemon
	closed bool
}

func newPreviewPorts(host netip.Addr, eng previewResolver, log *slog.Logger) *previewPorts {
	return &previewPorts{
		host: host, uid: uint32(os.Getuid()), owner: socketOwner, log: log,
		proxy: newPreviewProxy(previewSite{}, false, eng, log),
		open:  map[string]*http.Server{}, used: map[int]bool{},
	}
}

// Open starts serving token on a new loopback port and returns its URL.
func (p *previewPorts) Open(token string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", errors.New("the daemon is shutting down")
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.host, 0)))
	if err != nil {
		return "", fmt.Errorf("preview listener on %s: %w", p.host, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.proxy.serveToken(w, r, token, "") }),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	p.open[token] = srv
	p.used[port] = true
	go func() {
		if err := srv.Serve(ownerOnly{ln, p}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Warn("preview listener failed", "port", port, "err", err)
		}
	}()
	p.log.Debug("preview opened", "port", port)
	return "http://" + netip.AddrPortFrom(p.host, uint16(port)).String() + "/", nil
}

// Close stops serving token: its listener and connections are closed at once.
func (p *previewPorts) Close(token string) {
	p.mu.Lock()
	srv := p.open[token]
	delete(p.open, token)
	p.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// closeAll closes every preview (the daemon is stopping); Open fails from now on.
func (p *previewPorts) closeAll() {
	p.mu.Lock()
	p.closed = true
	all := p.open
	p.open = map[string]*http.Server{}
	p.mu.Unlock()
	for _, srv := range all {
		srv.Close()
	}
}

// isPreviewPort reports whether a preview has been served on port while this daemon runs.
func (p *previewPorts) isPreviewPort(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used[port]
}

// previewOrigins reports the ports of loopback origins the HTTP door must not trust: the
// kernel's ephemeral ports (read once, at start) and, beyond them, those own has served previews
// on (own may be nil).
func previewOrigins(own *previewPorts) func(port int) bool {
	lo, hi := ephemeralPorts()
	return func(port int) bool {
		return port >= lo && port <= hi || own != nil && own.isPreviewPort(port)
	}
}

// ownerOnly accepts only connections from sockets of the daemon's uid.
type ownerOnly struct {
	*net.TCPListener
	p *previewPorts
}

func (l ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.TCPListener.AcceptTCP()
		if err != nil {
			return nil, err
		}
		peer, ours := c.RemoteAddr().(*net.TCPAddr).AddrPort(), c.LocalAddr().(*net.TCPAddr).AddrPort()
		l.p.mu.Lock()
		owner := l.p.owner
		l.p.mu.Unlock()
		uid, err := owner(peer, ours)
		if err == nil && uid == l.p.uid {
			return c, nil
		}
		if err != nil {
			l.p.log.Warn("preview: refused a connection whose owner is unknown", "peer", peer.String(), "port", ours.Port(), "err", err)
		} else {
			l.p.log.Warn("preview: refused a connection from another user", "peer", peer.String(), "port", ours.Port(), "uid", uid, "daemon_uid", l.p.uid)
		}
		_ = c.SetLinger(0) // a reset, not a polite end
		c.Close()
	}
}
