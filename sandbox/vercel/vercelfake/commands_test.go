package vercelfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestCommands runs commands for real in one session: attached runs stream NDJSON with stdout
// and stderr apart, as produced; detached runs report at once and are followed through wait and
// logs; kill delivers signals; timeouts kill with SIGKILL; env and cwd behave; a client that
// goes away does not end its command; after stop every command endpoint answers 410 and open
// streams end with a sandbox_stopped error line.
func TestCommands(t *testing.T) {
	a := newAPI(t, Options{})
	created := a.create(map[string]any{
		"name": "cmds", "persistent": false,
		"env": map[string]string{"SANDBOX_VAR": "from-sandbox", "OVERRIDE": "sandbox"},
	})
	sid := created.Session.ID
	cmdPath := "/v2/sandboxes/sessions/" + sid + "/cmd"

	t.Run("attached echo", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "echo", "args": []string{"hello"}, "env": map[string]string{}, "sudo": false})
		if r.stdout != "hello\n" || r.stderr != "" || r.lines != 3 {
			t.Fatalf("stdout %q stderr %q lines %d, want hello and 3 lines", r.stdout, r.stderr, r.lines)
		}
		if r.last.ExitCode == nil || *r.last.ExitCode != 0 || r.last.DurationMs == nil || r.last.ID != r.first.ID {
			t.Fatalf("final line %+v", r.last)
		}
		if r.first.Name != "echo" || len(r.first.Args) != 1 || r.first.Cwd != "/vercel/sandbox" || r.first.SessionID != sid || r.first.StartedAt == 0 {
			t.Fatalf("first line %+v", r.first)
		}
	})

	t.Run("stdout and stderr apart, exit status", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "sh", "args": []string{"-c", "echo out; echo err >&2; exit 3"}})
		if r.stdout != "out\n" || r.stderr != "err\n" || *r.last.ExitCode != 3 {
			t.Fatalf("stdout %q stderr %q exit %v", r.stdout, r.stderr, *r.last.ExitCode)
		}
	})

	t.Run("without logs: two lines", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "echo", "args": []string{"quiet"}, "logs": false})
		if r.lines != 2 || r.stdout != "" || *r.last.ExitCode != 0 {
			t.Fatalf("%d lines, stdout %q", r.lines, r.stdout)
		}
	})

	t.Run("env merges over the sandbox env", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "sh", "args": []string{"-c", `echo "$SANDBOX_VAR $OVERRIDE $CMD_VAR"`},
			"env": map[string]string{"OVERRIDE": "cmd", "CMD_VAR": "c"}})
		if r.stdout != "from-sandbox cmd c\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
	})

	t.Run("cwd maps /vercel/sandbox onto the backend workspace", func(t *testing.T) {
		a := a.with(t)
		a.sh(sid, "mkdir -p sub/dir")
		for _, tc := range []struct{ cwd, reported, pwd string }{
			{"", "/vercel/sandbox", "/workspace\n"},
			{"/vercel/sandbox/sub", "/vercel/sandbox/sub", "/workspace/sub\n"},
			{"sub/dir", "/vercel/sandbox/sub/dir", "/workspace/sub/dir\n"},
			{"/tmp", "/tmp", "/tmp\n"},
		} {
			body := map[string]any{"command": "pwd"}
			if tc.cwd != "" {
				body["cwd"] = tc.cwd
			}
			r := a.run(sid, body)
			if r.first.Cwd != tc.reported || r.stdout != tc.pwd {
				t.Errorf("cwd %q: reported %q (want %q), pwd %q (want %q)", tc.cwd, r.first.Cwd, tc.reported, r.stdout, tc.pwd)
			}
		}
	})

	t.Run("output is streamed as produced", func(t *testing.T) {
		a := a.with(t)
		st := a.stream("POST", cmdPath, map[string]any{"command": "sh", "wait": true, "logs": true,
			"args": []string{"-c", "echo first; while [ ! -e go1 ]; do sleep 0.05; done; echo second"}})
		var got []string
		for len(got) < 2 { // the command line, then "first" while the command still waits
			m, err := st.next()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(m["command"])+string(m["data"]))
		}
		if !strings.Contains(got[1], "first") {
			t.Fatalf("lines %q", got)
		}
		a.sh(sid, "touch go1")
		rest, _ := io.ReadAll(st.resp.Body)
		if !strings.Contains(string(rest), `"second\n"`) || !strings.Contains(string(rest), `"exitCode":0`) {
			t.Fatalf("rest of the stream: %s", rest)
		}
	})

	t.Run("split UTF-8 is never cut inside a character", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "sh", "args": []string{"-c", `printf '\303'; sleep 0.2; printf '\251\n'`}})
		if r.stdout != "é\n" {
			t.Fatalf("stdout %q", r.stdout)
		}
	})

	t.Run("command not found", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "no-such-program-xyz"})
		if *r.last.ExitCode != 127 || !strings.Contains(r.stderr, "not found") {
			t.Fatalf("exit %d stderr %q", *r.last.ExitCode, r.stderr)
		}
	})

	t.Run("the command outlives a client that went away", func(t *testing.T) {
		a := a.with(t)
		before := a.fake.Requests("GET", `/cmd$`)
		st := a.stream("POST", cmdPath, map[string]any{"command": "sh", "wait": true, "logs": true,
			"args": []string{"-c", "while [ ! -e go2 ]; do sleep 0.05; done; echo finished > marker"}})
		m, err := st.next()
		if err != nil {
			t.Fatal(err)
		}
		var c tCommand
		_ = json.Unmarshal(m["command"], &c)
		st.resp.Body.Close() // the client goes away
		a.sh(sid, "touch go2")
		var done struct{ Command tCommand }
		a.call("GET", cmdPath+"/"+c.ID+"?wait=true", nil, 200, &done)
		if done.Command.ExitCode == nil || *done.Command.ExitCode != 0 {
			t.Fatalf("command %+v", done.Command)
		}
		if r := a.sh(sid, "cat marker"); r.stdout != "finished\n" {
			t.Fatalf("marker %q", r.stdout)
		}
		if a.fake.Requests("GET", `/cmd$`) != before {
			t.Fatal("Requests counted a path it should not match")
		}
	})

	t.Run("detached: wait and logs", func(t *testing.T) {
		a := a.with(t)
		var started struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "sh", "args": []string{"-c", "echo out; echo err >&2; sleep 0.3; echo more"}}, 200, &started)
		if started.Command.ExitCode != nil || started.Command.ID == "" {
			t.Fatalf("detached start %+v", started.Command)
		}
		var done struct{ Command tCommand }
		a.call("GET", cmdPath+"/"+started.Command.ID+"?wait=true", nil, 200, &done)
		if done.Command.ExitCode == nil || *done.Command.ExitCode != 0 || done.Command.DurationMs == nil {
			t.Fatalf("wait: %+v", done.Command)
		}
		out, streams := a.logs(sid, started.Command.ID)
		if out != "out\nerr\nmore\n" || streams["stderr"] {
			t.Fatalf("logs %q (streams %v); detached output is all stdout", out, streams)
		}
		// Replay works any number of times.
		if again, _ := a.logs(sid, started.Command.ID); again != out {
			t.Fatalf("second replay %q", again)
		}
	})

	t.Run("logs follow live output and end with the command", func(t *testing.T) {
		a := a.with(t)
		var started struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "sh", "args": []string{"-c", "echo a; while [ ! -e go3 ]; do sleep 0.05; done; echo b"}}, 200, &started)
		st := a.stream("GET", cmdPath+"/"+started.Command.ID+"/logs", nil)
		m, err := st.next()
		if err != nil || !strings.Contains(string(m["data"]), "a") {
			t.Fatalf("first log line %v %v", m, err)
		}
		a.sh(sid, "touch go3")
		rest, err := io.ReadAll(st.resp.Body)
		if err != nil || !strings.Contains(string(rest), `"b\n"`) {
			t.Fatalf("rest %q %v", rest, err)
		}
	})

	t.Run("kill delivers the signal to a detached command", func(t *testing.T) {
		a := a.with(t)
		var started struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "sh", "args": []string{"-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`}}, 200, &started)
		id := started.Command.ID
		st := a.stream("GET", cmdPath+"/"+id+"/logs", nil)
		if m, err := st.next(); err != nil || !strings.Contains(string(m["data"]), "ready") {
			t.Fatalf("log %v %v", m, err)
		}
		var killed struct{ Command tCommand }
		a.call("POST", cmdPath+"/"+id+"/kill", map[string]any{"signal": 15}, 200, &killed)
		var done struct{ Command tCommand }
		a.call("GET", cmdPath+"/"+id+"?wait=true", nil, 200, &done)
		if *done.Command.ExitCode != 7 {
			t.Fatalf("exit %d, want 7 from the trap", *done.Command.ExitCode)
		}
		if out, _ := a.logs(sid, id); !strings.Contains(out, "got TERM") {
			t.Fatalf("logs %q", out)
		}
	})

	t.Run("kill ends an attached command with 128+signal", func(t *testing.T) {
		a := a.with(t)
		st := a.stream("POST", cmdPath, map[string]any{"command": "sleep", "args": []string{"60"}, "wait": true, "logs": true})
		m, err := st.next()
		if err != nil {
			t.Fatal(err)
		}
		var c tCommand
		_ = json.Unmarshal(m["command"], &c)
		a.call("POST", cmdPath+"/"+c.ID+"/kill", map[string]any{"signal": 2}, 200, nil)
		m, err = st.next()
		if err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(m["command"], &c)
		if c.ExitCode == nil || *c.ExitCode != 130 {
			t.Fatalf("final line %s", m["command"])
		}
	})

	t.Run("timeout kills with SIGKILL: 137", func(t *testing.T) {
		a := a.with(t)
		r := a.run(sid, map[string]any{"command": "sleep", "args": []string{"30"}, "timeout": 300})
		if *r.last.ExitCode != 137 {
			t.Fatalf("attached exit %d", *r.last.ExitCode)
		}
		var started, done struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "sleep", "args": []string{"30"}, "timeout": 300}, 200, &started)
		a.call("GET", cmdPath+"/"+started.Command.ID+"?wait=true", nil, 200, &done)
		if *done.Command.ExitCode != 137 {
			t.Fatalf("detached exit %d", *done.Command.ExitCode)
		}
	})

	t.Run("list newest first, unknown ids", func(t *testing.T) {
		a := a.with(t)
		var last struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "true"}, 200, &last)
		var list struct{ Commands []tCommand }
		a.call("GET", cmdPath, nil, 200, &list)
		if len(list.Commands) < 10 || list.Commands[0].ID != last.Command.ID {
			t.Fatalf("%d commands, first %s, want %s", len(list.Commands), list.Commands[0].ID, last.Command.ID)
		}
		for i := 1; i < len(list.Commands); i++ {
			if list.Commands[i].StartedAt > list.Commands[i-1].StartedAt {
				t.Fatalf("not newest first at %d", i)
			}
		}
		a.wantError("GET", cmdPath+"/cmd_nope", nil, 404, "not_found")
		a.wantError("POST", cmdPath+"/cmd_nope/kill", map[string]any{"signal": 15}, 404, "not_found")
		a.wantError("POST", cmdPath, map[string]any{"args": []string{"x"}}, 400, "bad_request")
		a.wantError("POST", cmdPath, map[string]any{"command": "true", "bogus": 1}, 400, "bad_request")
	})

	t.Run("stop ends open streams; then every command endpoint answers 410", func(t *testing.T) {
		a := a.with(t)
		var started struct{ Command tCommand }
		a.call("POST", cmdPath, map[string]any{"command": "sh", "args": []string{"-c", "echo up; sleep 60"}}, 200, &started)
		id := started.Command.ID
		logs := a.stream("GET", cmdPath+"/"+id+"/logs", nil)
		if m, err := logs.next(); err != nil || !strings.Contains(string(m["data"]), "up") {
			t.Fatalf("log %v %v", m, err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		var waitStatus int
		var waitBody []byte
		var waitErr error
		go func() {
			defer wg.Done()
			waitStatus, waitBody, waitErr = a.callAsync("GET", cmdPath+"/"+id+"?wait=true", "")
		}()
		// The waiter is in (its request was counted) before the stop.
		waitForRequests(t, a, "GET", `/cmd/`+id+`$`, 1)

		var stopped struct {
			Session  tSession
			Sandbox  tSandbox
			Snapshot *tSnapshot
		}
		raw := a.call("POST", "/v2/sandboxes/sessions/"+sid+"/stop", nil, 200, &stopped)
		checkSessionShape(t, raw, "session")
		s := stopped.Session
		if s.Status != "stopped" || s.StoppedAt == 0 || s.Duration == nil || s.ActiveCPUDurationMs == nil || s.NetworkTransfer == nil || stopped.Snapshot != nil {
			t.Fatalf("stop answered %s", raw)
		}
		if stopped.Sandbox.Status != "stopped" {
			t.Fatalf("sandbox %+v", stopped.Sandbox)
		}
		rest, _ := io.ReadAll(logs.resp.Body)
		if !strings.Contains(string(rest), `"stream":"error"`) || !strings.Contains(string(rest), "sandbox_stopped") {
			t.Fatalf("open logs stream ended with %q", rest)
		}
		wg.Wait()
		if waitErr != nil {
			t.Fatal(waitErr)
		}
		if waitStatus != http.StatusGone || !strings.Contains(string(waitBody), "sandbox_stopped") {
			t.Fatalf("waiter got %d %s", waitStatus, waitBody)
		}
		a.wantError("POST", cmdPath, map[string]any{"command": "true"}, 410, "sandbox_stopped")
		a.wantError("GET", cmdPath, nil, 410, "sandbox_stopped")
		a.wantError("GET", cmdPath+"/"+id, nil, 410, "sandbox_stopped")
		a.wantError("GET", cmdPath+"/"+id+"/logs", nil, 410, "sandbox_stopped")
		a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/fs/read", map[string]any{"path": "x"}, 410, "sandbox_stopped")
		a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/extend-timeout", map[string]any{"duration": 1000}, 410, "sandbox_stopped")
		// Stop again: the state as it is.
		a.call("POST", "/v2/sandboxes/sessions/"+sid+"/stop", nil, 200, &stopped)
		if stopped.Session.Status != "stopped" {
			t.Fatalf("second stop %+v", stopped.Session)
		}
		var got struct{ Session tSession }
		a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 200, &got)
		if got.Session.Status != "stopped" {
			t.Fatalf("get session %+v", got.Session)
		}
	})
}

// logs reads a command's whole log stream: the concatenated data and which streams occurred.
func (a *api) logs(sid, cid string) (string, map[string]bool) {
	a.t.Helper()
	st := a.stream("GET", "/v2/sandboxes/sessions/"+sid+"/cmd/"+cid+"/logs", nil)
	var out strings.Builder
	streams := map[string]bool{}
	for {
		m, err := st.next()
		if err == io.EOF {
			return out.String(), streams
		}
		if err != nil {
			a.t.Fatal(err)
		}
		var stream, data string
		_ = json.Unmarshal(m["stream"], &stream)
		if err := json.Unmarshal(m["data"], &data); err != nil {
			a.t.Fatalf("log line %v", m)
		}
		streams[stream] = true
		out.WriteString(data)
	}
}

// waitForRequests waits until the fake has received n requests matching method and re. The
// fake counts a request when it arrives, before handling it.
func waitForRequests(t *testing.T, a *api, method, re string, n int) {
	t.Helper()
	for i := 0; a.fake.Requests(method, re) < n; i++ {
		if i > 2000 {
			t.Fatalf("the fake never received %s %s", method, re)
		}
		select {
		case <-t.Context().Done():
			t.Fatal("test ended")
		default:
		}
		yieldBriefly()
	}
}
