package vercelfake

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestFaults: injected 429s carry Retry-After and are consumed; a 5xx after handling comes
// after the command really started (exactly one was posted); streams are cut after N lines
// (the command goes on) or right after the headers; non-streaming answers can be cut too.
func TestFaults(t *testing.T) {
	a := newAPI(t, Options{})

	t.Run("429 with Retry-After, then the real answer", func(t *testing.T) {
		a := a.with(t)
		a.fake.Inject(Fault{Method: "POST", Path: `^/v3/sandboxes$`, Status: 429, RetryAfter: 1500 * time.Millisecond})
		resp := a.request("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "persistent": false}, nil)
		if ra := resp.Header.Get("Retry-After"); ra != "2" {
			t.Fatalf("Retry-After %q, want 2 (seconds, rounded up)", ra)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		a.read(resp, "create", 429, &e)
		if e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("error body %+v", e)
		}
		if n := len(a.fake.Sessions()); n != 0 {
			t.Fatalf("a 429 before handling started %d sessions", n)
		}
		a.create(map[string]any{"name": "faulty", "persistent": false})
		if n := a.fake.Requests("POST", `^/v3/sandboxes$`); n != 2 {
			t.Fatalf("%d create requests counted, want 2", n)
		}
	})
	sid := a.fake.Sessions()[0].ID
	cmd := "/v2/sandboxes/sessions/" + sid + "/cmd"

	t.Run("custom body, Times", func(t *testing.T) {
		a := a.with(t)
		a.fake.Inject(Fault{Method: "GET", Path: `^/v2/sandboxes/sessions/[^/]+$`, Status: 502, Body: "<html>bad gateway</html>", Times: 2})
		for range 2 {
			if body := a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 502, nil); body != "<html>bad gateway</html>" {
				t.Fatalf("body %q", body)
			}
		}
		a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 200, nil)
	})

	t.Run("5xx after handling: the command ran", func(t *testing.T) {
		a := a.with(t)
		before := a.fake.Requests("POST", `/cmd$`)
		a.fake.Inject(Fault{Method: "POST", Path: `/cmd$`, Status: 503, AfterHandling: true})
		a.wantError("POST", cmd, map[string]any{"command": "sh", "args": []string{"-c", "echo ran > after.txt"}}, 503, "internal_server_error")
		if n := a.fake.Requests("POST", `/cmd$`) - before; n != 1 {
			t.Fatalf("%d command posts, want exactly 1", n)
		}
		var list struct{ Commands []tCommand }
		a.call("GET", cmd, nil, 200, &list)
		var done struct{ Command tCommand }
		a.call("GET", cmd+"/"+list.Commands[0].ID+"?wait=true", nil, 200, &done)
		if got := a.sh(sid, "cat after.txt").stdout; got != "ran\n" {
			t.Fatalf("after.txt %q", got)
		}
	})

	t.Run("attached stream cut after 2 lines; the command goes on", func(t *testing.T) {
		a := a.with(t)
		a.fake.Inject(Fault{Method: "POST", Path: `/cmd$`, Cut: true, CutAfterLines: 2})
		resp := a.request("POST", cmd, map[string]any{"command": "sh", "wait": true, "logs": true,
			"args": []string{"-c", "echo one; sleep 0.2; echo two; sleep 0.2; echo three > cut.txt"}}, nil)
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(resp.Body)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if len(lines) != 2 || sc.Err() == nil {
			t.Fatalf("read %d lines %q, then err %v; want 2 lines and a broken stream", len(lines), lines, sc.Err())
		}
		var first struct{ Command tCommand }
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Command.ID == "" {
			t.Fatalf("first line %q", lines[0])
		}
		var done struct{ Command tCommand }
		a.call("GET", cmd+"/"+first.Command.ID+"?wait=true", nil, 200, &done)
		if *done.Command.ExitCode != 0 {
			t.Fatalf("command %+v", done.Command)
		}
		if got := a.sh(sid, "cat cut.txt").stdout; got != "three\n" {
			t.Fatalf("cut.txt %q", got)
		}
		// The whole output is still there.
		if out, _ := a.logs(sid, first.Command.ID); out != "one\ntwo\n" {
			t.Fatalf("logs %q", out)
		}
	})

	t.Run("logs cut right after the headers", func(t *testing.T) {
		a := a.with(t)
		var started struct{ Command tCommand }
		a.call("POST", cmd, map[string]any{"command": "echo", "args": []string{"hi"}}, 200, &started)
		a.fake.Inject(Fault{Method: "GET", Path: `/logs$`, Cut: true})
		resp := a.request("GET", cmd+"/"+started.Command.ID+"/logs", nil, nil)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(data) != 0 || err == nil {
			t.Fatalf("status %d, %d bytes, err %v: want headers and then a broken body", resp.StatusCode, len(data), err)
		}
	})

	t.Run("a plain answer cut: no response at all", func(t *testing.T) {
		a := a.with(t)
		a.fake.Inject(Fault{Method: "GET", Path: `^/v2/sandboxes/sessions/[^/]+$`, Cut: true})
		req, _ := newRequest(a, "GET", "/v2/sandboxes/sessions/"+sid, "")
		r, err := a.client.Do(req)
		if err == nil {
			r.Body.Close()
			t.Fatalf("got status %d, want a broken connection", r.StatusCode)
		}
	})

	t.Run("cut after handling: the command ran", func(t *testing.T) {
		a := a.with(t)
		a.fake.Inject(Fault{Method: "POST", Path: `/cmd$`, Cut: true, AfterHandling: true})
		body := `{"command":"sh","args":["-c","echo x > cutafter.txt"]}`
		req, _ := newRequest(a, "POST", cmd, body)
		if r, err := a.client.Do(req); err == nil {
			r.Body.Close()
			t.Fatalf("got status %d, want a broken connection", r.StatusCode)
		}
		var list struct{ Commands []tCommand }
		a.call("GET", cmd, nil, 200, &list)
		if !strings.Contains(strings.Join(list.Commands[0].Args, " "), "cutafter") {
			t.Fatalf("newest command %+v", list.Commands[0])
		}
	})
}
