package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/store"
)

// testPreviewURL is the preview URL the tests' engines hand out: the token in a host name
// nothing resolves; fetch reaches it through Engine.Preview.
func testPreviewURL(tok string) string { return "http://" + tok + ".preview.test/" }

// fetch GETs path from a session_url URL once: a preview URL of the test engine through its
// Preview dialer, a provider's own URL (Vercel's route, the fake's listener) over HTTP.
func fetch(t *testing.T, e *engine.Engine, url, path string) (int, string, error) {
	t.Helper()
	if tok, ok := strings.CutSuffix(strings.TrimPrefix(url, "http://"), ".preview.test/"); ok {
		_, dial, err := e.Preview(tok)
		if err != nil {
			return 0, "", err
		}
		conn, err := dial(ctxT(t))
		if err != nil {
			return 0, "", err
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, "", err
		}
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	resp, err := http.Get(strings.TrimSuffix(url, "/") + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// fetchOK fetches until the page is served (a provider's route may answer before the server
// inside listens), failing after 20 s.
func fetchOK(t *testing.T, e *engine.Engine, url, path string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body, err := fetch(t, e, url, path)
		if err == nil && code == 200 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s%s: %d %q %v", url, path, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func skipVercel(t *testing.T, why string) {
	t.Helper()
	if testProvider() == "vercel" {
		t.Skip(why)
	}
}

// TestSessionURLWaitsForTheServer is the README's story: a server started in the background a
// moment ago listens 1.5 s later; session_url, asked at once, waits for it and answers with a URL
// that serves the page, having reported progress while it waited.
func TestSessionURLWaitsForTheServer(t *testing.T) {
	skipVercel(t, "the Vercel provider serves ports itself: session_url does not wait there (TestVercelSessionURL)")
	v := newEnv(t)
	ctx := ctxT(t)
	v.mkws(t, "site", 8771)
	s := v.open(t, alice, "site", 0)
	if err := v.e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{Files: []engine.WriteFile{{Path: "index.html", Content: []byte("<h1>served after a while</h1>")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "sleep 1.5; exec python3 -m http.server 8771 --bind 127.0.0.1", Background: true}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	start := time.Now()
	u, err := v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8771, Progress: func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("session_url right after starting the server: %v", err)
	}
	if u.Listening == nil || !*u.Listening || len(u.Processes) != 0 || u.Port != 8771 {
		t.Fatalf("session_url: %+v, want listening and no process report", u)
	}
	if took < time.Second || took > engine.DefaultPortWait {
		t.Fatalf("session_url took %v: it should have waited for the server (1.5 s), not longer than %v", took, engine.DefaultPortWait)
	}
	mu.Lock()
	if len(lines) == 0 || !strings.Contains(lines[0], "port 8771") {
		t.Errorf("progress while waiting: %q, want a line about port 8771", lines)
	}
	mu.Unlock()
	if body := fetchOK(t, v.e, u.URL, "/index.html"); !strings.Contains(body, "served after a while") {
		t.Fatalf("the URL served %q", body)
	}
	_, err = v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8771, Wait: engine.MaxWait + time.Millisecond})
	wantErr(t, "wait beyond MaxWait", err, engine.ErrInvalid, "wait_ms", "600000")
}

// TestSessionURLNotListening: when nothing listens within the wait, session_url is no error: it
// gives the URL, listening false, and the session's newest processes, newest first, with the
// end of their output and how they ended (the server that crashed, its exit code and message).
func TestSessionURLNotListening(t *testing.T) {
	skipVercel(t, "the Vercel provider serves ports itself: listening is unknown there (TestVercelSessionURL)")
	v := newEnv(t)
	ctx := ctxT(t)
	v.mkws(t, "crash", 8772)
	s := v.open(t, alice, "crash", 0)
	start := func(cmd string) string {
		t.Helper()
		r, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: cmd, Background: true})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // distinct start times
		return r.ProcessID
	}
	sleeper := start("sleep 600")
	chatty := start("seq 1 100; exit 1")
	crasher := start("echo starting on 8772; echo 'Traceback: address already in use' >&2; exit 3")
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	u, err := v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8772, Wait: 700 * time.Millisecond})
	if err != nil {
		t.Fatalf("session_url with a crashed server: %v", err)
	}
	if u.Listening == nil || *u.Listening || u.URL == "" || time.Since(began) < 700*time.Millisecond {
		t.Fatalf("session_url: %+v, want the URL and listening false after the whole wait", u)
	}
	ids := make([]string, len(u.Processes))
	for i, p := range u.Processes {
		ids[i] = p.ID
	}
	if !slices.Equal(ids, []string{crasher, chatty, sleeper}) {
		t.Fatalf("processes %v, want newest first %v", ids, []string{crasher, chatty, sleeper})
	}
	c := u.Processes[0]
	if c.Running || c.ExitCode == nil || *c.ExitCode != 3 || !strings.Contains(string(c.Output), "address already in use") ||
		!strings.HasPrefix(c.Command, "echo starting") || c.Args != nil {
		t.Fatalf("the crashed server: %+v (output %q)", c, c.Output)
	}
	ch := u.Processes[1]
	want := ""
	for i := 91; i <= 100; i++ {
		want += fmt.Sprintf("%d\n", i)
	}
	if string(ch.Output) != want || ch.ExitCode == nil || *ch.ExitCode != 1 || ch.Offset != int64(len("1\n2\n3\n4\n5\n6\n7\n8\n9\n"))+81*3 || ch.Dropped != ch.Offset {
		t.Fatalf("the chatty process: output %q (want its last %d lines), offset %d, dropped %d", ch.Output, engine.PortLogLines, ch.Offset, ch.Dropped)
	}
	if sl := u.Processes[2]; !sl.Running || sl.ExitCode != nil {
		t.Fatalf("the sleeper: %+v", sl)
	}
	// More processes than PortProcesses: only the newest are reported.
	start("true")
	start("true")
	u, err = v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8772, Wait: time.Millisecond})
	if err != nil || len(u.Processes) != engine.PortProcesses || u.Processes[engine.PortProcesses-1].ID != chatty {
		t.Fatalf("with %d processes: %+v %v", engine.PortProcesses+1, u.Processes, err)
	}
}

