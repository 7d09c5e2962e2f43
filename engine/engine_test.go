package engine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
	"github.com/sandkit/sandkit-mcp/store"
)

// env is an engine over a real bbolt file and a real provider: the local one, or, when
// SANDKIT_TEST_PROVIDER=vercel, the Vercel provider talking HTTP to the fake (whose sessions run
// in local sandboxes). scripts/test runs the provider-independent scenarios both ways.
type env struct {
	dir string
	st  *store.Store
	pv  sandbox.Provider
	e   *engine.Engine
}

// testProvider is the provider the env of the tests runs: "local" or "vercel".
func testProvider() string {
	if os.Getenv("SANDKIT_TEST_PROVIDER") == "vercel" {
		return "vercel"
	}
	return "local"
}

// makeProvider makes the test provider over dir; a second call with the same dir (a restart)
// talks to the same fake.
func makeProvider(t *testing.T, dir string) sandbox.Provider {
	t.Helper()
	if testProvider() == "vercel" {
		return vercelProvider(t, dir)
	}
	return localProvider(t, dir)
}

// localProvider is the local provider over dir, its live sandboxes stopped when the test ends.
func localProvider(t *testing.T, dir string) *local.Provider {
	t.Helper()
	pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local")})
	if err != nil {
		t.Fatalf("local provider: %v (install bubblewrap: apt-get install -y bubblewrap)", err)
	}
	localtest.StopLiveAtCleanup(t, pv)
	return pv
}

func open(t *testing.T, dir string) *env { return openEnv(t, dir, nil) }

