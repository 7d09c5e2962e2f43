package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/store"
)

// TestSessionArgumentErrors: bad arguments of the session tools, and of the file tools' choice
// between workspace and session_id, are isError results naming the argument and saying what to
// give; the engine checks every rule and limit before it looks for the session (ses_1 does not
// exist).
func TestSessionArgumentErrors(t *testing.T) {
	ctx, tools := connectedTools(t)
	tests := []struct {
		tool, args string
		want       []string
	}{
		// session_id is required everywhere.
		{"session_exec", `{"command": "ls"}`, []string{`invalid argument: session_id: missing`, "open_session"}},
		{"session_logs", `{"process_id": "p1"}`, []string{`invalid argument: session_id`}},
		{"session_kill", `{"session_id": " ", "process_id": "p1"}`, []string{`invalid argument: session_id`}},
		{"session_url", `{"port": 3000}`, []string{`invalid argument: session_id`}},
		{"extend_session", `{"timeout_ms": 60000}`, []string{`invalid argument: session_id`}},
		{"commit_session", `{}`, []string{`invalid argument: session_id`}},
		{"discard_session", `{}`, []string{`invalid argument: session_id`}},
		{"open_session", `{}`, []string{`invalid argument: workspace`}},
		{"attach_session", `{"workspace": ""}`, []string{`invalid argument: workspace`}},
		{"attach_session", `{"workspace": "w", "session_id": "ses_1"}`, []string{`unknown argument "session_id"`, "attach_session takes only workspace"}},
		// exactly one of workspace and session_id on the file tools.
		{"write_files", `{"workspace": "w", "session_id": "ses_1", "files": [{"path": "a", "content": "x"}]}`,
			[]string{`give either "workspace" or "session_id", not both`, `"w"`, `"ses_1"`}},
		{"write_files", `{"files": [{"path": "a", "content": "x"}]}`, []string{`invalid argument: workspace: missing`, "session_id"}},
		{"write_files", `{"session_id": "ses_1"}`, []string{`invalid argument: files and delete are both empty`}},
		{"read_file", `{"workspace": "w", "session_id": "ses_1", "path": "a"}`, []string{`not both`}},
		{"read_file", `{"path": "a"}`, []string{`invalid argument: workspace: missing`, "session_id"}},
		{"read_file", `{"session_id": "  ", "path": "a"}`, []string{`invalid argument: session_id`}},
		{"read_file", `{"session_id": "ses_1"}`, []string{`invalid argument: path`}},
		{"list_files", `{"workspace": "w", "session_id": "ses_1"}`, []string{`not both`}},
		{"list_files", `{}`, []string{`invalid argument: workspace: missing`, "session_id"}},
		{"list_files", `{"session_id": "ses_1", "depth": 99}`, []string{`invalid argument: depth`}},
		// session_exec
		{"session_exec", `{"session_id": "ses_1"}`, []string{`invalid argument: command is empty`, "shell line"}},
		{"session_exec", `{"session_id": "ses_1", "command": "ls", "timeout_ms": 90000000}`, []string{`invalid argument: timeout_ms`, "86400000"}},
		{"session_exec", `{"session_id": "ses_1", "command": "ls", "timeout_ms": -5}`, []string{`invalid argument: timeout_ms`}},
		{"session_exec", `{"session_id": "ses_1", "command": "sleep", "background": true, "timeout_ms": 1000}`,
			[]string{`invalid argument: timeout_ms applies to foreground commands only`, "session_kill"}},
		{"session_exec", `{"session_id": "ses_1", "command": "ls", "policy": {"mode": "allow-all"}}`, []string{`unknown argument "policy"`}},
		// session_logs
		{"session_logs", `{"session_id": "ses_1"}`, []string{`invalid argument: process_id: missing`, "background=true"}},
		{"session_logs", `{"session_id": "ses_1", "process_id": "p1", "offset": -1}`, []string{`invalid argument: offset -1 is negative`, "next offset"}},
		{"session_logs", `{"session_id": "ses_1", "process_id": "p1", "wait_ms": 600001}`, []string{`invalid argument: wait_ms`, "600000"}},
		// session_kill
		{"session_kill", `{"session_id": "ses_1"}`, []string{`invalid argument: process_id`}},
		{"session_kill", `{"session_id": "ses_1", "process_id": "p1", "signal": "TERMINATE"}`,
			[]string{`invalid argument: "TERMINATE" is not a signal`, "TERM", "KILL", "INT"}},
		{"session_kill", `{"session_id": "ses_1", "process_id": "p1", "signal": "0"}`, []string{`invalid argument: signal`, "1 to 31"}},
		{"session_kill", `{"session_id": "ses_1", "process_id": "p1", "signal": 99}`, []string{`invalid argument: signal 99 is not one session_kill sends`}},
		{"session_kill", `{"session_id": "ses_1", "process_id": "p1", "signal": true}`, []string{`invalid argument: signal: expected a string, got a JSON bool`}},
		// session_url
		{"session_url", `{"session_id": "ses_1"}`, []string{`invalid argument: port 0 is not a TCP port`, "exposed_ports"}},
		{"session_url", `{"session_id": "ses_1", "port": 70000}`, []string{`invalid argument: port 70000 is not a TCP port`, "1 to 65535"}},
		{"session_url", `{"session_id": "ses_1", "port": -1}`, []string{`invalid argument: port`}},
		{"session_url", `{"session_id": "ses_1", "port": "3000"}`, []string{`invalid argument: port: expected an integer, got a JSON string`}},
		// timeouts of sessions
		{"open_session", `{"workspace": "w", "timeout_ms": 500}`, []string{`invalid argument: timeout_ms 500 is less than the minimum 1000`, "1800000"}},
		{"open_session", `{"workspace": "w", "timeout_ms": 86400001}`, []string{`invalid argument: timeout_ms`, "86400000"}},
		{"open_session", `{"workspace": "w", "timeout_ms": -1}`, []string{`invalid argument: timeout_ms`}},
		{"open_session", `{"workspace": "w", "policy": {"allow": ["nope"]}}`, []string{`invalid argument: policy`, "neither a preset"}},
		{"extend_session", `{"session_id": "ses_1"}`, []string{`invalid argument: timeout_ms is required`, "1800000"}},
		{"extend_session", `{"session_id": "ses_1", "timeout_ms": 0}`, []string{`invalid argument: timeout_ms is required`}},
		{"extend_session", `{"session_id": "ses_1", "timeout_ms": 999}`, []string{`invalid argument: timeout_ms 999 is less than the minimum 1000`}},
		{"extend_session", `{"session_id": "ses_1", "timeout_ms": 86400001}`, []string{`invalid argument: timeout_ms`, "86400000"}},
		{"commit_session", `{"session_id": "ses_1", "message": 5}`, []string{`invalid argument: message: expected a string`}},
	}
	for _, tc := range tests {
		res := callToolCtx(t, ctx, tools, tc.tool, tc.args)
		_, ok := wantErrorResult(t, tc.tool+" "+tc.args, res, tc.want)
		if !ok {
			continue
		}
		checkArgumentField(t, tc.tool, res, tc.want[0])
	}
}

