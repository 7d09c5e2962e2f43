package main

import (
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

func TestHTTPListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"8765": "127.0.0.1:8765", "127.0.0.1:0": "127.0.0.1:0", ":8765": ":8765",
		"0.0.0.0:1": "0.0.0.0:1", "[::1]:9": "[::1]:9", "localhost:9": "localhost:9",
	} {
		got, err := httpListenAddr(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"localhost", "http://x:1", "99999x"} {
		if _, err := httpListenAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.9.9.9:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false,
	} {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v", addr, got)
		}
	}
}

func TestServeFlagsValidate(t *testing.T) {
	for _, tc := range []struct {
		f    serveFlags
		want string // "" = valid
	}{
		{serveFlags{http: "127.0.0.1:0", idleTTL: defaultIdleTTL}, ""},
		{serveFlags{http: "0.0.0.0:0", idleTTL: defaultIdleTTL}, "bearer token"},
		{serveFlags{http: "0.0.0.0:0", token: "x", idleTTL: defaultIdleTTL}, ""},
		{serveFlags{publicURL: "https://*.p.example.com", idleTTL: defaultIdleTTL}, "needs --http"},
		{serveFlags{http: "8080", publicURL: "https://*.p.example.com/x", idleTTL: defaultIdleTTL}, "no path"},
		{serveFlags{http: "8080", idleTTL: 0}, "--idle-ttl"},
		{serveFlags{http: "8080", idleTTL: defaultIdleTTL, idleExit: -1}, "--idle-exit"},
		{serveFlags{origins: door.StringList{"https://a"}, idleTTL: defaultIdleTTL}, "--http"},
		{serveFlags{http: "8080", origins: door.StringList{"app.example.com"}, idleTTL: defaultIdleTTL}, "--allowed-origin"},
		{serveFlags{http: "8080", origins: door.StringList{"https://app.example.com/path"}, idleTTL: defaultIdleTTL}, "--allowed-origin"},
		{serveFlags{previewAddr: "127.0.0.1", idleTTL: defaultIdleTTL}, ""},
		{serveFlags{previewAddr: "127.0.0.1:0", idleTTL: defaultIdleTTL}, ""},
		{serveFlags{previewAddr: "[::1]:0", idleTTL: defaultIdleTTL}, ""},
		{serveFlags{previewAddr: "127.0.0.1:4321", idleTTL: defaultIdleTTL}, "a free port of its own"},
		{serveFlags{previewAddr: "0.0.0.0", idleTTL: defaultIdleTTL}, "loopback IP"},
		{serveFlags{previewAddr: "localhost:0", idleTTL: defaultIdleTTL}, "loopback IP"},
	} {
		t.Setenv("SANDKIT_TOKEN", "")
		err := tc.f.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.f, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error about %q", tc.f, err, tc.want)
		}
	}
}