// openEnv is open with options of the test's own (set sets them on the defaults).
func openEnv(t *testing.T, dir string, set func(*engine.Options)) *env {
	t.Helper()
	v, err := openOver(t, dir, makeProvider(t, dir), func(o *engine.Options) {
		o.Previews = engine.PreviewURLFunc(testPreviewURL)
		if set != nil {
			set(o)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// openOver opens an engine over a bbolt file in dir and the provider pv, with the options set
// sets (Store and Provider are set here). When the engine does not open, it closes both and
// returns the error.
func openOver(t *testing.T, dir string, pv sandbox.Provider, set func(*engine.Options)) (*env, error) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		pv.Close()
		t.Fatal(err)
	}
	opts := engine.Options{Store: st, Provider: pv}
	if set != nil {
		set(&opts)
	}
	e, err := engine.Open(context.Background(), opts)
	if err != nil {
		pv.Close()
		st.Close()
		return nil, err
	}
	return &env{dir: dir, st: st, pv: pv, e: e}, nil
}

func (v *env) close() {
	v.e.Close()
	v.pv.Close()
	v.st.Close()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	v := open(t, t.TempDir())
	t.Cleanup(v.close)
	return v
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newEnvWorkspace is newEnv with a workspace named ws, and the test's context.
func newEnvWorkspace(t *testing.T, ws string) (*env, context.Context) {
	t.Helper()
	v := newEnv(t)
	ctx := ctxT(t)
	v.mkws(t, ws)
	return v, ctx
}

// mkws creates a workspace, exposing ports.
func (v *env) mkws(t *testing.T, name string, ports ...int) engine.Workspace {
	t.Helper()
	w, err := v.e.CreateWorkspace(ctxT(t), engine.CreateWorkspaceRequest{Name: name, ExposedPorts: ports})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (v *env) sh(t *testing.T, ws, script string) engine.RunResult {
	t.Helper()
	r, err := v.e.RunCommand(ctxT(t), engine.RunCommandRequest{Workspace: ws, Command: "sh", Args: []string{"-c", script}})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return r
}

func stdout(r engine.RunResult) string { return string(r.Stdout.Head) + string(r.Stdout.Tail) }

// wantNoFile fails the test unless the head of workspace w has no file path (what says which
// file, and why).
func (v *env) wantNoFile(t *testing.T, ctx context.Context, path, what string) {
	t.Helper()
	if _, err := v.e.ReadFile(ctx, "w", path, 0, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("%s: %v, want ErrNotFound", what, err)
	}
}

func head(t *testing.T, v *env, ws string) string {
	t.Helper()
	return v.getws(t, ws).Head
}

// getws is the workspace ws (an id or a name).
func (v *env) getws(t *testing.T, ws string) engine.Workspace {
	t.Helper()
	w, err := v.e.GetWorkspace(ctxT(t), ws)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWorkspaceLifecycle(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := ctxT(t)
	a := v.mkws(t, "alpha")
	if a.Head == "" || a.Provider != testProvider() || a.Policy.Mode != policies.DenyAll {
		t.Fatalf("new workspace: %+v", a)
	}
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "alpha"}); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("duplicate name: got %v, want ErrExists", err)
	}
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "bad name!"}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("bad name: got %v", err)
	}
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "p", ExposedPorts: []int{0}}); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("bad port: got %v", err)
	}
	if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "q", Policy: &policies.Policy{Mode: "allow", Domains: []string{"a.*.com"}}}); !errors.Is(err, engine.ErrPolicy) {
		t.Fatalf("bad policy: got %v", err)
	}
	b, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "beta", Labels: map[string]string{"team": "x"}, Policy: &policies.Policy{Mode: "allow-all"}})
	if err != nil {
		t.Fatal(err)
	}
	enforced := v.pv.Capabilities().Egress
	if warned := len(b.Warnings) > 0 && strings.Contains(b.Warnings[0], "not enforced"); warned == enforced {
		t.Fatalf("allow-all with egress enforced=%v: warnings %+v (a warning that it is not enforced exactly when it is not)", enforced, b.Warnings)
	}
	byID, err := v.e.GetWorkspace(ctx, b.ID)
	if err != nil || byID.Name != "beta" {
		t.Fatalf("get by id: %+v %v", byID, err)
	}
	if _, err := v.e.GetWorkspace(ctx, "nope"); !errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), "list_workspaces") {
		t.Fatalf("unknown workspace: %v", err)
	}
	all, _, _ := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{})
	lab, _, _ := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Label: "team=x"})
	if len(all) != 2 || len(lab) != 1 || lab[0].Name != "beta" {
		t.Fatalf("list: all=%d labelled=%d", len(all), len(lab))
	}
	if err := v.e.DeleteWorkspace(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.GetWorkspace(ctx, a.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleted workspace still there: %v", err)
	}
	if err := v.e.DeleteWorkspace(ctx, "alpha"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestDurableRuns(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := ctxT(t)
	w := v.mkws(t, "w")
	r1 := v.sh(t, "w", "echo one > a.txt; echo out; echo err >&2; exit 3")
	if r1.Run.Status != engine.RunExited || *r1.Run.ExitCode != 3 || r1.Run.CommitID == "" {
		t.Fatalf("run 1: %+v", r1.Run)
	}
	if stdout(r1) != "out\n" || string(r1.Stderr.Head) != "err\n" {
		t.Fatalf("run 1 output: %q %q", stdout(r1), r1.Stderr.Head)
	}
	if head(t, v, "w") != r1.Run.CommitID {
		t.Fatal("a non-zero exit must still commit and move head")
	}
	r2 := v.sh(t, w.ID, "cat a.txt; echo two >> a.txt")
	if stdout(r2) != "one\n" {
		t.Fatalf("second run must see the first one's file: %q", stdout(r2))
	}
	// A timeout commits what the command wrote.
	r3, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", "echo partial > t.txt; sleep 30"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !r3.Run.TimedOut || r3.Run.Status != engine.RunExited || r3.Run.CommitID == "" {
		t.Fatalf("timed-out run: %+v", r3.Run)
	}
	fc, err := v.e.ReadFile(ctx, "w", "t.txt", 0, 0)
	if err != nil || string(fc.Data) != "partial\n" {
		t.Fatalf("file written before the timeout: %q %v", fc.Data, err)
	}
	hist, err := v.e.History(ctx, "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 || hist[0].ID != r3.Run.CommitID || hist[3].Kind != engine.CommitEmpty {
		t.Fatalf("history: %+v", hist)
	}
	got, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: r1.Run.ID})
	if err != nil || got.Run.Status != engine.RunExited || stdout(got) != "out\n" {
		t.Fatalf("get_run after the fact: %+v %v", got.Run, err)
	}
	// Bad input never moves head.
	before := head(t, v, "w")
	bad := []engine.RunCommandRequest{
		{Workspace: "w", Command: ""},
		{Workspace: "w", Command: "true", Timeout: -time.Second},
		{Workspace: "w", Command: "true", Timeout: 48 * time.Hour},
		{Workspace: "w", Command: "true", Cwd: "../.."},
		{Workspace: "nope", Command: "true"},
	}
	for _, b := range bad {
		if _, err := v.e.RunCommand(ctx, b); err == nil {
			t.Fatalf("%+v: expected an error", b)
		}
	}
	if head(t, v, "w") != before {
		t.Fatal("head moved on a failed validation")
	}
	if _, err := v.e.CancelRun(ctx, r1.Run.ID); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("cancel of a finished run: %v", err)
	}
	if _, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: "run_nope"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

