package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// run runs a foreground command and fails the test on error.
func (v *env) run(t *testing.T, req engine.RunCommandRequest) engine.RunResult {
	t.Helper()
	r, err := v.e.RunCommand(ctxT(t), req)
	if err != nil {
		t.Fatalf("run_command %q %q: %v", req.Command, req.Args, err)
	}
	return r
}

// wantArg checks that err is an ErrInvalid *Error naming arg.
func wantArg(t *testing.T, what string, err error, arg string) *engine.Error {
	t.Helper()
	e, ok := engine.AsError(err)
	if !ok || !errors.Is(err, engine.ErrInvalid) || e.Fields.Argument != arg {
		t.Fatalf("%s: got %v (fields %+v), want invalid argument %q", what, err, fieldsOf(err), arg)
	}
	return e
}

func fieldsOf(err error) engine.ErrorFields {
	if e, ok := engine.AsError(err); ok {
		return e.Fields
	}
	return engine.ErrorFields{}
}

func TestShellCommandLines(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "w")
	// Without args: a shell line, in cwd, with pipes, && and cd.
	r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "mkdir -p calc && cd calc && echo 'print(6*7)' > calc.py && pwd && python3 calc.py | tr 4 X"})
	if r.Run.Status != engine.RunExited || *r.Run.ExitCode != 0 || stdout(r) != "/workspace/calc\nX2\n" {
		t.Fatalf("shell line: %+v stdout %q stderr %q", r.Run, stdout(r), r.Stderr.Head)
	}
	if !r.Run.Shell || r.Run.Args != nil || !strings.HasPrefix(r.Run.Command, "mkdir -p calc") {
		t.Fatalf("the run record must keep the line as given and say it is one: %+v", r.Run)
	}
	commits, err := v.e.History(ctxT(t), "w", 1)
	if err != nil || len(commits) == 0 || !strings.Contains(commits[0].Message, "mkdir -p calc && cd calc") {
		t.Fatalf("the commit message must show the line: %+v %v", commits, err)
	}
	// cwd applies to the line.
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "ls *.py", Cwd: "calc"}); stdout(r) != "calc.py\n" {
		t.Fatalf("shell line in cwd calc: %q %q", stdout(r), r.Stderr.Head)
	}
	// A login shell: the profile in the (durable) home sets up PATH for later lines.
	v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c",
		`mkdir -p ~/bin && printf '#!/bin/sh\necho from-home-bin\n' > ~/bin/mytool && chmod +x ~/bin/mytool && echo 'PATH="$HOME/bin:$PATH"' >> ~/.profile`}})
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "mytool"}); stdout(r) != "from-home-bin\n" {
		t.Fatalf("a shell line must see the login profile's PATH: exit %v stdout %q stderr %q", r.Run.ExitCode, stdout(r), r.Stderr.Head)
	}
	// With args (even none): the program runs directly, without the login profile.
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "mytool", Args: []string{}}); *r.Run.ExitCode != 127 || r.Run.Shell {
		t.Fatalf("a program with empty args runs without a shell: exit %v shell %v", *r.Run.ExitCode, r.Run.Shell)
	}
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "echo", Args: []string{"a  b", "$HOME"}}); stdout(r) != "a  b $HOME\n" {
		t.Fatalf("args are passed as they are: %q", stdout(r))
	}
	// A program path with a space needs args; as a shell line it is two words.
	v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "sh", Args: []string{"-c", `mkdir -p "my tools" && printf '#!/bin/sh\necho spaced\n' > "my tools/hello" && chmod +x "my tools/hello"`}})
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "/workspace/my tools/hello", Args: []string{}}); stdout(r) != "spaced\n" {
		t.Fatalf("program path with a space: exit %v %q %q", *r.Run.ExitCode, stdout(r), r.Stderr.Head)
	}
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "/workspace/my tools/hello"}); *r.Run.ExitCode != 127 {
		t.Fatalf("the same path as a shell line must not be found: exit %d", *r.Run.ExitCode)
	}
	// An idempotency key binds the kind of command too.
	v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "true", IdempotencyKey: "k"})
	_, err = v.e.RunCommand(ctxT(t), engine.RunCommandRequest{Workspace: "w", Command: "true", Args: []string{}, IdempotencyKey: "k"})
	wantArg(t, "same key, same text, program instead of line", err, "idempotency_key")
	// Session exec follows the same rule.
	s := v.open(t, alice, "w", 0)
	defer v.e.DiscardSession(ctxT(t), alice, s.ID)
	sr, err := v.e.SessionExec(ctxT(t), alice, engine.SessionExecRequest{SessionID: s.ID, Command: "cd calc && mytool && ls"})
	if err != nil || sr.ExitCode != 0 || string(sr.Stdout.Head) != "from-home-bin\ncalc.py\n" {
		t.Fatalf("session shell line: %+v %q %v", sr, sr.Stderr.Head, err)
	}
	sr, err = v.e.SessionExec(ctxT(t), alice, engine.SessionExecRequest{SessionID: s.ID, Command: "mytool", Args: []string{}})
	if err != nil || sr.ExitCode != 127 {
		t.Fatalf("session program with empty args: %+v %v", sr, err)
	}
}

