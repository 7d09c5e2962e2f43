package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/tools/toolstest"
)

// The end-to-end tests build the real binary and drive it over stdio with the official MCP Go SDK
// client, pinned to protocol 2025-11-25.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sandkit-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sandkit-mcpd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type client struct {
	t        testing.TB
	cs       *mcp.ClientSession
	progress chan *mcp.ProgressNotificationParams
	// schemas checks every result call receives against its tool's outputSchema, with an
	// independent JSON Schema validator, error results included.
	schemas *toolstest.Validator
}

// dataDir returns a fresh data dir whose daemon (if any gets started) is stopped when the test
// ends, before the dir is removed.
func dataDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		stopDaemonOf(t, dir)
		killLeftovers(t, dir)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "daemon.log")); err == nil {
				t.Logf("daemon.log:\n%s", b)
			}
		}
	})
	return dir
}

// killLeftovers kills the processes still running from the data dir — by command line, working
// directory or open files: daemons of nested dirs, live sandboxes of sessions a test left open —
// and reports them: a passing test leaves none.
func killLeftovers(t testing.TB, dir string) {
	t.Helper()
	var left []int
	// Processes that are ending anyway get a moment to do so.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = processesFrom(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, pid := range left {
		cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("process %d was still running from %s after the test: %q", pid, dir, strings.ReplaceAll(string(cmd), "\x00", " "))
	}
}

// processesFrom lists the live processes (not zombies) running from dir.
func processesFrom(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !fromDir(pid, dir) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			s := string(st)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// fromDir reports whether a process runs from dir: its command line, working directory or an
// open file names it.
func fromDir(pid int, dir string) bool {
	p := "/proc/" + strconv.Itoa(pid)
	if cmd, err := os.ReadFile(p + "/cmdline"); err == nil && strings.Contains(string(cmd), dir) {
		return true
	}
	if cwd, err := os.Readlink(p + "/cwd"); err == nil && strings.HasPrefix(cwd, dir) {
		return true
	}
	fds, _ := os.ReadDir(p + "/fd")
	for _, fd := range fds {
		if l, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, dir) {
			return true
		}
	}
	return false
}

// stopDaemonOf stops the daemon serving dir, if one runs.
func stopDaemonOf(t testing.TB, dir string) {
	t.Helper()
	out, err := exec.Command(binary(t), "stop", "--data-dir", dir).CombinedOutput()
	if err != nil {
		t.Errorf("sandkit-mcp stop: %v\n%s", err, out)
	}
}

// newClient is an MCP client named name (the holder name other connections see in lease errors).
func newClient(t testing.TB, name string) (*client, *mcp.Client) {
	c := &client{t: t, progress: make(chan *mcp.ProgressNotificationParams, 100)}
	cl := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case c.progress <- r.Params:
			default:
			}
		},
	})
	return c, cl
}

// connectVia connects a client over a transport, pinned to protocol 2025-11-25; the session is
// closed when the test ends.
func connectVia(t testing.TB, name string, tr mcp.Transport) *client {
	t.Helper()
	c, cl := newClient(t, name)
	// The SSE transport keeps its stream under this context: it lives as long as the session.
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(time.Minute, cancel)
	cs, err := cl.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	timer.Stop()
	if err != nil {
		cancel()
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { cs.Close(); cancel() })
	if err := c.use(cs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// use makes c call over cs, checking every result against the output schemas cs lists.
func (c *client) use(cs *mcp.ClientSession) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := toolstest.ForSession(ctx, cs)
	if err != nil {
		return err
	}
	c.cs, c.schemas = cs, v
	return nil
}

// doorCommand is the stdio door for a data dir, as an agent would launch it. Its stderr goes to
// the test log.
func doorCommand(t testing.TB, dataDir string) *exec.Cmd {
	cmd := exec.Command(binary(t), "--data-dir", dataDir, "--log-level", "warn")
	cmd.Stderr = testLog{t}
	return cmd
}

// testLog writes to the test log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("door stderr: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// connect starts a stdio door on dataDir (which starts the daemon if none runs) and connects.
func connect(t testing.TB, dataDir string) *client {
	t.Helper()
	return connectVia(t, "e2e", &mcp.CommandTransport{Command: doorCommand(t, dataDir)})
}

// call invokes a tool and returns its structured result, its text, and whether it is an error.
func (c *client) call(tool string, args map[string]any) (map[string]any, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		c.t.Fatalf("%s: protocol error: %v", tool, err)
	}
	if err := c.schemas.Check(tool, res.StructuredContent); err != nil {
		c.t.Errorf("%v", err)
	}
	return decode(res)
}