func TestRunsInArrivalOrder(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	first, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", "sleep 0.3; echo first > f.txt"}, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "cat", Args: []string{"f.txt"}, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.Run.Status != engine.RunQueued || second.Run.Status != engine.RunQueued {
		t.Fatalf("background runs start queued: %s %s", first.Run.Status, second.Run.Status)
	}
	r2, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: second.Run.ID, Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := v.e.GetRun(ctx, engine.GetRunRequest{ID: first.Run.ID})
	if stdout(r2) != "first\n" || *r2.Run.ExitCode != 0 {
		t.Fatalf("the second run must see the first one's file: %q %+v", stdout(r2), r2.Run)
	}
	if r2.Run.BaseCommit != r1.Run.CommitID {
		t.Fatalf("second run started from %s, want the first run's commit %s", r2.Run.BaseCommit, r1.Run.CommitID)
	}

	// Many concurrent foreground calls all commit, one after another.
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", fmt.Sprintf("echo %d >> log.txt", i)}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	fc, err := v.e.ReadFile(ctx, "w", "log.txt", 0, 0)
	if err != nil || strings.Count(string(fc.Data), "\n") != 5 {
		t.Fatalf("concurrent runs lost updates: %q %v", fc.Data, err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	req := engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", "echo x >> once.txt; cat once.txt"}, IdempotencyKey: "k1"}
	a, err := v.e.RunCommand(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.e.RunCommand(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Run.ID != b.Run.ID || stdout(b) != "x\n" {
		t.Fatalf("retry with the same key must return the same run: %s vs %s, %q", a.Run.ID, b.Run.ID, stdout(b))
	}
	fc, _ := v.e.ReadFile(ctx, "w", "once.txt", 0, 0)
	if string(fc.Data) != "x\n" {
		t.Fatalf("the command ran twice: %q", fc.Data)
	}
	other := req
	other.Args = []string{"-c", "true"}
	if _, err := v.e.RunCommand(ctx, other); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("same key, other command: %v", err)
	}
	// Concurrent retries with one key: still one run.
	req.IdempotencyKey = "k2"
	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := v.e.RunCommand(ctx, req)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.Run.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent retries got different runs: %v", ids)
		}
	}
	fc, _ = v.e.ReadFile(ctx, "w", "once.txt", 0, 0)
	if string(fc.Data) != "x\nx\n" {
		t.Fatalf("key k2 ran more than once: %q", fc.Data)
	}
}

