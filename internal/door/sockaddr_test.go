package door_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// TestConn: a door's connection without the net package behaves as the relay needs: a missing
// or refused socket is told apart (noDaemon), bytes go both ways, CloseWrite ends the daemon's
// input while its answer still arrives, and Close unblocks a Read in progress.
func TestConn(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	if _, err := door.DialUnix(sock, time.Second); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("no socket: %v, want ENOENT", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens
	if _, err := door.DialUnix(sock, time.Second); !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "dial unix "+sock) {
		t.Errorf("nobody listening: %v, want ECONNREFUSED naming the socket", err)
	}
	os.Remove(sock)

	ln, err = net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoed := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echoed <- err.Error()
			return
		}
		defer c.Close()
		in, _ := io.ReadAll(c) // until the door's CloseWrite
		echoed <- string(in)
		_, _ = c.Write([]byte("answer:" + string(in)))
	}()
	c, err := door.DialUnix(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := <-echoed; got != "hello" {
		t.Errorf("the daemon side read %q", got)
	}
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "answer:hello" {
		t.Errorf("the door read %q, %v", out, err)
	}
	c.Close()

	// Close unblocks a Read waiting for the daemon.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	c, err = door.DialUnix(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("a Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Error("Close did not unblock a Read")
	}
}
