package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The HTTP door: Streamable HTTP at /mcp, legacy SSE at /sse, /healthz, Origin and bearer checks.

// headerTransport adds headers to every request.
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// httpClientWith is an HTTP client sending the bearer token (if any).
func httpClientWith(token string) *http.Client {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return &http.Client{Transport: headerTransport{base: http.DefaultTransport.(*http.Transport).Clone(), header: h}}
}

func connectHTTP(t testing.TB, addr, name, token string) *client {
	return connectVia(t, name, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", HTTPClient: httpClientWith(token), MaxRetries: -1})
}

func connectSSE(t testing.TB, addr, name, token string) *client {
	return connectVia(t, name, &mcp.SSEClientTransport{Endpoint: "http://" + addr + "/sse", HTTPClient: httpClientWith(token)})
}

// health fetches /healthz.
func health(t testing.TB, addr, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func connections(t testing.TB, addr, token, kind string) int {
	_, h := health(t, addr, token)
	conns, _ := h["connections"].(map[string]any)
	n, _ := conns[kind].(float64)
	return int(n)
}

func TestHTTPDoor(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--http", "127.0.0.1:0")
	addr := s.info.HTTP

	code, h := health(t, addr, "")
	if code != 200 || h["status"] != "ok" || h["version"] == "" || h["pid"].(float64) != float64(s.info.PID) {
		t.Fatalf("/healthz: %d %v", code, h)
	}

	// Two Streamable HTTP clients and one SSE client, each its own connection, on one engine.
	a := connectHTTP(t, addr, "http-a", "")
	b := connectHTTP(t, addr, "http-b", "")
	c := connectSSE(t, addr, "sse-c", "")
	a.ok("create_workspace", map[string]any{"name": "web"})
	a.ok("write_files", map[string]any{"workspace": "web", "files": []any{map[string]any{"path": "a.txt", "content": "from A\n"}}})
	if r := b.ok("run_command", map[string]any{"workspace": "web", "command": "cat", "args": []any{"a.txt"}}); r["stdout"] != "from A\n" {
		t.Fatalf("HTTP client B does not see A's write: %v", r)
	}
	if r := c.ok("run_command", map[string]any{"workspace": "web", "command": "sh", "args": []any{"-c", "cat a.txt; echo from C >> a.txt"}}); r["stdout"] != "from A\n" {
		t.Fatalf("SSE client: %v", r)
	}
	if r := a.ok("read_file", map[string]any{"workspace": "web", "path": "a.txt"}); r["content"] != "from A\nfrom C\n" {
		t.Fatalf("A does not see C's change: %v", r)
	}
	if n := connections(t, addr, "", "streamable_http"); n != 2 {
		t.Fatalf("healthz counts %d Streamable HTTP connections, want 2", n)
	}
	if n := connections(t, addr, "", "sse"); n != 1 {
		t.Fatalf("healthz counts %d SSE connections, want 1", n)
	}
	// The door's stdio clients share the same engine.
	d := connect(t, dir)
	if r := d.ok("read_file", map[string]any{"workspace": "web", "path": "a.txt"}); r["content"] != "from A\nfrom C\n" {
		t.Fatalf("the stdio door sees another engine: %v", r)
	}

	// Origin: loopback origins pass, anything else gets 403 — including *.localhost, where
	// preview apps live.
	for origin, want := range map[string]int{
		"http://evil.example.com":       403,
		"null":                          403,
		"http://abc.localhost:8080":     403,
		"http://localhost:5173":         200,
		"http://127.0.0.1:3000":         200,
		"https://[::1]":                 200,
		"https://app.example.com:8443/": 403,
	} {
		if got := healthzStatus(t, addr, origin); got != want {
			t.Errorf("Origin %s: status %d, want %d", origin, got, want)
		}
	}
	if code := statusFrom(t, "http://"+addr+"/mcp", "http://evil.example.com", `{"jsonrpc":"2.0","id":1,"method":"ping"}`); code != 403 {
		t.Fatalf("POST /mcp from a foreign origin: %d, want 403", code)
	}

	// Graceful stop with HTTP and SSE clients connected.
	d.cs.Close()
	s.stop(t)
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("serve exit status %d after SIGTERM\n%s", code, s.stderr)
	}
}

// healthzStatus is the status of GET /healthz at addr with the header Origin: origin.
func healthzStatus(t *testing.T, addr, origin string) int {
	t.Helper()
	return statusFrom(t, "http://"+addr+"/healthz", origin, "")
}

// statusFrom is the status of a request to url from a page of origin: a POST of the JSON-RPC
// message body when it is set, else a GET.
func statusFrom(t *testing.T, url, origin, body string) int {
	t.Helper()
	method, rd := http.MethodGet, io.Reader(nil)
	if body != "" {
		method, rd = http.MethodPost, strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Origin", origin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHTTPAllowedOrigin(t *testing.T) {
	t.Parallel()
	s := startServe(t, dataDir(t), nil, "--http", "127.0.0.1:0", "--allowed-origin", "https://app.example.com")
	for origin, want := range map[string]int{"https://app.example.com": 200, "https://APP.example.com/": 200, "https://other.example.com": 403} {
		if got := healthzStatus(t, s.info.HTTP, origin); got != want {
			t.Errorf("Origin %s: status %d, want %d", origin, got, want)
		}
	}
}

func TestHTTPBearerToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token-for-tests"
	s := startServe(t, dataDir(t), []string{"SANDKIT_TOKEN=" + token}, "--http", "127.0.0.1:0")
	addr := s.info.HTTP
	for _, path := range []string{"/healthz", "/mcp", "/sse"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + token} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("GET %s with %q: %d %q, want 401 with a Bearer challenge", path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if code, _ := health(t, addr, token); code != 200 {
		t.Fatalf("/healthz with the token: %d", code)
	}
	a := connectHTTP(t, addr, "tok-http", token)
	a.ok("create_workspace", map[string]any{"name": "tok"})
	c := connectSSE(t, addr, "tok-sse", token)
	c.ok("run_command", map[string]any{"workspace": "tok", "command": "true"})
}

func TestServeRefusesNonLoopbackHTTPWithoutToken(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, binary(t), "serve", "--data-dir", t.TempDir(), "--http", addr).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "refusing to start without a bearer token") || !strings.Contains(string(out), "SANDKIT_TOKEN") {
			t.Fatalf("serve --http %s without a token: %v\n%s", addr, err, out)
		}
	}
	// With a token it starts.
	s := startServe(t, dataDir(t), []string{"SANDKIT_TOKEN=abc123abc123"}, "--http", "0.0.0.0:0")
	if !strings.HasPrefix(s.info.HTTP, "[::]:") && !strings.HasPrefix(s.info.HTTP, "0.0.0.0:") {
		t.Fatalf("listening on %s", s.info.HTTP)
	}
}

