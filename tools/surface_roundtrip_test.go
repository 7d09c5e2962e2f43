package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestAgentSurfaceRoundTrip drives what agents write and need, through the official Go SDK
// client, every result checked against its output schema: shell command lines, a foreground
// command that outlives yield_ms and still commits, get_run offsets, list_runs after a cancelled
// call, home paths, deletes and cleaned paths.
func TestAgentSurfaceRoundTrip(t *testing.T) {
	r := newRig(t)
	r.ok("create_workspace", map[string]any{"name": "s"})

	t.Run("shell lines", func(t *testing.T) {
		r := r.on(t)
		res, _ := r.ok("run_command", map[string]any{"workspace": "s", "command": "mkdir -p calc && cd calc && echo 'x = 1' > x.py && pwd && ls | wc -l"})
		if str(res, "stdout") != "/workspace/calc\n1\n" || num(res, "exit_code") != 0 || res["shell"] != true {
			t.Fatalf("a shell line: %v", res)
		}
		// args present, even empty: the program is run directly, no shell.
		res, _ = r.ok("run_command", map[string]any{"workspace": "s", "command": "echo a && echo b", "args": []any{}})
		if num(res, "exit_code") != 127 || res["shell"] == true {
			t.Errorf("a command with args [] must run as a program (not found here): %v", res)
		}
		r.wantFile(map[string]any{"workspace": "s", "path": "calc/x.py"}, "x = 1\n", "the shell line's file")
	})

	t.Run("honest history", func(t *testing.T) {
		r := r.on(t)
		w0, _ := r.ok("get_workspace", map[string]any{"workspace": "s"})
		h0, _ := r.ok("workspace_history", map[string]any{"workspace": "s"})
		res, text := r.ok("run_command", map[string]any{"workspace": "s", "command": "ls -la; cat calc/x.py"})
		if res["unchanged"] != true || str(res, "commit_id") != "" || !strings.Contains(text, "no commit") {
			t.Errorf("a run that changes nothing: %v / %s", res, text)
		}
		w1, _ := r.ok("get_workspace", map[string]any{"workspace": "s"})
		h1, _ := r.ok("workspace_history", map[string]any{"workspace": "s"})
		if str(w1, "head") != str(w0, "head") || len(h1["commits"].([]any)) != len(h0["commits"].([]any)) {
			t.Fatalf("a changeless run moved the head or grew the history: %v → %v", w0["head"], w1["head"])
		}
		// A touch is a change, and the commit lists it.
		res, _ = r.ok("run_command", map[string]any{"workspace": "s", "command": "touch calc/x.py && rm -f nothing"})
		if res["unchanged"] == true || str(res, "commit_id") == "" {
			t.Fatalf("a touch must commit: %v", res)
		}
		h2, text := r.ok("workspace_history", map[string]any{"workspace": "s", "limit": 1})
		c := h2["commits"].([]any)[0].(map[string]any)
		if c["changes_known"] != true || !strings.Contains(fmt.Sprint(c["changes"]), "calc/x.py") || !strings.Contains(text, "~calc/x.py") {
			t.Errorf("the commit does not list its change: %v / %s", c, text)
		}
		// Restore reports what it changed against the head it replaced; to the same state, no commit.
		rs, text := r.ok("restore_workspace", map[string]any{"workspace": "s", "commit_id": str(w0, "head")})
		if rc := sub(rs, "commit"); rc == nil || num(rc, "changed_files") == 0 || !strings.Contains(text, "calc/x.py") {
			t.Errorf("restore does not report its change: %v / %s", rs, text)
		}
		rs, text = r.ok("restore_workspace", map[string]any{"workspace": "s", "commit_id": str(w0, "head")})
		if rs["unchanged"] != true || rs["commit"] != nil || !strings.Contains(text, "no commit") {
			t.Errorf("restore to the state the head has: %v / %s", rs, text)
		}
		// A session that changes nothing ends without a commit.
		ses, _ := r.ok("open_session", map[string]any{"workspace": "s"})
		cs, text := r.ok("commit_session", map[string]any{"session_id": str(ses, "session_id")})
		if cs["unchanged"] != true || cs["commit"] != nil || !strings.Contains(text, "no commit") {
			t.Errorf("commit_session without a change: %v / %s", cs, text)
		}
	})

	t.Run("a foreground command outliving yield_ms still commits", func(t *testing.T) {
		r := r.on(t)
		res, text := r.ok("run_command", map[string]any{"workspace": "s", "command": "echo started; sleep 2; echo done > late.txt", "yield_ms": 300})
		id := str(res, "run_id")
		if str(res, "status") != "running" || res["running"] != true || !strings.Contains(str(res, "stdout"), "started") {
			t.Fatalf("yielded run: %v", res)
		}
		if !strings.Contains(text, "next: get_run") {
			t.Errorf("the text does not say how to follow it: %q", text)
		}
		// Only what is new: from the offsets the yielded result gave.
		g, _ := r.ok("get_run", map[string]any{"run_id": id, "wait_ms": 60000,
			"stdout_offset": num(res, "stdout_next_offset"), "stderr_offset": num(res, "stderr_next_offset")})
		for str(g, "status") == "running" {
			g, _ = r.ok("get_run", map[string]any{"run_id": id, "wait_ms": 60000,
				"stdout_offset": num(g, "stdout_next_offset"), "stderr_offset": num(g, "stderr_next_offset")})
		}
		if str(g, "status") != "exited" || !strings.HasPrefix(str(g, "commit_id"), "c_") || strings.Contains(str(g, "stdout"), "started") {
			t.Fatalf("after the yield: %v", g)
		}
		r.wantFile(map[string]any{"workspace": "s", "path": "late.txt"}, "done\n", "the yielded run's file")
	})

	t.Run("a foreground session command outliving yield_ms goes on", func(t *testing.T) {
		r := r.on(t)
		ses, _ := r.ok("open_session", map[string]any{"workspace": "s"})
		sid := str(ses, "session_id")
		x, _ := r.ok("session_exec", map[string]any{"session_id": sid, "command": "echo early; sleep 1.5; echo fin", "yield_ms": 300})
		if str(x, "status") != "running" || x["yielded"] != true || str(x, "process_id") == "" || !strings.Contains(str(x, "stdout"), "early") {
			t.Fatalf("yielded session_exec: %v", x)
		}
		next, _ := x["next"].([]any)
		logArgs := sub(next[0].(map[string]any), "args")
		out := ""
		for {
			lg, _ := r.ok("session_logs", map[string]any{"session_id": sid, "process_id": str(x, "process_id"), "offset": num(logArgs, "offset"), "wait_ms": 10000})
			out += str(lg, "output")
			logArgs = map[string]any{"offset": float64(num(lg, "next_offset"))}
			if str(lg, "status") == "exited" {
				break
			}
		}
		if out != "fin\n" {
			t.Errorf("session_logs after the yield returned %q, want only the new output", out)
		}
		r.ok("discard_session", map[string]any{"session_id": sid})
	})

	t.Run("get_run offsets return only what is new", func(t *testing.T) {
		r := r.on(t)
		res, _ := r.ok("run_command", map[string]any{"workspace": "s", "command": "printf 'one\\ntwo\\nthree\\n'; printf 'e1\\n' >&2"})
		id := str(res, "run_id")
		g, text := r.ok("get_run", map[string]any{"run_id": id, "stdout_offset": 4, "stderr_offset": 3})
		if str(g, "stdout") != "two\nthree\n" || num(g, "stdout_offset") != 4 || num(g, "stdout_next_offset") != 14 || str(g, "stderr") != "" || num(g, "stderr_next_offset") != 3 {
			t.Errorf("get_run from offsets: %v", g)
		}
		if !strings.Contains(text, "stdout bytes 4-14 of 14") {
			t.Errorf("text does not place the window: %q", text)
		}
		r.fails("get_run", map[string]any{"run_id": id, "stdout_offset": 99}, "stdout_offset")
	})

	t.Run("list_runs finds a run whose call was cancelled", func(t *testing.T) {
		r := r.on(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := r.cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_command", Arguments: map[string]any{"workspace": "s", "command": "sleep 30"}})
			done <- err
		}()
		time.Sleep(1500 * time.Millisecond)
		cancel()
		<-done
		var runs []any
		deadline := time.Now().Add(20 * time.Second)
		for {
			l, _ := r.ok("list_runs", map[string]any{"workspace": "s", "limit": 1})
			runs, _ = l["runs"].([]any)
			if len(runs) == 1 && str(runs[0].(map[string]any), "status") == "cancelled" || time.Now().After(deadline) {
				if next, _ := l["next_cursor"].(string); next == "" {
					t.Errorf("a limited page of a longer list has no next_cursor: %v", l)
				}
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(runs) != 1 || str(runs[0].(map[string]any), "command") != "sleep 30" || str(runs[0].(map[string]any), "status") != "cancelled" {
			t.Fatalf("list_runs after a cancelled call: %v", runs)
		}
		l, _ := r.ok("list_runs", map[string]any{"workspace": "s", "status": "exited"})
		for _, x := range l["runs"].([]any) {
			if str(x.(map[string]any), "status") != "exited" {
				t.Errorf("status filter: %v", x)
			}
		}
		r.fails("list_runs", map[string]any{"workspace": "s", "status": "done"}, "status")
	})

	t.Run("home paths, deletes and cleaned paths", func(t *testing.T) {
		r := r.on(t)
		r.ok("write_files", map[string]any{"workspace": "s", "files": []any{
			map[string]any{"path": "~/.bashrc", "content": "export GREETING=hi\n"},
			map[string]any{"path": "//workspace//tmpdir/a.txt", "content": "a\n"},
			map[string]any{"path": "tmpdir/b.txt", "content": "b\n"},
		}})
		res, _ := r.ok("run_command", map[string]any{"workspace": "s", "command": "cat ~/.bashrc; ls tmpdir"})
		if str(res, "stdout") != "export GREETING=hi\na.txt\nb.txt\n" {
			t.Errorf("the home file and the cleaned path: %v", res)
		}
		f, _ := r.ok("read_file", map[string]any{"workspace": "s", "path": "~/.bashrc"})
		if str(f, "content") != "export GREETING=hi\n" || str(f, "path") != "~/.bashrc" {
			t.Errorf("read_file ~/.bashrc: %v", f)
		}
		home, _ := r.ok("list_files", map[string]any{"workspace": "s", "path": "~"})
		if b, _ := json.Marshal(home); !strings.Contains(string(b), `"~/.bashrc"`) {
			t.Errorf("list_files ~ does not list ~/.bashrc: %v", home)
		}
		before, _ := r.ok("get_workspace", map[string]any{"workspace": "s"})
		// One bad path among good ones changes nothing.
		r.fails("write_files", map[string]any{"workspace": "s", "delete": []any{"tmpdir"}}, "recursive")
		r.fails("write_files", map[string]any{"workspace": "s", "files": []any{map[string]any{"path": "new.txt", "content": "x"}}, "delete": []any{"nope.txt"}}, "nope.txt")
		r.fails("write_files", map[string]any{"workspace": "s", "files": []any{map[string]any{"path": "../x", "content": "x"}}}, "files[0].path")
		if after, _ := r.ok("get_workspace", map[string]any{"workspace": "s"}); str(after, "head") != str(before, "head") {
			t.Fatalf("a refused write moved the head")
		}
		d, _ := r.ok("write_files", map[string]any{"workspace": "s", "delete": []any{"tmpdir"}, "recursive": true})
		if num(d, "deleted") != 1 || num(d, "files") != 0 {
			t.Errorf("delete: %v", d)
		}
		r.fails("read_file", map[string]any{"workspace": "s", "path": "tmpdir/a.txt"}, "not found")
		r.fails("read_file", map[string]any{"workspace": "s", "path": "calc"}, "list_files")
	})
}