// TestSessionExposedPorts: open_session's exposed_ports add ports to the workspace's for that
// session only; session_url serves them, others are refused, and the next session has the
// workspace's alone.
func TestSessionExposedPorts(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := ctxT(t)
	v.mkws(t, "ports", 8773)
	_, err := v.e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "ports", ExposedPorts: []int{70000}})
	wantErr(t, "open_session with a bad port", err, engine.ErrInvalid, "70000")
	if ee, _ := engine.AsError(err); ee == nil || ee.Fields.Argument != "exposed_ports" {
		t.Fatalf("the error does not name exposed_ports: %+v", ee)
	}
	_, err = v.e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "ports", ExposedPorts: []int{9000, 9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008, 9009, 9010, 9011, 9012, 9013, 9014, 9015}})
	wantErr(t, "open_session with too many ports", err, engine.ErrInvalid, "17", "8773")
	s, err := v.e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "ports", ExposedPorts: []int{8774, 8773}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ExposedPorts, []int{8773, 8774}) {
		t.Fatalf("the session's ports: %v, want [8773 8774]", s.ExposedPorts)
	}
	if got, _ := v.e.GetSession(ctx, s.ID); !slices.Equal(got.ExposedPorts, []int{8773, 8774}) {
		t.Fatalf("get_session's ports: %v", got.ExposedPorts)
	}
	if w, _ := v.e.GetWorkspace(ctx, "ports"); !slices.Equal(w.ExposedPorts, []int{8773}) {
		t.Fatalf("the workspace's ports changed: %v", w.ExposedPorts)
	}
	if err := v.e.SessionWriteFiles(ctx, alice, s.ID, engine.WriteRequest{Files: []engine.WriteFile{{Path: "index.html", Content: []byte("<h1>the session's own port</h1>")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "exec python3 -m http.server 8774 --bind 0.0.0.0", Background: true}); err != nil {
		t.Fatal(err)
	}
	u, err := v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8774})
	if err != nil {
		t.Fatalf("session_url of the session's own port: %v", err)
	}
	if testProvider() == "local" && (u.Listening == nil || !*u.Listening) {
		t.Fatalf("session_url: %+v, want listening", u)
	}
	if body := fetchOK(t, v.e, u.URL, "/index.html"); !strings.Contains(body, "the session's own port") {
		t.Fatalf("the URL served %q", body)
	}
	_, err = v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8775})
	wantErr(t, "a port neither the workspace nor the session exposes", err, engine.ErrInvalid, "8775", "8773 8774", "open_session")
	if _, err := v.e.DiscardSession(ctx, alice, s.ID); err != nil {
		t.Fatal(err)
	}
	s2 := v.open(t, alice, "ports", 0)
	defer v.e.DiscardSession(ctx, alice, s2.ID)
	if !slices.Equal(s2.ExposedPorts, []int{8773}) {
		t.Fatalf("the next session's ports: %v, want the workspace's [8773]", s2.ExposedPorts)
	}
	_, err = v.e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s2.ID, Port: 8774, Wait: time.Millisecond})
	wantErr(t, "the previous session's own port", err, engine.ErrInvalid, "8774")
}

