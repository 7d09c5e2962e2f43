package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/tools/toolstest"
)

// The round-trip tests drive the tools the way an agent does: the real engine (bbolt file, local
// bubblewrap provider) behind an mcp-go server, spoken to over in-process pipes by an independent
// client, the official Go SDK, pinned to the session-bearing protocol 2025-11-25.

// rig is one server + client pair over io.Pipe.
type rig struct {
	t        *testing.T
	eng      *engine.Engine
	cs       *sdk.ClientSession
	mu       *sync.Mutex
	progress map[string][]*sdk.ProgressNotificationParams // by token
	updated  *[]string                                    // URIs of notifications/resources/updated, in arrival order
	close    func()                                       // ends the connection (idempotent)
	schemas  *toolstest.Validator                         // every result is checked against its tool's outputSchema
}

// outputValidator lists the tools over the client session and compiles their output schemas.
func outputValidator(t *testing.T, cs *sdk.ClientSession) *toolstest.Validator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := toolstest.ForSession(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newEngine opens a real engine (see newEngineWith); previewURL (may be nil) is
// engine.Options.Previews (as a PreviewURLFunc).
func newEngine(t *testing.T, previewURL func(token string) string) *engine.Engine {
	t.Helper()
	return newEngineWith(t, func(o *engine.Options) {
		if previewURL != nil {
			o.Previews = engine.PreviewURLFunc(previewURL)
		}
	})
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigOn(t, newEngine(t, nil))
}

// newRigOn serves eng's tools, with the session hooks installed as cmd installs them, to a new
// client connection.
func newRigOn(t *testing.T, eng *engine.Engine) *rig {
	t.Helper()
	return newRigOpts(t, eng, Options{})
}

// newRigOpts is newRigOn with tool options (the progress timings are the rig's own).
func newRigOpts(t *testing.T, eng *engine.Engine, opts Options) *rig {
	t.Helper()
	s := server.NewMCPServer("sandkit-test", "0", append([]server.ServerOption{server.WithToolCapabilities(false), server.WithHooks(Hooks(eng))}, ServerOptions(eng)...)...)
	opts.ProgressInterval, opts.ProgressHeartbeat = 100*time.Millisecond, time.Second
	Register(s, eng, opts)

	c2sR, c2sW := io.Pipe() // client → server
	s2cR, s2cW := io.Pipe() // server → client
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.NewStdioServer(s).Listen(ctx, c2sR, s2cW) }()

	r := &rig{t: t, eng: eng, mu: new(sync.Mutex), progress: map[string][]*sdk.ProgressNotificationParams{}, updated: new([]string)}
	client := sdk.NewClient(&sdk.Implementation{Name: "tools-roundtrip", Version: "0"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			r.mu.Lock()
			defer r.mu.Unlock()
			tok := fmt.Sprint(req.Params.ProgressToken)
			r.progress[tok] = append(r.progress[tok], req.Params)
		},
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			r.mu.Lock()
			defer r.mu.Unlock()
			*r.updated = append(*r.updated, req.Params.URI)
		},
	})
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	cs, err := client.Connect(cctx, &sdk.IOTransport{Reader: s2cR, Writer: c2sW}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		cancel()
		t.Fatalf("connect: %v", err)
	}
	r.cs = cs
	r.schemas = outputValidator(t, cs)
	r.close = sync.OnceFunc(func() {
		cs.Close()
		c2sW.Close() // EOF: the stdio server unregisters the session (the disconnect hook runs) and returns
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("stdio server did not stop")
		}
		cancel()
	})
	t.Cleanup(r.close)
	return r
}

// on returns the rig reporting to t (a subtest): a failure then stops only that subtest.
func (r *rig) on(t *testing.T) *rig {
	c := *r
	c.t = t
	return &c
}

// call invokes a tool and returns its structured result, its text and its isError flag. A
// protocol error fails the test: domain failures must be tool errors.
func (r *rig) call(ctx context.Context, tool string, args map[string]any, token any) (map[string]any, string, bool) {
	r.t.Helper()
	p := &sdk.CallToolParams{Name: tool, Arguments: args}
	if token != nil {
		p.SetProgressToken(token)
	}
	res, err := r.cs.CallTool(ctx, p)
	if err != nil {
		r.t.Fatalf("%s: protocol error: %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if err := r.schemas.Check(tool, res.StructuredContent); err != nil {
		r.t.Errorf("%v", err)
	}
	out := map[string]any{}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			r.t.Fatalf("%s: structuredContent is not a JSON object: %s", tool, b)
		}
	}
	checkSameFacts(r.t, tool, out, text.String(), res.IsError)
	return out, text.String(), res.IsError
}

