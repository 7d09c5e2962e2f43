//go:build linux

package local

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// Egress of one sandbox: its compiled policy, the carrier that brings its connections to the
// provider, and what the proxy holds for it (see egressproxy.go).
//
// The carrier: the provider keeps one OpEgress connection ("subscription") to the agent's
// control socket. For every TCP connection the agent accepts on 127.0.0.1:3128 inside, it
// sends one byte with the accepted socket attached (SCM_RIGHTS); the provider checks that the
// descriptor is a connected TCP socket and serves it. Nothing is relayed in the sandbox: the
// provider reads and writes the sandbox's socket directly, and a tunnel splices it to the
// upstream socket. The subscription is re-established after an agent hiccup and by a provider
// that adopted the sandbox after a restart (it reaches the agent by the same socket path).

// The sandbox side of the proxy.
const (
	proxyURL = "http://127.0.0.1:3128" // agent.EgressPort
	// sandboxCABundle is the trust bundle inside the sandbox: the host's system roots plus the
	// egress CA; sandboxCA is the egress CA alone (NODE_EXTRA_CA_CERTS adds to Node's own).
	sandboxCABundle = "/etc/ssl/sandkit/ca-bundle.pem"
	sandboxCA       = "/etc/ssl/sandkit/ca.pem"
	// maxEgressConns bounds the connections one sandbox may have through the proxy at once.
	maxEgressConns = 1024
)

// proxyEnv is what every command of every sandbox gets, whatever its policy: under deny-all
// the proxy refuses with a readable 403 instead of the client hanging or failing in DNS.
func proxyEnv() map[string]string {
	return map[string]string{
		"HTTP_PROXY":          proxyURL,
		"HTTPS_PROXY":         proxyURL,
		"http_proxy":          proxyURL,
		"https_proxy":         proxyURL,
		"NO_PROXY":            "localhost,127.0.0.1,::1,sandbox",
		"no_proxy":            "localhost,127.0.0.1,::1,sandbox",
		"SSL_CERT_FILE":       sandboxCABundle,
		"REQUESTS_CA_BUNDLE":  sandboxCABundle,
		"CURL_CA_BUNDLE":      sandboxCABundle,
		"GIT_SSL_CAINFO":      sandboxCABundle,
		"NODE_EXTRA_CA_CERTS": sandboxCA,
	}
}

// egressPolicy is a sandbox's policy as the proxy enforces it.
type egressPolicy struct {
	rules policies.Rules // holds secrets: memory only
	// desc describes the policy (redacted) for refusals and logs.
	desc string
	// stored is the policy with literal secrets redacted: what meta.json keeps.
	stored policies.Policy
	// warnings say what of the asked-for policy is not in force.
	warnings []string
}

// match finds the rule for host; deny-all (and an unset policy) matches nothing.
func (p *egressPolicy) match(host string) (policies.HostRule, bool) {
	if p.rules.Mode != policies.Allow && p.rules.Mode != policies.AllowAll {
		return policies.HostRule{}, false
	}
	return p.rules.Match(host)
}

func denyPolicy(warnings ...string) *egressPolicy {
	return &egressPolicy{rules: policies.Rules{Mode: policies.DenyAll}, desc: string(policies.DenyAll), stored: policies.Deny(), warnings: warnings}
}

// compilePolicy compiles pol with getenv. The error wraps sandbox.ErrInvalid and the policies
// error (policies.ErrCredential for a missing variable).
func compilePolicy(pol policies.Policy, getenv policies.Getenv) (*egressPolicy, error) {
	if pol.Mode == "" || pol.Mode == policies.DenyAll {
		return denyPolicy(), nil
	}
	stored := policies.Redact(pol)
	rules, err := policies.Compile(pol, getenv)
	if err != nil {
		return nil, fmt.Errorf("%w: egress policy %s cannot be applied: %w", sandbox.ErrInvalid, stored.String(), err)
	}
	return &egressPolicy{rules: rules, desc: stored.String(), stored: stored}, nil
}

// literalCredential reports whether a service carries a literal (or redacted) secret, which
// meta.json cannot keep.
func literalCredential(s policies.Service) bool {
	lit := func(c policies.Credential) bool { return c.Value != "" || c.Redacted }
	if s.Credential != nil && lit(*s.Credential) {
		return true
	}
	for _, h := range s.Headers {
		if lit(h.Credential) {
			return true
		}
	}
	return false
}