// TestSessionToolsNeedAConnection: valid arguments without an MCP session in ctx (or with a
// session that has no id, as in the sessionless protocol era) are a tool error that says why,
// before the engine is involved.
func TestSessionToolsNeedAConnection(t *testing.T) {
	calls := map[string]string{
		"open_session":    `{"workspace": "w"}`,
		"attach_session":  `{"workspace": "w"}`,
		"session_exec":    `{"session_id": "ses_1", "command": "ls"}`,
		"session_logs":    `{"session_id": "ses_1", "process_id": "p1"}`,
		"session_kill":    `{"session_id": "ses_1", "process_id": "p1", "signal": "KILL"}`,
		"session_url":     `{"session_id": "ses_1", "port": 3000}`,
		"extend_session":  `{"session_id": "ses_1", "timeout_ms": 60000}`,
		"commit_session":  `{"session_id": "ses_1"}`,
		"discard_session": `{"session_id": "ses_1"}`,
		"write_files":     `{"session_id": "ses_1", "files": [{"path": "a", "content": "x"}]}`,
		"read_file":       `{"session_id": "ses_1", "path": "a"}`,
		"edit_file":       `{"session_id": "ses_1", "path": "a", "old_text": "x", "new_text": "y"}`,
		"list_files":      `{"session_id": "ses_1"}`,
	}
	s := server.NewMCPServer("t", "0")
	ctxs := map[string]context.Context{
		"no session":         context.Background(),
		"session without id": s.WithContext(context.Background(), &idSession{id: ""}),
	}
	tools := newToolset(s, nil, Options{}).all()
	for what, ctx := range ctxs {
		for name, args := range calls {
			res := callToolCtx(t, ctx, tools, name, args)
			text := resultText(t, res)
			if !res.IsError || !strings.Contains(text, name+" needs an MCP connection that has a session identity") ||
				!strings.Contains(text, "2025-11-25") {
				t.Errorf("%s, %s: got %q", what, name, text)
			}
		}
	}
}

