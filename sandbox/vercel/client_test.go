package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Test scaffolding shared by the client tests: a scripted API server on 127.0.0.1 that records
// every request, and a client whose Sleep seam records delays instead of waiting.

const (
	ctToken   = "tok_SECRET_5up3r_s3cr3t"
	ctTeam    = "team_1"
	ctProject = "prj_1"
	ctSession = "sbx_1"
)

// ctRequest is one request as the server saw it.
type ctRequest struct {
	Method string
	Path   string
	Query  string // raw, in the order sent
	Header http.Header
	Body   []byte
}

// ctHandler answers one request; body is the request body, already read.
type ctHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// ctServer routes "METHOD /path" to handlers and records requests.
type ctServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]ctHandler
	reqs   []ctRequest
}

func ctNewServer(t *testing.T) *ctServer {
	t.Helper()
	s := &ctServer{t: t, routes: map[string]ctHandler{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// handle registers h for method and path (the path after the base URL, unescaped).
func (s *ctServer) handle(method, path string, h ctHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[method+" "+path] = h
}

func (s *ctServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("server: reading the request body: %v", err)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, ctRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	h := s.routes[r.Method+" "+r.URL.Path]
	s.mu.Unlock()
	if h == nil {
		s.t.Errorf("server: unexpected request %s %s", r.Method, r.URL.Path)
		http.Error(w, "no route", http.StatusTeapot)
		return
	}
	h(w, r, body)
}

// requests returns the recorded requests, optionally only those for method and path.
func (s *ctServer) requests(method, path string) []ctRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ctRequest
	for _, r := range s.reqs {
		if (method == "" || r.Method == method) && (path == "" || r.Path == path) {
			out = append(out, r)
		}
	}
	return out
}

func (s *ctServer) count(method, path string) int { return len(s.requests(method, path)) }

// ctSleeps records the delays a client asked to sleep, returning at once.
type ctSleeps struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *ctSleeps) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *ctSleeps) all() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}

// ctClient returns a client for s whose sleeps are recorded; mod may adjust the config.
func ctClient(t *testing.T, s *ctServer, mod func(*Config)) (*Client, *ctSleeps) {
	t.Helper()
	sl := &ctSleeps{}
	cfg := Config{BaseURL: s.srv.URL + "/api", Token: ctToken, TeamID: ctTeam, ProjectID: ctProject, Sleep: sl.sleep}
	if mod != nil {
		mod(&cfg)
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, sl
}

// ctJSON answers status with v as JSON.
func ctJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ctErr answers status with the API's error object.
func ctErr(w http.ResponseWriter, status int, code, msg string) {
	ctJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// ctStream starts an NDJSON answer; each call of the returned func writes and flushes lines.
func ctStream(w http.ResponseWriter) func(lines ...string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return func(lines ...string) {
		for _, l := range lines {
			_, _ = io.WriteString(w, l+"\n")
		}
		w.(http.Flusher).Flush()
	}
}

// ctCut breaks the connection in the middle of the answer (the client sees an unexpected EOF).
func ctCut() { panic(http.ErrAbortHandler) }

func ctSessionJSON(id, status string) map[string]any {
	return map[string]any{
		"id": id, "memory": 4096, "vcpus": 2, "region": "iad1", "timeout": 300000, "status": status,
		"requestedAt": 1000, "startedAt": 2000, "createdAt": 1000, "updatedAt": 2000, "cwd": "/vercel/sandbox",
	}
}

func ctSandboxJSON(name, status string) map[string]any {
	return map[string]any{
		"sandbox": map[string]any{"name": name, "persistent": false, "status": status, "currentSessionId": ctSession, "createdAt": 1000},
		"session": ctSessionJSON(ctSession, status),
		"routes":  []any{map[string]any{"url": "https://sb-abc.vercel.run", "subdomain": "sb-abc", "port": 3000}},
	}
}

func ctCommandJSON(id string, exit *int) string {
	cmd := map[string]any{"id": id, "name": "sh", "args": []string{"-c", "x"}, "cwd": "/vercel/sandbox", "sessionId": ctSession, "exitCode": nil, "startedAt": 5}
	if exit != nil {
		cmd["exitCode"] = *exit
		cmd["durationMs"] = 12
	}
	b, _ := json.Marshal(map[string]any{"command": cmd})
	return string(b)
}

func ctLog(stream, data string) string {
	b, _ := json.Marshal(map[string]string{"stream": stream, "data": data})
	return string(b)
}

func ctInt(n int) *int { return &n }

// ctBody decodes a recorded JSON body into a map.
func ctBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("request body %q is not a JSON object: %v", b, err)
	}
	return m
}

