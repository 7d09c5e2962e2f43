//go:build linux

package local

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// The host side of egress: one HTTP proxy per provider, serving the connections every sandbox's
// forwarder hands over (egress.go), each tagged with the sandbox it came from.
//
//	sandbox: client ──► 127.0.0.1:3128 (agent) ══ fd over the control socket ══► provider:
//	  front server ── CONNECT, policy allows, no headers ──► dial checked IP, splice bytes (no MITM)
//	               ── CONNECT, rule injects headers ──► 200, TLS with a leaf of our CA ──► inner server
//	                  (a stream that does not start with a TLS ClientHello is closed)
//	               ── absolute-URI request (http://…) ──► policy, headers ──► upstream
//	                  (http:// to a host whose rule injects headers: 403, use https://)
//	  inner server ── each request: set the rule's headers ──► upstream over TLS (verified), keep-alive
//
// Every destination is resolved by the proxy and checked by addrGuard; the proxy dials the
// address it checked. Refusals are answered with 403 and a plain-text reason.
//
// Injected headers carry credentials, so they are only ever sent inside TLS: on a request the
// proxy forwards over a verified TLS connection (forward refuses any other), and only after the
// sandbox's own side of a brokered tunnel is TLS too. Hosts whose rule injects nothing may be
// reached over plain HTTP when the policy allows them.

// egressProxy is the provider's proxy.
type egressProxy struct {
	log   *slog.Logger
	guard *addrGuard
	ca    *egressCA
	roots *x509.CertPool

	front, inner   *http.Server
	frontL, innerL *connListener
	bufs           sync.Pool
}

func newEgressProxy(o EgressOptions, ca *egressCA, logger *slog.Logger) *egressProxy {
	if o.Logger != nil {
		logger = o.Logger
	}
	x := &egressProxy{
		log:    logger,
		guard:  newAddrGuard(o),
		ca:     ca,
		roots:  o.UpstreamRoots,
		frontL: newConnListener(),
		innerL: newConnListener(),
	}
	x.bufs.New = func() any { b := make([]byte, 64<<10); return &b }
	quiet := log.New(io.Discard, "", 0)
	x.front = &http.Server{
		Handler:           http.HandlerFunc(x.serveFront),
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          quiet,
		ConnContext:       withConn,
	}
	x.inner = &http.Server{
		Handler:           http.HandlerFunc(x.serveInner),
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          quiet,
		ConnContext:       withConn,
		// HTTP/1.1 only: the leaf offers no h2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() { _ = x.front.Serve(x.frontL) }()
	go func() { _ = x.inner.Serve(x.innerL) }()
	return x
}

func (x *egressProxy) close() {
	_ = x.front.Close()
	_ = x.inner.Close()
}

type connKey struct{}

// withConn stores the connection in its requests' context (the inner server's are TLS
// connections around a *sbConn).
func withConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return context.WithValue(ctx, connKey{}, c)
}

// connListener is a net.Listener fed by the proxy.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to the server; false when the listener is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3128} }

// sbConn is a connection from a sandbox's forwarder. After a brokered CONNECT it is the tunnel
// to one target (host, port) with the rule decided for it at CONNECT time.
type sbConn struct {
	net.Conn
	tcp *net.TCPConn // the sandbox's socket (for splicing)
	r   io.Reader    // where reads come from (bytes buffered during the CONNECT first)
	e   *sbEgress

	host string
	port int
	rule policies.HostRule
	tls  bool

	closeOnce sync.Once
}

func (c *sbConn) Read(p []byte) (int, error) {
	if c.r != nil {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *sbConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.e.untrack(c)
	})
	return err
}

// egressTarget is where one request goes; it rides in the request's context.
type egressTarget struct {
	scheme, host string
	port         int
	headers      map[string]string
}

type targetKey struct{}

