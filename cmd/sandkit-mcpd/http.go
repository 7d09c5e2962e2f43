package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The HTTP door: Streamable HTTP at /mcp, legacy SSE at /sse + /message, health at /healthz, and
// with --public-url the preview URLs. In front of the MCP endpoints:
//
//   - Origin: a request carrying an Origin header must come from a loopback origin
//     (http://localhost:3000, http://127.0.0.1, http://[::1]:8080 — not *.localhost, and not one
//     on a port a preview may have: the kernel's ephemeral ports, where preview apps live) or one
//     given with --allowed-origin; otherwise 403. Browsers send Origin on cross-site requests, so a web page
//     cannot drive this server.
//   - Bearer token: when one is set, every request (health included, previews excepted) needs
//     Authorization: Bearer <token>; otherwise 401 with WWW-Authenticate.
//   - Host: without a token mcp-go's DNS-rebinding guard stays on (a request reaching a loopback
//     address must name a loopback Host); with a token it is off, since a rebinding page cannot
//     know the token, and a reverse proxy on the same host may forward a public Host.
//
// Streamable HTTP is pinned to the protocol versions that have sessions, so every connection has
// an identity (a lease holder); it is stateful (unknown session ids get 404, the client
// re-initializes), and sessions idle longer than --idle-ttl are unregistered, so a client that
// vanished without DELETE lets go of its sessions. Heartbeats on the GET stream keep a connected
// client from idling out.

// httpDoorOptions configures the HTTP door.
type httpDoorOptions struct {
	token          string
	allowedOrigins []string
	idleTTL        time.Duration
	preview        *previewProxy // previews under --public-url, or nil
	// previewPort reports whether a loopback port is, or may have been, a preview's
	// (previewOrigins; nil: none is).
	previewPort func(port int) bool
	health      http.Handler
}

type httpDoor struct {
	token      []byte
	origins    map[string]bool
	streamable *server.StreamableHTTPServer
	sse        *server.SSEServer
	preview    *previewProxy
	previewPrt func(int) bool
	health     http.Handler
	calls      *callTracker
	idleTTL    time.Duration
	log        *slog.Logger
	stop       chan struct{}
}

// newHTTPDoor builds the door; opts.allowedOrigins are valid origins (serveFlags.validate).
func newHTTPDoor(srv *server.MCPServer, calls *callTracker, opts httpDoorOptions, log *slog.Logger) *httpDoor {
	origins := map[string]bool{}
	for _, o := range opts.allowedOrigins {
		if n, ok := normalizeOrigin(o); ok {
			origins[n] = true
		}
	}
	withToken := opts.token != ""
	h := &httpDoor{
		token: []byte(opts.token), origins: origins, preview: opts.preview, previewPrt: opts.previewPort, health: opts.health,
		calls: calls, idleTTL: opts.idleTTL, log: log, stop: make(chan struct{}),
	}
	h.streamable = server.NewStreamableHTTPServer(srv,
		server.WithEndpointPath("/mcp"),
		server.WithStateful(true),
		server.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...),
		server.WithSessionIdleTTL(opts.idleTTL),
		server.WithHeartbeatInterval(heartbeatInterval(opts.idleTTL)),
		server.WithDisableLocalhostProtection(withToken),
		server.WithStreamableHTTPLogger(log.With("door", "http")),
	)
	h.sse = server.NewSSEServer(srv,
		server.WithSSEEndpoint("/sse"),
		server.WithMessageEndpoint("/message"),
		server.WithSessionIDGenerator(func(context.Context, *http.Request) (string, error) {
			var b [16]byte
			_, _ = rand.Read(b[:])
			return sseSessionPrefix + hex.EncodeToString(b[:]), nil
		}),
		server.WithKeepAlive(true),
		server.WithKeepAliveInterval(30*time.Second),
		server.WithSSEDisableLocalhostProtection(withToken),
	)
	go h.keepBusySessionsAlive()
	return h
}

// heartbeatInterval is below the idle TTL, so a client holding its GET stream never idles out.
func heartbeatInterval(ttl time.Duration) time.Duration {
	return max(min(ttl/3, 30*time.Second), 100*time.Millisecond)
}

