package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
)

var (
	alice = engine.Holder{Conn: "conn-a", Client: "alice-agent 1.0"}
	bob   = engine.Holder{Conn: "conn-b", Client: "bob-agent 2.0"}
)

func (v *env) open(t *testing.T, h engine.Holder, ws string, timeout time.Duration) engine.Session {
	t.Helper()
	s, err := v.e.OpenSession(ctxT(t), h, engine.OpenSessionRequest{Workspace: ws, Timeout: timeout})
	if err != nil {
		t.Fatalf("open_session: %v", err)
	}
	return s
}

func (v *env) sexec(t *testing.T, h engine.Holder, sid, script string) engine.SessionExecResult {
	t.Helper()
	r, err := v.e.SessionExec(ctxT(t), h, engine.SessionExecRequest{SessionID: sid, Command: "sh", Args: []string{"-c", script}})
	if err != nil {
		t.Fatalf("session_exec %q: %v", script, err)
	}
	return r
}

func wantErr(t *testing.T, what string, err, target error, words ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not mention %q", what, err, w)
		}
	}
}

func TestSessionLease(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	base := head(t, v, "w")
	s := v.open(t, alice, "w", time.Minute)
	if s.State != "attached" || s.Holder != "alice-agent 1.0" || s.Base != base {
		t.Fatalf("open: %+v", s)
	}
	w, _ := v.e.GetWorkspace(ctx, "w")
	if w.Lease == nil || w.Lease.SessionID != s.ID {
		t.Fatalf("get_workspace must show the lease: %+v", w.Lease)
	}
	// Durable operations and a second open fail at once, naming session, holder and expiry.
	_, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "true"})
	wantErr(t, "run_command while leased", err, engine.ErrLeased, s.ID, "alice-agent 1.0", "attach_session", s.Expires.UTC().Format(time.RFC3339))
	_, err = v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "x", Content: []byte("x")}}})
	wantErr(t, "write_files while leased", err, engine.ErrLeased, s.ID)
	_, _, err = v.e.Restore(ctx, "w", base)
	wantErr(t, "restore while leased", err, engine.ErrLeased, s.ID)
	err = v.e.DeleteWorkspace(ctx, "w")
	wantErr(t, "delete while leased", err, engine.ErrLeased, s.ID)
	_, err = v.e.OpenSession(ctx, bob, engine.OpenSessionRequest{Workspace: "w"})
	wantErr(t, "second open_session", err, engine.ErrLeased, s.ID, "alice-agent")
	// Only the holder may act.
	_, err = v.e.SessionExec(ctx, bob, engine.SessionExecRequest{SessionID: s.ID, Command: "true"})
	wantErr(t, "exec by another connection", err, engine.ErrNotHolder, "alice-agent")
	_, err = v.e.AttachSession(ctx, bob, "w")
	wantErr(t, "attach while the holder is connected", err, engine.ErrLeased, "still open")
	// Reads of committed state still work.
	if _, err := v.e.History(ctx, "w", 0); err != nil {
		t.Fatal(err)
	}
	r := v.sexec(t, alice, s.ID, "echo from-alice > a.txt; echo hi")
	if r.ExitCode != 0 || string(r.Stdout.Head) != "hi\n" {
		t.Fatalf("session exec: %+v", r)
	}
	// The holder's connection goes away: the session is detached and bob may attach.
	v.e.Disconnect(alice.Conn)
	got, _ := v.e.GetSession(ctx, s.ID)
	if got.State != "detached" {
		t.Fatalf("after disconnect: %s", got.State)
	}
	_, err = v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "true"})
	wantErr(t, "run_command while detached", err, engine.ErrLeased, "detached")
	att, err := v.e.AttachSession(ctx, bob, "w")
	if err != nil || att.ID != s.ID || att.Holder != "bob-agent 2.0" {
		t.Fatalf("attach: %+v %v", att, err)
	}
	_, err = v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "true"})
	wantErr(t, "old holder after attach", err, engine.ErrNotHolder)
	if out := v.sexec(t, bob, s.ID, "cat a.txt"); string(out.Stdout.Head) != "from-alice\n" {
		t.Fatalf("bob sees alice's uncommitted file: %q", out.Stdout.Head)
	}
	c, err := v.e.CommitSession(ctx, bob, s.ID, "alice and bob")
	if err != nil || c.Kind != engine.CommitSession || c.Parent != base || c.Message != "alice and bob" {
		t.Fatalf("commit: %+v %v", c, err)
	}
	if head(t, v, "w") != c.ID {
		t.Fatal("commit_session must move head")
	}
	_, err = v.e.CommitSession(ctx, bob, s.ID, "")
	wantErr(t, "commit twice", err, engine.ErrExpired, "committed")
	_, err = v.e.SessionExec(ctx, bob, engine.SessionExecRequest{SessionID: s.ID, Command: "true"})
	wantErr(t, "exec after commit", err, engine.ErrExpired)
	if got := stdout(v.sh(t, "w", "cat a.txt")); got != "from-alice\n" {
		t.Fatalf("run_command after commit sees the session's file: %q", got)
	}
}