func TestClientHeadersAndQueryOnEveryEndpoint(t *testing.T) {
	s := ctNewServer(t)
	sb := "/api/v2/sandboxes/box-1"
	sess := "/api/v2/sandboxes/sessions/" + ctSession
	cmd := sess + "/cmd/cmd_1"
	sessionAns := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running"), "routes": []any{}})
	}
	commandAns := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, ctCommandJSON("cmd_1", ctInt(0)))
	}
	snapAns := func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"snapshot": map[string]any{"id": "snap_1", "status": "created"}, "session": ctSessionJSON(ctSession, "stopped")})
	}
	s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
	})
	s.handle("GET", sb, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
	})
	s.handle("DELETE", sb, func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctJSON(w, 200, map[string]any{}) })
	s.handle("GET", "/api/v2/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"sandboxes": []any{}, "pagination": map[string]any{"count": 0, "next": nil}})
	})
	s.handle("GET", "/api/v2/sandboxes/snapshots", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"snapshots": []any{}, "pagination": map[string]any{"count": 0, "next": nil}})
	})
	s.handle("GET", "/api/v2/sandboxes/snapshots/snap_1", snapAns)
	s.handle("DELETE", "/api/v2/sandboxes/snapshots/snap_1", snapAns)
	s.handle("GET", sess, sessionAns)
	s.handle("POST", sess+"/stop", sessionAns)
	s.handle("POST", sess+"/extend-timeout", sessionAns)
	s.handle("POST", sess+"/network-policy", sessionAns)
	s.handle("POST", sess+"/snapshot", snapAns)
	s.handle("POST", sess+"/cmd", commandAns)
	s.handle("GET", cmd, commandAns)
	s.handle("POST", cmd+"/kill", commandAns)
	s.handle("GET", cmd+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctStream(w)(ctLog("stdout", "x")) })
	s.handle("POST", sess+"/fs/write", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctJSON(w, 200, map[string]any{}) })
	s.handle("POST", sess+"/fs/mkdir", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctJSON(w, 200, map[string]any{}) })
	s.handle("POST", sess+"/fs/read", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, "data")
	})
	c, _ := ctClient(t, s, nil)
	ctx := context.Background()

	calls := []struct {
		name        string
		call        func() error
		method      string
		path        string
		wantQuery   string // after "teamId=team_1"
		contentType string
	}{
		{"Create", func() error { _, err := c.createSandbox(ctx, createRequest{Name: "box-1"}); return err }, "POST", "/api/v3/sandboxes", "", "application/json"},
		{"GetSandbox", func() error { _, err := c.getSandbox(ctx, "box-1"); return err }, "GET", sb, "&projectId=prj_1", "application/json"},
		{"DeleteSandbox", func() error { return c.deleteSandbox(ctx, "box-1") }, "DELETE", sb, "&projectId=prj_1", "application/json"},
		{"ListSandboxes", func() error { _, err := c.ListSandboxes(ctx, "env:ci", "running"); return err }, "GET", "/api/v2/sandboxes",
			"&project=prj_1&tags=env%3Aci", "application/json"},
		{"ListSnapshots", func() error { _, err := c.listSnapshots(ctx, "box-1"); return err }, "GET", "/api/v2/sandboxes/snapshots", "&project=prj_1&name=box-1", "application/json"},
		{"GetSnapshot", func() error { _, err := c.getSnapshot(ctx, "snap_1"); return err }, "GET", "/api/v2/sandboxes/snapshots/snap_1", "", "application/json"},
		{"DeleteSnapshot", func() error { _, err := c.deleteSnapshot(ctx, "snap_1"); return err }, "DELETE", "/api/v2/sandboxes/snapshots/snap_1", "", "application/json"},
		{"GetSession", func() error { _, _, err := c.GetSession(ctx, ctSession); return err }, "GET", sess, "", "application/json"},
		{"StopSession", func() error { _, err := c.stopSession(ctx, ctSession); return err }, "POST", sess + "/stop", "", "application/json"},
		{"ExtendTimeout", func() error { _, err := c.extendTimeout(ctx, ctSession, time.Minute); return err }, "POST", sess + "/extend-timeout", "", "application/json"},
		{"SetNetworkPolicy", func() error {
			_, err := c.setNetworkPolicy(ctx, ctSession, networkPolicy{Mode: "deny-all"})
			return err
		}, "POST", sess + "/network-policy", "", "application/json"},
		{"Snapshot", func() error { _, _, err := c.snapshot(ctx, ctSession, nil); return err }, "POST", sess + "/snapshot", "", "application/json"},
		{"StartCommand", func() error { _, err := c.startCommand(ctx, ctSession, commandRequest{Command: "true"}); return err }, "POST", sess + "/cmd", "", "application/json"},
		{"GetCommand", func() error { _, err := c.getCommand(ctx, ctSession, "cmd_1"); return err }, "GET", cmd, "", "application/json"},
		{"WaitCommand", func() error { _, err := c.waitCommand(ctx, ctSession, "cmd_1"); return err }, "GET", cmd, "&wait=true", "application/json"},
		{"KillCommand", func() error { _, err := c.killCommand(ctx, ctSession, "cmd_1", 15); return err }, "POST", cmd + "/kill", "", "application/json"},
		{"FollowLogs", func() error { _, _, err := c.followLogs(ctx, ctSession, "cmd_1", 0, 0, nil, nil); return err }, "GET", cmd + "/logs", "", "application/json"},
		{"WriteFiles", func() error {
			return c.writeFiles(ctx, ctSession, "/vercel/sandbox", []fileToWrite{{Path: "a.txt", Content: []byte("a")}})
		}, "POST", sess + "/fs/write", "", "application/gzip"},
		{"ReadFile", func() error {
			rc, err := c.readFile(ctx, ctSession, "a.txt", "")
			if err == nil {
				rc.Close()
			}
			return err
		}, "POST", sess + "/fs/read", "", "application/json"},
		{"Mkdir", func() error { return c.mkdir(ctx, ctSession, "d", "") }, "POST", sess + "/fs/mkdir", "", "application/json"},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			before := s.count(tc.method, tc.path)
			if err := tc.call(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			reqs := s.requests(tc.method, tc.path)
			if len(reqs) <= before {
				t.Fatalf("no %s %s request seen", tc.method, tc.path)
			}
			r := reqs[before]
			if got := r.Header.Get("Authorization"); got != "Bearer "+ctToken {
				t.Errorf("Authorization = %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if got := r.Header.Get("User-Agent"); !strings.HasPrefix(got, "sandkit-mcp/") || !strings.Contains(got, "vercel-sandbox-go (Go/") {
				t.Errorf("User-Agent = %q", got)
			}
			if want := "teamId=" + ctTeam + tc.wantQuery; r.Query != want {
				t.Errorf("query = %q, want %q", r.Query, want)
			}
		})
	}
	// The FollowLogs call also asked for the command's state after the stream ended.
	if s.count("GET", cmd) < 2 {
		t.Errorf("FollowLogs did not check the command after a clean end of the stream")
	}
}