// checkSameFacts checks what a client shows the model either way: the text carries every next
// step of the structured result, and a failure's structured error carries a kind and the message
// the text starts with.
func checkSameFacts(t *testing.T, tool string, out map[string]any, text string, isErr bool) {
	t.Helper()
	next, _ := out["next"].([]any)
	for _, n := range next {
		c, _ := n.(map[string]any)
		if name := str(c, "tool"); !strings.Contains(text, "next: "+name) {
			t.Errorf("%s: structured next step %v is missing from the text %q", tool, c, text)
		}
	}
	if strings.Count(text, "\nnext: ") != len(next) {
		t.Errorf("%s: the text has %d next steps, the structured result %d: %q", tool, strings.Count(text, "\nnext: "), len(next), text)
	}
	e, hasErr := out["error"].(map[string]any)
	if isErr && !hasErr && out["run_id"] == nil {
		t.Errorf("%s: error result without a structured error: %v", tool, out)
	}
	if hasErr && (!isErr || str(e, "kind") == "" || !strings.Contains(text, str(e, "message"))) {
		t.Errorf("%s: structured error %v does not match the result (isError %v, text %q)", tool, e, isErr, text)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantFile reads a file with read_file's args and fails the test (what says which file) unless it
// holds want.
func (r *rig) wantFile(args map[string]any, want, what string) {
	r.t.Helper()
	f, _ := r.ok("read_file", args)
	if str(f, "content") != want {
		r.t.Errorf("%s: %v", what, f)
	}
}

// progressOf is the progress notifications the client got for token tok.
func (r *rig) progressOf(tok string) []*sdk.ProgressNotificationParams {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress[tok]
}

// progressOfRun calls a command tool (run_command, session_exec) with progress token tok, failing
// the test unless the command exits 0, and returns the progress notifications it sent.
func (r *rig) progressOfRun(t *testing.T, tool string, args map[string]any, tok string) []*sdk.ProgressNotificationParams {
	t.Helper()
	res, _, isErr := r.call(ctxT(t), tool, args, tok)
	if isErr || num(res, "exit_code") != 0 {
		t.Fatalf("%s with progress: %v", tool, res)
	}
	return r.progressOf(tok)
}

func (r *rig) ok(tool string, args map[string]any) (map[string]any, string) {
	r.t.Helper()
	out, text, isErr := r.call(ctxT(r.t), tool, args, nil)
	if isErr {
		r.t.Fatalf("%s(%v): unexpected tool error: %s", tool, args, text)
	}
	return out, text
}

func (r *rig) fails(tool string, args map[string]any, want string) (map[string]any, string) {
	r.t.Helper()
	out, text, isErr := r.call(ctxT(r.t), tool, args, nil)
	if !isErr {
		r.t.Fatalf("%s(%v): want a tool error containing %q, got success: %s", tool, args, want, text)
	}
	if !strings.Contains(text, want) {
		r.t.Fatalf("%s(%v): error %q does not contain %q", tool, args, text, want)
	}
	return out, text
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }
func sub(m map[string]any, k string) map[string]any {
	s, _ := m[k].(map[string]any)
	return s
}
func num(m map[string]any, k string) int64 { f, _ := m[k].(float64); return int64(f) }

func TestRoundTrip(t *testing.T) {
	r := newRig(t)

	t.Run("tools/list", func(t *testing.T) {
		res, err := r.cs.ListTools(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) != len(toolArguments) {
			t.Fatalf("listed %d tools, want %d", len(res.Tools), len(toolArguments))
		}
		for _, tool := range res.Tools {
			if tool.Annotations == nil || tool.Annotations.DestructiveHint == nil || tool.Annotations.OpenWorldHint == nil || tool.Title == "" {
				t.Errorf("%s: annotations or title lost on the wire: %+v", tool.Name, tool.Annotations)
			}
		}
	})

	ws, text := r.ok("create_workspace", map[string]any{"name": "rt", "labels": map[string]any{"suite": "tools"}})
	wsID, head0 := str(ws, "workspace_id"), str(ws, "head")
	if !strings.HasPrefix(wsID, "ws_") || !strings.HasPrefix(head0, "c_") || str(ws, "name") != "rt" {
		t.Fatalf("create_workspace: %v", ws)
	}
	if !strings.Contains(text, "rt") || !strings.Contains(text, wsID) {
		t.Errorf("create_workspace text %q names neither the workspace nor its id", text)
	}

	t.Run("errors are tool errors", func(t *testing.T) {
		r.fails("get_workspace", map[string]any{"workspace": "nope"}, "not found")
		r.fails("create_workspace", map[string]any{"name": "rt"}, "already exists")
		r.fails("run_command", map[string]any{"workspace": "rt", "command": "true", "policy": map[string]any{"allow": []any{"nope"}}}, "neither a preset")
		r.fails("get_run", map[string]any{"run_id": "run_doesnotexist"}, "not found")
		r.fails("read_file", map[string]any{"workspace": "rt", "path": "../etc/passwd"}, "/workspace")
	})

	t.Run("files", func(t *testing.T) {
		w, text := r.ok("write_files", map[string]any{"workspace": "rt", "files": []any{
			map[string]any{"path": "hello.txt", "content": "hello, world\n"},
			map[string]any{"path": "bin/run.sh", "content": "#!/bin/sh\necho ran\n", "mode": "0755"},
			map[string]any{"path": "blob.bin", "content": "AP8B", "encoding": "base64"},
		}})
		if c := sub(w, "commit"); !strings.HasPrefix(str(c, "commit_id"), "c_") || str(c, "kind") != "write" || num(w, "files") != 3 || !strings.Contains(text, str(c, "commit_id")) {
			t.Fatalf("write_files: %v / %s", w, text)
		}
		f, text := r.ok("read_file", map[string]any{"workspace": wsID, "path": "hello.txt"})
		if str(f, "content") != "hello, world\n" || str(f, "encoding") != "utf8" || num(f, "size") != 13 || f["next_offset"] != nil {
			t.Errorf("read_file: %v", f)
		}
		if !strings.Contains(text, "hello, world") {
			t.Errorf("read_file text lacks the content: %q", text)
		}
		b, _ := r.ok("read_file", map[string]any{"workspace": "rt", "path": "blob.bin"})
		if str(b, "encoding") != "base64" || str(b, "content") != "AP8B" {
			t.Errorf("binary read_file: %v", b)
		}
		part, _ := r.ok("read_file", map[string]any{"workspace": "rt", "path": "hello.txt", "offset": 7, "max_bytes": 3})
		if str(part, "content") != "wor" || num(part, "next_offset") != 10 {
			t.Errorf("windowed read_file: %v", part)
		}
		l, text := r.ok("list_files", map[string]any{"workspace": "rt", "depth": 2})
		entries, _ := l["entries"].([]any)
		var paths []string
		for _, e := range entries {
			paths = append(paths, str(e.(map[string]any), "path"))
		}
		got := strings.Join(paths, " ")
		for _, want := range []string{"hello.txt", "bin", "bin/run.sh", "blob.bin"} {
			if !strings.Contains(" "+got+" ", " "+want+" ") {
				t.Errorf("list_files lacks %s: %v", want, paths)
			}
		}
		if !strings.Contains(text, "bin/run.sh") {
			t.Errorf("list_files text lacks entries: %q", text)
		}
	})

	t.Run("run_command commits whatever the exit code", func(t *testing.T) {
		res, text := r.ok("run_command", map[string]any{"workspace": "rt", "command": "sh",
			"args": []any{"-c", "cat hello.txt; ./bin/run.sh; echo oops >&2; echo new > made.txt; exit 3"}})
		if num(res, "exit_code") != 3 || str(res, "status") != "exited" {
			t.Fatalf("run: %v", res)
		}
		if str(res, "stdout") != "hello, world\nran\n" || str(res, "stderr") != "oops\n" || res["stdout_omitted"] != nil || num(res, "stdout_bytes") != 17 {
			t.Errorf("output: %v", res)
		}
		commit := str(res, "commit_id")
		if !strings.HasPrefix(commit, "c_") {
			t.Fatalf("no commit: %v", res)
		}
		if !strings.Contains(text, "exited 3") || !strings.Contains(text, commit) || !strings.Contains(text, "hello, world") {
			t.Errorf("text %q lacks the summary or the output", text)
		}
		f, _ := r.ok("read_file", map[string]any{"workspace": "rt", "path": "made.txt"})
		if str(f, "content") != "new\n" {
			t.Errorf("the failed command's file did not persist: %v", f)
		}
		h, text := r.ok("workspace_history", map[string]any{"workspace": "rt"})
		commits, _ := h["commits"].([]any)
		if len(commits) < 3 || str(commits[0].(map[string]any), "commit_id") != commit || str(commits[0].(map[string]any), "kind") != "run" {
			t.Errorf("history does not start with the run's commit: %v", h)
		}
		if !strings.Contains(text, commit+"  ") || !strings.Contains(text, "[head]") {
			t.Errorf("history text: %q", text)
		}
	})

	t.Run("large output is bounded", func(t *testing.T) {
		const n = 200000
		var total int64
		for i := 1; i <= n; i++ {
			total += int64(len(strconv.Itoa(i)) + 1)
		}
		res, _ := r.ok("run_command", map[string]any{"workspace": "rt", "command": "seq", "args": []any{"1", strconv.Itoa(n)}})
		out := str(res, "stdout")
		if num(res, "stdout_omitted") == 0 || num(res, "stdout_bytes") != total {
			t.Fatalf("stdout_omitted=%v stdout_bytes=%d, want >0 and %d", res["stdout_omitted"], num(res, "stdout_bytes"), total)
		}
		if next, _ := res["next"].([]any); len(next) != 1 || str(next[0].(map[string]any), "tool") != "get_run" {
			t.Errorf("a truncated run's next step is get_run: %v", res["next"])
		}
		if len(out) > 17<<10 || !strings.HasPrefix(out, "1\n2\n3\n") || !strings.HasSuffix(out, fmt.Sprintf("%d\n", n)) {
			t.Errorf("bounded stdout is %d bytes, starts %q, ends %q", len(out), out[:min(10, len(out))], out[max(0, len(out)-10):])
		}
		m := regexp.MustCompile(`\[… (\d+) bytes omitted …\]\n`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no marker in stdout:\n%s", out[8000:8400])
		}
		omitted, _ := strconv.ParseInt(m[1], 10, 64)
		// The head ends on a line break of the stream itself, so the counts must add up exactly.
		i := strings.Index(out, m[0])
		j := i + len(m[0])
		if head, tail := out[:i], out[j:]; int64(len(head))+omitted+int64(len(tail)) != total {
			t.Errorf("head %d + omitted %d + tail %d != total %d", len(head), omitted, len(tail), total)
		}

		g, _ := r.ok("get_run", map[string]any{"run_id": str(res, "run_id")})
		gout := str(g, "stdout")
		if num(g, "stdout_omitted") == 0 || len(gout) < 64<<10 || len(gout) > 74<<10 || !strings.HasSuffix(gout, fmt.Sprintf("%d\n", n)) {
			t.Errorf("get_run stdout is %d bytes (want 64 KiB tail + 8 KiB head), ends %q", len(gout), gout[max(0, len(gout)-10):])
		}
	})

	t.Run("invalid UTF-8 output", func(t *testing.T) {
		res, text := r.ok("run_command", map[string]any{"workspace": "rt", "command": "printf", "args": []any{`a\377b\n`}})
		if str(res, "stdout") != "a\uFFFDb\n" || num(res, "stdout_bytes") != 4 {
			t.Errorf("stdout = %q (%d bytes)", str(res, "stdout"), num(res, "stdout_bytes"))
		}
		if !strings.Contains(text, "not valid UTF-8") {
			t.Errorf("text does not say the output was not UTF-8: %q", text)
		}
	})

	t.Run("progress carries output lines", func(t *testing.T) {
		got := r.progressOfRun(t, "run_command", map[string]any{"workspace": "rt", "command": "sh",
			"args": []any{"-c", "for i in 1 2 3 4 5 6; do echo step $i; sleep 0.3; done"}}, "tok-progress")
		if len(got) < 2 {
			t.Fatalf("got %d progress notifications, want several", len(got))
		}
		last := -1.0
		sawStep := false
		for _, p := range got {
			if p.Progress <= last {
				t.Errorf("progress did not increase: %v after %v", p.Progress, last)
			}
			last = p.Progress
			if strings.HasPrefix(p.Message, "step ") {
				sawStep = true
			}
		}
		if !sawStep {
			t.Errorf("no progress message carried an output line: %+v", got)
		}
		if final := got[len(got)-1].Message; final != "step 6" {
			t.Errorf("last progress message %q, want the last line \"step 6\"", final)
		}
	})

	t.Run("cancellation kills the command and commits nothing", func(t *testing.T) {
		before, _ := r.ok("get_workspace", map[string]any{"workspace": "rt"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := r.cs.CallTool(ctx, &sdk.CallToolParams{Name: "run_command", Arguments: map[string]any{
				"workspace": "rt", "command": "sleep", "args": []any{"30"}, "idempotency_key": "cancel-me"}})
			done <- err
		}()
		time.Sleep(1500 * time.Millisecond)
		cancel() // the SDK sends notifications/cancelled
		if err := <-done; err == nil {
			t.Error("the cancelled call returned no error to the client")
		}
		// The same idempotency key returns the run already made: it must read cancelled.
		var run map[string]any
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, text, _ := r.call(ctxT(t), "run_command", map[string]any{
				"workspace": "rt", "command": "sleep", "args": []any{"30"}, "idempotency_key": "cancel-me"}, nil)
			run = out
			if str(run, "status") == "cancelled" || time.Now().After(deadline) {
				if str(run, "status") != "cancelled" {
					t.Fatalf("run did not read cancelled: %v %s", run, text)
				}
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if elapsed := time.Since(start); elapsed > 20*time.Second {
			t.Errorf("cancel took %v: sleep 30 was not killed promptly", elapsed)
		}
		if str(run, "commit_id") != "" {
			t.Errorf("a cancelled run committed: %v", run)
		}
		after, _ := r.ok("get_workspace", map[string]any{"workspace": "rt"})
		if str(after, "head") != str(before, "head") {
			t.Errorf("head moved from %s to %s after a cancelled run", str(before, "head"), str(after, "head"))
		}
	})

	t.Run("background, get_run and cancel_run", func(t *testing.T) {
		bg, text := r.ok("run_command", map[string]any{"workspace": "rt", "command": "sh", "args": []any{"-c", "sleep 0.5; echo done; echo done > bg.txt"}, "background": true})
		id := str(bg, "run_id")
		if !strings.HasPrefix(id, "run_") || (str(bg, "status") != "queued" && str(bg, "status") != "running") || !strings.Contains(text, "get_run") {
			t.Fatalf("background run: %v / %s", bg, text)
		}
		g, _ := r.ok("get_run", map[string]any{"run_id": id, "wait_ms": 60000})
		if str(g, "status") != "exited" || str(g, "stdout") != "done\n" || !strings.HasPrefix(str(g, "commit_id"), "c_") {
			t.Errorf("get_run after wait: %v", g)
		}

		bg, _ = r.ok("run_command", map[string]any{"workspace": "rt", "command": "sleep", "args": []any{"30"}, "background": true})
		id = str(bg, "run_id")
		time.Sleep(500 * time.Millisecond)
		c, text := r.ok("cancel_run", map[string]any{"run_id": id})
		if str(c, "status") != "cancelled" || !strings.Contains(text, "cancelled") {
			t.Errorf("cancel_run: %v / %s", c, text)
		}
		r.fails("cancel_run", map[string]any{"run_id": id}, "already finished")
	})

	t.Run("restore and fork", func(t *testing.T) {
		h, _ := r.ok("workspace_history", map[string]any{"workspace": "rt", "limit": 1000})
		commits := h["commits"].([]any)
		first := str(commits[len(commits)-1].(map[string]any), "commit_id")
		if first != head0 {
			t.Fatalf("oldest commit %s, want the first head %s", first, head0)
		}
		fk, _ := r.ok("fork_workspace", map[string]any{"workspace": "rt", "name": "rt-fork"})
		if str(fk, "name") != "rt-fork" || str(fk, "workspace_id") == wsID {
			t.Fatalf("fork: %v", fk)
		}
		rs, text := r.ok("restore_workspace", map[string]any{"workspace": "rt", "commit_id": head0})
		if str(rs, "head") == head0 || !strings.Contains(text, head0) {
			t.Errorf("restore made no new commit: %v / %s", rs, text)
		}
		r.fails("read_file", map[string]any{"workspace": "rt", "path": "hello.txt"}, "not found")
		f, _ := r.ok("read_file", map[string]any{"workspace": "rt-fork", "path": "hello.txt"})
		if str(f, "content") != "hello, world\n" {
			t.Errorf("fork lost its files: %v", f)
		}
	})

	t.Run("list and delete", func(t *testing.T) {
		l, _ := r.ok("list_workspaces", map[string]any{"label": "suite=tools"})
		if ws := l["workspaces"].([]any); len(ws) != 2 {
			t.Errorf("list_workspaces by label: %v", l)
		}
		d, _ := r.ok("delete_workspace", map[string]any{"workspace": "rt-fork"})
		if str(d, "workspace_id") == "" || str(d, "name") != "rt-fork" {
			t.Errorf("delete_workspace: %v", d)
		}
		r.fails("get_workspace", map[string]any{"workspace": "rt-fork"}, "not found")
	})
}