func decode(res *mcp.CallToolResult) (map[string]any, string, bool) {
	var text strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	out := map[string]any{}
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
	}
	return out, text.String(), res.IsError
}

func (c *client) ok(tool string, args map[string]any) map[string]any {
	c.t.Helper()
	out, text, isErr := c.call(tool, args)
	if isErr {
		c.t.Fatalf("%s(%v): unexpected tool error: %s", tool, args, text)
	}
	return out
}

func (c *client) fails(tool string, args map[string]any, want string) {
	c.t.Helper()
	_, text, isErr := c.call(tool, args)
	if !isErr {
		c.t.Fatalf("%s(%v): expected a tool error containing %q, got success: %s", tool, args, want, text)
	}
	if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
		c.t.Fatalf("%s(%v): error %q does not mention %q", tool, args, text, want)
	}
}

func TestStdioStory(t *testing.T) {
	t.Parallel()
	c := connect(t, dataDir(t))
	tl, err := c.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Tools) < 13 {
		t.Fatalf("expected at least 13 tools, got %d", len(tl.Tools))
	}
	pl, err := c.cs.ListPrompts(context.Background(), nil)
	if err != nil || len(pl.Prompts) != 3 {
		t.Fatalf("prompts/list: %v %+v", err, pl)
	}
	gp, err := c.cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "durable_task", Arguments: map[string]string{"task": "build the site", "workspace": "story"}})
	if err != nil || len(gp.Messages) != 1 || !strings.Contains(gp.Messages[0].Content.(*mcp.TextContent).Text, "build the site") {
		t.Fatalf("prompts/get durable_task: %v %+v", err, gp)
	}
	for _, name := range []string{"durable_task", "live_preview", "recover_after_reconnect"} {
		_, err := c.cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: name})
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 || !strings.Contains(rpcErr.Message, "missing required argument") {
			t.Fatalf("%s without its required argument: %v, want a -32602 error naming the argument", name, err)
		}
	}
	lp, err := c.cs.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "live_preview", Arguments: map[string]string{"workspace": "site", "port": "3000"}})
	if err != nil || !strings.Contains(lp.Messages[0].Content.(*mcp.TextContent).Text, "session_url") {
		t.Fatalf("prompts/get live_preview: %v %+v", err, lp)
	}
	ws := c.ok("create_workspace", map[string]any{"name": "story", "labels": map[string]any{"e2e": "yes"}})
	if ws["name"] != "story" || !strings.HasPrefix(ws["workspace_id"].(string), "ws_") {
		t.Fatalf("create_workspace: %v", ws)
	}
	c.ok("write_files", map[string]any{"workspace": "story", "files": []any{map[string]any{"path": "hello.txt", "content": "hello\n"}}})
	r := c.ok("run_command", map[string]any{"workspace": "story", "command": "sh", "args": []any{"-c", "cat hello.txt; echo two > two.txt; exit 4"}})
	if r["exit_code"].(float64) != 4 || r["stdout"] != "hello\n" || r["commit_id"] == "" {
		t.Fatalf("run_command: %v", r)
	}
	r2 := c.ok("run_command", map[string]any{"workspace": "story", "command": "cat two.txt"})
	if r2["stdout"] != "two\n" || r2["unchanged"] != true || r2["commit_id"] != nil {
		t.Fatalf("second run must see the first's file, and change nothing: %v", r2)
	}
	// empty, write, the first run; the second changed nothing and made no commit.
	h := c.ok("workspace_history", map[string]any{"workspace": "story"})
	commits := h["commits"].([]any)
	if len(commits) != 3 {
		t.Fatalf("history: %v", h)
	}
	writeCommit := commits[1].(map[string]any)["commit_id"].(string)
	c.ok("fork_workspace", map[string]any{"workspace": "story", "name": "story-fork"})
	c.ok("run_command", map[string]any{"workspace": "story-fork", "command": "sh", "args": []any{"-c", "echo fork > f.txt"}})
	lf := c.ok("list_files", map[string]any{"workspace": "story"})
	if strings.Contains(mustJSON(lf), "f.txt") {
		t.Fatalf("fork's file visible in the original: %v", lf)
	}
	c.ok("restore_workspace", map[string]any{"workspace": "story", "commit_id": writeCommit})
	rf := c.ok("read_file", map[string]any{"workspace": "story", "path": "hello.txt"})
	if rf["content"] != "hello\n" {
		t.Fatalf("read_file after restore: %v", rf)
	}
	c.fails("read_file", map[string]any{"workspace": "story", "path": "two.txt"}, "not found")

	// Background run + get_run.
	bg := c.ok("run_command", map[string]any{"workspace": "story", "command": "sh", "args": []any{"-c", "sleep 0.2; echo bg"}, "background": true})
	id := bg["run_id"].(string)
	done := c.ok("get_run", map[string]any{"run_id": id, "wait_ms": 60000})
	if done["status"] != "exited" || !strings.Contains(done["stdout"].(string), "bg") {
		t.Fatalf("get_run: %v", done)
	}

	// Bad input: clear tool errors, head unchanged.
	before := c.ok("get_workspace", map[string]any{"workspace": "story"})["head"]
	c.fails("get_workspace", map[string]any{"workspace": "nope"}, "nope")
	c.fails("create_workspace", map[string]any{"name": "story"}, "already exists")
	c.fails("run_command", map[string]any{"workspace": "story", "command": ""}, "command")
	c.fails("run_command", map[string]any{"workspace": "story", "command": "true", "timeout_ms": -5}, "timeout")
	c.fails("run_command", map[string]any{"workspace": "story", "command": "true", "timeout_ms": 999999999999}, "timeout")
	c.fails("read_file", map[string]any{"workspace": "story", "path": "../etc/passwd"}, "workspace")
	c.fails("write_files", map[string]any{"workspace": "story", "files": []any{map[string]any{"path": "/etc/x", "content": "x"}}}, "workspace")
	c.fails("write_files", map[string]any{"workspace": "story", "files": []any{map[string]any{"path": "b.bin", "content": "!!notbase64", "encoding": "base64"}}}, "base64")
	c.fails("get_run", map[string]any{"run_id": "run_nope"}, "run_nope")
	c.fails("cancel_run", map[string]any{"run_id": id}, "already finished")
	c.fails("restore_workspace", map[string]any{"workspace": "story", "commit_id": "c_nope"}, "c_nope")
	if after := c.ok("get_workspace", map[string]any{"workspace": "story"})["head"]; after != before {
		t.Fatalf("head moved on failed calls: %v → %v", before, after)
	}
	c.ok("delete_workspace", map[string]any{"workspace": "story-fork"})
	c.fails("get_workspace", map[string]any{"workspace": "story-fork"}, "story-fork")
}

