package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		// The engine's message is kept word for word when it already names its category.
		{fmt.Errorf("%w: no workspace with id or name %q; list_workspaces shows the existing ones", engine.ErrNotFound, "demo"),
			`not found: no workspace with id or name "demo"; list_workspaces shows the existing ones`},
		{fmt.Errorf("%w: a workspace named %q already exists; pick another name", engine.ErrExists, "demo"),
			`already exists: a workspace named "demo" already exists; pick another name`},
		{fmt.Errorf("%w: command is empty", engine.ErrInvalid), "invalid argument: command is empty"},
		{fmt.Errorf("%w: %w: mode is required", engine.ErrPolicy, policies.ErrInvalid), "policy error: invalid policy: mode is required"},
		{fmt.Errorf("%w: head moved from c_a to c_b while the command ran", engine.ErrBusy), "busy: head moved from c_a to c_b while the command ran"},
		{fmt.Errorf("%w: session ses_1 held by claude-code until 12:00; use attach_session", engine.ErrLeased),
			"workspace is leased by a session: session ses_1 held by claude-code until 12:00; use attach_session"},
		{fmt.Errorf("%w: session ses_1 belongs to another connection", engine.ErrNotHolder),
			"not the session holder: session ses_1 belongs to another connection"},
		{fmt.Errorf("session ses_1 %w at 12:00", engine.ErrExpired), "session ses_1 expired at 12:00"},
		{fmt.Errorf("%w: could not start a sandbox: bwrap missing", engine.ErrProvider),
			"sandbox provider error: could not start a sandbox: bwrap missing"},
		{fmt.Errorf("%w: write_files was cancelled before it started", engine.ErrCancelled),
			"cancelled: write_files was cancelled before it started"},
		{engine.ErrClosed, "engine is shutting down; retry once the server is back (your MCP client may need to reconnect)"},
		{fmt.Errorf("%w: %w", engine.ErrNotFound, errors.New("not found: nope.txt: no such file or directory")),
			"not found: nope.txt: no such file or directory"},
		// A category is added only when the message does not carry it.
		{fmt.Errorf("workspace demo: %w", wrapOnly{engine.ErrNotFound, "no such thing"}), "not found: workspace demo: no such thing"},
		{fmt.Errorf("bad: %w", policies.ErrInvalid), "bad: invalid policy"},
		{context.Canceled, "cancelled: the request was cancelled before it finished; nothing was committed by it"},
		{errors.New("bbolt: database not open"), "internal error: bbolt: database not open (a server fault, not a problem with your arguments; retrying may help; the server log has details)"},
	}
	for _, tc := range tests {
		if got := errorMessage(tc.err); got != tc.want {
			t.Errorf("errorMessage(%q)\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}

// wrapOnly wraps a sentinel without its text, to test that the category is added.
type wrapOnly struct {
	sentinel error
	msg      string
}

func (w wrapOnly) Error() string { return w.msg }
func (w wrapOnly) Unwrap() error { return w.sentinel }

// TestFailIsErrorResult checks that every engine sentinel becomes an isError tool result (never a
// Go error) whose text is the engine's message.
func TestFailIsErrorResult(t *testing.T) {
	ts := newToolset(nil, nil, Options{})
	for _, sentinel := range errorCategories {
		err := fmt.Errorf("%w: what happened; what to do next", sentinel)
		res := ts.fail("some_tool", err)
		if !res.IsError {
			t.Errorf("%v: result is not an error", sentinel)
		}
		text := resultText(t, res)
		if !strings.Contains(text, "what happened; what to do next") || !strings.Contains(text, sentinel.Error()) {
			t.Errorf("%v: message %q lost the engine's words", sentinel, text)
		}
	}
}

func resultText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if res == nil || len(res.Content) == 0 {
		t.Fatalf("result has no content: %+v", res)
	}
	tc, ok := res.Content[0].(mcp.TextContent)
	if !ok {
		t.Fatalf("first content is %T, want text", res.Content[0])
	}
	return tc.Text
}

// callTool invokes a registered tool's handler with the given JSON arguments.
func callTool(t *testing.T, tools []server.ServerTool, name, args string) *mcp.CallToolResult {
	t.Helper()
	for _, st := range tools {
		if st.Tool.Name != name {
			continue
		}
		var req mcp.CallToolRequest
		req.Params.Name = name
		req.Params.RawArguments = json.RawMessage(args)
		res, err := st.Handler(context.Background(), req)
		if err != nil {
			t.Fatalf("%s returned a Go error (a protocol error for the client): %v", name, err)
		}
		return res
	}
	t.Fatalf("no tool %s", name)
	return nil
}

// TestArgumentErrors checks that bad arguments are isError results with a message that names the
// argument and says what to give, before the engine is involved (the engine here is nil).
func TestArgumentErrors(t *testing.T) {
	tools := newToolset(nil, nil, Options{}).all()
	tests := []struct {
		tool, args string
		want       []string
	}{
		{"get_workspace", `{}`, []string{`invalid argument "workspace"`, "list_workspaces"}},
		{"get_workspace", `{"workspace": "  "}`, []string{`invalid argument "workspace"`}},
		{"get_workspace", `{"workspace": 7}`, []string{`invalid argument "workspace": expected a string, got a JSON number`}},
		{"get_workspace", `{"workspace": "w", "session_id": "ses_1"}`, []string{`unknown argument "session_id"`, "get_workspace takes only workspace"}},
		{"get_workspace", `[1,2]`, []string{"expected a JSON object with the arguments workspace"}},
		{"run_command", `{"command": "ls"}`, []string{`invalid argument "workspace"`}},
		{"run_command", `{"workspace": "w"}`, []string{`invalid argument "command": missing or empty`, `"sh"`}},
		{"run_command", `{"workspace": "w", "command": ""}`, []string{`invalid argument "command"`}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": 90000000}`, []string{`invalid argument "timeout_ms"`, "86400000"}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": -1}`, []string{`invalid argument "timeout_ms"`}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": "10"}`, []string{`invalid argument "timeout_ms": expected an integer, got a JSON string`}},
		{"run_command", `{"workspace": "w", "command": "ls", "args": "-la"}`, []string{`invalid argument "args": expected an array`}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"mode": "open"}}`, []string{`invalid argument "policy": invalid policy: unknown mode "open"`, "deny-all, allow-all or allow"}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"mode": "allow"}}`, []string{`invalid argument "policy"`, "needs at least one domain"}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"mode": "allow", "domains": ["https://x.com/"]}}`, []string{`invalid argument "policy"`, "x.com"}},
		{"create_workspace", `{"policy": {"mode": "deny-all", "domains": ["a.com"]}}`, []string{`invalid argument "policy"`, "takes no domains"}},
		{"create_workspace", `{"policy": {}}`, []string{`invalid argument "policy"`, "mode is required"}},
		{"get_run", `{}`, []string{`invalid argument "run_id"`}},
		{"get_run", `{"run_id": "run_x", "wait_ms": 700000}`, []string{`invalid argument "wait_ms"`, "600000"}},
		{"cancel_run", `{"run_id": ""}`, []string{`invalid argument "run_id"`}},
		{"write_files", `{"workspace": "w"}`, []string{`invalid argument "files": missing or empty`}},
		{"write_files", `{"workspace": "w", "files": []}`, []string{`invalid argument "files"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "", "content": "x"}]}`, []string{`invalid argument "files[0].path"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x"}, {"path": "b", "content": "x", "encoding": "latin1"}]}`,
			[]string{`invalid argument "files[1].encoding"`, `"utf8"`, `"base64"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "not base64!", "encoding": "base64"}]}`,
			[]string{`invalid argument "files[0].content": not valid base64`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x", "mode": "rwx"}]}`, []string{`invalid argument "files[0].mode"`, `"0755"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x", "mode": "17777"}]}`, []string{`invalid argument "files[0].mode"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "contents": "x"}]}`, []string{`unknown argument "contents"`}},
		{"read_file", `{"workspace": "w"}`, []string{`invalid argument "path"`}},
		{"read_file", `{"workspace": "w", "path": "a", "encoding": "hex"}`, []string{`invalid argument "encoding"`}},
		{"read_file", `{"workspace": "w", "path": "a", "offset": -5}`, []string{`invalid argument "offset"`}},
		{"read_file", `{"workspace": "w", "path": "a", "max_bytes": 999999999}`, []string{`invalid argument "max_bytes"`, "16777216"}},
		{"list_files", `{"workspace": "w", "depth": 17}`, []string{`invalid argument "depth"`, "1 to 16"}},
		{"workspace_history", `{"workspace": "w", "limit": 5000}`, []string{`invalid argument "limit"`, "1000"}},
		{"restore_workspace", `{"workspace": "w"}`, []string{`invalid argument "commit_id"`, "workspace_history"}},
		{"fork_workspace", `{}`, []string{`invalid argument "workspace"`}},
		{"delete_workspace", `{}`, []string{`invalid argument "workspace"`}},
	}
	for _, tc := range tests {
		res := callTool(t, tools, tc.tool, tc.args)
		if !res.IsError {
			t.Errorf("%s %s: not an error result", tc.tool, tc.args)
			continue
		}
		text := resultText(t, res)
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %s:\n got %q\nwant it to contain %q", tc.tool, tc.args, text, w)
			}
		}
	}
}

// TestPanicIsErrorResult: a handler fault must not crash the server or become a protocol error.
func TestPanicIsErrorResult(t *testing.T) {
	// The nil engine makes any call that reaches it panic.
	tools := newToolset(nil, nil, Options{}).all()
	res := callTool(t, tools, "list_workspaces", `{}`)
	if !res.IsError || !strings.Contains(resultText(t, res), "internal error") {
		t.Errorf("panic became %+v", res)
	}
}