func TestCommandChecks(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "w")
	ctx := ctxT(t)
	cases := []struct {
		name string
		req  engine.RunCommandRequest
		arg  string
	}{
		{"empty", engine.RunCommandRequest{Command: "  "}, "command"},
		{"nul in command", engine.RunCommandRequest{Command: "echo \x00"}, "command"},
		{"nul in args", engine.RunCommandRequest{Command: "echo", Args: []string{"a", "b\x00"}}, "args"},
		{"too many args", engine.RunCommandRequest{Command: "echo", Args: make([]string, engine.MaxArgs+1)}, "args"},
		{"negative timeout", engine.RunCommandRequest{Command: "true", Timeout: -time.Second}, "timeout_ms"},
		{"timeout too long", engine.RunCommandRequest{Command: "true", Timeout: engine.MaxTimeout + time.Second}, "timeout_ms"},
		{"negative yield", engine.RunCommandRequest{Command: "true", Yield: -time.Second}, "yield_ms"},
		{"yield too long", engine.RunCommandRequest{Command: "true", Yield: engine.MaxYield + time.Second}, "yield_ms"},
		{"yield with background", engine.RunCommandRequest{Command: "true", Yield: time.Second, Background: true}, "yield_ms"},
		{"stdin too large", engine.RunCommandRequest{Command: "cat", Stdin: make([]byte, engine.MaxStdin+1)}, "stdin"},
		{"long idempotency key", engine.RunCommandRequest{Command: "true", IdempotencyKey: strings.Repeat("k", engine.MaxIdempotencyKey+1)}, "idempotency_key"},
	}
	for _, c := range cases {
		c.req.Workspace = "w"
		_, err := v.e.RunCommand(ctx, c.req)
		wantArg(t, c.name, err, c.arg)
	}
	e := wantArg(t, "limit", func() error { _, err := v.e.RunCommand(ctx, cases[5].req); return err }(), "timeout_ms")
	if e.Fields.Limit == nil || *e.Fields.Limit != engine.MaxTimeout.Milliseconds() || e.Fields.Got == nil {
		t.Fatalf("timeout error fields: %+v", e.Fields)
	}
	s := v.open(t, alice, "w", 0)
	_, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "sleep 5", Background: true, Timeout: time.Second})
	wantArg(t, "background session process with a timeout", err, "timeout_ms")
	_, err = v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "true", Yield: engine.MaxYield + 1})
	wantArg(t, "session yield too long", err, "yield_ms")
	_, err = v.e.SessionLogs(ctx, alice, s.ID, "p1", 0, engine.MaxWait+time.Millisecond)
	wantArg(t, "session_logs wait", err, "wait_ms")
	_, err = v.e.SessionLogs(ctx, alice, s.ID, "p1", -1, 0)
	wantArg(t, "session_logs offset", err, "offset")
	_, err = v.e.SessionKill(ctx, alice, s.ID, "p1", 32)
	wantArg(t, "session_kill signal 32", err, "signal")
	_, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: "run_x", Wait: engine.MaxWait + time.Millisecond})
	wantArg(t, "get_run wait", err, "wait_ms")
	for _, sig := range []string{"0", "32", "64", "SIGRTMIN", "BOGUS"} {
		if _, _, err := engine.ParseSignal(sig); err == nil {
			t.Fatalf("ParseSignal(%q) accepted", sig)
		}
	}
	for in, want := range map[string]string{"": "SIGTERM", "kill": "SIGKILL", "SIGINT": "SIGINT", "15": "SIGTERM", "31": "SIGSYS"} {
		if _, name, err := engine.ParseSignal(in); err != nil || name != want {
			t.Fatalf("ParseSignal(%q) = %q %v, want %s", in, name, err, want)
		}
	}
}

