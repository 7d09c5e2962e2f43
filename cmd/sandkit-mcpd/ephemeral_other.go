//go:build !linux

package main

import "golang.org/x/sys/unix"

// ephemeralPorts is the range ports bound to port 0 come from (the net.inet.ip.portrange.first
// and .last sysctls of macOS and the BSDs); IANA's dynamic range, macOS's default, when they
// cannot be read.
func ephemeralPorts() (lo, hi int) {
	a, err1 := unix.SysctlUint32("net.inet.ip.portrange.first")
	z, err2 := unix.SysctlUint32("net.inet.ip.portrange.last")
	if err1 != nil || err2 != nil || a == 0 || a > z || z > 65535 {
		return 49152, 65535
	}
	return int(a), int(z)
}