func TestCancel(t *testing.T) {
	v := newEnv(t)
	v.mkws(t, "w")
	before := head(t, v, "w")
	// Foreground: cancelling the caller's context kills the command, no commit.
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	start := time.Now()
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", "echo x > c.txt; sleep 30"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.Status != engine.RunCancelled || time.Since(start) > 20*time.Second {
		t.Fatalf("cancelled run: %+v after %v", r.Run, time.Since(start))
	}
	if head(t, v, "w") != before {
		t.Fatal("a cancelled run moved head")
	}
	// Background: cancel_run on a running and on a queued run.
	ctx2 := ctxT(t)
	running, _ := v.e.RunCommand(ctx2, engine.RunCommandRequest{Workspace: "w", Command: "sleep", Args: []string{"30"}, Background: true})
	queued, _ := v.e.RunCommand(ctx2, engine.RunCommandRequest{Workspace: "w", Command: "true", Background: true})
	time.Sleep(200 * time.Millisecond)
	q, err := v.e.CancelRun(ctx2, queued.Run.ID)
	if err != nil || q.Status != engine.RunCancelled {
		t.Fatalf("cancel queued: %+v %v", q, err)
	}
	rr, err := v.e.CancelRun(ctx2, running.Run.ID)
	if err != nil || rr.Status != engine.RunCancelled {
		t.Fatalf("cancel running: %+v %v", rr, err)
	}
	if head(t, v, "w") != before {
		t.Fatal("cancelled runs moved head")
	}
	v.wantNoFile(t, ctx2, "c.txt", "a cancelled run's file must not be committed")
}

func TestFiles(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	c, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{
		{Path: "src/main.sh", Content: []byte("echo hi\n"), Mode: 0o755},
		{Path: "/workspace/data.bin", Content: bin},
	}})
	if err != nil || c.Kind != engine.CommitWrite || head(t, v, "w") != c.ID {
		t.Fatalf("write: %+v %v", c, err)
	}
	r := v.sh(t, "w", "./src/main.sh")
	if stdout(r) != "hi\n" {
		t.Fatalf("written executable: %q", stdout(r))
	}
	fc, err := v.e.ReadFile(ctx, "w", "data.bin", 10, 5)
	if err != nil || string(fc.Data) != string(bin[10:15]) || fc.Size != 256 {
		t.Fatalf("window read: %v %+v", err, fc)
	}
	ents, err := v.e.ListFiles(ctx, "w", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, e := range ents {
		paths[e.Path] = e.Type
	}
	if paths["src"] != "dir" || paths["src/main.sh"] != "file" || paths["data.bin"] != "file" {
		t.Fatalf("list: %+v", ents)
	}
	v.sh(t, "w", "ln -s /etc etc-link; ln -s ../.. up")
	before := head(t, v, "w")
	for _, p := range []string{"../x", "/etc/passwd", "a/../../x", "etc-link/passwd", "up/etc/passwd"} {
		if _, err := v.e.ReadFile(ctx, "w", p, 0, 0); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("read %q: %v, want ErrInvalid", p, err)
		}
		if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: p, Content: []byte("x")}}}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("write %q: %v, want ErrInvalid", p, err)
		}
	}
	v.wantNoFile(t, ctx, "missing.txt", "missing file")
	big := make([]byte, engine.MaxFileSize+1)
	if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "big", Content: big}}}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("too large: %v", err)
	}
	if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("no files: %v", err)
	}
	if head(t, v, "w") != before {
		t.Fatal("failed writes moved head")
	}
}