func TestRunYield(t *testing.T) {
	v := newEnv(t)
	v.mkws(t, "w")
	before := head(t, v, "w")
	var mu sync.Mutex
	var lines []string
	returned := false
	ctx, cancel := context.WithCancel(ctxT(t))
	start := time.Now()
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{
		Workspace: "w", Command: "echo early; sleep 1; echo done > f; echo late", Yield: 300 * time.Millisecond,
		Progress: func(line string) {
			mu.Lock()
			defer mu.Unlock()
			if returned {
				t.Errorf("progress %q after the call returned", line)
			}
			lines = append(lines, line)
		},
	})
	mu.Lock()
	returned = true
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); r.Run.Done() || took > 900*time.Millisecond {
		t.Fatalf("a run past its yield must return still going: %+v after %v", r.Run, took)
	}
	if r.Run.Status == engine.RunRunning && stdout(r) != "early\n" {
		t.Fatalf("output so far: %q", stdout(r))
	}
	cancel() // the caller goes away after the yield: the run must go on
	got, err := v.e.GetRun(ctxT(t), engine.GetRunRequest{ID: r.Run.ID, Wait: time.Minute})
	if err != nil || got.Run.Status != engine.RunExited || got.Run.CommitID == "" || stdout(got) != "early\nlate\n" {
		t.Fatalf("after the yield the run must finish and commit: %+v %q %v", got.Run, stdout(got), err)
	}
	if h := head(t, v, "w"); h == before || h != got.Run.CommitID {
		t.Fatalf("head %s, want the run's commit %s", h, got.Run.CommitID)
	}
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "cat f"}); stdout(r) != "done\n" {
		t.Fatalf("f after the yielded run: %q", stdout(r))
	}
	// A command that ends within the yield returns finished, as before.
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "echo quick", Yield: 30 * time.Second}); !r.Run.Done() || stdout(r) != "quick\n" {
		t.Fatalf("quick run: %+v", r.Run)
	}
	// A cancel before the yield still cancels; the run stays findable.
	ctx2, cancel2 := context.WithCancel(ctxT(t))
	go func() { time.Sleep(300 * time.Millisecond); cancel2() }()
	c, err := v.e.RunCommand(ctx2, engine.RunCommandRequest{Workspace: "w", Command: "sleep 30", Yield: 20 * time.Second})
	if err != nil || c.Run.Status != engine.RunCancelled {
		t.Fatalf("cancel before the yield: %+v %v", c.Run, err)
	}
	if got, err := v.e.GetRun(ctxT(t), engine.GetRunRequest{ID: c.Run.ID}); err != nil || got.Run.Status != engine.RunCancelled {
		t.Fatalf("the cancelled run must stay findable: %+v %v", got.Run, err)
	}
}

// collect reads a stream through GetRun windows from offset 0 until the run is done and its
// output read, checking that the windows are exact; it returns the bytes read and the bytes
// reported omitted.
func collect(t *testing.T, v *env, id string, stderr bool) ([]byte, int64) {
	t.Helper()
	var data []byte
	var omitted, off int64
	for range 10000 {
		req := engine.GetRunRequest{ID: id, Wait: 10 * time.Second}
		o := off
		if stderr {
			req.StderrOffset = &o
		} else {
			req.StdoutOffset = &o
		}
		r, err := v.e.GetRun(ctxT(t), req)
		if err != nil {
			t.Fatal(err)
		}
		w := r.StdoutWindow
		if stderr {
			w = r.StderrWindow
		}
		if off+w.Omitted != w.Offset || w.Offset+int64(len(w.Data)) != w.Next || w.Next > w.Total {
			t.Fatalf("inexact window from %d: offset %d omitted %d len %d next %d total %d", off, w.Offset, w.Omitted, len(w.Data), w.Next, w.Total)
		}
		data = append(data, w.Data...)
		omitted += w.Omitted
		off = w.Next
		if r.Run.Done() && off == w.Total {
			return data, omitted
		}
	}
	t.Fatal("the run never ended")
	return nil, 0
}