// connectedTools are the tools over a real engine, and a ctx of a client connection (conn-1) that
// said who it is, to call them in.
func connectedTools(t *testing.T) (context.Context, []server.ServerTool) {
	t.Helper()
	s := server.NewMCPServer("t", "0")
	ctx := s.WithContext(context.Background(), newInfoSession("conn-1").withInfo("test", "1"))
	return ctx, newToolset(s, newEngine(t, nil), Options{}).all()
}

// callToolCtx is callTool with a given ctx.
func callToolCtx(t *testing.T, ctx context.Context, tools []server.ServerTool, name, args string) *mcp.CallToolResult {
	t.Helper()
	for _, st := range tools {
		if st.Tool.Name != name {
			continue
		}
		var req mcp.CallToolRequest
		req.Params.Name = name
		req.Params.RawArguments = json.RawMessage(args)
		res, err := st.Handler(ctx, req)
		if err != nil {
			t.Fatalf("%s returned a Go error (a protocol error for the client): %v", name, err)
		}
		return res
	}
	t.Fatalf("no tool %s", name)
	return nil
}

// idSession is a client session with a given id and, optionally, client info.
type idSession struct {
	id   string
	info *mcp.Implementation
}

func (s *idSession) Initialize()                                         {}
func (s *idSession) Initialized() bool                                   { return true }
func (s *idSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return nil }
func (s *idSession) SessionID() string                                   { return s.id }

// infoSession adds SessionWithClientInfo.
type infoSession struct{ idSession }

func (s *infoSession) GetClientInfo() mcp.Implementation              { return *s.info }
func (s *infoSession) SetClientInfo(i mcp.Implementation)             { s.info = &i }
func (s *infoSession) GetClientCapabilities() mcp.ClientCapabilities  { return mcp.ClientCapabilities{} }
func (s *infoSession) SetClientCapabilities(_ mcp.ClientCapabilities) {}
func (s *infoSession) withInfo(name, version string) *infoSession {
	s.info = &mcp.Implementation{Name: name, Version: version}
	return s
}
func newInfoSession(id string) *infoSession { return &infoSession{idSession{id: id}} }