// serveFront handles what a sandbox sends to its proxy address.
func (x *egressProxy) serveFront(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(*sbConn)
	if c == nil {
		http.Error(w, "no sandbox", http.StatusInternalServerError)
		return
	}
	switch {
	case r.Method == http.MethodConnect:
		c.e.connect(w, r, c)
	case r.URL.IsAbs() && (r.URL.Scheme == "http" || r.URL.Scheme == "https"):
		defPort := 80
		if r.URL.Scheme == "https" {
			defPort = 443
		}
		host, port, err := splitHostPort(r.URL.Host, defPort)
		if err != nil || host == "" {
			plainError(w, http.StatusBadRequest, fmt.Sprintf("sandkit egress proxy: bad host %q in %s\n", r.URL.Host, r.URL.Redacted()))
			return
		}
		pol := c.e.policy()
		rule, ok := pol.match(host)
		if !ok {
			c.e.refusePolicy(w, r, host, port, pol)
			return
		}
		if r.URL.Scheme == "http" && len(rule.Headers) > 0 {
			c.e.refuseCleartext(w, r, host, port, pol, rule)
			return
		}
		c.e.logAllowed("forward", r.Method, host, port, pol, rule)
		c.e.forward(w, r, &egressTarget{scheme: r.URL.Scheme, host: host, port: port, headers: rule.Headers})
	default:
		plainError(w, http.StatusBadRequest, "sandkit egress proxy: this is the sandbox's HTTP proxy; send it proxy requests (an absolute http:// URL) or CONNECT host:port, e.g. with http_proxy/https_proxy set to http://127.0.0.1:3128\n")
	}
}

// serveInner handles the requests inside a brokered tunnel.
func (x *egressProxy) serveInner(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(*sbConn)
	if c == nil || c.host == "" {
		http.Error(w, "no tunnel", http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodConnect {
		plainError(w, http.StatusMethodNotAllowed, "sandkit egress proxy: CONNECT inside a tunnel\n")
		return
	}
	authority := r.Host
	if r.URL.IsAbs() {
		authority = r.URL.Host
	}
	if h, _, err := splitHostPort(authority, c.port); err != nil || h != c.host {
		plainError(w, http.StatusMisdirectedRequest, fmt.Sprintf("sandkit egress proxy: this connection was opened (CONNECT) to %s; a request for %q does not belong on it\n", c.host, authority))
		return
	}
	scheme := "http"
	if c.tls {
		scheme = "https"
	}
	c.e.forward(w, r, &egressTarget{scheme: scheme, host: c.host, port: c.port, headers: c.rule.Headers})
}

// connect answers CONNECT host:port.
func (e *sbEgress) connect(w http.ResponseWriter, r *http.Request, c *sbConn) {
	host, port, err := splitHostPort(r.Host, 443)
	if err != nil || host == "" {
		plainError(w, http.StatusBadRequest, fmt.Sprintf("sandkit egress proxy: CONNECT needs host:port, got %q\n", r.Host))
		return
	}
	pol := e.policy()
	rule, ok := pol.match(host)
	if !ok {
		e.refusePolicy(w, r, host, port, pol)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if len(rule.Headers) > 0 {
		// Brokered: terminate TLS here. Check the destination now, so a refusal is the answer
		// to the CONNECT; each request dials (and checks) again.
		if _, err := e.x.guard.resolveChecked(ctx, host, port); err != nil {
			e.refuseDial(w, r, host, port, pol, err)
			return
		}
		e.logAllowed("broker", r.Method, host, port, pol, rule)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			conn.Close()
			return
		}
		e.broker(c, brw.Reader, host, port, pol, rule)
		return
	}
	up, err := e.x.guard.dialChecked(ctx, host, port)
	if err != nil {
		e.refuseDial(w, r, host, port, pol, err)
		return
	}
	e.logAllowed("tunnel", r.Method, host, port, pol, rule)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !e.track(up) {
		up.Close()
		conn.Close()
		return
	}
	defer e.untrack(up)
	e.tunnel(c, brw.Reader, up.(*net.TCPConn))
}

// tunnel answers the CONNECT and copies bytes both ways until both directions are done,
// passing half-closes on. The copies run between the two TCP sockets, so Linux splices them.
func (e *sbEgress) tunnel(c *sbConn, buffered *bufio.Reader, up *net.TCPConn) {
	defer c.Close()
	defer up.Close()
	if _, err := c.tcp.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	if n := buffered.Buffered(); n > 0 {
		b, _ := buffered.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.Copy(up, c.tcp); err != nil {
			c.tcp.Close()
			up.Close()
			return
		}
		_ = up.CloseWrite()
	}()
	if _, err := io.Copy(c.tcp, up); err != nil {
		c.tcp.Close()
		up.Close()
	} else {
		_ = c.tcp.CloseWrite()
	}
	<-done
}

// broker turns the hijacked connection into a tunnel to host:port served by the inner server,
// TLS terminated with a leaf for host. The rule's headers carry a credential, which never goes
// out in cleartext: a stream that does not start with a TLS handshake record is closed (the
// client has its 200 already, so there is no HTTP answer left to give) and the reason logged.
func (e *sbEgress) broker(c *sbConn, buffered *bufio.Reader, host string, port int, pol *egressPolicy, rule policies.HostRule) {
	t := &sbConn{Conn: c.Conn, tcp: c.tcp, r: buffered, e: e, host: host, port: port, rule: rule}
	// The new wrapper takes over the tracking of the socket.
	if !e.track(t) {
		c.Close()
		return
	}
	e.untrack(c)
	_ = c.tcp.SetReadDeadline(time.Now().Add(time.Minute))
	first, err := buffered.Peek(1)
	_ = c.tcp.SetReadDeadline(time.Time{})
	if err != nil {
		t.Close()
		return
	}
	if first[0] != 0x16 { // not a TLS handshake record
		e.logDecision(slog.LevelInfo, "deny", http.MethodConnect, host, port, pol,
			fmt.Sprintf("the tunnel to %s (its rule adds a credential header, service %q) did not start with a TLS ClientHello; credentials are sent only inside TLS, so the connection was closed: use https://", host, rule.Service))
		t.Close()
		return
	}
	leaf, err := e.x.ca.leaf(host)
	if err != nil {
		e.x.log.Error("local: egress: cannot make a certificate", "host", host, "err", err)
		t.Close()
		return
	}
	t.tls = true
	conn := tls.Server(t, &tls.Config{
		Certificates: []tls.Certificate{*leaf},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	})
	if !e.x.innerL.push(conn) {
		t.Close()
	}
}

// forward sends one request upstream with the target's headers set (replacing any the sandbox
// sent) and streams the answer back. Headers are set only on requests that go upstream over
// TLS; a target with headers and another scheme is refused (the callers refuse it first, with
// the policy at hand; this is the last line).
func (e *sbEgress) forward(w http.ResponseWriter, r *http.Request, t *egressTarget) {
	if len(t.headers) > 0 && t.scheme != "https" {
		e.refuseCleartext(w, r, t.host, t.port, e.policy(), policies.HostRule{Headers: t.headers})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), targetKey{}, t))
	e.rp.ServeHTTP(w, r)
}

