package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Live sessions across connections: leases belong to MCP connections, whichever door they come
// through; previews reach the session's ports; a restart of the daemon keeps live sessions.

// previewClient fetches preview URLs: plain net/http, nothing special (they are
// http://127.0.0.1:PORT/).
var previewClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

func fetch(t testing.TB, url string) (int, string) {
	t.Helper()
	return getWith(t, previewClient, url)
}

// getWith GETs url with the client cl and returns the status and the body.
func getWith(t testing.TB, cl *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// needsLive calls a tool and skips the test when the provider lacks what live sessions need
// (live sandboxes, background processes, ports): the provider's session support lands apart.
func (c *client) needsLive(tool string, args map[string]any) map[string]any {
	c.t.Helper()
	out, text, isErr := c.call(tool, args)
	if isErr && strings.Contains(text, "not supported by this provider") {
		c.t.Skipf("%s: the local provider has no live-session support yet: %s", tool, text)
	}
	if isErr {
		c.t.Fatalf("%s(%v): unexpected tool error: %s", tool, args, text)
	}
	return out
}

// openSession opens a session on ws and returns its id.
func openSession(t testing.TB, c *client, ws string) string {
	t.Helper()
	return c.needsLive("open_session", map[string]any{"workspace": ws})["session_id"].(string)
}

// serveApp writes index.html into the session, starts python's HTTP server on port 8000 in the
// background and returns the preview URL once something answers there, and the server's
// process id.
func serveApp(t testing.TB, c *client, sid, content string) (url, processID string) {
	t.Helper()
	c.ok("write_files", map[string]any{"session_id": sid, "files": []any{map[string]any{"path": "index.html", "content": content}}})
	p := c.needsLive("session_exec", map[string]any{"session_id": sid, "command": "python3",
		"args": []any{"-m", "http.server", "8000", "--bind", "127.0.0.1"}, "background": true})
	return sessionURL(t, c, sid), p["process_id"].(string)
}

// sessionURL asks for the preview URL of port 8000 at once: session_url waits for the server to
// listen.
func sessionURL(t testing.TB, c *client, sid string) string {
	t.Helper()
	out := c.ok("session_url", map[string]any{"session_id": sid, "port": 8000, "wait_ms": 30000})
	if out["listening"] != true {
		t.Fatalf("session_url: the server did not listen within 30 s: %v", out)
	}
	return out["url"].(string)
}

// sessionStory is the multi-connection story: A works live in a session and publishes a page;
// B is refused by the lease; A commits; B sees A's work.
func sessionStory(t *testing.T, a, b *client, aName string) {
	a.ok("create_workspace", map[string]any{"name": "site", "exposed_ports": []any{8000}})
	sid := openSession(t, a, "site")
	url, _ := serveApp(t, a, sid, "<h1>hello from A</h1>\n")
	if code, body := fetch(t, url); code != 200 || !strings.Contains(body, "hello from A") {
		t.Fatalf("GET %s: %d %q", url, code, body)
	}
	_, text, isErr := b.call("run_command", map[string]any{"workspace": "site", "command": "true"})
	if !isErr {
		t.Fatal("B's run_command on a leased workspace succeeded")
	}
	for _, want := range []string{sid, "held by " + aName, "until "} {
		if !strings.Contains(text, want) {
			t.Fatalf("B's lease error does not name %q: %s", want, text)
		}
	}
	c := a.ok("commit_session", map[string]any{"session_id": sid, "message": "the page"})
	if c["commit"].(map[string]any)["commit_id"] == "" {
		t.Fatalf("commit_session: %v", c)
	}
	r := b.ok("run_command", map[string]any{"workspace": "site", "command": "cat", "args": []any{"index.html"}})
	if r["stdout"] != "<h1>hello from A</h1>\n" {
		t.Fatalf("B does not see A's committed file: %v", r)
	}
	previewGone(t, url)
}

// previewGone checks that a preview URL no longer serves: its port is closed (the session ended).
func previewGone(t testing.TB, url string) {
	t.Helper()
	resp, err := previewClient.Get(url)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the preview of an ended session still answers %d at %s", resp.StatusCode, url)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET %s after its session ended: %v, want connection refused", url, err)
	}
}

