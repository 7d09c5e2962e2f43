//go:build linux

package agent

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEgressHandOver: a connection accepted by the forwarder arrives at the subscriber as a
// descriptor of the very socket (bytes written to it reach the client), and without a
// subscriber the client gets a 503 instead of hanging.
func TestEgressHandOver(t *testing.T) {
	e := newEgress()
	addr, err := e.listenAddr(0)
	if err != nil {
		t.Fatal(err)
	}

	old := subscriberWait
	subscriberWait = 200 * time.Millisecond
	defer func() { subscriberWait = old }()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"))
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), "not connected") {
		t.Fatalf("without a subscriber: %q", b)
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	agentSide, hostSide := conn(fds[0]), conn(fds[1])
	defer hostSide.Close()
	e.set(agentSide)

	client, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var one [1]byte
	oob := make([]byte, unix.CmsgSpace(4))
	_ = hostSide.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := hostSide.ReadMsgUnix(one[:], oob)
	if err != nil || n != 1 || one[0] != EgressMark {
		t.Fatalf("ReadMsgUnix: %d %q %v", n, one[:n], err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v %v", msgs, err)
	}
	got, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 1 {
		t.Fatalf("rights: %v %v", got, err)
	}
	f := os.NewFile(uintptr(got[0]), "passed")
	passed, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passed.Write([]byte("hello from the host")); err != nil {
		t.Fatal(err)
	}
	passed.Close()
	b, _ = io.ReadAll(client)
	if string(b) != "hello from the host" {
		t.Fatalf("the client read %q", b)
	}
}
