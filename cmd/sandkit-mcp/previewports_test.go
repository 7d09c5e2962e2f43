package main

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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

// TestPreviewPorts: a preview gets a loopback port of its own serving the app at its root; a
// connection whose owner is another uid (or unknown) is closed without an answer; the port
// closes with the preview and stays known as a preview port.
func TestPreviewPorts(t *testing.T) {
	res := fakePreviews{"live": app(t)}
	pp := newPreviewPorts(netip.MustParseAddr("127.0.0.1"), res, slog.New(slog.DiscardHandler))
	defer pp.closeAll()
	url, err := pp.Open("live")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := netip.ParseAddrPort(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
	if !u.Addr().IsLoopback() || u.Port() == 0 || url != "http://"+u.String()+"/" {
		t.Fatalf("preview URL %s", url)
	}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := cl.Get(url + "a/b")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "path=/a/b host="+u.String()+" prefix= proto=http" {
		t.Fatalf("GET %sa/b: %d %q", url, resp.StatusCode, b)
	}

	for name, owner := range map[string]func(netip.AddrPort, netip.AddrPort) (uint32, error){
		"another uid": func(netip.AddrPort, netip.AddrPort) (uint32, error) { return pp.uid + 1, nil },
		"unknown":     func(netip.AddrPort, netip.AddrPort) (uint32, error) { return 0, errors.New("not found") },
	} {
		pp.mu.Lock()
		pp.owner = owner
		pp.mu.Unlock()
		if resp, err := cl.Get(url); err == nil {
			resp.Body.Close()
			t.Fatalf("%s: served %d", name, resp.StatusCode)
		}
	}
	pp.mu.Lock()
	pp.owner = socketOwner
	pp.mu.Unlock()

	if !pp.isPreviewPort(int(u.Port())) || pp.isPreviewPort(int(u.Port())+1) {
		t.Fatal("isPreviewPort does not know the preview's port")
	}
	pp.Close("live")
	if _, err := cl.Get(url); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET after Close: %v, want connection refused", err)
	}
	if !pp.isPreviewPort(int(u.Port())) {
		t.Fatal("a closed preview's port must stay a preview port (a page it served may still be open)")
	}
	pp.closeAll()
	if _, err := pp.Open("live"); err == nil {
		t.Fatal("Open after closeAll succeeded")
	}
}

// TestOriginRefusesPreviewPorts: loopback origins are trusted, except those with a preview's port.
func TestOriginRefusesPreviewPorts(t *testing.T) {
	h := &httpDoor{origins: map[string]bool{"https://app.example.com": true}, previewPrt: func(p int) bool { return p == 40001 }}
	for origin, want := range map[string]bool{
		"http://127.0.0.1:40001":  false,
		"http://localhost:40001":  false,
		"http://[::1]:40001":      false,
		"http://127.0.0.1:40002":  true,
		"http://127.0.0.1":        true,
		"https://app.example.com": true,
		"http://abc.localhost:80": false,
	} {
		if got := h.originAllowed(origin); got != want {
			t.Errorf("originAllowed(%s) = %v, want %v", origin, got, want)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1/mcp", strings.NewReader(`{}`))
	req.Header.Set("Origin", "http://127.0.0.1:40001")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("POST /mcp from a preview's origin: %d", rec.Code)
	}
}

// TestPreviewOrigins: the kernel's ephemeral ports (where every daemon's previews get theirs) and
// this daemon's own preview ports are preview ports; the ports dev tools use are not.
func TestPreviewOrigins(t *testing.T) {
	lo, hi := ephemeralPorts()
	if lo < 1 || hi > 65535 || lo > hi {
		t.Fatalf("ephemeral ports %d-%d", lo, hi)
	}
	pp := newPreviewPorts(netip.MustParseAddr("127.0.0.1"), fakePreviews{}, slog.New(slog.DiscardHandler))
	defer pp.closeAll()
	url, err := pp.Open("x")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := netip.ParseAddrPort(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
	for name, f := range map[string]func(int) bool{"own": previewOrigins(pp), "another daemon's": previewOrigins(nil)} {
		for p, want := range map[int]bool{lo: true, hi: true, int(port.Port()): true, 5173: lo <= 5173, 6274: lo <= 6274} {
			if got := f(p); got != want {
				t.Errorf("%s: port %d: %v, want %v", name, p, got, want)
			}
		}
	}
	pp.Close("x")
	if !previewOrigins(pp)(int(port.Port())) {
		t.Error("a closed preview's port must stay a preview port")
	}
}
