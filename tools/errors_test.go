package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

func TestFailureOf(t *testing.T) {
	tests := []struct {
		err            error
		kind, headline string
	}{
		// Errors wrapping an engine sentinel keep their words; the kind is the sentinel's code.
		{fmt.Errorf("%w: no workspace with id or name %q", engine.ErrNotFound, "demo"), "not_found", `not found: no workspace with id or name "demo"`},
		{fmt.Errorf("%w: a workspace named %q already exists", engine.ErrExists, "demo"), "exists", `already exists: a workspace named "demo" already exists`},
		{engine.ArgError("timeout_ms", "5 is too small"), "invalid_argument", "invalid argument: timeout_ms: 5 is too small"},
		{fmt.Errorf("%w: %w: mode is required", engine.ErrPolicy, policies.ErrInvalid), "policy", "policy error: invalid policy: mode is required"},
		{fmt.Errorf("%w: session ses_1 held by claude-code", engine.ErrLeased), "leased", "workspace is leased by a session: session ses_1 held by claude-code"},
		{fmt.Errorf("%w: session ses_1 belongs to another connection", engine.ErrNotHolder), "not_holder", "not the session holder: session ses_1 belongs to another connection"},
		{fmt.Errorf("%w: could not start a sandbox", engine.ErrProvider), "provider", "sandbox provider error: could not start a sandbox"},
		{engine.ErrClosed, "shutting_down", "the server is shutting down; retry once it is back (your MCP client may need to reconnect)"},
		{fmt.Errorf("bad: %w", policies.ErrInvalid), "invalid_argument", "invalid_argument: bad: invalid policy"},
		{context.Canceled, "cancelled", "cancelled: the request was cancelled before it finished; nothing was committed by it"},
		{&noConnectionError{tool: "open_session"}, "no_connection", "open_session needs an MCP connection"},
		{errors.New("bbolt: database not open"), "internal", "internal error: bbolt: database not open (a server fault"},
	}
	for _, tc := range tests {
		f, headline := failureOf(tc.err)
		if f.Error.Kind != tc.kind || !strings.HasPrefix(headline, tc.headline) {
			t.Errorf("failureOf(%q) = kind %q, headline %q\nwant kind %q, headline starting %q", tc.err, f.Error.Kind, headline, tc.kind, tc.headline)
		}
		if !slices.Contains(errorKinds(), f.Error.Kind) {
			t.Errorf("kind %q is not among the declared kinds %v", f.Error.Kind, errorKinds())
		}
	}
}

// TestFailureCarriesFields: an engine error's fields and next calls reach the structured result
// and the text alike.
func TestFailureCarriesFields(t *testing.T) {
	ts := newToolset(nil, nil, Options{})
	res := ts.fail("some_tool", engine.ArgError("wait_ms", "700000 is more than 600000"))
	f, ok := res.StructuredContent.(failure)
	if !ok || !res.IsError {
		t.Fatalf("result %+v is not a structured failure", res)
	}
	if f.Error.Argument != "wait_ms" || f.Error.Kind != "invalid_argument" {
		t.Errorf("structured error = %+v", f.Error)
	}
	if text := resultText(t, res); !strings.Contains(text, `details: {"argument":"wait_ms"}`) {
		t.Errorf("text %q lacks the fields", text)
	}
}