func TestRestoreAndFork(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "w")
	c1 := v.sh(t, "w", "echo v1 > f").Run.CommitID
	v.sh(t, "w", "echo v2 > f; echo extra > g")
	fork, err := v.e.Fork(ctx, "w", c1, "w-fork")
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(v.sh(t, "w-fork", "cat f; ls")); got != "v1\nf\n" {
		t.Fatalf("fork at c1 must hold v1 only: %q", got)
	}
	v.sh(t, "w-fork", "echo forked > f")
	if got := stdout(v.sh(t, "w", "cat f")); got != "v2\n" {
		t.Fatalf("the fork's change leaked into the original: %q", got)
	}
	ws, rc, err := v.e.Restore(ctx, "w", c1)
	if err != nil || rc.Kind != engine.CommitRestore || ws.Head != rc.ID || rc.Source != c1 {
		t.Fatalf("restore: %+v %+v %v", ws, rc, err)
	}
	if got := stdout(v.sh(t, "w", "cat f; ls")); got != "v1\nf\n" {
		t.Fatalf("after restore: %q", got)
	}
	if _, _, err := v.e.Restore(ctx, "w", "c_nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("restore unknown commit: %v", err)
	}
	forkHist, _ := v.e.History(ctx, fork.ID, 0)
	if _, _, err := v.e.Restore(ctx, "w", forkHist[0].ID); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("restoring another workspace's commit must fail: %v", err)
	}
	if _, err := v.e.Fork(ctx, "w", "", "w-fork"); !errors.Is(err, engine.ErrExists) {
		t.Fatalf("fork onto a taken name: %v", err)
	}
	// Deleting the original keeps the fork's shared state intact.
	if err := v.e.DeleteWorkspace(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if got := stdout(v.sh(t, "w-fork", "cat f")); got != "forked\n" {
		t.Fatalf("fork after the original was deleted: %q", got)
	}
	hist, _ := v.e.History(ctx, "w-fork", 0)
	if _, _, err := v.e.Restore(ctx, "w-fork", hist[len(hist)-1].ID); err != nil {
		t.Fatal(err)
	}
	if got := stdout(v.sh(t, "w-fork", "cat f")); got != "v1\n" {
		t.Fatalf("the fork's first commit shares c1's snapshot, which must survive the original's deletion: %q", got)
	}
}

// TestCrashDuringRun kills a server process (SIGKILL) while a command runs, then restarts on the
// same data dir: the run reads lost, head is unchanged, and the next run works.
func TestCrashDuringRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v := open(t, dir)
	w := v.mkws(t, "w")
	base := v.sh(t, "w", "echo before > f").Run.CommitID
	v.close()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SANDKIT_CRASH_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	var runID string
	deadline := time.After(time.Minute)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "RUNNING "); ok {
				found <- id
				return
			}
		}
		close(found)
	}()
	select {
	case runID = <-found:
	case <-deadline:
		t.Fatal("helper did not start its run")
	}
	if runID == "" {
		t.Fatal("helper exited without starting its run")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	v = open(t, dir)
	defer v.close()
	ctx := ctxT(t)
	r, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.Status != engine.RunLost || !strings.Contains(r.Run.Error, "previous head") && !strings.Contains(r.Run.Error, "head it had before") {
		t.Fatalf("after the crash the run must read lost: %+v", r.Run)
	}
	if head(t, v, w.ID) != base {
		t.Fatal("head moved although the run never finished")
	}
	if got := stdout(v.sh(t, "w", "cat f; ls")); got != "before\nf\n" {
		t.Fatalf("next run after the crash: %q", got)
	}
}

// TestMain doubles as the server process TestCrashDuringRun kills: with
// SANDKIT_CRASH_HELPER_DIR set, it opens the engine there, starts a long run, reports it on
// stdout and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SANDKIT_CRASH_HELPER_DIR"); dir != "" {
		crashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

func crashHelper(dir string) {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "crash helper:", err); os.Exit(1) }
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		fail(err)
	}
	pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local")})
	if err != nil {
		fail(err)
	}
	e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	r, err := e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", "echo during > f; echo new > g; echo written; sleep 60"}, Background: true})
	if err != nil {
		fail(err)
	}
	for {
		got, err := e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID})
		if err != nil {
			fail(err)
		}
		if got.Run.Status == engine.RunRunning && got.Stdout.Total > 0 {
			fmt.Printf("RUNNING %s\n", r.Run.ID)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Minute)
	os.Exit(1)
}