func TestProgressAndCancel(t *testing.T) {
	c := connect(t, dataDir(t))
	c.ok("create_workspace", map[string]any{"name": "p"})
	params := &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{
		"workspace": "p", "command": "sh", "args": []any{"-c", "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.3; done"},
	}}
	params.SetProgressToken("tok-1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if _, text, isErr := decode(res); isErr {
		t.Fatal(text)
	}
	var msgs []string
	for len(c.progress) > 0 {
		p := <-c.progress
		if p.ProgressToken != "tok-1" {
			t.Fatalf("progress for the wrong token: %v", p.ProgressToken)
		}
		msgs = append(msgs, p.Message)
	}
	if len(msgs) < 2 || !strings.Contains(strings.Join(msgs, "|"), "line-") {
		t.Fatalf("expected progress notifications carrying output lines, got %q", msgs)
	}

	// Cancelling the request (the SDK sends notifications/cancelled) kills the command.
	cctx, ccancel := context.WithCancel(context.Background())
	go func() { time.Sleep(500 * time.Millisecond); ccancel() }()
	start := time.Now()
	_, err = c.cs.CallTool(cctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{
		"workspace": "p", "command": "sh", "args": []any{"-c", "echo partial > cancelled.txt; sleep 30"},
	}})
	if err == nil {
		t.Fatal("a cancelled call should return the context error")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// The server recorded the run cancelled and did not commit it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, text, isErr := c.call("read_file", map[string]any{"workspace": "p", "path": "cancelled.txt"})
		if isErr && strings.Contains(text, "not found") {
			break
		}
		if !isErr {
			t.Fatal("a cancelled run was committed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("read_file: %s", text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