// background starts a shell command in ws as a background run.
func (v *env) background(t *testing.T, ws, command string) engine.RunResult {
	t.Helper()
	r, err := v.e.RunCommand(ctxT(t), engine.RunCommandRequest{Workspace: ws, Command: command, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGetRunOffsets(t *testing.T) {
	v := newEnv(t)
	v.mkws(t, "w")
	ctx := ctxT(t)
	// Following: with an offset, a wait returns as soon as there is new output.
	r := v.background(t, "w", "echo one; sleep 1; echo two; echo err >&2; sleep 1; echo three")
	zero := int64(0)
	start := time.Now()
	g, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: 30 * time.Second, StdoutOffset: &zero})
	if err != nil || string(g.StdoutWindow.Data) != "one\n" || g.StdoutWindow.Next != 4 || g.Run.Done() || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("first window: %+v %+v %v after %v", g.Run, g.StdoutWindow, err, time.Since(start))
	}
	four := int64(4)
	g, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: 30 * time.Second, StdoutOffset: &four})
	if err != nil || string(g.StdoutWindow.Data) != "two\n" || g.Run.Done() {
		t.Fatalf("second window: %+v %+v %v", g.Run, g.StdoutWindow, err)
	}
	// Following stderr alone returns when stderr has something new.
	g, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: 30 * time.Second, StderrOffset: &zero})
	if err != nil || string(g.StderrWindow.Data) != "err\n" || g.Run.Done() {
		t.Fatalf("stderr window: %+v %+v %v", g.Run, g.StderrWindow, err)
	}
	eight := int64(8)
	g, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: 30 * time.Second, StdoutOffset: &eight})
	if err != nil || string(g.StdoutWindow.Data) != "three\n" {
		t.Fatalf("third window: %+v %+v %v", g.Run, g.StdoutWindow, err)
	}
	g, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: 30 * time.Second, StdoutOffset: &g.StdoutWindow.Next, StderrOffset: &four})
	if err != nil || !g.Run.Done() || len(g.StdoutWindow.Data) != 0 || g.StdoutWindow.Next != 14 || string(g.Stdout.Head) != "one\ntwo\nthree\n" || g.StderrWindow.Total != 4 {
		t.Fatalf("at the end: %+v %+v %v", g.Run, g.StdoutWindow, err)
	}
	// Offsets past the end or negative are refused, naming the argument and the limit.
	past := int64(15)
	_, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, StdoutOffset: &past})
	if e := wantArg(t, "offset past the end", err, "stdout_offset"); e.Fields.Limit == nil || *e.Fields.Limit != 14 {
		t.Fatalf("limit of a past-the-end offset: %+v", e.Fields)
	}
	neg := int64(-1)
	_, err = v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, StderrOffset: &neg})
	wantArg(t, "negative offset", err, "stderr_offset")

	// Output longer than what is kept: read along while it is produced and after it ended;
	// every byte is either returned once, in place, or counted as omitted.
	var want bytes.Buffer
	for i := 1; i <= 150000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	// Read along while it is produced: a reader that keeps up gets every byte.
	live := v.background(t, "w", "seq 1 50000; sleep 0.5; seq 50001 150000")
	data, omitted := collect(t, v, live.Run.ID, false)
	if int64(len(data))+omitted != int64(want.Len()) || (omitted == 0 && !bytes.Equal(data, want.Bytes())) {
		t.Fatalf("read along: %d bytes + %d omitted, want %d exactly", len(data), omitted, want.Len())
	}
	// Read after the end: what was dropped is counted, the rest returned in place.
	big := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "seq 1 150000; seq 1 10 >&2"})
	data, omitted = collect(t, v, big.Run.ID, false)
	if int64(len(data))+omitted != int64(want.Len()) || omitted == 0 {
		t.Fatalf("read %d + omitted %d bytes, want %d in all with some omitted", len(data), omitted, want.Len())
	}
	final, _ := v.e.GetRun(ctx, engine.GetRunRequest{ID: big.Run.ID})
	keptHead, keptTail := final.Stdout.Head, final.Stdout.Tail
	if !bytes.Equal(keptHead, want.Bytes()[:len(keptHead)]) || !bytes.Equal(keptTail, want.Bytes()[want.Len()-len(keptTail):]) {
		t.Fatal("kept head and tail do not match the stream")
	}
	if !bytes.Equal(data, append(append([]byte(nil), keptHead...), keptTail...)) {
		t.Fatal("the windows must hold exactly the kept head and tail")
	}
	if d, o := collect(t, v, big.Run.ID, true); string(d) != "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n" || o != 0 {
		t.Fatalf("stderr read back: %q omitted %d", d, o)
	}
	// After the run ended, reading from the start: the head, then the omitted middle and the tail.
	g, _ = v.e.GetRun(ctx, engine.GetRunRequest{ID: big.Run.ID, StdoutOffset: &zero})
	if !bytes.Equal(g.StdoutWindow.Data, keptHead) || g.StdoutWindow.Next != int64(len(keptHead)) || g.StdoutWindow.Omitted != 0 {
		t.Fatalf("from 0: %d bytes next %d omitted %d", len(g.StdoutWindow.Data), g.StdoutWindow.Next, g.StdoutWindow.Omitted)
	}
	g, _ = v.e.GetRun(ctx, engine.GetRunRequest{ID: big.Run.ID, StdoutOffset: &g.StdoutWindow.Next})
	if !bytes.Equal(g.StdoutWindow.Data, keptTail) || g.StdoutWindow.Omitted != final.Stdout.Omitted || g.StdoutWindow.Next != int64(want.Len()) {
		t.Fatalf("after the head: %d bytes omitted %d (kept says %d) next %d", len(g.StdoutWindow.Data), g.StdoutWindow.Omitted, final.Stdout.Omitted, g.StdoutWindow.Next)
	}
}

