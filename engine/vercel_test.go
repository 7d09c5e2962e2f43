package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

// fakes holds the Vercel fake of each test directory, so a restarted engine talks to the same
// "cloud".
var fakes sync.Map // dir → *vercelfaketest.TestEnv

// vercelFake returns the fake of dir, starting it (stopped when t ends) on first use.
func vercelFake(t *testing.T, dir string) *vercelfaketest.TestEnv {
	t.Helper()
	if fe, ok := fakes.Load(dir); ok {
		return fe.(*vercelfaketest.TestEnv)
	}
	fe := vercelfaketest.StartForTest(t, dir, vercelfake.Options{MaxTimeout: 24 * time.Hour})
	fakes.Store(dir, fe)
	t.Cleanup(func() { fakes.Delete(dir) })
	return fe
}

// vercelProvider makes a Vercel provider over dir's fake.
func vercelProvider(t *testing.T, dir string) *vercel.Provider {
	t.Helper()
	fe := vercelFake(t, dir)
	p, err := vercel.New(vercel.Options{
		Config: vercel.Config{
			BaseURL: fe.URL, Token: vercelfaketest.TestToken, TeamID: vercelfaketest.TestTeamID,
			ProjectID: vercelfaketest.TestProjectID, MinBackoff: 10 * time.Millisecond,
		},
		Owner: "enginetest", MaxLifetime: 26 * time.Hour,
	})
	if err != nil {
		t.Fatalf("vercel provider: %v", err)
	}
	return p
}

// openVercel opens an engine over the Vercel provider and dir's fake, whatever
// SANDKIT_TEST_PROVIDER says.
func openVercel(t *testing.T, dir string) (*engine.Engine, *vercelfaketest.TestEnv) {
	t.Helper()
	v, err := openOver(t, dir, vercelProvider(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.close)
	return v.e, vercelFake(t, dir)
}

// TestVercelSessionURL: on Vercel, session_url is the sandbox's own route, which serves what
// listens on the port inside; ports Vercel cannot expose are refused at create_workspace.
func TestVercelSessionURL(t *testing.T) {
	e, _ := openVercel(t, t.TempDir())
	ctx := ctxT(t)
	_, err := e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "low", ExposedPorts: []int{80}})
	wantErr(t, "a port below 1024 on Vercel", err, engine.ErrInvalid, "80", "1024", "vercel")
	s := openWebSession(t, e, "<h1>hello vercel route</h1>")
	defer e.DiscardSession(context.Background(), alice, s.ID)
	_, err = e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 9999})
	wantErr(t, "url of a port not exposed", err, engine.ErrInvalid, "9999", "8765")
	r, err := e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "python3", Args: []string{"-m", "http.server", "8765", "--bind", "0.0.0.0"}, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	// Vercel's route answers whether or not something listens: session_url does not wait and
	// says listening is unknown, reporting the session's processes instead.
	start := time.Now()
	u, err := e.SessionURL(ctx, alice, engine.SessionURLRequest{SessionID: s.ID, Port: 8765, Wait: time.Minute})
	if err != nil || !strings.HasPrefix(u.URL, "http") || u.Listening != nil || time.Since(start) > 30*time.Second {
		t.Fatalf("session_url: %+v, %v (after %v)", u, err, time.Since(start))
	}
	if len(u.Processes) != 1 || u.Processes[0].ID != r.ProcessID || u.Processes[0].Command != "python3" {
		t.Fatalf("session_url's processes: %+v, want the server %s", u.Processes, r.ProcessID)
	}
	if body := fetchOK(t, e, u.URL, "/index.html"); !strings.Contains(body, "hello vercel route") {
		t.Fatalf("the route served %q", body)
	}
}

// TestVercelSnapshotExpiry: when the snapshot under a workspace's head expires at Vercel, the next
// command fails saying so and commits nothing; the history is intact, and restoring an older
// commit whose snapshot still exists makes the workspace usable again.
func TestVercelSnapshotExpiry(t *testing.T) {
	t.Parallel()
	e, fe := openVercel(t, t.TempDir())
	ctx := ctxT(t)
	if _, err := e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "w"}); err != nil {
		t.Fatal(err)
	}
	run := func(script string) (engine.RunResult, error) {
		return e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", script}})
	}
	first, err := run("echo one > a.txt")
	if err != nil || first.Run.CommitID == "" {
		t.Fatalf("first run: %+v %v", first, err)
	}
	if second, err := run("echo two >> a.txt"); err != nil || second.Run.CommitID == "" {
		t.Fatalf("second run: %+v %v", second, err)
	}
	hist, err := e.History(ctx, "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	headSnap := ""
	w, err := e.GetWorkspace(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hist {
		if c.ID == w.Head {
			headSnap = c.Snapshot
		}
	}
	if headSnap == "" {
		t.Fatalf("no snapshot for head %s in %+v", w.Head, hist)
	}
	if err := fe.Fake.ExpireSnapshot(headSnap); err != nil {
		t.Fatal(err)
	}
	failed, err := run("cat a.txt")
	if err != nil || failed.Run.Status != engine.RunFailed || failed.Run.CommitID != "" ||
		!strings.Contains(failed.Run.Error, "expired") || !strings.Contains(failed.Run.Error, "restore_workspace") {
		t.Fatalf("run on an expired head: %+v, %v; want a failed run saying the snapshot expired and what to do", failed.Run, err)
	}
	after, err := e.GetWorkspace(ctx, "w")
	if err != nil || after.Head != w.Head {
		t.Fatalf("head after the failed run: %s (%v); want it unchanged at %s", after.Head, err, w.Head)
	}
	hist2, err := e.History(ctx, "w", 0)
	if err != nil || len(hist2) != len(hist) {
		t.Fatalf("history after the failed run: %d commits (%v); want %d", len(hist2), err, len(hist))
	}
	if _, _, err := e.Restore(ctx, "w", first.Run.CommitID); err != nil {
		t.Fatalf("restore to %s: %v", first.Run.CommitID, err)
	}
	r, err := run("cat a.txt")
	if err != nil || strings.TrimSpace(string(r.Stdout.Head)) != "one" {
		t.Fatalf("after restoring the older commit: %+v %v", r, err)
	}
}