// rawSSE is a hand-driven legacy SSE client: it can vanish without a word.
type rawSSE struct {
	t        *testing.T
	base     string
	endpoint string
	cancel   context.CancelFunc
	events   chan string
}

func dialRawSSE(t *testing.T, addr string) *rawSSE {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/sse", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawSSE{t: t, base: "http://" + addr, cancel: cancel, events: make(chan string, 100)}
	t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		event := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				close(r.events)
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(line[6:])
			case strings.HasPrefix(line, "data:"):
				r.events <- event + " " + strings.TrimSpace(line[5:])
			}
		}
	}()
	first := r.next()
	ep, ok := strings.CutPrefix(first, "endpoint ")
	if !ok {
		t.Fatalf("first SSE event: %q", first)
	}
	r.endpoint = ep
	return r
}

func (r *rawSSE) next() string {
	select {
	case e, ok := <-r.events:
		if !ok {
			r.t.Fatal("SSE stream ended")
		}
		return e
	case <-time.After(30 * time.Second):
		r.t.Fatal("no SSE event within 30s")
	}
	return ""
}

func (r *rawSSE) post(msg string) {
	resp, err := http.Post(r.base+r.endpoint, "application/json", strings.NewReader(msg))
	if err != nil {
		r.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		r.t.Fatalf("POST %s: %d", r.endpoint, resp.StatusCode)
	}
}