func TestClientRetry429HonoursRetryAfter(t *testing.T) {
	s := ctNewServer(t)
	var n atomic.Int32
	s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "3")
			ctErr(w, 429, "", "slow down")
			return
		}
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running"), "routes": []any{}})
	})
	c, sl := ctClient(t, s, nil)
	got, _, err := c.GetSession(context.Background(), ctSession)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got.ID != ctSession {
		t.Errorf("session = %+v", got)
	}
	if d := sl.all(); len(d) != 1 || d[0] != 3*time.Second {
		t.Errorf("sleeps = %v, want [3s] (Retry-After exceeds the backoff)", d)
	}
	if n := s.count("GET", ""); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestClientRetry429AppliesToNonIdempotentCalls(t *testing.T) {
	s := ctNewServer(t)
	var n atomic.Int32
	s.handle("POST", "/api/v2/sandboxes/sessions/"+ctSession+"/extend-timeout", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			ctErr(w, 429, "", "too many")
			return
		}
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running")})
	})
	c, sl := ctClient(t, s, nil)
	if _, err := c.extendTimeout(context.Background(), ctSession, time.Minute); err != nil {
		t.Fatalf("ExtendTimeout: %v", err)
	}
	if d := sl.all(); len(d) != 1 || d[0] < time.Second {
		t.Errorf("sleeps = %v, want one of at least 1s", d)
	}
	if n.Load() != 2 {
		t.Errorf("server saw %d POSTs, want 2", n.Load())
	}
}