func TestSessionDiscardAndExpire(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	base := head(t, v, "w")
	s := v.open(t, alice, "w", time.Minute)
	v.sexec(t, alice, s.ID, "echo gone > g.txt")
	d, err := v.e.DiscardSession(ctx, alice, s.ID)
	if err != nil || d.State != "discarded" {
		t.Fatalf("discard: %+v %v", d, err)
	}
	if head(t, v, "w") != base {
		t.Fatal("discard moved head")
	}
	v.wantNoFile(t, ctx, "g.txt", "discarded change visible")
	// Expiry drops the changes, keeps head, frees the workspace.
	s2 := v.open(t, alice, "w", time.Second)
	v.sexec(t, alice, s2.ID, "echo gone > g.txt")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, _ := v.e.GetSession(ctx, s2.ID)
		if got.State == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session did not expire: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s2.ID, Command: "true"})
	wantErr(t, "exec after expiry", err, engine.ErrExpired, "expired")
	if head(t, v, "w") != base {
		t.Fatal("expiry moved head")
	}
	if got := stdout(v.sh(t, "w", "ls")); got != "" {
		t.Fatalf("expired session's changes leaked: %q", got)
	}
	// Extend keeps a session alive past its first deadline.
	s3 := v.open(t, alice, "w", 2*time.Second)
	if _, err := v.e.ExtendSession(ctx, alice, s3.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	v.sexec(t, alice, s3.ID, "true")
	if _, err := v.e.ExtendSession(ctx, alice, s3.ID, -time.Second); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("negative extension: %v", err)
	}
	if _, err := v.e.DiscardSession(ctx, alice, s3.ID); err != nil {
		t.Fatal(err)
	}
}

// openWebSession opens alice's session on a new workspace "web" that exposes port 8765, with an
// index.html holding html.
func openWebSession(t *testing.T, e *engine.Engine, html string) engine.Session {
	t.Helper()
	ctx := ctxT(t)
	if _, err := e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "web", ExposedPorts: []int{8765}}); err != nil {
		t.Fatal(err)
	}
	s, err := e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{Files: []engine.WriteFile{{Path: "index.html", Content: []byte(html)}}}); err != nil {
		e.DiscardSession(context.Background(), alice, s.ID)
		t.Fatal(err)
	}
	return s
}

func TestSessionProcessesAndURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v, err := openOver(t, dir, localProvider(t, dir), func(o *engine.Options) { o.Previews = engine.PreviewURLFunc(testPreviewURL) })
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	e := v.e
	ctx := ctxT(t)
	s := openWebSession(t, e, "<h1>hello preview</h1>")
	defer e.DiscardSession(context.Background(), alice, s.ID)
	_, err = e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 9999})
	wantErr(t, "url of a port not exposed", err, engine.ErrInvalid, "9999", "exposed", "8765")
	u, err := e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8765, Wait: 300 * time.Millisecond})
	if err != nil || u.Listening == nil || *u.Listening || u.URL == "" || u.Waited < 300*time.Millisecond || len(u.Processes) != 0 {
		t.Fatalf("url with nothing listening (and no process): %+v %v", u, err)
	}
	r, err := e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "python3", Args: []string{"-m", "http.server", "8765", "--bind", "127.0.0.1"}, Background: true})
	if err != nil || r.ProcessID == "" {
		t.Fatalf("background exec: %+v %v", r, err)
	}
	u2, err := e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8765, Wait: 20 * time.Second})
	if err != nil || u2.Listening == nil || !*u2.Listening {
		t.Fatalf("server never came up: %+v %v", u2, err)
	}
	if u2.URL != u.URL {
		t.Fatalf("a second session_url gave another URL: %q, then %q", u.URL, u2.URL)
	}
	url := u2.URL
	tok := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), ".preview.test/")
	tgt, dial, err := e.Preview(tok)
	if err != nil || tgt.SessionID != s.ID || tgt.Port != 8765 {
		t.Fatalf("preview: %+v %v", tgt, err)
	}
	conn, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&body)
	conn.Close()
	if resp.StatusCode != 200 || !strings.Contains(body.String(), "hello preview") {
		t.Fatalf("through the preview dialer: %d %q", resp.StatusCode, body.String())
	}
	if _, _, err := e.Preview("nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	// The server logs the request just after answering it: wait for the line.
	logs, err := e.SessionLogs(ctx, alice, s.ID, r.ProcessID, 0, 0)
	for i := 0; err == nil && !strings.Contains(string(logs.Output), "GET /index.html") && i < 50; i++ {
		logs, err = e.SessionLogs(ctx, alice, s.ID, r.ProcessID, 0, 200*time.Millisecond)
		if err == nil && !strings.Contains(string(logs.Output), "GET /index.html") {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err != nil || !logs.Running || !strings.Contains(string(logs.Output), "GET /index.html") {
		t.Fatalf("logs: %+v %v", logs, err)
	}
	st2, err := e.SessionKill(ctx, alice, s.ID, r.ProcessID, syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; st2.Running && i < 50; i++ {
		st2, _ = e.SessionLogs(ctx, alice, s.ID, r.ProcessID, st2.Next, 200*time.Millisecond)
	}
	if st2.Running {
		t.Fatal("process still running after SIGTERM")
	}
	if _, err := e.SessionLogs(ctx, alice, s.ID, "nope", 0, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown process: %v", err)
	}
	// The session's URL dies with the session.
	if _, err := e.DiscardSession(ctx, alice, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Preview(tok); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("preview of an ended session: %v", err)
	}
}

// TestSessionSurvivesRestart closes the engine and the provider with a session open (its sandbox
// keeps running) and opens them again: the session is re-adopted, detached, and works.
func TestSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v := open(t, dir)
	v.mkws(t, "w", 8785)
	s := v.open(t, alice, "w", time.Minute)
	v.sexec(t, alice, s.ID, "echo kept > k.txt")
	bg, err := v.e.SessionExec(ctxT(t), alice, engine.SessionExecRequest{SessionID: s.ID, Command: "sh", Args: []string{"-c", "echo started; sleep 300"}, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	// A second session whose sandbox will be gone after the restart.
	v.mkws(t, "w2")
	s2 := v.open(t, alice, "w2", time.Minute)
	base2 := head(t, v, "w2")
	v.close()
	pv := makeProvider(t, dir)
	sb, err := pv.Reconnect(ctxT(t), s2.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	_ = sb.Stop(ctxT(t))
	pv.Close()

	v = open(t, dir)
	defer v.close()
	ctx := ctxT(t)
	got, _ := v.e.GetSession(ctx, s.ID)
	if got.State != "detached" {
		t.Fatalf("re-adopted session: %+v", got)
	}
	lost, _ := v.e.GetSession(ctx, s2.ID)
	if lost.State != "discarded" || head(t, v, "w2") != base2 {
		t.Fatalf("a session whose sandbox is gone must be discarded with head kept: %+v", lost)
	}
	if _, err := v.sh2(ctx, "w2"); err != nil {
		t.Fatalf("workspace of the lost session is free again: %v", err)
	}
	if _, err := v.e.AttachSession(ctx, bob, "w"); err != nil {
		t.Fatal(err)
	}
	if out := v.sexec(t, bob, s.ID, "cat k.txt"); string(out.Stdout.Head) != "kept\n" {
		t.Fatalf("files after restart: %q", out.Stdout.Head)
	}
	logs, err := v.e.SessionLogs(ctx, bob, s.ID, bg.ProcessID, 0, 0)
	if err != nil || !logs.Running || string(logs.Output) != "started\n" {
		t.Fatalf("background process after restart: %+v %v", logs, err)
	}
	// session_url still knows the session's ports and processes (from its record).
	u, err := v.e.SessionURL(ctx, bob, engine.SessionURLRequest{SessionID: s.ID, Port: 8785, Wait: time.Millisecond})
	if err != nil || len(u.Processes) != 1 || u.Processes[0].ID != bg.ProcessID || !u.Processes[0].Running || string(u.Processes[0].Output) != "started\n" {
		t.Fatalf("session_url after restart: %+v %v", u, err)
	}
	c, err := v.e.CommitSession(ctx, bob, s.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if head(t, v, "w") != c.ID || stdout(v.sh(t, "w", "cat k.txt")) != "kept\n" {
		t.Fatal("commit after restart")
	}
}

func (v *env) sh2(ctx context.Context, ws string) (engine.RunResult, error) {
	return v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: ws, Command: "true"})
}

func TestOpenSessionRace(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "w")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	ids := make([]string, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := engine.Holder{Conn: fmt.Sprintf("c%d", i), Client: fmt.Sprintf("agent-%d", i)}
			s, err := v.e.OpenSession(ctxT(t), h, engine.OpenSessionRequest{Workspace: "w"})
			errs[i], ids[i] = err, s.ID
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			defer v.e.DiscardSession(context.Background(), engine.Holder{Conn: fmt.Sprintf("c%d", i)}, ids[i])
		case !errors.Is(err, engine.ErrLeased):
			t.Fatalf("loser %d: %v, want ErrLeased", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d connections opened a session on one workspace, want exactly 1", won)
	}
}
