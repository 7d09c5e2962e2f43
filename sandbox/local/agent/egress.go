package agent

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The egress forwarder. The sandbox has only loopback; its HTTP(S) proxy is 127.0.0.1:3128
// (EgressPort), where the agent listens. The proxy itself runs in the provider on the host, and
// the agent hands every accepted connection over to it as a file descriptor: the provider keeps
// one OpEgress connection open (the subscription), and for each accepted TCP connection the
// agent sends one byte on it with the connection's descriptor attached (SCM_RIGHTS). The
// provider then reads and writes the sandbox's TCP socket itself — nothing is relayed inside the
// sandbox, and the agent never needs a Unix socket of its own (seccomp denies socket(AF_UNIX);
// sendmsg on the connection the provider opened is allowed).
//
// A newer subscription replaces an older one (a provider that restarted). While nobody is
// subscribed, a connection waits up to subscriberWait for a provider and is then answered with
// a readable 503 instead of hanging.

// EgressPort is the port of the in-sandbox proxy address 127.0.0.1:EgressPort.
const EgressPort = 3128

// EgressMark is the data byte each passed descriptor rides on.
const EgressMark = 'C'

// subscriberWait is how long an accepted connection waits for a provider to subscribe (a
// variable for tests).
var subscriberWait = 10 * time.Second

// sendTimeout bounds the hand-over of one descriptor (the provider reads them at once).
const sendTimeout = 10 * time.Second

type egress struct {
	mu      sync.Mutex
	sub     *net.UnixConn
	changed chan struct{} // closed and replaced when sub changes
}

func newEgress() *egress { return &egress{changed: make(chan struct{})} }

// listen opens the forwarder's listening socket on 127.0.0.1:port and serves it.
func (e *egress) listen(port int) error {
	_, err := e.listenAddr(port)
	return err
}

func (e *egress) listenAddr(port int) (*net.TCPAddr, error) {
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.AcceptTCP()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ECONNABORTED) {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				logf("egress forwarder: accept: %v; the sandbox has no egress any more", err)
				return
			}
			go e.forward(c)
		}
	}()
	return l.Addr().(*net.TCPAddr), nil
}

// current returns the subscriber (nil when none) and a channel closed when it changes.
func (e *egress) current() (*net.UnixConn, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sub, e.changed
}

// set makes c the subscriber (nil: none), replacing and closing an older one.
func (e *egress) set(c *net.UnixConn) {
	e.mu.Lock()
	old := e.sub
	e.sub = c
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	if old != nil && old != c {
		old.Close()
	}
}

// drop removes c if it is still the subscriber.
func (e *egress) drop(c *net.UnixConn) {
	e.mu.Lock()
	if e.sub == c {
		e.sub = nil
		close(e.changed)
		e.changed = make(chan struct{})
	}
	e.mu.Unlock()
	c.Close()
}

// forward hands one accepted connection to the provider.
func (e *egress) forward(c *net.TCPConn) {
	defer c.Close()
	timeout := time.NewTimer(subscriberWait)
	defer timeout.Stop()
	for {
		sub, changed := e.current()
		if sub != nil {
			err := sendConn(sub, c)
			if err == nil {
				return
			}
			logf("egress forwarder: hand-over to the provider failed: %v", err)
			e.drop(sub)
			continue
		}
		select {
		case <-changed:
		case <-timeout.C:
			refuseUnavailable(c)
			return
		}
	}
}

// sendConn sends c's descriptor over sub.
func sendConn(sub *net.UnixConn, c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		_ = sub.SetWriteDeadline(time.Now().Add(sendTimeout))
		_, _, serr = sub.WriteMsgUnix([]byte{EgressMark}, unix.UnixRights(int(fd)), nil)
	})
	if err != nil {
		return err
	}
	return serr
}

// refuseUnavailable answers a client when no provider took its connection: it reads the
// request head (so closing does not reset the connection before the answer is read) and
// answers 503.
func refuseUnavailable(c *net.TCPConn) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReaderSize(c, 4096)
	var head bytes.Buffer
	for head.Len() < 64<<10 {
		line, err := r.ReadString('\n')
		head.WriteString(line)
		if err != nil || strings.TrimRight(line, "\r\n") == "" {
			break
		}
	}
	body := "sandkit egress proxy: the sandkit server is not connected to this sandbox right now (it may be restarting); nothing was sent. Try again in a moment.\n"
	_, _ = c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	_ = c.CloseWrite()
}

// subscribe answers OpEgress: ac becomes the subscriber until the provider hangs up.
func (a *agent) subscribe(ac *conn) {
	if a.egress == nil {
		ac.result(Result{Err: &WireError{Kind: KindIO, Message: "this sandbox has no egress forwarder (it could not listen on 127.0.0.1:3128)"}})
		return
	}
	ac.result(Result{})
	a.egress.set(ac.c)
	// The provider sends nothing more; a read returns when it hangs up (or the connection was
	// replaced and closed).
	var b [1]byte
	_, _ = ac.r.Read(b[:])
	a.egress.drop(ac.c)
}
