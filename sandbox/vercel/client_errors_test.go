package vercel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestAPIErrorBodyVariants(t *testing.T) {
	html := "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>" + strings.Repeat("upstream trouble ", 30) + "</body></html>"
	cases := []struct {
		name        string
		contentType string
		body        string
		wantCode    string
		wantMessage string
	}{
		{"error object", "application/json", `{"error":{"code":"sandbox_stopped","message":"Sandbox has stopped"}}`, "sandbox_stopped", "Sandbox has stopped"},
		{"error string", "application/json", `{"error":"gone"}`, "", "gone"},
		{"top-level message", "application/json", `{"message":"nope"}`, "", "nope"},
		{"html", "text/html", html, "", strings.TrimSpace(strings.ReplaceAll(html[:200], "\n", " "))},
		{"empty", "text/plain", "", "", ""},
		{"other json", "application/json", `[1,2]`, "", "[1,2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("GET", "/api/v2/sandboxes/snapshots/snap_1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(http.StatusGone)
				_, _ = io.WriteString(w, tc.body)
			})
			c, _ := ctClient(t, s, nil)
			_, err := c.getSnapshot(context.Background(), "snap_1")
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if ae.Op != "get snapshot" || ae.Status != 410 || ae.Code != tc.wantCode || ae.Message != tc.wantMessage {
				t.Errorf("APIError = %+v, want code %q message %q", ae, tc.wantCode, tc.wantMessage)
			}
			if len(ae.Message) > 200 || strings.ContainsAny(ae.Message, "\n\r") {
				t.Errorf("message is not a short single line: %q", ae.Message)
			}
			if !errors.Is(err, sandbox.ErrEnded) {
				t.Errorf("a 410 does not unwrap to ErrEnded")
			}
		})
	}
}

func TestAPIErrorUnwrap(t *testing.T) {
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{404, "not_found", sandbox.ErrNotFound},
		{410, "snapshot_not_found", sandbox.ErrNotFound},
		{410, "sandbox_stopped", sandbox.ErrEnded},
		{410, "", sandbox.ErrEnded},
		{422, "sandbox_stopping", sandbox.ErrEnded},
		{422, "sandbox_snapshotting", sandbox.ErrEnded},
		{422, "something_else", nil},
		{400, "bad_request", sandbox.ErrInvalid},
		{400, "sandbox_timeout_invalid", sandbox.ErrInvalid},
		{401, "", sandbox.ErrUnavailable},
		{402, "", sandbox.ErrUnavailable},
		{403, "forbidden", sandbox.ErrUnavailable},
		{429, "", sandbox.ErrUnavailable},
		{500, "", sandbox.ErrUnavailable},
		{503, "", sandbox.ErrUnavailable},
		{409, "conflict", nil},
		{0, "sandbox_stopped", sandbox.ErrEnded},
		{0, "sandbox_stream_closed", sandbox.ErrEnded},
		{0, "other", nil},
	}
	all := []error{sandbox.ErrNotFound, sandbox.ErrEnded, sandbox.ErrInvalid, sandbox.ErrUnavailable}
	for _, tc := range cases {
		e := &APIError{Op: "op", Status: tc.status, Code: tc.code}
		if got := e.Unwrap(); got != tc.want {
			t.Errorf("%d %s: Unwrap = %v, want %v", tc.status, tc.code, got, tc.want)
		}
		for _, s := range all {
			if errors.Is(e, s) != (s == tc.want) {
				t.Errorf("%d %s: errors.Is(%v) = %v", tc.status, tc.code, s, !(s == tc.want))
			}
		}
	}
}

func TestAPIErrorMessage(t *testing.T) {
	cases := []struct {
		e    APIError
		want string
	}{
		{APIError{Op: "run command", Status: 410, Code: "sandbox_stopped", Message: "Sandbox has stopped"}, "vercel: run command: 410 sandbox_stopped: Sandbox has stopped"},
		{APIError{Op: "get sandbox", Status: 502}, "vercel: get sandbox: 502: Bad Gateway"},
		{APIError{Op: "create sandbox", Status: 429, Message: "slow down", RetryAfter: 30 * time.Second}, "vercel: create sandbox: 429: slow down (retry after 30s)"},
		{APIError{Op: "follow logs", Code: "sandbox_stream_closed", Message: "closed"}, "vercel: follow logs: stream error sandbox_stream_closed: closed"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"0":                             0,
		"-3":                            0,
		"1.5":                           1500 * time.Millisecond,
		"junk":                          0,
		"99999999999":                   1e6 * time.Second,
		"Fri, 20 Nov 2026 10:00:07 GMT": 7 * time.Second,
		"Fri, 20 Nov 2026 09:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
