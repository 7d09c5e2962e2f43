package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the cases are written for a little-endian machine")
	}
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:0000":                         "0.0.0.0:0",
		"00000000000000000000000001000000:0050": "[::1]:80",
		"0000000000000000FFFF00000100007F:1F90": "127.0.0.1:8080", // v4-mapped
		"B80D0120000000000000000001000000:01BB": "[2001:db8::1]:443",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007:1F90", "0100007F:XYZ", "0100007F:1F900"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSocketOwner connects on loopback and asks who owns the peer's socket: this process's uid,
// over IPv4 and (where there is one) IPv6.
func TestSocketOwner(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if strings.HasPrefix(addr, "[") {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		peer, ours := s.RemoteAddr().(*net.TCPAddr).AddrPort(), s.LocalAddr().(*net.TCPAddr).AddrPort()
		uid, err := socketOwner(peer, ours)
		if err != nil || uid != uint32(os.Getuid()) {
			t.Fatalf("%s: owner of %s → %s: %d %v, want %d", addr, peer, ours, uid, err, os.Getuid())
		}
		// Our own side, seen the other way round, is ours too; an address nobody has is not found.
		if _, err := socketOwner(ours, netip.MustParseAddrPort("127.0.0.1:1")); err == nil {
			t.Fatalf("%s: a socket that does not exist was found", addr)
		}
	}
}