func TestClientRetry429BeyondMaxRetryAfterReturnsAtOnce(t *testing.T) {
	s := ctNewServer(t)
	s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Retry-After", "30")
		ctErr(w, 429, "rate_limited", "concurrency limit")
	})
	c, sl := ctClient(t, s, nil)
	_, err := c.getSandbox(context.Background(), "box-1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 30*time.Second {
		t.Fatalf("err = %v, want a 429 APIError with RetryAfter 30s", err)
	}
	if !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("a 429 does not unwrap to ErrUnavailable: %v", err)
	}
	if d := sl.all(); len(d) != 0 {
		t.Errorf("slept %v; want no sleep", d)
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestClientRetry5xx(t *testing.T) {
	t.Run("GET retried until success", func(t *testing.T) {
		s := ctNewServer(t)
		var n atomic.Int32
		s.handle("GET", "/api/v2/sandboxes/snapshots/snap_1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			if n.Add(1) <= 2 {
				ctErr(w, 502, "", "bad gateway")
				return
			}
			ctJSON(w, 200, map[string]any{"snapshot": map[string]any{"id": "snap_1", "status": "created"}})
		})
		c, sl := ctClient(t, s, nil)
		snap, err := c.getSnapshot(context.Background(), "snap_1")
		if err != nil || snap.ID != "snap_1" {
			t.Fatalf("GetSnapshot = %+v, %v", snap, err)
		}
		d := sl.all()
		if len(d) != 2 {
			t.Fatalf("sleeps = %v, want 2", d)
		}
		// Backoff: 400ms×[1,2), then 800ms×[1,2).
		if d[0] < 400*time.Millisecond || d[0] >= 800*time.Millisecond || d[1] < 800*time.Millisecond || d[1] >= 1600*time.Millisecond {
			t.Errorf("backoff delays = %v, want [400ms,800ms) then [800ms,1.6s)", d)
		}
	})
	t.Run("GET gives up after the retries", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", "/api/v2/sandboxes/snapshots/snap_1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctErr(w, 503, "", "unavailable")
		})
		c, _ := ctClient(t, s, nil)
		_, err := c.getSnapshot(context.Background(), "snap_1")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 503 || !errors.Is(err, sandbox.ErrUnavailable) {
			t.Fatalf("err = %v, want the 503", err)
		}
		if n := s.count("", ""); n != 3 {
			t.Errorf("server saw %d requests, want 3 (1 + Retries 2)", n)
		}
	})
	t.Run("Retries -1 means one attempt", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", "/api/v2/sandboxes/snapshots/snap_1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctErr(w, 500, "", "oops")
		})
		c, _ := ctClient(t, s, func(cfg *Config) { cfg.Retries = -1 })
		if _, err := c.getSnapshot(context.Background(), "snap_1"); err == nil {
			t.Fatal("no error")
		}
		if n := s.count("", ""); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
	t.Run("connection cut before an answer is retried for GET", func(t *testing.T) {
		s := ctNewServer(t)
		var n atomic.Int32
		s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			if n.Add(1) == 1 {
				ctCut()
			}
			ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running")})
		})
		c, _ := ctClient(t, s, nil)
		if _, _, err := c.GetSession(context.Background(), ctSession); err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if n.Load() != 2 {
			t.Errorf("server saw %d requests, want 2", n.Load())
		}
	})
}

