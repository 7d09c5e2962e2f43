package main

import (
	"net"
	"time"
)

// dialUnix connects to the socket at path within timeout.
func dialUnix(path string, timeout time.Duration) (*net.UnixConn, error) {
	addr, dir, err := unixAddr(path)
	if err != nil {
		return nil, err
	}
	if dir != nil {
		defer dir.Close()
	}
	c, err := net.DialTimeout("unix", addr, timeout)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}