func TestListRuns(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "w")
	v.mkws(t, "other")
	ctx := ctxT(t)
	var made []string
	for i := range 3 {
		made = append(made, v.run(t, engine.RunCommandRequest{Workspace: "w", Command: fmt.Sprintf("echo %d", i)}).Run.ID)
	}
	// A foreground call cancelled by its caller is listed too.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	c, err := v.e.RunCommand(cctx, engine.RunCommandRequest{Workspace: "w", Command: "sleep 30"})
	if err != nil || c.Run.Status != engine.RunCancelled {
		t.Fatalf("cancelled run: %+v %v", c.Run, err)
	}
	made = append(made, c.Run.ID)
	v.run(t, engine.RunCommandRequest{Workspace: "other", Command: "true"})

	page1, next, err := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Limit: 2})
	if err != nil || len(page1) != 2 || page1[0].ID != made[3] || page1[1].ID != made[2] || next == "" {
		t.Fatalf("page 1: %v next %q %v", runIDs(page1), next, err)
	}
	// A run added meanwhile does not shift the next page.
	newer := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "echo newer"}).Run.ID
	page2, next, err := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Limit: 2, Cursor: next})
	if err != nil || runIDs(page2) != made[1]+","+made[0] || next != "" {
		t.Fatalf("page 2: %v next %q %v", runIDs(page2), next, err)
	}
	all, _, err := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: v.getws(t, "w").ID})
	if err != nil || len(all) != 5 || all[0].ID != newer {
		t.Fatalf("by id, default limit: %v %v", runIDs(all), err)
	}
	cancelled, _, err := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Status: engine.RunCancelled})
	if err != nil || runIDs(cancelled) != c.Run.ID {
		t.Fatalf("status filter: %v %v", runIDs(cancelled), err)
	}
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{})
	wantArg(t, "no workspace", err, "workspace")
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Status: "done"})
	wantArg(t, "bad status", err, "status")
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Limit: engine.MaxListRuns + 1})
	wantArg(t, "limit too large", err, "limit")
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Limit: -1})
	wantArg(t, "negative limit", err, "limit")
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Cursor: "garbage!"})
	wantArg(t, "bad cursor", err, "cursor")
	_, otherNext, _ := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "w", Limit: 1})
	_, _, err = v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "other", Cursor: otherNext})
	wantArg(t, "cursor of another workspace", err, "cursor")
	if _, _, err := v.e.ListRuns(ctx, engine.ListRunsRequest{Workspace: "nope"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
}

func runIDs(runs []engine.Run) string {
	var s []string
	for _, r := range runs {
		s = append(s, r.ID)
	}
	return strings.Join(s, ",")
}

// TestCommitSurvivesMetadataChanges: a run commits although the workspace was renamed, relabelled,
// given other ports and another default policy while it ran: the head move compares only the
// head the run started from.
func TestCommitSurvivesMetadataChanges(t *testing.T) {
	v := newEnv(t)
	v.mkws(t, "w")
	ctx := ctxT(t)
	r := v.background(t, "w", "sleep 1; echo done > out.txt")
	name, labels, ports := "renamed", map[string]string{"k": "v"}, []int{8080}
	if _, err := v.e.UpdateWorkspace(ctx, engine.UpdateWorkspaceRequest{Workspace: "w", Name: &name, Labels: &labels, ExposedPorts: &ports}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.SetPolicy(ctx, engine.Holder{}, "renamed", policies.Policy{Mode: policies.AllowAll}); err != nil {
		t.Fatal(err)
	}
	g, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID, Wait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if g.Run.Status != engine.RunExited || g.Run.CommitID == "" {
		t.Fatalf("the run ended %s with commit %q (error %q); want exited with a commit", g.Run.Status, g.Run.CommitID, g.Run.Error)
	}
	w, err := v.e.GetWorkspace(ctx, "renamed")
	if err != nil || w.Head != g.Run.CommitID {
		t.Fatalf("head %q (%v), want the run's commit %s", w.Head, err, g.Run.CommitID)
	}
}
