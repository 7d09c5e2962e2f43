package engine_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
)

func TestSessionExecYield(t *testing.T) {
	v := newEnv(t)
	v.mkws(t, "w")
	s := v.open(t, alice, "w", 0)
	ctx := ctxT(t)
	start := time.Now()
	r, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Yield: 300 * time.Millisecond,
		Command: "echo early; echo e1 >&2; sleep 1; echo done > f; echo late; echo e2 >&2"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Running || !strings.HasPrefix(r.ProcessID, "fg_") || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("a command past its yield must return running with a process id: %+v after %v", r, time.Since(start))
	}
	if string(r.Stdout.Head) != "early\n" || string(r.Stderr.Head) != "e1\n" || r.LogOffset != 9 {
		t.Fatalf("output so far, apart: stdout %q stderr %q log offset %d", r.Stdout.Head, r.Stderr.Head, r.LogOffset)
	}
	// session_logs from the offset returns only what is new, and sees the end.
	var rest string
	since := r.LogOffset
	var st engine.ProcessStatus
	for range 100 {
		st, err = v.e.SessionLogs(ctx, alice, s.ID, r.ProcessID, since, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.Offset != since || st.Dropped != 0 || st.Next != since+int64(len(st.Output)) {
			t.Fatalf("inexact log window from %d: %+v", since, st)
		}
		rest += string(st.Output)
		since = st.Next
		if !st.Running {
			break
		}
	}
	// The two streams interleave as the provider delivers them: compare their lines as sets.
	if st.Running || st.ExitCode == nil || *st.ExitCode != 0 || sortedLines(rest) != "e2,late" {
		t.Fatalf("after the yield: %+v, rest %q", st, rest)
	}
	if all, _ := v.e.SessionLogs(ctx, alice, s.ID, r.ProcessID, 0, 0); sortedLines(string(all.Output)) != "e1,e2,early,late" {
		t.Fatalf("the whole log: %q", all.Output)
	}
	if got := v.sexec(t, alice, s.ID, "cat f"); string(got.Stdout.Head) != "done\n" {
		t.Fatalf("f after the yielded command: %q", got.Stdout.Head)
	}
	// Within the yield: the outcome, streams apart, no process.
	q, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "echo out; echo err >&2; exit 3", Yield: 20 * time.Second})
	if err != nil || q.Running || q.ProcessID != "" || q.ExitCode != 3 || string(q.Stdout.Head) != "out\n" || string(q.Stderr.Head) != "err\n" {
		t.Fatalf("quick command: %+v %v", q, err)
	}
	// Stopping a yielded command: only the signals that end it; it dies with its tree.
	k, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "sleep 30 & sleep 30; echo never > g", Yield: 200 * time.Millisecond})
	if err != nil || !k.Running {
		t.Fatalf("long command: %+v %v", k, err)
	}
	_, err = v.e.SessionKill(ctx, alice, s.ID, k.ProcessID, syscall.SIGSTOP)
	wantArg(t, "STOP to a yielded command", err, "signal")
	ks, err := v.e.SessionKill(ctx, alice, s.ID, k.ProcessID, syscall.SIGTERM)
	if err != nil || ks.Running || ks.ExitCode == nil || *ks.ExitCode != 137 {
		t.Fatalf("kill a yielded command: %+v %v", ks, err)
	}
	if got := v.sexec(t, alice, s.ID, "sleep 0.2; test -e g; echo $?; pgrep -c sleep || true"); string(got.Stdout.Head) != "1\n0\n" {
		t.Fatalf("after the kill (g must not exist, no sleep left): %q", got.Stdout.Head)
	}
	// A background shell line reads as the line it was given.
	bg, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "echo bg | tr b B", Background: true})
	if err != nil || !bg.Running {
		t.Fatalf("background shell line: %+v %v", bg, err)
	}
	bst, err := v.e.SessionLogs(ctx, alice, s.ID, bg.ProcessID, 0, 5*time.Second)
	for err == nil && bst.Running {
		bst, err = v.e.SessionLogs(ctx, alice, s.ID, bg.ProcessID, bst.Next, 5*time.Second)
	}
	if all, _ := v.e.SessionLogs(ctx, alice, s.ID, bg.ProcessID, 0, 0); err != nil || all.Command != "echo bg | tr b B" || all.Args != nil || string(all.Output) != "Bg\n" {
		t.Fatalf("background shell line status: %+v %v", all, err)
	}
	if _, err := v.e.SessionLogs(ctx, alice, s.ID, "fg_nope", 0, 0); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unknown process: %v", err)
	}
	if _, err := v.e.SessionLogs(ctx, bob, s.ID, k.ProcessID, 0, 0); !errors.Is(err, engine.ErrNotHolder) {
		t.Fatalf("another connection reading the log: %v", err)
	}
	// A cancel before the yield kills the command, as before.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err = v.e.SessionExec(cctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "sleep 2; echo x > h", Yield: 20 * time.Second})
	if !errors.Is(err, engine.ErrCancelled) {
		t.Fatalf("cancel before the yield: %v", err)
	}
	if got := v.sexec(t, alice, s.ID, "sleep 2.5; test -e h; echo $?"); string(got.Stdout.Head) != "1\n" {
		t.Fatalf("a cancelled command must be dead: %q", got.Stdout.Head)
	}
	// A yielded command ends with the session's commit; its changes so far are committed.
	y, err := v.e.SessionExec(ctx, alice, engine.SessionExecRequest{SessionID: s.ID, Command: "echo partial > p; sleep 30", Yield: 300 * time.Millisecond})
	if err != nil || !y.Running {
		t.Fatalf("command to outlive: %+v %v", y, err)
	}
	if _, err := v.e.CommitSession(ctx, alice, s.ID, ""); err != nil {
		t.Fatal(err)
	}
	if r := v.run(t, engine.RunCommandRequest{Workspace: "w", Command: "cat p f"}); stdout(r) != "partial\ndone\n" {
		t.Fatalf("committed state: %q", stdout(r))
	}
}

func sortedLines(s string) string {
	lines := strings.Fields(s)
	sort.Strings(lines)
	return strings.Join(lines, ",")
}
