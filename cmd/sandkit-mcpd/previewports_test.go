package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