func TestSessionStoryTwoStdioDoors(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	a := connectVia(t, "agent-A", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	b := connectVia(t, "agent-B", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	sessionStory(t, a, b, "agent-A")
}

func TestSessionStoryStreamableHTTP(t *testing.T) {
	t.Parallel()
	s := startServe(t, dataDir(t), nil, "--http", "127.0.0.1:0")
	sessionStory(t, connectHTTP(t, s.info.HTTP, "agent-A", ""), connectHTTP(t, s.info.HTTP, "agent-B", ""), "agent-A")
}

func TestSessionStorySSE(t *testing.T) {
	t.Parallel()
	s := startServe(t, dataDir(t), nil, "--http", "127.0.0.1:0")
	sessionStory(t, connectSSE(t, s.info.HTTP, "agent-A", ""), connectSSE(t, s.info.HTTP, "agent-B", ""), "agent-A")
}

func killDaemon(t testing.TB, dir string) {
	t.Helper()
	pid := readDaemonFile(t, dir).PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Gone means reaped or a zombie (its descriptors, the socket among them, are closed); its
	// command line empties earlier, while it is still exiting.
	waitFor(t, 10*time.Second, "the daemon to die", func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		return len(f) > 0 && f[0] == "Z"
	})
}

func TestLiveSessionSurvivesDaemonRestart(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	a := connectVia(t, "agent-A", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	a.ok("create_workspace", map[string]any{"name": "live", "exposed_ports": []any{8000}})
	sid := openSession(t, a, "live")
	oldURL, _ := serveApp(t, a, sid, "<p>survives</p>\n")
	if code, body := fetch(t, oldURL); code != 200 || !strings.Contains(body, "survives") {
		t.Fatalf("before the restart: %d %q", code, body)
	}
	head := a.ok("get_workspace", map[string]any{"workspace": "live"})["head"]

	killDaemon(t, dir)
	b := connectVia(t, "agent-B", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	att := b.ok("attach_session", map[string]any{"workspace": "live"})
	if att["session_id"] != sid {
		t.Fatalf("attach_session after the restart: %v", att)
	}
	url := sessionURL(t, b, sid)
	if code, body := fetch(t, url); code != 200 || !strings.Contains(body, "survives") {
		t.Fatalf("after the restart, %s: %d %q", url, code, body)
	}
	c := b.ok("commit_session", map[string]any{"session_id": sid})
	w := b.ok("get_workspace", map[string]any{"workspace": "live"})
	if cid := c["commit"].(map[string]any)["commit_id"]; w["head"] == head || w["head"] != cid {
		t.Fatalf("commit after restart: head %v → %v, commit %v", head, w["head"], cid)
	}
	if r := b.ok("read_file", map[string]any{"workspace": "live", "path": "index.html"}); r["content"] != "<p>survives</p>\n" {
		t.Fatalf("committed file: %v", r)
	}
}

func TestOpenSessionRace(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	a := connectVia(t, "racer-A", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	b := connectVia(t, "racer-B", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	a.ok("create_workspace", map[string]any{"name": "race"})
	openSession(t, a, "race") // skips without live sandboxes
	a.ok("discard_session", map[string]any{"session_id": a.ok("get_workspace", map[string]any{"workspace": "race"})["session"].(map[string]any)["session_id"]})
	for round := range 3 {
		var wg sync.WaitGroup
		type res struct {
			out   map[string]any
			text  string
			isErr bool
		}
		results := make([]res, 2)
		for i, c := range []*client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				r, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "open_session", Arguments: map[string]any{"workspace": "race"}})
				if err != nil {
					results[i] = res{text: err.Error(), isErr: true}
					return
				}
				out, text, isErr := decode(r)
				results[i] = res{out, text, isErr}
			}()
		}
		wg.Wait()
		won := -1
		for i, r := range results {
			if !r.isErr {
				if won >= 0 {
					t.Fatalf("round %d: both connections opened a session: %v %v", round, results[0].out, results[1].out)
				}
				won = i
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no connection opened a session: %q / %q", round, results[0].text, results[1].text)
		}
		lost := results[1-won]
		sid := results[won].out["session_id"].(string)
		if !strings.Contains(lost.text, "leased") || !strings.Contains(lost.text, sid) {
			t.Fatalf("round %d: the loser's error does not say who holds the lease: %s", round, lost.text)
		}
		[]*client{a, b}[won].ok("discard_session", map[string]any{"session_id": sid})
	}
}

// rawUnixConn speaks MCP on the daemon's socket directly, to disconnect at an exact moment.
type rawUnixConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRawUnix(t *testing.T, dir, name string) *rawUnixConn {
	c, err := net.Dial("unix", filepath.Join(dir, "sandkit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rawUnixConn{t: t, c: c, br: bufio.NewReader(c)}
	r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`, name))
	if line := r.read(); !strings.Contains(line, `"id":1`) {
		t.Fatalf("initialize: %s", line)
	}
	r.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return r
}

func (r *rawUnixConn) send(msg string) {
	if _, err := io.WriteString(r.c, msg+"\n"); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawUnixConn) read() string {
	r.c.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatal(err)
	}
	return line
}

func TestDisconnectRightAfterOpenSessionDetaches(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--http", "127.0.0.1:0")
	// gone waits until the daemon has finished with every connection but B's.
	gone := func() {
		waitFor(t, 30*time.Second, "the raw connection to be gone", func() bool {
			_, h := health(t, s.info.HTTP, "")
			return connections(t, s.info.HTTP, "", "unix") == 1 && h["in_flight_calls"].(float64) == 0
		})
	}
	b := connectVia(t, "agent-B", &mcp.CommandTransport{Command: doorCommand(t, dir)})
	b.ok("create_workspace", map[string]any{"name": "left"})
	sid := openSession(t, b, "left")
	b.ok("discard_session", map[string]any{"session_id": sid})

	// A connection that goes away while its open_session is in flight.
	r := dialRawUnix(t, dir, "vanisher")
	r.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"open_session","arguments":{"workspace":"left"}}}`)
	r.c.Close()
	gone()
	// Either the open_session was cancelled with its connection (no session), or it completed
	// and the session is detached: attach_session takes it over.
	if w := b.ok("get_workspace", map[string]any{"workspace": "left"}); w["session"] != nil {
		att := b.ok("attach_session", map[string]any{"workspace": "left"})
		if att["held_by_you"] != true {
			t.Fatalf("attach_session: %v", att)
		}
		b.ok("discard_session", map[string]any{"session_id": att["session_id"]})
		t.Log("the in-flight open_session completed; its session was detached")
	} else {
		t.Log("the in-flight open_session was cancelled with its connection")
	}

	// A connection that closes right after open_session answered.
	r = dialRawUnix(t, dir, "leaver")
	r.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"open_session","arguments":{"workspace":"left"}}}`)
	if line := r.read(); !strings.Contains(line, "ses_") {
		t.Fatalf("open_session on the raw connection: %s", line)
	}
	r.c.Close()
	gone()
	att := b.ok("attach_session", map[string]any{"workspace": "left"})
	b.ok("discard_session", map[string]any{"session_id": att["session_id"]})
}

func TestKillDaemonDuringCommit(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	content := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, so the commit has work to do
	for i, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond} {
		name := fmt.Sprintf("crash-%d", i)
		a := connectVia(t, "committer", &mcp.CommandTransport{Command: doorCommand(t, dir)})
		a.ok("create_workspace", map[string]any{"name": name})
		sid := openSession(t, a, name)
		a.ok("write_files", map[string]any{"session_id": sid, "files": []any{map[string]any{"path": "big.txt", "content": content}}})
		a.ok("session_exec", map[string]any{"session_id": sid, "command": "sh", "args": []any{"-c", "for i in $(seq 200); do echo $i > f$i; done"}})
		before := a.ok("get_workspace", map[string]any{"workspace": name})["head"]

		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "commit_session", Arguments: map[string]any{"session_id": sid}})
		}()
		time.Sleep(delay)
		killDaemon(t, dir)

		b := connectVia(t, "checker", &mcp.CommandTransport{Command: doorCommand(t, dir)})
		w := b.ok("get_workspace", map[string]any{"workspace": name})
		hist := b.ok("workspace_history", map[string]any{"workspace": name})["commits"].([]any)
		newest := hist[0].(map[string]any)
		if w["head"] != before {
			// The commit happened: head is a session commit holding every change.
			if newest["commit_id"] != w["head"] || newest["kind"] != "session" || w["session"] != nil {
				t.Fatalf("delay %v: head moved but history/session disagree: %v / %v", delay, w, newest)
			}
			if r := b.ok("read_file", map[string]any{"workspace": name, "path": "big.txt"}); r["size"].(float64) != float64(len(content)) {
				t.Fatalf("delay %v: committed big.txt has size %v", delay, r["size"])
			}
			if r := b.ok("read_file", map[string]any{"workspace": name, "path": "f200"}); r["content"] != "200\n" {
				t.Fatalf("delay %v: committed f200: %v", delay, r)
			}
			t.Logf("delay %v: committed", delay)
		} else {
			// It did not: nothing of the session is in head, and the session is still open
			// (attachable, with its changes) or was discarded.
			if newest["commit_id"] != before {
				t.Fatalf("delay %v: head unchanged but history has a newer commit: %v", delay, newest)
			}
			if _, text, isErr := b.call("read_file", map[string]any{"workspace": name, "path": "big.txt"}); !isErr || !strings.Contains(text, "not found") {
				t.Fatalf("delay %v: head unchanged but big.txt readable: %s", delay, text)
			}
			if w["session"] != nil {
				att := b.ok("attach_session", map[string]any{"workspace": name})
				r := b.ok("session_exec", map[string]any{"session_id": att["session_id"], "command": "sh", "args": []any{"-c", "wc -c < big.txt; cat f200"}})
				if r["stdout"] != fmt.Sprintf("%d\n200\n", len(content)) {
					t.Fatalf("delay %v: the surviving session lost changes: %v", delay, r)
				}
				b.ok("discard_session", map[string]any{"session_id": att["session_id"]})
				t.Logf("delay %v: not committed, session still open", delay)
			} else {
				t.Logf("delay %v: not committed, session discarded", delay)
			}
		}
		a.cs.Close()
		b.cs.Close()
	}
}

func TestSessionURLErrors(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	a := connect(t, dir)
	a.ok("create_workspace", map[string]any{"name": "ports", "exposed_ports": []any{8000}})
	sid := openSession(t, a, "ports")
	_, text, isErr := a.call("session_url", map[string]any{"session_id": sid, "port": 9000})
	if !isErr || !strings.Contains(text, "9000") || !strings.Contains(text, "not exposed") || !strings.Contains(text, "8000") {
		t.Fatalf("session_url for a port not exposed: %s", text)
	}
	// Nothing listening within the wait is no error: the URL, listening false, what to do.
	out, text, isErr := a.call("session_url", map[string]any{"session_id": sid, "port": 8000, "wait_ms": 300})
	if isErr || out["listening"] != false || out["url"] == nil || !strings.Contains(text, "nothing listened on port 8000") || !strings.Contains(text, "next: session_exec") {
		t.Fatalf("session_url with nothing listening: %v / %s", out, text)
	}
	// A URL whose server stops answers 502 saying so.
	url, pid := serveApp(t, a, sid, "x")
	a.ok("session_kill", map[string]any{"session_id": sid, "process_id": pid})
	waitFor(t, 10*time.Second, "the server to exit", func() bool {
		return a.ok("session_logs", map[string]any{"session_id": sid, "process_id": pid, "wait_ms": 1000})["status"] != "running"
	})
	if code, body := fetch(t, url); code != 502 || !strings.Contains(body, "nothing listens on port 8000 in session "+sid) {
		t.Fatalf("preview with nothing listening: %d %q", code, body)
	}
	a.ok("discard_session", map[string]any{"session_id": sid})
}

// rawHTTPCall calls a tool on a hand-made Streamable HTTP session.
func rawHTTPCall(t *testing.T, addr, sid string, id int, tool string, args map[string]any) string {
	t.Helper()
	a, _ := json.Marshal(args)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, a)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestIdleTTLDetachesVanishedHTTPClientsSession(t *testing.T) {
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--http", "127.0.0.1:0", "--idle-ttl", "2s")
	b := connect(t, dir)
	b.ok("create_workspace", map[string]any{"name": "ttl"})
	openSession(t, b, "ttl") // skips without live sandboxes
	b.ok("discard_session", map[string]any{"session_id": b.ok("get_workspace", map[string]any{"workspace": "ttl"})["session"].(map[string]any)["session_id"]})

	sid := rawHTTPInit(t, s.info.HTTP, "http-vanisher")
	if out := rawHTTPCall(t, s.info.HTTP, sid, 2, "open_session", map[string]any{"workspace": "ttl"}); !strings.Contains(out, "ses_") {
		t.Fatalf("open_session over raw HTTP: %s", out)
	}
	_, text, isErr := b.call("attach_session", map[string]any{"workspace": "ttl"})
	if !isErr || !strings.Contains(text, "http-vanisher") {
		t.Fatalf("attach while the HTTP client may still come back must fail naming it: %s", text)
	}
	var att map[string]any
	waitFor(t, 20*time.Second, "the idle HTTP session to let go of its lease", func() bool {
		out, _, isErr := b.call("attach_session", map[string]any{"workspace": "ttl"})
		att = out
		return !isErr
	})
	b.ok("discard_session", map[string]any{"session_id": att["session_id"]})
}

// fetchVia GETs url, dialling addr whatever its host (a reverse proxy or wildcard DNS would).
func fetchVia(t testing.TB, addr, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	return getWith(t, cl, url)
}

func TestPublicURLPreviews(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"https://sandkit.example.test/base", "https://*.preview.example.test"} {
		t.Run(base, func(t *testing.T) {
			dir := dataDir(t)
			s := startServe(t, dir, []string{"SANDKIT_TOKEN=tok-tok-tok"}, "--http", "127.0.0.1:0", "--public-url", base)
			if s.info.Preview != "" {
				t.Fatalf("with --public-url the daemon needs no preview listener, has %s", s.info.Preview)
			}
			a := connect(t, dir)
			a.ok("create_workspace", map[string]any{"name": "pub", "exposed_ports": []any{8000}})
			sid := openSession(t, a, "pub")
			url, _ := serveApp(t, a, sid, "<p>public</p>\n")
			prefix := strings.Replace(base, "*", "", 1)
			if strings.Contains(base, "*") {
				prefix = "https://"
			}
			if !strings.HasPrefix(url, prefix) {
				t.Fatalf("session_url %s is not under %s", url, base)
			}
			// No bearer token needed: the URL's token is the credential.
			code, body := fetchVia(t, s.info.HTTP, strings.Replace(url, "https://", "http://", 1)+"index.html")
			if code != 200 || body != "<p>public</p>\n" {
				t.Fatalf("GET %s through the HTTP door: %d %q", url, code, body)
			}
			// MCP on the same door still wants the bearer token.
			if code, _ := health(t, s.info.HTTP, ""); code != 401 {
				t.Fatalf("/healthz without the token: %d", code)
			}
			a.ok("discard_session", map[string]any{"session_id": sid})
		})
	}
}