func TestClientNonIdempotentCallsAreNotResentAfter5xx(t *testing.T) {
	sess := "/api/v2/sandboxes/sessions/" + ctSession
	cases := []struct {
		name string
		path string
		call func(*Client) error
	}{
		{"run command", sess + "/cmd", func(c *Client) error {
			_, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "make"}, nil, nil)
			return err
		}},
		{"start command", sess + "/cmd", func(c *Client) error {
			_, err := c.startCommand(context.Background(), ctSession, commandRequest{Command: "make"})
			return err
		}},
		{"extend timeout", sess + "/extend-timeout", func(c *Client) error {
			_, err := c.extendTimeout(context.Background(), ctSession, time.Minute)
			return err
		}},
		{"snapshot", sess + "/snapshot", func(c *Client) error {
			_, _, err := c.snapshot(context.Background(), ctSession, nil)
			return err
		}},
	}
	for _, tc := range cases {
		for _, failure := range []string{"502", "cut"} {
			t.Run(tc.name+" "+failure, func(t *testing.T) {
				s := ctNewServer(t)
				s.handle("POST", tc.path, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
					if failure == "cut" {
						ctCut()
					}
					ctErr(w, 502, "", "bad gateway")
				})
				c, sl := ctClient(t, s, nil)
				err := tc.call(c)
				if err == nil {
					t.Fatal("no error")
				}
				if failure == "502" {
					var ae *APIError
					if !errors.As(err, &ae) || ae.Status != 502 {
						t.Errorf("err = %v, want the 502", err)
					}
				}
				if !errors.Is(err, sandbox.ErrUnavailable) {
					t.Errorf("err = %v does not unwrap to ErrUnavailable", err)
				}
				if n := s.count("POST", tc.path); n != 1 {
					t.Errorf("server saw %d POSTs, want exactly 1", n)
				}
				if n := s.count("", ""); n != 1 {
					t.Errorf("server saw %d requests in all, want 1", n)
				}
				if d := sl.all(); len(d) != 0 {
					t.Errorf("slept %v", d)
				}
			})
		}
	}
}

func TestClientNonIdempotentRetriedWhenNeverSent(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", "/api/v2/sandboxes/sessions/"+ctSession+"/cmd", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, ctCommandJSON("cmd_1", nil))
	})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused (scripted)")}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c, sl := ctClient(t, s, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	cmd, err := c.startCommand(context.Background(), ctSession, commandRequest{Command: "sleep", Args: []string{"9"}})
	if err != nil {
		t.Fatalf("StartCommand: %v", err)
	}
	if cmd.ID != "cmd_1" || cmd.ExitCode != nil {
		t.Errorf("command = %+v", cmd)
	}
	if dials.Load() != 2 || len(sl.all()) != 1 {
		t.Errorf("dials = %d, sleeps = %v; want a retry after the failed dial", dials.Load(), sl.all())
	}
	if n := s.count("POST", ""); n != 1 {
		t.Errorf("server saw %d POSTs, want 1", n)
	}
}

