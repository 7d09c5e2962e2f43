package tools

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
)

// previewDoor serves the engine's preview links over real HTTP, the way the daemon's door does:
// /p/<token>/<path> is relayed to the session's port. It returns the engine's Previews option (a URL per token)
// and a function that binds the door to the engine once it is open.
func previewDoor(t *testing.T) (func(token string) string, func(*engine.Engine)) {
	t.Helper()
	var eng *engine.Engine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/p/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		token, path, _ := strings.Cut(rest, "/")
		_, dial, err := eng.Preview(token)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL = &url.URL{Scheme: "http", Host: "session.invalid", Path: "/" + path, RawQuery: r.URL.RawQuery}
			},
			Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }},
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return func(token string) string { return srv.URL + "/p/" + token + "/" }, func(e *engine.Engine) { eng = e }
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestSessionRoundTrip tells the live-preview story through the tools, as an agent would:
// open a session, work in it, start a server in the background, follow its logs, reach it
// through session_url over real HTTP, stop it, extend, commit; then discard, attach, and
// detach by disconnecting. Real engine, real bubblewrap sandboxes, the official Go SDK client.
func TestSessionRoundTrip(t *testing.T) {
	previewURL, bind := previewDoor(t)
	eng := newEngine(t, previewURL)
	bind(eng)
	r := newRigOn(t, eng)
	const port = 8765

	ws, _ := r.ok("create_workspace", map[string]any{"name": "live", "exposed_ports": []any{port}})
	r.ok("write_files", map[string]any{"workspace": "live", "files": []any{map[string]any{"path": "base.txt", "content": "committed before\n"}}})
	w, _ := r.ok("get_workspace", map[string]any{"workspace": "live"})
	head0 := str(w, "head")
	if str(ws, "workspace_id") == "" || head0 == "" {
		t.Fatalf("workspace: %v", w)
	}

	// open_session
	before := time.Now()
	s, text := r.ok("open_session", map[string]any{"workspace": "live", "timeout_ms": 120000})
	sid := str(s, "session_id")
	if !strings.HasPrefix(sid, "ses_") || str(s, "state") != "attached" || s["held_by_you"] != true ||
		str(s, "base_commit") != head0 || str(s, "workspace") != "live" || str(s, "holder") != "tools-roundtrip 0" {
		t.Fatalf("open_session: %v", s)
	}
	if _, leak := s["holder_conn"]; leak {
		t.Errorf("open_session leaks the connection id: %v", s)
	}
	exp, err := time.Parse(time.RFC3339Nano, str(s, "expires_at"))
	if err != nil || exp.Before(before.Add(110*time.Second)) || exp.After(time.Now().Add(130*time.Second)) {
		t.Errorf("expires_at %q, want about 2 minutes from now (%v)", str(s, "expires_at"), err)
	}
	for _, want := range []string{"opened session " + sid, "held by tools-roundtrip 0 (you)", `next: session_url {"port":8765,"session_id":"` + sid + `"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("open_session text lacks %q:\n%s", want, text)
		}
	}

	t.Run("the lease refuses durable operations", func(t *testing.T) {
		r := r.on(t)
		g, text := r.ok("get_workspace", map[string]any{"workspace": "live"})
		if lease, _ := g["session"].(map[string]any); str(lease, "session_id") != sid {
			t.Errorf("get_workspace does not show the session: %v", g)
		}
		if !strings.Contains(text, "leased by session "+sid) {
			t.Errorf("get_workspace text does not show the lease: %q", text)
		}
		out, msg := r.fails("run_command", map[string]any{"workspace": "live", "command": "true"}, "workspace is leased by a session")
		if e := sub(out, "error"); str(e, "kind") != "leased" || e["holder_is_you"] != true || str(e, "session_id") != sid {
			t.Errorf("run_command's structured lease error: %v", out)
		}
		for _, want := range []string{sid, "tools-roundtrip 0 (you)", "next: commit_session"} {
			if !strings.Contains(msg, want) {
				t.Errorf("run_command's lease error lacks %q: %s", want, msg)
			}
		}
		r.fails("write_files", map[string]any{"workspace": "live", "files": []any{map[string]any{"path": "x", "content": "x"}}}, sid)
		r.fails("restore_workspace", map[string]any{"workspace": "live", "commit_id": head0}, "leased")
		r.fails("open_session", map[string]any{"workspace": "live"}, sid)
		// The committed head stays readable.
		r.wantFile(map[string]any{"workspace": "live", "path": "base.txt"}, "committed before\n", "read_file of the head while leased")
		// Attaching to a session you hold returns it.
		a, _ := r.ok("attach_session", map[string]any{"workspace": "live"})
		if str(a, "session_id") != sid || a["held_by_you"] != true {
			t.Errorf("attach_session by the holder: %v", a)
		}
	})

	t.Run("foreground exec, with progress", func(t *testing.T) {
		r := r.on(t)
		x, text := r.ok("session_exec", map[string]any{"session_id": sid, "command": "sh",
			"args": []any{"-c", "cat base.txt; echo oops >&2; echo data > made.txt; echo scratch > /tmp/t; exit 3"}})
		if num(x, "exit_code") != 3 || str(x, "status") != "exited" || str(x, "stdout") != "committed before\n" || str(x, "stderr") != "oops\n" {
			t.Fatalf("session_exec: %v", x)
		}
		if !strings.Contains(text, "exited 3") || !strings.Contains(text, "not committed") || !strings.Contains(text, "committed before") {
			t.Errorf("session_exec text: %q", text)
		}
		// The sandbox lives on between calls: /tmp survives.
		x, _ = r.ok("session_exec", map[string]any{"session_id": sid, "command": "cat", "args": []any{"/tmp/t"}})
		if str(x, "stdout") != "scratch\n" {
			t.Errorf("/tmp did not survive between session_exec calls: %v", x)
		}
		got := r.progressOfRun(t, "session_exec", map[string]any{"session_id": sid, "command": "sh",
			"args": []any{"-c", "for i in 1 2 3 4; do echo step $i; sleep 0.3; done"}}, "tok-session")
		if len(got) < 2 || got[len(got)-1].Message != "step 4" {
			t.Errorf("progress notifications %d, last %+v; want several, ending with \"step 4\"", len(got), got[len(got)-1])
		}
	})

	t.Run("file tools with session_id", func(t *testing.T) {
		r := r.on(t)
		wr, text := r.ok("write_files", map[string]any{"session_id": sid, "files": []any{
			map[string]any{"path": "app/index.html", "content": "hello from the session\n"},
		}})
		if num(wr, "files") != 1 || wr["commit"] != nil || !strings.Contains(text, "not committed") {
			t.Errorf("write_files into a session: %v / %s", wr, text)
		}
		r.wantFile(map[string]any{"session_id": sid, "path": "made.txt"}, "data\n", "read_file from the session")
		l, _ := r.ok("list_files", map[string]any{"session_id": sid, "depth": 2})
		var paths []string
		for _, e := range l["entries"].([]any) {
			paths = append(paths, str(e.(map[string]any), "path"))
		}
		for _, want := range []string{"base.txt", "made.txt", "app/index.html"} {
			if !strings.Contains(" "+strings.Join(paths, " ")+" ", " "+want+" ") {
				t.Errorf("list_files of the session lacks %s: %v", want, paths)
			}
		}
		// Nothing reached the head yet.
		r.fails("read_file", map[string]any{"workspace": "live", "path": "made.txt"}, "not found")
		r.fails("read_file", map[string]any{"workspace": "live", "session_id": sid, "path": "made.txt"}, "not both")
	})

	var pid string
	t.Run("background server, logs, url", func(t *testing.T) {
		r := r.on(t)
		bg, text := r.ok("session_exec", map[string]any{"session_id": sid, "command": "python3",
			"args": []any{"-u", "-m", "http.server", "8765", "--bind", "127.0.0.1", "--directory", "app"}, "background": true})
		pid = str(bg, "process_id")
		if pid == "" || str(bg, "status") != "running" || !strings.Contains(text, "session_logs") {
			t.Fatalf("background session_exec: %v / %s", bg, text)
		}
		// Follow the logs until the server says it is up, continuing from next_offset.
		var out strings.Builder
		var next float64
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), "Serving HTTP") {
			if time.Now().After(deadline) {
				t.Fatalf("the server never said it was serving; logs so far: %q", out.String())
			}
			lg, _ := r.ok("session_logs", map[string]any{"session_id": sid, "process_id": pid, "offset": next, "wait_ms": 5000})
			if str(lg, "status") != "running" {
				t.Fatalf("the server is not running: %v", lg)
			}
			if lg["output_offset"].(float64) != next {
				t.Errorf("output_offset %v, want the offset asked for %v", lg["output_offset"], next)
			}
			out.WriteString(str(lg, "output"))
			next = lg["next_offset"].(float64)
		}
		// Once the server has printed all it prints at start (it may still be finishing its
		// banner line), asking from next_offset gives nothing new, at once, and the same offset.
		var lg map[string]any
		for range 10 {
			lg, text = r.ok("session_logs", map[string]any{"session_id": sid, "process_id": pid, "offset": next, "wait_ms": 300})
			if str(lg, "output") == "" {
				break
			}
			next = lg["next_offset"].(float64)
		}
		if str(lg, "output") != "" || lg["next_offset"].(float64) != next || !strings.Contains(text, "no new output") {
			t.Errorf("session_logs with nothing new: %v / %q", lg, text)
		}

		r.fails("session_url", map[string]any{"session_id": sid, "port": 9999}, "not exposed")
		r.fails("session_url", map[string]any{"session_id": sid, "port": 70000}, `invalid argument: port`)
		u, text := r.ok("session_url", map[string]any{"session_id": sid, "port": port})
		link := str(u, "url")
		if !strings.HasPrefix(link, "http://127.0.0.1:") || num(u, "port") != port || !strings.Contains(text, link) || u["listening"] != true || u["processes"] != nil {
			t.Fatalf("session_url: %v / %s", u, text)
		}
		code, body := httpGet(t, link+"index.html")
		if code != http.StatusOK || body != "hello from the session\n" {
			t.Fatalf("GET through the session URL: %d %q", code, body)
		}
		if code, _ := httpGet(t, strings.Replace(link, "/p/", "/p/x", 1)+"index.html"); code != http.StatusNotFound {
			t.Errorf("a wrong token reached the session: %d", code)
		}
		// The request shows up in the server's log, as new output after next.
		lg, _ = r.ok("session_logs", map[string]any{"session_id": sid, "process_id": pid, "offset": next, "wait_ms": 5000})
		if lg["output_offset"].(float64) != next || !strings.Contains(str(lg, "output"), "GET /index.html") {
			t.Errorf("the request is not in the new output: %v", lg)
		}
	})

	t.Run("session_kill", func(t *testing.T) {
		r := r.on(t)
		if pid == "" {
			t.Skip("no background process")
		}
		r.fails("session_kill", map[string]any{"session_id": sid, "process_id": "nope"}, "not found")
		r.fails("session_kill", map[string]any{"session_id": sid, "process_id": pid, "signal": "BOGUS"}, "is not a signal")
		k, text := r.ok("session_kill", map[string]any{"session_id": sid, "process_id": pid, "signal": "TERM"})
		if str(k, "signal") != "SIGTERM" || !strings.Contains(text, "sent SIGTERM") {
			t.Errorf("session_kill: %v / %s", k, text)
		}
		var lg map[string]any
		deadline := time.Now().Add(20 * time.Second)
		for {
			lg, text = r.ok("session_logs", map[string]any{"session_id": sid, "process_id": pid, "wait_ms": 2000})
			if str(lg, "status") == "exited" || time.Now().After(deadline) {
				break
			}
		}
		if str(lg, "status") != "exited" || lg["exit_code"] == nil {
			t.Fatalf("the server did not exit after TERM: %v", lg)
		}
		if num(lg, "exit_code") == 143 && !strings.Contains(text, "killed by SIGTERM") {
			t.Errorf("exit by TERM not explained: %q", text)
		}
		// Signalling a process that has exited is not an error.
		if k, _ := r.ok("session_kill", map[string]any{"session_id": sid, "process_id": pid, "signal": 9}); str(k, "status") != "exited" {
			t.Errorf("kill of an exited process: %v", k)
		}
	})

	t.Run("extend_session", func(t *testing.T) {
		r := r.on(t)
		e, text := r.ok("extend_session", map[string]any{"session_id": sid, "timeout_ms": 3600000})
		exp, err := time.Parse(time.RFC3339Nano, str(e, "expires_at"))
		if err != nil || exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("extend_session: expires_at %q, want about an hour from now (%v)", str(e, "expires_at"), err)
		}
		if !strings.Contains(text, "extended session "+sid) {
			t.Errorf("extend_session text: %q", text)
		}
	})

	t.Run("commit_session", func(t *testing.T) {
		r := r.on(t)
		c, text := r.ok("commit_session", map[string]any{"session_id": sid, "message": "add the app"})
		cid := str(sub(c, "commit"), "commit_id")
		if !strings.HasPrefix(cid, "c_") || !strings.Contains(text, cid) || !strings.Contains(text, "ended") {
			t.Fatalf("commit_session: %v / %s", c, text)
		}
		g, _ := r.ok("get_workspace", map[string]any{"workspace": "live"})
		if str(g, "head") != cid || g["session"] != nil {
			t.Errorf("after commit: head %s (want %s), session %v (want none)", str(g, "head"), cid, g["session"])
		}
		r.wantFile(map[string]any{"workspace": "live", "path": "app/index.html"}, "hello from the session\n", "the committed head lacks the session's file")
		h, _ := r.ok("workspace_history", map[string]any{"workspace": "live", "limit": 1})
		top := h["commits"].([]any)[0].(map[string]any)
		if str(top, "kind") != "session" || str(top, "message") != "add the app" || str(top, "parent") != head0 {
			t.Errorf("history's newest commit: %v", top)
		}
		r.fails("session_exec", map[string]any{"session_id": sid, "command": "true"}, "committed")
		r.fails("write_files", map[string]any{"session_id": sid, "files": []any{map[string]any{"path": "x", "content": "x"}}}, "expired")
		x, _ := r.ok("run_command", map[string]any{"workspace": "live", "command": "cat", "args": []any{"made.txt"}})
		if str(x, "stdout") != "data\n" {
			t.Errorf("run_command after the commit: %v", x)
		}
		// /tmp was not part of the commit.
		x, _ = r.ok("run_command", map[string]any{"workspace": "live", "command": "test", "args": []any{"-e", "/tmp/t"}})
		if num(x, "exit_code") == 0 {
			t.Error("/tmp of the session was committed")
		}
	})

	t.Run("discard_session", func(t *testing.T) {
		r := r.on(t)
		g, _ := r.ok("get_workspace", map[string]any{"workspace": "live"})
		head := str(g, "head")
		s, _ := r.ok("open_session", map[string]any{"workspace": "live"})
		id := str(s, "session_id")
		exp, _ := time.Parse(time.RFC3339Nano, str(s, "expires_at"))
		if d := time.Until(exp); d < 29*time.Minute || d > 31*time.Minute {
			t.Errorf("default lifetime: expires in %v, want 30 minutes", d)
		}
		r.ok("session_exec", map[string]any{"session_id": id, "command": "sh", "args": []any{"-c", "echo junk > junk.txt; rm base.txt"}})
		d, text := r.ok("discard_session", map[string]any{"session_id": id})
		if str(d, "state") != "discarded" || d["held_by_you"] != false || !strings.Contains(text, "dropped") || !strings.Contains(text, head) {
			t.Errorf("discard_session: %v / %s", d, text)
		}
		g, _ = r.ok("get_workspace", map[string]any{"workspace": "live"})
		if str(g, "head") != head || g["session"] != nil {
			t.Errorf("after discard: %v", g)
		}
		r.fails("read_file", map[string]any{"workspace": "live", "path": "junk.txt"}, "not found")
		r.ok("read_file", map[string]any{"workspace": "live", "path": "base.txt"})
		r.fails("discard_session", map[string]any{"session_id": id}, "discarded")
	})

	t.Run("a dropped connection detaches; a new one attaches", func(t *testing.T) {
		r := r.on(t)
		s, _ := r.ok("open_session", map[string]any{"workspace": "live"})
		id := str(s, "session_id")
		r.ok("session_exec", map[string]any{"session_id": id, "command": "sh", "args": []any{"-c", "echo wip > wip.txt"}})
		r.close() // the client goes away; mcp-go unregisters the session and the hook tells the engine
		got, err := eng.GetSession(context.Background(), id)
		if err != nil || got.State != "detached" {
			t.Fatalf("after the connection closed: state %q (%v), want detached", got.State, err)
		}
		// mcp-go's stdio session is a process-wide singleton, so the new connection has the same
		// id; what matters here is that the lease survived the disconnect and can be taken over.
		r2 := newRigOn(t, eng)
		r2.fails("run_command", map[string]any{"workspace": "live", "command": "true"}, "detached")
		a, text := r2.ok("attach_session", map[string]any{"workspace": "live"})
		if str(a, "session_id") != id || str(a, "state") != "attached" || a["held_by_you"] != true || !strings.Contains(text, "attached session "+id) {
			t.Fatalf("attach_session: %v / %s", a, text)
		}
		x, _ := r2.ok("session_exec", map[string]any{"session_id": id, "command": "cat", "args": []any{"wip.txt"}})
		if str(x, "stdout") != "wip\n" {
			t.Errorf("the attached session lost its uncommitted work: %v", x)
		}
		r2.ok("discard_session", map[string]any{"session_id": id})
	})
}

// TestSessionToolsReachTheEngine checks that errors of the engine's session rules arrive as tool
// errors with the engine's words (unknown session, wrong id shape).
func TestSessionToolsReachTheEngine(t *testing.T) {
	r := newRig(t)
	r.fails("session_exec", map[string]any{"session_id": "ses_doesnotexist", "command": "true"}, "not found")
	r.fails("session_exec", map[string]any{"session_id": "ws_1", "command": "true"}, "not a session id")
	r.fails("attach_session", map[string]any{"workspace": "nope"}, "not found")
	r.ok("create_workspace", map[string]any{"name": "plain", "exposed_ports": []any{3000}})
	r.fails("attach_session", map[string]any{"workspace": "plain"}, "no open session")
	r.fails("commit_session", map[string]any{"session_id": "ses_doesnotexist"}, "not found")
	s, _ := r.ok("open_session", map[string]any{"workspace": "plain"})
	id := str(s, "session_id")
	r.fails("session_url", map[string]any{"session_id": id, "port": 4000}, "not exposed")
	// This engine has no preview door (no Previews): session_url says so.
	r.fails("session_url", map[string]any{"session_id": id, "port": 3000}, "preview")
	r.fails("session_logs", map[string]any{"session_id": id, "process_id": "nope"}, "not found")
	r.ok("discard_session", map[string]any{"session_id": id})
}

// TestSessionURLRoundTrip: session_url asked right after a server was started in the background
// waits for it (with progress) and answers listening; for a server that crashed it answers, not
// failing, listening false with the crash's output and exit code and what to do next.
// open_session's exposed_ports add a port for that session, and update_workspace changes a
// workspace's name, labels and ports (ports not while the session is open).
func TestSessionURLRoundTrip(t *testing.T) {
	previewURL, bind := previewDoor(t)
	eng := newEngine(t, previewURL)
	bind(eng)
	r := newRigOn(t, eng)

	r.ok("create_workspace", map[string]any{"name": "preview", "exposed_ports": []any{8790}, "labels": map[string]any{"a": "1"}})
	r.ok("create_workspace", map[string]any{"name": "other"})
	s, text := r.ok("open_session", map[string]any{"workspace": "preview", "exposed_ports": []any{8791}})
	sid := str(s, "session_id")
	if ports, _ := s["exposed_ports"].([]any); len(ports) != 2 || ports[0] != 8790.0 || ports[1] != 8791.0 {
		t.Fatalf("open_session's exposed_ports: %v", s)
	}
	if !strings.Contains(text, `next: session_url {"port":8791`) {
		t.Errorf("open_session does not offer the session's own port: %s", text)
	}
	r.fails("open_session", map[string]any{"workspace": "other", "exposed_ports": []any{0}}, "exposed port 0")
	r.ok("write_files", map[string]any{"session_id": sid, "files": []any{map[string]any{"path": "index.html", "content": "late but here\n"}}})

	// A server that listens 1.5 s after it starts.
	r.ok("session_exec", map[string]any{"session_id": sid, "command": "sleep 1.5; exec python3 -m http.server 8790 --bind 127.0.0.1", "background": true})
	u, text, isErr := r.call(ctxT(t), "session_url", map[string]any{"session_id": sid, "port": 8790}, "tok-url")
	if isErr || u["listening"] != true || num(u, "waited_ms") < 1000 || !strings.Contains(text, "listening: yes") {
		t.Fatalf("session_url right after the start: %v / %s", u, text)
	}
	if code, body := httpGet(t, str(u, "url")+"index.html"); code != http.StatusOK || body != "late but here\n" {
		t.Fatalf("GET through the URL: %d %q", code, body)
	}
	var msgs []string
	for _, n := range r.progressOf("tok-url") {
		msgs = append(msgs, n.Message)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), "nothing listens on port 8790 yet") {
		t.Errorf("progress while waiting: %q", msgs)
	}

	// A server that crashes, on the session's own port.
	crash, _ := r.ok("session_exec", map[string]any{"session_id": sid, "command": "echo starting; echo 'OSError: [Errno 98] Address already in use' >&2; exit 3", "background": true})
	u, text = r.ok("session_url", map[string]any{"session_id": sid, "port": 8791, "wait_ms": 500})
	procs, _ := u["processes"].([]any)
	if u["listening"] != false || str(u, "url") == "" || len(procs) != 2 || !strings.Contains(str(u, "note"), "nothing listened on port 8791") {
		t.Fatalf("session_url with a crashed server: %v", u)
	}
	p, _ := procs[0].(map[string]any)
	if str(p, "process_id") != str(crash, "process_id") || str(p, "status") != "exited" || num(p, "exit_code") != 3 || !strings.Contains(str(p, "last_output"), "Address already in use") {
		t.Fatalf("the crashed server's report: %v", p)
	}
	if q, _ := procs[1].(map[string]any); str(q, "status") != "running" || !strings.Contains(str(q, "command"), "http.server 8790") {
		t.Errorf("the running server's report: %v", q)
	}
	for _, want := range []string{": exited 3, last output:", "Address already in use", `next: session_logs {"process_id":"` + str(crash, "process_id"), "next: session_url"} {
		if !strings.Contains(text, want) {
			t.Errorf("session_url's text lacks %q:\n%s", want, text)
		}
	}
	r.fails("session_url", map[string]any{"session_id": sid, "port": 8790, "wait_ms": -1}, "wait_ms")

	// update_workspace: name and labels while the session is open, ports not.
	w, text := r.ok("update_workspace", map[string]any{"workspace": "preview", "name": "preview2", "labels": map[string]any{"b": "2"}})
	if str(w, "name") != "preview2" || fmt.Sprint(w["labels"]) != "map[b:2]" || !strings.Contains(text, "updated workspace preview2") || sub(w, "session") == nil {
		t.Fatalf("update_workspace of a leased workspace: %v / %s", w, text)
	}
	out, _ := r.fails("update_workspace", map[string]any{"workspace": "preview2", "exposed_ports": []any{9000}}, "leased")
	if e := sub(out, "error"); str(e, "session_id") != sid || e["holder_is_you"] != true {
		t.Errorf("the lease error: %v", out)
	}
	r.fails("update_workspace", map[string]any{"workspace": "preview2", "name": "other"}, "already exists")
	r.fails("update_workspace", map[string]any{"workspace": "preview2"}, "nothing to change")
	r.fails("update_workspace", map[string]any{"workspace": "preview", "name": "x"}, "no workspace")
	r.ok("discard_session", map[string]any{"session_id": sid})
	w, _ = r.ok("update_workspace", map[string]any{"workspace": "preview2", "exposed_ports": []any{9000, 9001}, "labels": map[string]any{}})
	if fmt.Sprint(w["exposed_ports"]) != "[9000 9001]" || w["labels"] != nil {
		t.Fatalf("update_workspace after the session: %v", w)
	}
}
