package door

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is a connection to the daemon's Unix socket. It is made with the socket calls themselves,
// not with the net package: net links runtime/cgo (for its resolver), which makes the front a
// dynamically linked program whose loader costs it about a millisecond of every start. Reads and
// writes go through the runtime's poller like a net.Conn's; Close unblocks them.
type Conn struct{ f *os.File }

// DialUnix connects to the socket at path within timeout. A refused or missing socket is an
// error wrapping ECONNREFUSED or ENOENT, as net.Dial's is.
func DialUnix(path string, timeout time.Duration) (*Conn, error) {
	addr, dir, err := UnixAddr(path)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		defer dir.Close()
	}
	syscall.ForkLock.RLock() // no exec may inherit the socket before it is close-on-exec
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("dial unix %s: %w", path, os.NewSyscallError("socket", err))
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dial unix %s: %w", path, os.NewSyscallError("setnonblock", err))
	}
	if err := connect(fd, &unix.SockaddrUnix{Name: addr}, time.Now().Add(timeout)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dial unix %s: %w", path, os.NewSyscallError("connect", err))
	}
	// A non-blocking descriptor makes a pollable File.
	return &Conn{f: os.NewFile(uintptr(fd), path)}, nil
}

// connect connects the non-blocking socket fd by deadline: a full backlog (EAGAIN) is tried
// again, a connection in progress (EINPROGRESS) waited for.
func connect(fd int, sa unix.Sockaddr, deadline time.Time) error {
	for {
		err := unix.Connect(fd, sa)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
			continue
		case errors.Is(err, unix.EINPROGRESS):
			ms := int(time.Until(deadline).Milliseconds())
			if ms <= 0 {
				return unix.ETIMEDOUT
			}
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, ms)
			if err != nil {
				return err
			}
			if n == 0 {
				return unix.ETIMEDOUT
			}
			if soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil {
				return err
			} else if soerr != 0 {
				return unix.Errno(soerr)
			}
			return nil
		}
		return err
	}
}

func (c *Conn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *Conn) Write(b []byte) (int, error) { return c.f.Write(b) }

// Close closes the connection; a Read or Write in progress returns.
func (c *Conn) Close() error { return c.f.Close() }

// CloseWrite shuts down the sending side: the daemon reads the end of the stream, and can still
// answer.
func (c *Conn) CloseWrite() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