func (e *sbEgress) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*egressTarget)
	pr.Out.URL.Scheme = t.scheme
	pr.Out.URL.Host = net.JoinHostPort(t.host, strconv.Itoa(t.port))
	if t.scheme == "http" && t.port == 80 || t.scheme == "https" && t.port == 443 {
		pr.Out.URL.Host = urlHost(t.host)
	}
	pr.Out.Host = pr.In.Host
	if pr.Out.Host == "" {
		pr.Out.Host = pr.Out.URL.Host
	}
	for name, value := range t.headers {
		pr.Out.Header.Set(name, value)
	}
}

// proxyError answers a request the upstream part failed: a refused destination is a 403 like
// a policy refusal; the rest are 502 with what went wrong.
func (e *sbEgress) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(targetKey{}).(*egressTarget)
	if t == nil {
		plainError(w, http.StatusBadGateway, "sandkit egress proxy: "+err.Error()+"\n")
		return
	}
	e.refuseDial(w, r, t.host, t.port, e.policy(), err)
}

// refusePolicy answers a request for a host the policy does not allow.
func (e *sbEgress) refusePolicy(w http.ResponseWriter, r *http.Request, host string, port int, pol *egressPolicy) {
	var why string
	switch pol.rules.Mode {
	case policies.AllowAll:
		why = host + " is not allowed" // allow-all matches everything; only a broken rule set lands here
	case policies.Allow:
		why = host + " is not in the policy's list of allowed hosts"
	default:
		why = "the policy allows no network access at all"
	}
	ws := "the workspace"
	if e.label != "" {
		ws = "workspace " + e.label
	}
	how := fmt.Sprintf("call set_policy on %s with mode \"allow\" and the domain %q (plus the domains and services it already allows), or give run_command / open_session a per-run policy that allows it.", ws, host)
	if _, err := netip.ParseAddr(host); err == nil && pol.rules.Mode == policies.Allow {
		why = host + " is an IP address, and an allow-list names hosts by domain name only"
		how = fmt.Sprintf("use the host's name and allow that domain (set_policy on %s, or a per-run policy), or use mode \"allow-all\" (local and private addresses stay refused).", ws)
	}
	e.refuse(w, r, host, port, pol, "http_request_denied", why, how, host+" is not allowed by policy "+pol.desc)
}

