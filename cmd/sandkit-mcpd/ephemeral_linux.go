package main

import (
	"fmt"
	"os"
)

// ephemeralPorts is the range ports bound to port 0 come from (net.ipv4.ip_local_port_range,
// which IPv6 shares); Linux's default when it cannot be read.
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	var a, z int
	if n, _ := fmt.Sscan(string(b), &a, &z); n == 2 && a > 0 && a <= z && z <= 65535 {
		return a, z
	}
	return lo, hi
}