// TestFailIsErrorResult checks that every engine sentinel becomes an isError tool result (never a
// Go error) whose text is the engine's message.
func TestFailIsErrorResult(t *testing.T) {
	ts := newToolset(nil, nil, Options{})
	for _, sentinel := range []error{engine.ErrNotFound, engine.ErrExists, engine.ErrInvalid, engine.ErrPolicy, engine.ErrBusy,
		engine.ErrLeased, engine.ErrNotHolder, engine.ErrExpired, engine.ErrProvider, engine.ErrCancelled, engine.ErrSetup} {
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
	return callToolCtx(t, context.Background(), tools, name, args)
}

// TestArgumentErrors checks that bad arguments are isError results with a message that names the
// argument and says what to give, whether the tools layer (the JSON shape) or the engine (every
// rule and limit) refuses them; nothing reaches a sandbox (workspace "w" does not exist).
func TestArgumentErrors(t *testing.T) {
	tools := newToolset(nil, newEngine(t, nil), Options{}).all()
	tests := []struct {
		tool, args string
		want       []string
	}{
		{"get_workspace", `{}`, []string{`invalid argument: workspace`, "list_workspaces"}},
		{"get_workspace", `{"workspace": "  "}`, []string{`invalid argument: workspace`}},
		{"get_workspace", `{"workspace": 7}`, []string{`invalid argument: workspace: expected a string, got a JSON number`}},
		{"get_workspace", `{"workspace": "w", "session_id": "ses_1"}`, []string{`unknown argument "session_id"`, "get_workspace takes only workspace"}},
		{"get_workspace", `[1,2]`, []string{"expected a JSON object with the arguments workspace"}},
		{"run_command", `{"command": "ls"}`, []string{`invalid argument: workspace`}},
		{"run_command", `{"workspace": "w"}`, []string{`invalid argument: command is empty`, "shell line"}},
		{"run_command", `{"workspace": "w", "command": ""}`, []string{`invalid argument: command`}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": 90000000}`, []string{`invalid argument: timeout_ms`, "86400000"}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": -1}`, []string{`invalid argument: timeout_ms`}},
		{"run_command", `{"workspace": "w", "command": "ls", "timeout_ms": "10"}`, []string{`invalid argument: timeout_ms: expected an integer, got a JSON string`}},
		{"run_command", `{"workspace": "w", "command": "ls", "args": "-la"}`, []string{`invalid argument: args: expected an array`}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"mode": "open"}}`, []string{`invalid argument: mode: unknown argument "mode"`}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"allow": ["npmjs"]}}`, []string{`invalid argument: policy`, "neither a preset", "npm"}},
		{"run_command", `{"workspace": "w", "command": "ls", "policy": {"allow": ["https://x.com/"]}}`, []string{`policy error`, "x.com"}},
		{"create_workspace", `{"policy": {"allow": ["*", "a.com"]}}`, []string{`invalid argument: policy`, "stands alone"}},
		{"create_workspace", `{"policy": {"credentials": {"github": {"env": "SANDKIT_CRED_GH"}}}}`, []string{`invalid argument: policy`, "not in allow"}},
		{"get_run", `{}`, []string{`invalid argument: run_id`}},
		{"get_run", `{"run_id": "run_x", "wait_ms": 700000}`, []string{`invalid argument: wait_ms`, "600000"}},
		{"cancel_run", `{"run_id": ""}`, []string{`invalid argument: run_id`}},
		{"write_files", `{"workspace": "w"}`, []string{`invalid argument: files and delete are both empty`}},
		{"write_files", `{"workspace": "w", "files": []}`, []string{`invalid argument: files and delete are both empty`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "", "content": "x"}]}`, []string{`invalid argument: files[0].path`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x"}, {"path": "b", "content": "x", "encoding": "latin1"}]}`,
			[]string{`invalid argument: files[1].encoding`, `"utf8"`, `"base64"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "not base64!", "encoding": "base64"}]}`,
			[]string{`invalid argument: files[0].content: not valid base64`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x", "mode": "rwx"}]}`, []string{`invalid argument: files[0].mode`, `"0755"`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "content": "x", "mode": "17777"}]}`, []string{`invalid argument: files[0].mode`}},
		{"write_files", `{"workspace": "w", "files": [{"path": "a", "contents": "x"}]}`, []string{`unknown argument "contents"`}},
		{"read_file", `{"workspace": "w"}`, []string{`invalid argument: path`}},
		{"read_file", `{"workspace": "w", "path": "a", "encoding": "hex"}`, []string{`invalid argument: encoding`}},
		{"read_file", `{"workspace": "w", "path": "a", "offset": -5}`, []string{`invalid argument: offset`}},
		{"read_file", `{"workspace": "w", "path": "a", "max_bytes": 999999999}`, []string{`invalid argument: max_bytes`, "16777216"}},
		{"list_files", `{"workspace": "w", "depth": 17}`, []string{`invalid argument: depth 17 is more than the maximum 16`}},
		{"workspace_history", `{"workspace": "w", "limit": 5000}`, []string{`invalid argument: limit`, "1000"}},
		{"restore_workspace", `{"workspace": "w"}`, []string{`invalid argument: commit_id is required`, "workspace_history"}},
		{"fork_workspace", `{}`, []string{`invalid argument: workspace`}},
		{"delete_workspace", `{}`, []string{`invalid argument: workspace`}},
	}
	for _, tc := range tests {
		res := callTool(t, tools, tc.tool, tc.args)
		_, ok := wantErrorResult(t, tc.tool+" "+tc.args, res, tc.want)
		if !ok {
			continue
		}
		checkArgumentField(t, tc.tool, res, tc.want[0])
	}
}

// wantErrorResult checks that res, the result of the call what names, is an error result whose
// text contains every string of want; it returns the text, and false when res is no error.
func wantErrorResult(t *testing.T, what string, res *mcp.CallToolResult, want []string) (string, bool) {
	t.Helper()
	if !res.IsError {
		t.Errorf("%s: not an error result", what)
		return "", false
	}
	text := resultText(t, res)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s:\n got %q\nwant it to contain %q", what, text, w)
		}
	}
	return text, true
}

// checkArgumentField: a failure about an argument names it in the structured error too.
func checkArgumentField(t *testing.T, tool string, res *mcp.CallToolResult, want string) {
	t.Helper()
	arg, ok := strings.CutPrefix(want, "invalid argument: ")
	if !ok {
		return
	}
	if i := strings.IndexAny(arg, ": "); i >= 0 {
		arg = arg[:i]
	}
	if strings.HasPrefix(arg, `"`) {
		arg = "" // the message starts with the value; the argument is checked only to be named
	}
	f, ok := res.StructuredContent.(failure)
	if !ok {
		t.Errorf("%s: structuredContent %T is not a failure", tool, res.StructuredContent)
		return
	}
	if f.Error.Kind != "invalid_argument" || (arg != "" && f.Error.Argument != arg) || f.Error.Argument == "" {
		t.Errorf("%s: structured error %+v, want kind invalid_argument and argument %q", tool, f.Error, arg)
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