// recompileStored compiles the policy meta.json kept for a sandbox adopted after a restart.
// Literal secrets were never written down: services that held one are left out (their hosts
// are denied) and a warning says so; a policy that cannot be compiled any more leaves the
// sandbox at deny-all, with a warning.
func recompileStored(stored policies.Policy, getenv policies.Getenv) *egressPolicy {
	if stored.Mode == "" || stored.Mode == policies.DenyAll {
		return denyPolicy()
	}
	var warnings []string
	pol := stored
	if pol.Mode == policies.Allow {
		pol.Services = nil
		for _, s := range stored.Services {
			if literalCredential(s) {
				warnings = append(warnings, fmt.Sprintf("egress: service %q of policy %s used a literal credential, which is never stored; after the restart of the sandkit server its hosts are denied in this sandbox until the policy is set again (set_policy, or a new session with the per-session policy)", s.ID, stored.String()))
				continue
			}
			pol.Services = append(pol.Services, s)
		}
		if len(pol.Domains) == 0 && len(pol.Services) == 0 {
			d := denyPolicy(warnings...)
			d.stored = stored
			return d
		}
	}
	rules, err := policies.Compile(pol, getenv)
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("egress: policy %s could not be applied again after the restart of the sandkit server (%v); this sandbox is at deny-all until its policy is set again", stored.String(), err))
		d := denyPolicy(warnings...)
		d.stored = stored
		return d
	}
	return &egressPolicy{rules: rules, desc: policies.Redact(pol).String(), stored: stored, warnings: warnings}
}

// sbEgress is the proxy's state for one sandbox.
type sbEgress struct {
	x         *egressProxy
	id, label string
	pol       atomic.Pointer[egressPolicy]
	transport *http.Transport
	rp        *httputil.ReverseProxy

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	cancel context.CancelFunc
	done   chan struct{}
}

func newSbEgress(x *egressProxy, id, label string, pol *egressPolicy) *sbEgress {
	e := &sbEgress{x: x, id: id, label: label, conns: map[net.Conn]struct{}{}}
	e.pol.Store(pol)
	e.transport = &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := splitHostPort(addr, 0)
			if err != nil {
				return nil, err
			}
			return x.guard.dialChecked(ctx, host, port)
		},
		TLSClientConfig: &tls.Config{
			RootCAs:    x.roots,
			NextProtos: []string{"http/1.1"},
			MinVersion: tls.VersionTLS12,
		},
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression:    true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	e.rp = &httputil.ReverseProxy{
		Rewrite:       e.rewrite,
		Transport:     e.transport,
		FlushInterval: -1,
		ErrorHandler:  e.proxyError,
		BufferPool:    bufferPool{&x.bufs},
		ErrorLog:      x.front.ErrorLog,
	}
	return e
}

func (e *sbEgress) policy() *egressPolicy { return e.pol.Load() }

// track registers a connection to close when the sandbox ends; false when it has ended or
// too many are open.
func (e *sbEgress) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || len(e.conns) >= 2*maxEgressConns {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *sbEgress) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
}

// start runs the carrier until close.
// started reports whether start was called (and close not yet).
func (e *sbEgress) started() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cancel != nil && !e.closed
}