// refuseCleartext answers a plain-HTTP request for a host whose rule injects headers: they
// carry a credential, which the proxy sends only inside TLS.
func (e *sbEgress) refuseCleartext(w http.ResponseWriter, r *http.Request, host string, port int, pol *egressPolicy, rule policies.HostRule) {
	svc := ""
	if rule.Service != "" {
		svc = fmt.Sprintf(" (service %q)", rule.Service)
	}
	why := fmt.Sprintf("the policy adds a credential header to requests for %s%s, and the proxy sends credentials only inside TLS; this request is plain http://", host, svc)
	how := fmt.Sprintf("use https:// instead of http:// (https://%s/...); the proxy adds the header to HTTPS requests.", net.JoinHostPort(host, strconv.Itoa(port)))
	if port == 80 {
		how = fmt.Sprintf("use https:// instead of http:// (https://%s/...); the proxy adds the header to HTTPS requests.", urlHost(host))
	}
	e.refuse(w, r, host, port, pol, "http_request_denied", why, how, "plain HTTP to "+host+", which gets a credential; use https://")
}

// urlHost writes host as it goes into a URL (IPv6 literals in brackets).
func urlHost(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// refuseDial answers a request whose destination could not or may not be dialled.
func (e *sbEgress) refuseDial(w http.ResponseWriter, r *http.Request, host string, port int, pol *egressPolicy, err error) {
	var ar *addrRefusal
	switch {
	case errors.As(err, &ar):
		how := "addresses like these (loopback, private and link-local ranges, cloud metadata services, the host's own addresses) are refused whatever the policy; the operator of the sandkit server can allow specific ones in the local provider's egress settings (AllowAddrs, AllowPrefixes)."
		e.refuse(w, r, host, port, pol, "destination_ip_prohibited", ar.Error(), how, host+" resolves to a refused address")
	case errors.Is(err, errNoHost):
		e.logDecision(slog.LevelInfo, "error", r.Method, host, port, pol, "no such host")
		plainError(w, http.StatusBadGateway, fmt.Sprintf("sandkit egress proxy: %s does not resolve (no such host); nothing was sent.\n", host))
	default:
		var ce *tls.CertificateVerificationError
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = "the upstream's TLS certificate is not trusted: " + ce.Error()
		}
		e.logDecision(slog.LevelInfo, "error", r.Method, host, port, pol, msg)
		plainError(w, http.StatusBadGateway, fmt.Sprintf("sandkit egress proxy: %s %s:%d failed: %s\n", r.Method, host, port, msg))
	}
}

// refuse writes a 403 with a readable body (and a reason phrase that carries the gist, for
// clients that show only the status line of a failed CONNECT) and logs the refusal.
func (e *sbEgress) refuse(w http.ResponseWriter, r *http.Request, host string, port int, pol *egressPolicy, proxyStatus, why, how, short string) {
	e.logDecision(slog.LevelInfo, "deny", r.Method, host, port, pol, why)
	ws := e.label
	if ws == "" {
		ws = "(no label)"
	}
	body := fmt.Sprintf("sandkit egress proxy: refused %s %s:%d.\nWhy: %s.\nSandbox: workspace %s (sandbox %s), egress policy %s.\nTo allow it: %s\n",
		r.Method, host, port, why, ws, e.id, pol.desc, how)
	reason := "Forbidden (sandkit egress: " + short + ")"
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Proxy-Status", "sandkit-egress; error="+proxyStatus)
		plainError(w, http.StatusForbidden, body)
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 403 %s\r\nContent-Type: text/plain; charset=utf-8\r\nProxy-Status: sandkit-egress; error=%s\r\nX-Sandkit-Egress: refused\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		statusText(reason), proxyStatus, len(body), body)
	_ = brw.Flush()
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	// Let the client read the answer before the close (unread request bytes would reset it).
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(brw, 1<<20))
}

// statusText keeps a reason phrase to printable ASCII.
func statusText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 300 {
		b = append(b[:297], "..."...)
	}
	return string(b)
}

func plainError(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func (e *sbEgress) logAllowed(decision, method, host string, port int, pol *egressPolicy, rule policies.HostRule) {
	if !e.x.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	names := make([]string, 0, len(rule.Headers))
	for n := range rule.Headers {
		names = append(names, n)
	}
	e.x.log.Debug("local: egress", "workspace", e.label, "sandbox", e.id, "policy", pol.desc, "method", method,
		"host", host, "port", port, "decision", decision, "service", rule.Service, "injected_headers", names)
}

func (e *sbEgress) logDecision(level slog.Level, decision, method, host string, port int, pol *egressPolicy, reason string) {
	e.x.log.Log(context.Background(), level, "local: egress "+decision, "workspace", e.label, "sandbox", e.id,
		"policy", pol.desc, "method", method, "host", host, "port", port, "decision", decision, "reason", reason)
}

// bufferPool lends the reverse proxy its copy buffers.
type bufferPool struct{ p *sync.Pool }

func (b bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b bufferPool) Put(v []byte) { b.p.Put(&v) }
