package vercelfake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// routeListener serves one route of a running session: an HTTP reverse proxy on 127.0.0.1:0 to
// the port inside the session's backend sandbox (the real service's https://<subdomain>.vercel.run).
type routeListener struct {
	url       string
	srv       *http.Server
	transport *http.Transport
}

// openRoute starts the listener for port of ss. It takes no lock.
func openRoute(ss *session, backend sandbox.Sandbox, port int, log *slog.Logger) (*routeListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("route for port %d: %w", port, err)
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := backend.DialPort(ctx, port)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, in: &ss.ingress, out: &ss.egress}, nil
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "127.0.0.1:" + strconv.Itoa(port)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			msg := fmt.Sprintf("The sandbox is not listening on port %d.", port)
			if !errors.Is(err, sandbox.ErrRefused) {
				msg = fmt.Sprintf("The sandbox could not be reached on port %d: %v", port, err)
			}
			if errors.Is(err, sandbox.ErrEnded) {
				status = http.StatusGone
				msg = "The sandbox has stopped."
			}
			http.Error(w, msg, status)
		},
	}
	rl := &routeListener{
		url:       "http://" + ln.Addr().String(),
		srv:       &http.Server{Handler: proxy, ReadHeaderTimeout: 30 * time.Second},
		transport: transport,
	}
	go func() {
		if err := rl.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("vercelfake: route listener failed", "port", port, "err", err)
		}
	}()
	return rl, nil
}

// close stops serving the route and drops its connections into the sandbox.
func (rl *routeListener) close() {
	_ = rl.srv.Close()
	rl.transport.CloseIdleConnections()
}

// countingConn counts the bytes of a proxied connection: written = into the VM (ingress), read
// = out of it (egress).
type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.out.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.in.Add(int64(n))
	return n, err
}
