package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestParsePreviewBase(t *testing.T) {
	for _, tc := range []struct {
		base, token, url string
	}{
		{"http://*.localhost:4321", "abc", "http://abc.localhost:4321/"},
		{"https://*.preview.example.com", "abc", "https://abc.preview.example.com/"},
		{"https://*.Preview.Example.com/", "abc", "https://abc.preview.example.com/"},
		{"https://p-*.example.com", "abc", "https://p-abc.example.com/"},
		{"https://example.com/sandkit/", "abc", "https://example.com/sandkit/p/abc/"},
		{"https://example.com", "abc", "https://example.com/p/abc/"},
		{"http://10.0.0.5:8080", "abc", "http://10.0.0.5:8080/p/abc/"},
	} {
		s, err := parsePreviewBase(tc.base)
		if err != nil {
			t.Fatalf("%s: %v", tc.base, err)
		}
		if got := s.url(tc.token); got != tc.url {
			t.Errorf("%s: url %s, want %s", tc.base, got, tc.url)
		}
	}
	for _, bad := range []string{"ftp://*.x.com", "*.example.com", "https://*.*.example.com", "https://*.example.com/app",
		"https://example.com/*", "https://ex*", "https://example.com/?a=1", "https://u:p@example.com"} {
		if _, err := parsePreviewBase(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestPreviewSiteMatch(t *testing.T) {
	host, _ := parsePreviewBase("http://*.localhost:4321")
	path, _ := parsePreviewBase("https://example.com/sandkit")
	for _, tc := range []struct {
		site         previewSite
		host, path   string
		token, strip string
		ok           bool
	}{
		{host, "abc123.localhost:4321", "/", "abc123", "", true},
		{host, "ABC123.LOCALHOST:4321", "/x", "abc123", "", true},
		{host, "abc123.localhost", "/", "abc123", "", true},
		{host, "localhost:4321", "/", "", "", false},
		{host, "127.0.0.1:4321", "/", "", "", false},
		{host, "a.b.localhost:4321", "/", "", "", false},
		{host, "evil.example.com", "/", "", "", false},
		{path, "example.com", "/sandkit/p/tok/index.html", "tok", "/sandkit/p/tok", true},
		{path, "example.com", "/sandkit/p/tok", "tok", "/sandkit/p/tok", true},
		{path, "example.com", "/sandkit/p/", "", "", false},
		{path, "example.com", "/mcp", "", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		token, strip, ok := tc.site.match(r)
		if ok != tc.ok || ok && (token != tc.token || strip != tc.strip) {
			t.Errorf("%s%s: %q %q %v, want %q %q %v", tc.host, tc.path, token, strip, ok, tc.token, tc.strip, tc.ok)
		}
	}
}

// fakePreviews resolves tokens to local TCP addresses, like the engine resolves them to ports
// inside sessions.
type fakePreviews map[string]string

func (f fakePreviews) Preview(token string) (engine.PreviewTarget, func(context.Context) (net.Conn, error), error) {
	addr, ok := f[token]
	if !ok {
		return engine.PreviewTarget{}, nil, fmt.Errorf("%w: unknown preview", engine.ErrNotFound)
	}
	return engine.PreviewTarget{SessionID: "ses_test", Port: 8000}, func(ctx context.Context) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: port 8000: %v", sandbox.ErrRefused, err)
		}
		return c, nil
	}, nil
}

// app is an HTTP server standing for the app in the session: it echoes what it received, and
// turns "Upgrade: websocket" requests into a byte echo.
func app(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(rw, buf); err == nil {
				conn.Write(buf)
			}
			return
		}
		fmt.Fprintf(w, "path=%s host=%s prefix=%s proto=%s", r.URL.Path, r.Host, r.Header.Get("X-Forwarded-Prefix"), r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String()
}

func TestPreviewProxy(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	res := fakePreviews{"live": app(t), "down": deadAddr}
	log := slog.New(slog.DiscardHandler)

	hostSite, _ := parsePreviewBase("http://*.localhost:4321")
	hp := newPreviewProxy(hostSite, false, res, log)
	if code, body := get(t, hp, "http://live.localhost:4321/a/b?x=1"); code != 200 || body != "path=/a/b host=live.localhost:4321 prefix= proto=http" {
		t.Fatalf("host mode: %d %q", code, body)
	}
	if code, body := get(t, hp, "http://gone.localhost:4321/"); code != 404 || !strings.Contains(body, "session_url again") {
		t.Fatalf("unknown token: %d %q", code, body)
	}
	if code, body := get(t, hp, "http://down.localhost:4321/"); code != 502 || !strings.Contains(body, "nothing listens on port 8000 in session ses_test") {
		t.Fatalf("nothing listening: %d %q", code, body)
	}
	if code, body := get(t, hp, "http://localhost:4321/"); code != 404 || !strings.Contains(body, "preview URLs look like http://TOKEN.localhost:4321/") {
		t.Fatalf("bare host: %d %q", code, body)
	}

	pathSite, _ := parsePreviewBase("https://example.com/sk")
	pp := newPreviewProxy(pathSite, true, res, log)
	if code, body := get(t, pp, "http://example.com/sk/p/live/app/page"); code != 200 || body != "path=/app/page host=example.com prefix=/sk/p/live proto=https" {
		t.Fatalf("path mode: %d %q", code, body)
	}
	rec := httptest.NewRecorder()
	pp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://example.com/sk/p/live?q=1", nil))
	if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != "/sk/p/live/?q=1" {
		t.Fatalf("bare prefix: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if !pp.matches(httptest.NewRequest(http.MethodGet, "http://example.com/sk/p/BAD!/", nil)) {
		t.Fatal("a malformed token under the prefix must be answered by the preview proxy")
	}

	// WebSocket upgrades pass through.
	srv := httptest.NewServer(hp)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: live.localhost:4321\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("websocket echo: %q %v", buf, err)
	}
}