func (h *httpDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.preview != nil && h.preview.matches(r) {
		h.preview.ServeHTTP(w, r)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !h.originAllowed(o) {
		http.Error(w, fmt.Sprintf("403 Forbidden: requests from origin %q are not accepted; this server takes requests from loopback origins "+
			"(except on the ephemeral ports, where previews of sandbox apps live) and from those its operator allows with --allowed-origin", o), http.StatusForbidden)
		return
	}
	if len(h.token) > 0 {
		if got, ok := bearer(r); !ok || subtle.ConstantTimeCompare([]byte(got), h.token) != 1 {
			challenge := `Bearer realm="sandkit-mcp"`
			msg := "401 Unauthorized: this sandkit-mcp server needs the header Authorization: Bearer <token> (the token it was started with, --token or SANDKIT_TOKEN)"
			if ok {
				challenge += `, error="invalid_token"`
				msg = "401 Unauthorized: the bearer token is not this server's"
			}
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, msg, http.StatusUnauthorized)
			return
		}
	}
	switch r.URL.Path {
	case "/mcp":
		h.streamable.ServeHTTP(w, r)
	case "/sse", "/message":
		h.sse.ServeHTTP(w, r)
	case "/healthz":
		h.health.ServeHTTP(w, r)
	default:
		http.Error(w, "404 Not Found: sandkit-mcp serves MCP at /mcp (Streamable HTTP) and /sse (legacy SSE), and its health at /healthz", http.StatusNotFound)
	}
}

// shutdown ends every MCP session of the door (their calls are cancelled through the hooks).
func (h *httpDoor) shutdown(ctx context.Context) {
	close(h.stop)
	if err := h.streamable.Shutdown(ctx); err != nil {
		h.log.Warn("http door: shutdown", "err", err)
	}
	h.sse.CloseSessions()
}

// keepBusySessionsAlive marks Streamable HTTP sessions with a call in flight as active, so the
// idle sweeper does not unregister a client that is only waiting for a long call on a POST
// (mcp-go counts only the start of a POST, and writes on the GET stream, as activity). It does so
// with an internal ping on the session.
func (h *httpDoor) keepBusySessionsAlive() {
	if h.idleTTL <= 0 {
		return
	}
	t := time.NewTicker(heartbeatInterval(h.idleTTL))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		for _, id := range h.calls.sessions() {
			if connKind(id) != kindStreamable {
				continue
			}
			req, err := http.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":"sandkit-keepalive","method":"ping"}`))
			if err != nil {
				continue
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set(server.HeaderKeySessionID, id)
			h.streamable.ServeHTTP(discardResponse{header: http.Header{}}, req)
		}
	}
}

type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d discardResponse) WriteHeader(int)             {}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (h *httpDoor) originAllowed(origin string) bool {
	n, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	if h.origins[n] {
		return true
	}
	u, _ := url.Parse(n)
	if !isLoopbackName(u.Hostname()) {
		return false
	}
	// A page a preview served has a loopback origin too, with the preview's port.
	if port, err := strconv.Atoi(u.Port()); err == nil && h.previewPrt != nil && h.previewPrt(port) {
		return false
	}
	return true
}

// normalizeOrigin reduces an origin to scheme://host[:port], lower case.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(o), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// isLoopbackName reports whether a host name is localhost itself or a loopback IP. Subdomains of
// localhost are not: any page may live under one (previews once did), and none is the operator's.
func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// httpListenAddr turns --http's value into a listen address: a bare port means 127.0.0.1:PORT;
// "host:port" is taken as it is (":PORT" listens on every interface).
func httpListenAddr(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if _, err := netip.ParseAddrPort("0.0.0.0:" + v); err == nil && !strings.Contains(v, ":") {
		return "127.0.0.1:" + v, nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", usageError{fmt.Errorf("--http %q: give HOST:PORT (e.g. 127.0.0.1:8765) or a port", v)}
	}
	return v, nil
}

// isLoopbackAddr reports whether a listen address binds loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	return isLoopbackName(host)
}