func (e *sbEgress) start(sock string, exited <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		cancel()
		return
	}
	e.cancel = cancel
	e.done = make(chan struct{})
	e.mu.Unlock()
	go func() {
		defer close(e.done)
		backoff := 50 * time.Millisecond
		for {
			t0 := time.Now()
			err := e.subscribe(ctx, sock)
			if ctx.Err() != nil {
				return
			}
			select {
			case <-exited:
				return
			default:
			}
			if time.Since(t0) > 10*time.Second {
				backoff = 50 * time.Millisecond
			}
			e.x.log.Debug("local: egress carrier lost; reconnecting", "sandbox", e.id, "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-exited:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}()
}

// subscribe opens the subscription and serves the descriptors that arrive on it.
func (e *sbEgress) subscribe(ctx context.Context, sock string) error {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := agent.WriteJSON(c, agent.FrameRequest, agent.Request{Op: agent.OpEgress}); err != nil {
		return err
	}
	var res agent.Result
	// The connection is unbuffered: nothing past the result is read (a descriptor riding on a
	// byte read without a control buffer would be lost).
	if err := agent.ReadJSON(c, agent.FrameResult, &res); err != nil {
		return agent.UnexpectedEOF(err)
	}
	if res.Err != nil {
		return res.Err.Err()
	}
	_ = c.SetDeadline(time.Time{})
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := c.ReadMsgUnix(b[:], oob)
		if err != nil {
			return err
		}
		if n == 0 && oobn == 0 {
			return fmt.Errorf("agent closed the egress subscription")
		}
		var fds []int
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, got...)
					}
				}
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			e.x.log.Warn("local: egress: the agent passed more descriptors than expected", "sandbox", e.id)
		}
		for i, fd := range fds {
			if i > 0 || b[0] != agent.EgressMark {
				unix.Close(fd)
				continue
			}
			e.accept(fd)
		}
	}
}

// accept checks a passed descriptor (the agent is untrusted: it must be a connected TCP
// socket) and gives it to the proxy.
func (e *sbEgress) accept(fd int) {
	tc, err := socketConn(fd)
	if err != nil {
		e.x.log.Warn("local: egress: the agent passed something that is not a TCP connection", "sandbox", e.id, "err", err)
		return
	}
	c := &sbConn{Conn: tc, tcp: tc, e: e}
	if !e.track(c) {
		const body = "sandkit egress proxy: this sandbox has too many connections open through the proxy; close some first.\n"
		_, _ = tc.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		tc.Close()
		return
	}
	if !e.x.frontL.push(c) {
		c.Close()
	}
}

// socketConn turns a passed descriptor into a *net.TCPConn if it is a connected TCP socket;
// it always takes ownership of fd.
func socketConn(fd int) (*net.TCPConn, error) {
	f := os.NewFile(uintptr(fd), "egress")
	defer f.Close()
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, err
	}
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if dom != unix.AF_INET && dom != unix.AF_INET6 || typ != unix.SOCK_STREAM || listening != 0 {
		return nil, fmt.Errorf("socket domain %d type %d listening %d", dom, typ, listening)
	}
	if _, err := unix.Getpeername(fd); err != nil {
		return nil, err
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("not a TCP connection: %T", c)
	}
	return tc, nil
}

// close stops the carrier and closes every connection of the sandbox.
func (e *sbEgress) close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	cancel, done := e.cancel, e.done
	conns := make([]net.Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	clear(e.conns)
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	for _, c := range conns {
		c.Close()
	}
	e.transport.CloseIdleConnections()
}

// egressPortFlag is the agent's command-line flag for the forwarder.
func egressPortFlag() string { return "-egress-port=" + strconv.Itoa(agent.EgressPort) }

// SetPolicy implements sandbox.Sandbox: the new policy applies to connections the sandbox
// opens from now on; open ones (tunnels, brokered keep-alive connections) keep the rule they
// were opened with. A detached sandbox records the policy (secrets redacted) for a provider
// that adopts it after a restart.
func (s *localSandbox) SetPolicy(ctx context.Context, pol policies.Policy) error {
	if err := s.checkRunning(); err != nil {
		return err
	}
	ep, err := compilePolicy(pol, s.p.getenv)
	if err != nil {
		return fmt.Errorf("set the policy of sandbox %s: %w", s.id, err)
	}
	s.endMu.Lock() // no Snapshot, Stop or Extend meanwhile
	defer s.endMu.Unlock()
	if err := s.checkRunning(); err != nil {
		return err
	}
	if s.detached {
		s.mu.Lock()
		m := s.meta
		s.mu.Unlock()
		m.Policy = &ep.stored
		if err := writeMeta(s.dir, m); err != nil {
			return fmt.Errorf("set the policy of sandbox %s: record it: %w", s.id, err)
		}
		s.mu.Lock()
		s.meta.Policy = &ep.stored
		s.mu.Unlock()
	}
	old := s.egress.pol.Swap(ep)
	s.p.egress.log.Info("local: egress policy changed", "workspace", s.label, "sandbox", s.id, "from", old.desc, "to", ep.desc)
	return nil
}
