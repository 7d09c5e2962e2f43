package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// dialTimeout bounds the connect to a port inside the sandbox (loopback answers at once; this
// only matters for a listener whose backlog is full).
const dialTimeout = 5 * time.Second

// port answers OpPort: it connects to 127.0.0.1:PORT (then [::1]:PORT) inside the sandbox and,
// once connected, relays bytes both ways until both sides have finished, passing half-closes on.
func (a *agent) port(ac *conn, req *Request) {
	if req.Port < 1 || req.Port > 65535 {
		ac.result(Result{Err: invalid("port %d is not a TCP port (1-65535)", req.Port)})
		return
	}
	tcp, err := dialLoopback(req.Port)
	if err != nil {
		kind := KindIO
		msg := fmt.Sprintf("connect to port %d in the sandbox: %v", req.Port, err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			kind = KindRefused
			msg = fmt.Sprintf("nothing listens on port %d in the sandbox (127.0.0.1:%d and [::1]:%d refused the connection); start a server on that port first", req.Port, req.Port, req.Port)
		}
		ac.result(Result{Err: &WireError{Kind: kind, Message: msg}})
		return
	}
	defer tcp.Close()
	ac.result(Result{})
	relay(ac, tcp)
}

func dialLoopback(port int) (*net.TCPConn, error) {
	p := strconv.Itoa(port)
	c, err := net.DialTimeout("tcp4", "127.0.0.1:"+p, dialTimeout)
	if err != nil {
		c6, err6 := net.DialTimeout("tcp6", "[::1]:"+p, dialTimeout)
		if err6 != nil {
			return nil, err
		}
		c = c6
	}
	return c.(*net.TCPConn), nil
}

// relay copies bytes between the provider's connection and the TCP connection. An EOF on one
// side becomes a half-close (shutdown of writing) on the other; an error ends both directions.
func relay(ac *conn, tcp *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// ac.r holds whatever the provider sent right after the request.
		if _, err := io.Copy(tcp, ac.r); err != nil {
			tcp.Close()
			ac.c.Close()
			return
		}
		_ = tcp.CloseWrite()
	}()
	if _, err := io.Copy(ac.c, tcp); err != nil {
		tcp.Close()
		ac.c.Close()
	} else {
		_ = ac.c.CloseWrite()
	}
	<-done
}