func TestClientHeaderTimeout(t *testing.T) {
	s := ctNewServer(t)
	var gets atomic.Int32
	// Short calls whose headers never come are abandoned (and GETs retried); the handler holds
	// until the client gives up.
	s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		gets.Add(1)
		<-r.Context().Done()
	})
	// A wait is exempt: it answers later than the header timeout and still succeeds.
	s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession+"/cmd/cmd_1", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, ctCommandJSON("cmd_1", ctInt(3)))
	})
	c, _ := ctClient(t, s, nil)
	c.headerTimeout = 50 * time.Millisecond
	_, _, err := c.GetSession(context.Background(), ctSession)
	if !errors.Is(err, errNoHeaders) || !errors.Is(err, sandbox.ErrUnavailable) {
		t.Fatalf("err = %v, want a header timeout", err)
	}
	if gets.Load() != 3 {
		t.Errorf("server saw %d GETs, want 3", gets.Load())
	}
	cmd, err := c.waitCommand(context.Background(), ctSession, "cmd_1")
	if err != nil || cmd.ExitCode == nil || *cmd.ExitCode != 3 {
		t.Fatalf("WaitCommand = %+v, %v", cmd, err)
	}
}

func TestClientContextCancelStopsRetrying(t *testing.T) {
	s := ctNewServer(t)
	s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 500, "", "x") })
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := ctClient(t, s, func(cfg *Config) {
		cfg.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	})
	_, err := c.getSandbox(ctx, "box-1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestNewClientValidates(t *testing.T) {
	ok := Config{Token: ctToken, TeamID: ctTeam, ProjectID: ctProject}
	cases := []struct {
		name  string
		mod   func(*Config)
		cred  bool
		wants string
	}{
		{"no token", func(c *Config) { c.Token = "" }, true, "no token"},
		{"token with a newline", func(c *Config) { c.Token = ctToken + "\n" }, true, "whitespace"},
		{"no team", func(c *Config) { c.TeamID = "" }, true, "team"},
		{"no project", func(c *Config) { c.ProjectID = "" }, true, "project"},
		{"ftp base", func(c *Config) { c.BaseURL = "ftp://example.com" }, false, "http(s)"},
		{"relative base", func(c *Config) { c.BaseURL = "/api" }, false, "base URL"},
		{"base with query", func(c *Config) { c.BaseURL = "https://example.com/api?x=1" }, false, "query"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			_, err := newClient(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrCredentials) != tc.cred {
				t.Errorf("errors.Is(err, ErrCredentials) = %v, want %v (%v)", !tc.cred, tc.cred, err)
			}
			if !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("err = %q, want it to mention %q", err, tc.wants)
			}
			if strings.Contains(err.Error(), ctToken) {
				t.Errorf("err %q shows the token", err)
			}
		})
	}
	c, err := newClient(ok)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if c.base != DefaultBaseURL || c.retries != 2 || c.minBackoff != 400*time.Millisecond || c.maxRetryAfter != 20*time.Second {
		t.Errorf("defaults: base %q retries %d backoff %v maxRetryAfter %v", c.base, c.retries, c.minBackoff, c.maxRetryAfter)
	}
	if c.http.Timeout != 0 {
		t.Errorf("default HTTP client has an overall timeout %v", c.http.Timeout)
	}
	tr, isTransport := c.http.Transport.(*http.Transport)
	if !isTransport || tr.TLSHandshakeTimeout != 10*time.Second || tr.DisableKeepAlives || tr.ResponseHeaderTimeout != 0 {
		t.Errorf("default transport: %+v", tr)
	}
	if fmt.Sprint(c.headerTimeout) != "1m0s" {
		t.Errorf("header timeout = %v, want 1m", c.headerTimeout)
	}
}