func (r *rawSSE) initialize(name string) {
	r.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`, name))
	if e := r.next(); !strings.Contains(e, `"id":1`) {
		r.t.Fatalf("initialize answer: %s", e)
	}
	r.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

func TestSSEDisconnectCancelsRunningCall(t *testing.T) {
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--http", "127.0.0.1:0")
	b := connect(t, dir)
	b.ok("create_workspace", map[string]any{"name": "sse"})

	r := dialRawSSE(t, s.info.HTTP)
	r.initialize("vanishing-sse")
	args := `{"workspace":"sse","command":"sh","args":["-c","sleep 30"],"idempotency_key":"k1"}`
	r.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_command","arguments":` + args + `}}`)
	time.Sleep(300 * time.Millisecond) // let the SSE call record its run before B retries it
	retry := map[string]any{"workspace": "sse", "command": "sh", "args": []any{"-c", "sleep 30"}, "idempotency_key": "k1", "background": true}
	waitFor(t, 30*time.Second, "the run to start", func() bool {
		st := b.ok("run_command", retry)["status"]
		return st == "running"
	})
	r.cancel() // the SSE stream closes; no notifications/cancelled is sent
	start := time.Now()
	var status any
	waitFor(t, 15*time.Second, "the run to read cancelled", func() bool {
		status = b.ok("run_command", retry)["status"]
		return status == "cancelled"
	})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the run was cancelled only after %v", took)
	}
	// The workspace is free at once (a running sleep 30 would hold it).
	b.ok("run_command", map[string]any{"workspace": "sse", "command": "true"})
	if n := connections(t, s.info.HTTP, "", "sse"); n != 0 {
		t.Fatalf("the vanished SSE connection is still counted: %d", n)
	}
}

// rawHTTPInit initializes a Streamable HTTP session by hand and returns its id; the caller can
// then vanish (no DELETE, no GET stream).
func rawHTTPInit(t *testing.T, addr, name string) string {
	t.Helper()
	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("", fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`, name))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	resp = post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	return sid
}

func TestIdleTTLEndsVanishedHTTPSession(t *testing.T) {
	s := startServe(t, dataDir(t), nil, "--http", "127.0.0.1:0", "--idle-ttl", "2s")
	live := connectHTTP(t, s.info.HTTP, "keeps-its-stream", "")
	rawHTTPInit(t, s.info.HTTP, "vanisher")
	if n := connections(t, s.info.HTTP, "", "streamable_http"); n != 2 {
		t.Fatalf("want 2 HTTP connections, healthz counts %d", n)
	}
	waitFor(t, 15*time.Second, "the vanished session to be unregistered", func() bool {
		return connections(t, s.info.HTTP, "", "streamable_http") == 1
	})
	// The client that holds its GET stream (heartbeats) is still there after several TTLs.
	time.Sleep(5 * time.Second)
	if n := connections(t, s.info.HTTP, "", "streamable_http"); n != 1 {
		t.Fatalf("want the connected client to stay, healthz counts %d", n)
	}
	live.ok("list_workspaces", map[string]any{})
}

func TestLongCallOutlivesIdleTTL(t *testing.T) {
	s := startServe(t, dataDir(t), nil, "--http", "127.0.0.1:0", "--idle-ttl", "1s")
	// No GET stream: only the POST of the call shows the client is there.
	c := connectVia(t, "no-stream", &mcp.StreamableClientTransport{Endpoint: "http://" + s.info.HTTP + "/mcp", DisableStandaloneSSE: true, MaxRetries: -1})
	c.ok("create_workspace", map[string]any{"name": "long"})
	r := c.ok("run_command", map[string]any{"workspace": "long", "command": "sh", "args": []any{"-c", "sleep 4; echo done"}})
	if r["stdout"] != "done\n" || r["status"] != "exited" {
		t.Fatalf("a call longer than the idle TTL: %v", r)
	}
}