// recordingPreviews is a PreviewServer that records what the engine opens and closes, and can
// be told to fail.
type recordingPreviews struct {
	mu     sync.Mutex
	opened []string
	closed []string
	fail   bool
}

func (r *recordingPreviews) Open(tok string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return "", errors.New("no free port")
	}
	r.opened = append(r.opened, tok)
	return testPreviewURL(tok), nil
}

func (r *recordingPreviews) Close(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = append(r.closed, tok)
}

// TestPreviewServerLifetime: a session's port is opened once, the first time session_url asks,
// one preview per port; every preview opened is closed when its session ends (a commit, a
// discard); an Open that fails is session_url's error, and is not remembered.
func TestPreviewServerLifetime(t *testing.T) {
	t.Parallel()
	skipVercel(t, "the Vercel provider serves ports itself: no PreviewServer is involved")
	rec := &recordingPreviews{}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pv := makeProvider(t, dir)
	defer pv.Close()
	e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv, Previews: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := ctxT(t)
	if _, err := e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "p", ExposedPorts: []int{8781, 8782}}); err != nil {
		t.Fatal(err)
	}
	url := func(sid string, port int) (string, error) {
		u, err := e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: sid, Port: port, Wait: time.Millisecond})
		return u.URL, err
	}
	for _, end := range []string{"discard", "commit"} {
		rec.mu.Lock()
		rec.opened, rec.closed, rec.fail = nil, nil, true
		rec.mu.Unlock()
		s, err := e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "p"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = url(s.ID, 8781)
		wantErr(t, "session_url when the preview cannot be opened", err, engine.ErrProvider, "port 8781", "no free port")
		rec.mu.Lock()
		rec.fail = false
		rec.mu.Unlock()
		a1, err := url(s.ID, 8781)
		if err != nil {
			t.Fatal(err)
		}
		a2, _ := url(s.ID, 8781)
		b, _ := url(s.ID, 8782)
		if a1 != a2 || a1 == b {
			t.Fatalf("URLs: port 8781 %s then %s, port 8782 %s: want one per port", a1, a2, b)
		}
		rec.mu.Lock()
		opened := slices.Clone(rec.opened)
		closedEarly := len(rec.closed)
		rec.mu.Unlock()
		if len(opened) != 2 || closedEarly != 0 {
			t.Fatalf("opened %v, closed %d before the session ended; want 2 opened, none closed", opened, closedEarly)
		}
		if end == "discard" {
			_, err = e.DiscardSession(ctx, alice, s.ID)
		} else {
			_, err = e.CommitSession(ctx, alice, s.ID, "done")
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		closed := slices.Clone(rec.closed)
		rec.mu.Unlock()
		slices.Sort(opened)
		slices.Sort(closed)
		if !slices.Equal(opened, closed) {
			t.Fatalf("%s: opened %v, closed %v; want every preview closed", end, opened, closed)
		}
		if _, _, err := e.Preview(opened[0]); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("%s: Preview of an ended session's token: %v", end, err)
		}
	}
}