// TestHolderFromContext covers the derivation rules on sessions of each kind.
func TestHolderFromContext(t *testing.T) {
	s := server.NewMCPServer("t", "0")
	tests := []struct {
		name    string
		session server.ClientSession
		want    engine.Holder
		wantErr bool
	}{
		{name: "no session", wantErr: true},
		{name: "sessionless era", session: &idSession{id: ""}, wantErr: true},
		{name: "no client info", session: &idSession{id: "mcp-session-1"}, want: engine.Holder{Conn: "mcp-session-1", Client: "unknown client"}},
		{name: "client info", session: newInfoSession("sse-uuid").withInfo("claude-code", "1.2.3"), want: engine.Holder{Conn: "sse-uuid", Client: "claude-code 1.2.3"}},
		{name: "no version", session: newInfoSession("c").withInfo("codex", ""), want: engine.Holder{Conn: "c", Client: "codex"}},
		{name: "empty name", session: newInfoSession("c").withInfo("", "1.0"), want: engine.Holder{Conn: "c", Client: "unknown client"}},
		{name: "messy name", session: newInfoSession("c").withInfo(" my\n agent\t", strings.Repeat("9", 100)),
			want: engine.Holder{Conn: "c", Client: "my agent " + strings.Repeat("9", 64)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.session != nil {
				ctx = s.WithContext(ctx, tc.session)
			}
			h, err := HolderFromContext(ctx)
			if (err != nil) != tc.wantErr || h != tc.want {
				t.Errorf("got %+v, %v; want %+v (error %v)", h, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestHolderOverStdio derives the holder inside a real tool call: an mcp-go stdio server (whose
// ctx carries the real stdio client session) and the official Go SDK as the client.
func TestHolderOverStdio(t *testing.T) {
	s := server.NewMCPServer("holder-test", "0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewToolWithRawSchema("whoami", "Report the holder identity of this connection.", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			h, err := HolderFromContext(ctx)
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultStructured(map[string]string{"conn": h.Conn, "client": h.Client}, h.Client), nil
		})
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.NewStdioServer(s).Listen(ctx, c2sR, s2cW) }()
	defer func() {
		cancel()
		c2sW.Close()
		<-served
	}()
	client := sdk.NewClient(&sdk.Implementation{Name: "holder-probe", Version: "4.5.6"}, nil)
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	cs, err := client.Connect(cctx, &sdk.IOTransport{Reader: s2cR, Writer: c2sW}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(cctx, &sdk.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["conn"] != "stdio" || got["client"] != "holder-probe 4.5.6" {
		t.Errorf("holder over stdio = %v, want conn stdio, client \"holder-probe 4.5.6\"", got)
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		sig  syscall.Signal
		name string
	}{
		{"", syscall.SIGTERM, "SIGTERM"},
		{"TERM", syscall.SIGTERM, "SIGTERM"},
		{"SIGTERM", syscall.SIGTERM, "SIGTERM"},
		{"kill", syscall.SIGKILL, "SIGKILL"},
		{" sigint ", syscall.SIGINT, "SIGINT"},
		{"HUP", syscall.SIGHUP, "SIGHUP"},
		{"USR1", syscall.SIGUSR1, "SIGUSR1"},
		{"9", syscall.SIGKILL, "SIGKILL"},
		{"15", syscall.SIGTERM, "SIGTERM"},
	}
	for _, tc := range tests {
		sig, name, err := engine.ParseSignal(tc.in)
		if err != nil || sig != tc.sig || name != tc.name {
			t.Errorf("ParseSignal(%q) = %v %q %v, want %v %q", tc.in, sig, name, err, tc.sig, tc.name)
		}
	}
	for _, bad := range []string{"TERMINATE", "SIG", "0", "-9", "32", "99", "9x", "SIGFOO"} {
		if _, _, err := engine.ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted a bad signal", bad)
		}
	}
	var a sessionKillArgs
	if err := json.Unmarshal([]byte(`{"session_id":"s","process_id":"p","signal":9}`), &a); err != nil || a.Signal != "9" {
		t.Errorf("a numeric signal did not decode: %q %v", a.Signal, err)
	}
	if err := json.Unmarshal([]byte(`{"signal":null}`), &a); err != nil {
		t.Errorf("null signal: %v", err)
	}
}

func TestLogsView(t *testing.T) {
	code := func(c int) *int { return &c }
	long := strings.Repeat("x", 50) + "\n" + strings.Repeat("y", 99) + "\n" // 151 bytes
	tests := []struct {
		name       string
		asked      int64
		st         engine.ProcessStatus
		tail       int
		wantOut    string
		wantStatus string
		wantFrom   int64
		wantNext   int64
		wantOmit   int64
	}{
		{name: "running, all of it", st: engine.ProcessStatus{ID: "p", Running: true, Output: []byte("a\nb\n"), Next: 4},
			tail: 100, wantOut: "a\nb\n", wantStatus: "running", wantNext: 4},
		{name: "continue from an offset", asked: 4, st: engine.ProcessStatus{ID: "p", Running: true, Output: []byte("c\n"), Offset: 4, Next: 6},
			tail: 100, wantOut: "c\n", wantStatus: "running", wantFrom: 4, wantNext: 6},
		{name: "nothing new", asked: 6, st: engine.ProcessStatus{ID: "p", Running: true, Offset: 6, Next: 6},
			tail: 100, wantStatus: "running", wantFrom: 6, wantNext: 6},
		{name: "exited", st: engine.ProcessStatus{ID: "p", ExitCode: code(143), Output: []byte("bye\n"), Next: 4},
			tail: 100, wantOut: "bye\n", wantStatus: "exited", wantNext: 4},
		{name: "longer than the bound: the tail, from a line start", st: engine.ProcessStatus{ID: "p", Running: true, Output: []byte(long), Next: 151},
			tail: 120, wantOut: strings.Repeat("y", 99) + "\n", wantStatus: "running", wantFrom: 51, wantNext: 151, wantOmit: 51},
		{name: "dropped by the sandbox", asked: 0, st: engine.ProcessStatus{ID: "p", Running: true, Output: []byte("late\n"), Offset: 5000, Dropped: 5000, Next: 5005},
			tail: 100, wantOut: "late\n", wantStatus: "running", wantFrom: 5000, wantNext: 5005, wantOmit: 5000},
		{name: "incomplete character held back while running", st: engine.ProcessStatus{ID: "p", Running: true, Output: []byte("ab\xe2\x82"), Next: 4},
			tail: 100, wantOut: "ab", wantStatus: "running", wantNext: 2},
		{name: "incomplete character shown once exited", st: engine.ProcessStatus{ID: "p", ExitCode: code(0), Output: []byte("ab\xe2\x82"), Next: 4},
			tail: 100, wantOut: "ab\uFFFD", wantStatus: "exited", wantNext: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newLogsView("ses_1", tc.asked, tc.st, tc.tail)
			if v.Output != tc.wantOut || v.Status != tc.wantStatus || v.OutputOffset != tc.wantFrom || v.NextOffset != tc.wantNext || v.OmittedBytes != tc.wantOmit {
				t.Errorf("got out %q status %s from %d next %d omitted %d; want %q %s %d %d %d",
					v.Output, v.Status, v.OutputOffset, v.NextOffset, v.OmittedBytes, tc.wantOut, tc.wantStatus, tc.wantFrom, tc.wantNext, tc.wantOmit)
			}
			if tc.wantStatus == "running" && v.ExitCode != nil {
				t.Errorf("a running process has exit code %d", *v.ExitCode)
			}
			text := resultText(t, rendered(v))
			if tc.wantStatus == "running" && !strings.Contains(text, fmt.Sprintf(`"offset":%d`, v.NextOffset)) {
				t.Errorf("text does not say where to continue: %q", text)
			}
			if tc.wantOmit > 0 && !strings.Contains(text, fmt.Sprintf("%d earlier bytes not shown", tc.wantOmit)) {
				t.Errorf("text does not say what was left out: %q", text)
			}
		})
	}
	if text := (newLogsView("ses_1", 0, engine.ProcessStatus{ID: "p", ExitCode: code(143)}, 10)).text(); !strings.Contains(text, "exited 143 (killed by SIGTERM)") {
		t.Errorf("exit by signal not explained: %q", text)
	}
}

// TestSessionView: the structured session never carries connection ids, says whether the caller
// holds it, and its text names what an agent needs.
func TestSessionView(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := engine.Session{
		Session: store.Session{ID: "ses_1", Workspace: "ws_1", State: store.SessionAttached, HolderConn: "mcp-session-secret",
			HolderClient: "claude-code 1.2.3", SandboxID: "sb-internal", Base: "c_base", Opened: now, Expires: now.Add(30 * time.Minute)},
		WorkspaceName: "demo", Holder: "claude-code 1.2.3", ExposedPorts: []int{3000, 5173},
	}
	mine := newSessionView(s, engine.Holder{Conn: "mcp-session-secret"}, now)
	other := newSessionView(s, engine.Holder{Conn: "someone-else"}, now)
	if !mine.HeldByYou || other.HeldByYou {
		t.Errorf("held_by_you: mine %v, other %v", mine.HeldByYou, other.HeldByYou)
	}
	b, _ := json.Marshal(other)
	for _, secret := range []string{"mcp-session-secret", "sb-internal", "holder_conn", "sandbox_id"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("structured session leaks %s: %s", secret, b)
		}
	}
	for _, field := range []string{`"session_id":"ses_1"`, `"workspace":"demo"`, `"state":"attached"`, `"holder":"claude-code 1.2.3"`, `"base_commit":"c_base"`, `"expires_at":"2026-11-21T12:30:00Z"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("structured session lacks %s: %s", field, b)
		}
	}
	line := mine.line()
	for _, w := range []string{"session ses_1 on workspace demo (ws_1): attached", "held by claude-code 1.2.3 (you)", "base c_base", "expires 2026-11-21T12:30:00Z (in 30m0s)"} {
		if !strings.Contains(line, w) {
			t.Errorf("line %q lacks %q", line, w)
		}
	}
	steps := sessionResult{sessionView: mine}.withSteps().Next
	if len(steps) != 4 || steps[0].Tool != "session_exec" || steps[1].Args["port"] != 3000 || steps[2].Args["port"] != 5173 || steps[3].Tool != "commit_session" {
		t.Errorf("next steps: %+v", steps)
	}
	if steps := (sessionResult{sessionView: other}).withSteps().Next; len(steps) != 0 {
		t.Errorf("next steps for a session someone else holds: %+v", steps)
	}
	ended := s
	ended.State, ended.Ended, ended.EndReason = store.SessionDiscarded, now, "discard_session was called"
	v := newSessionView(ended, engine.Holder{Conn: "mcp-session-secret"}, now)
	if v.HeldByYou || v.EndedAt == nil || strings.Contains(v.line(), "held by") || strings.Contains(v.line(), "expires") {
		t.Errorf("an ended session: %+v / %q", v, v.line())
	}
}

// TestSessionErrorMessages: the engine's lease errors reach the agent word for word, as tool
// errors, with the category said once.
func TestSessionErrorMessages(t *testing.T) {
	ts := newToolset(nil, nil, Options{})
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: workspace %q is leased by session ses_1, held by claude-code 1.2.3, until 2026-11-21T12:30:00Z (in 29m0s); "+
			"if your connection dropped, take it over with attach_session; otherwise wait until it expires", engine.ErrLeased, "demo"),
			`workspace is leased by a session: workspace "demo" is leased by session ses_1, held by claude-code 1.2.3, until 2026-11-21T12:30:00Z (in 29m0s); if your connection dropped, take it over with attach_session; otherwise wait until it expires`},
		{fmt.Errorf("%w: session ses_1 is detached (its holder's connection closed); call attach_session on workspace %q to take it over", engine.ErrNotHolder, "demo"),
			`not the session holder: session ses_1 is detached (its holder's connection closed); call attach_session on workspace "demo" to take it over`},
		{fmt.Errorf("%w: session ses_1 expired at 2026-11-21T12:30:00Z and its changes were discarded; open_session starts a new one", engine.ErrExpired),
			"expired: session ses_1 expired at 2026-11-21T12:30:00Z and its changes were discarded; open_session starts a new one"},
		{fmt.Errorf("%w: session ses_1 was committed (commit c_2) and is over; open_session starts a new one", engine.ErrExpired),
			"expired: session ses_1 was committed (commit c_2) and is over; open_session starts a new one"},
	}
	for _, tc := range tests {
		res := ts.fail("session_exec", tc.err)
		if got := resultText(t, res); !res.IsError || !strings.HasPrefix(got, tc.want) {
			t.Errorf("fail(%q)\n got %q (isError %v)\nwant %q", tc.err, got, res.IsError, tc.want)
		}
	}
}

// TestExecText: a foreground session command's summary says it was not committed and explains
// an exit by signal.
func TestExecText(t *testing.T) {
	code := func(c int) *int { return &c }
	text := execView{SessionID: "ses_1", Command: "sh", Args: []string{"-c", "exit 3"}, Status: "exited", ExitCode: code(3), DurationMS: 7,
		outputView: outputView{Stdout: "hi\n", StdoutBytes: 3, StdoutNextOffset: 3}}.text()
	for _, w := range []string{`"sh -c exit 3" exited 3 in 7 ms (session ses_1; not committed)`, "--- stdout (3 bytes) ---\nhi\n"} {
		if !strings.Contains(text, w) {
			t.Errorf("text %q lacks %q", text, w)
		}
	}
	if strings.Contains(text, "stderr") {
		t.Errorf("empty stderr shown: %q", text)
	}
	text = execView{SessionID: "ses_1", Command: "sleep", Args: []string{"9"}, Status: "exited", ExitCode: code(-1), TimedOut: true, DurationMS: 1000}.text()
	if !strings.Contains(text, "timed out after 1000 ms") {
		t.Errorf("timeout text: %q", text)
	}
	if got := signalNote(137); got != " (killed by SIGKILL)" {
		t.Errorf("signalNote(137) = %q", got)
	}
	if got := signalNote(1); got != "" {
		t.Errorf("signalNote(1) = %q", got)
	}
}

// TestHooks: the hook registered by Hooks is the one mcp-go calls when a connection ends.
func TestHooks(t *testing.T) {
	h := Hooks(nil)
	if len(h.OnUnregisterSession) != 1 {
		t.Fatalf("Hooks registered %d unregister hooks, want 1", len(h.OnUnregisterSession))
	}
	// A session without an id never reaches the engine (a nil engine would panic here).
	h.UnregisterSession(context.Background(), &idSession{id: ""})
}
