package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Helpers for live (Detached) sandboxes and their background processes.

// liveLifetime is the Lifetime of every detached sandbox the suite starts without asking for
// another: long enough for any scenario, short enough that a sandbox a failed scenario could not
// stop does not outlive the test run by the provider's default lifetime.
const liveLifetime = 15 * time.Minute

// clockSlack is how far a time the provider reports (a deadline, when a process started) may be
// from the suite's own clock: a remote provider's clock may differ a little from ours.
const clockSlack = 5 * time.Second

// startLive starts a Detached sandbox (with Lifetime liveLifetime unless opts sets one) and stops
// it when the test ends.
func startLive(t *testing.T, p sandbox.Provider, opts sandbox.StartOptions) sandbox.Sandbox {
	t.Helper()
	opts.Detached = true
	if opts.Lifetime == 0 {
		opts.Lifetime = liveLifetime
	}
	return startWith(t, p, opts)
}

// startUnmanaged starts a sandbox like startWith but does not stop it when the test ends: the
// caller does (through whichever provider is open by then).
func startUnmanaged(t *testing.T, p sandbox.Provider, opts sandbox.StartOptions) sandbox.Sandbox {
	t.Helper()
	opts.Policy = policies.Deny()
	if opts.Label == "" {
		opts.Label = t.Name()
	}
	sb, err := p.Start(opCtx(t), opts)
	if err != nil {
		t.Fatalf("Start(detached %v, lifetime %v): %v", opts.Detached, opts.Lifetime, err)
	}
	if sb == nil {
		t.Fatal("Start returned a nil sandbox and no error")
	}
	return sb
}

// liveIDs returns what p.Sandboxes lists, failing the test on error or on a duplicate.
func liveIDs(t *testing.T, p sandbox.Provider) []string {
	t.Helper()
	ids, err := p.Sandboxes(opCtx(t))
	if err != nil {
		t.Fatalf("Sandboxes: %v", err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("Sandboxes() = %q lists %q twice", ids, id)
		}
		seen[id] = true
	}
	return ids
}

// wantSandboxes checks that p.Sandboxes lists exactly want.
func wantSandboxes(t *testing.T, p sandbox.Provider, want ...string) {
	t.Helper()
	got := slices.Clone(liveIDs(t, p))
	want = slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Sandboxes() = %q, want exactly the live (Detached, running) sandboxes %q", got, want)
	}
}

// wantListed checks whether p.Sandboxes lists id.
func wantListed(t *testing.T, p sandbox.Provider, id string, listed bool) {
	t.Helper()
	ids := liveIDs(t, p)
	if slices.Contains(ids, id) != listed {
		if listed {
			t.Errorf("Sandboxes() = %q does not list the live sandbox %q", ids, id)
		} else {
			t.Errorf("Sandboxes() = %q lists %q, which is not a running Detached sandbox", ids, id)
		}
	}
}

// waitUnlisted waits up to within for p.Sandboxes to stop listing id.
func waitUnlisted(t *testing.T, p sandbox.Provider, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ids := liveIDs(t, p)
		if !slices.Contains(ids, id) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("Sandboxes() = %q still lists %q, %v after it should have ended", ids, id, within)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconnect reconnects to the live sandbox id through p.
func reconnect(t *testing.T, p sandbox.Provider, id string) sandbox.Sandbox {
	t.Helper()
	sb, err := p.Reconnect(opCtx(t), id)
	if err != nil {
		t.Fatalf("Reconnect(%q): %v", id, err)
	}
	if sb == nil {
		t.Fatalf("Reconnect(%q) returned a nil sandbox and no error", id)
	}
	if sb.ID() != id {
		t.Errorf("Reconnect(%q) returned a sandbox whose ID() is %q", id, sb.ID())
	}
	return sb
}

// wantReconnectNotFound checks that Reconnect(id) fails with ErrNotFound.
func wantReconnectNotFound(t *testing.T, p sandbox.Provider, id string) {
	t.Helper()
	_, err := p.Reconnect(opCtx(t), id)
	wantErr(t, fmt.Sprintf("Reconnect(%q)", id), err, sandbox.ErrNotFound)
}

// extend moves sb's deadline to until and checks that Deadline reports it.
func extend(t *testing.T, sb sandbox.Sandbox, until time.Time) {
	t.Helper()
	if err := sb.Extend(opCtx(t), until); err != nil {
		t.Fatalf("Extend(%s): %v", fmtTime(until), err)
	}
	wantTimeNear(t, "Deadline() after Extend", sb.Deadline(), until)
}

// wantTimeBetween checks that got lies between lo and hi, give or take clockSlack.
func wantTimeBetween(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo.Add(-clockSlack)) || got.After(hi.Add(clockSlack)) {
		t.Errorf("%s = %s, want between %s and %s (±%v)", what, fmtTime(got), fmtTime(lo), fmtTime(hi), clockSlack)
	}
}

// wantTimeNear checks that got is want, give or take clockSlack.
func wantTimeNear(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	wantTimeBetween(t, what, got, want, want)
}

func fmtTime(tm time.Time) string {
	if tm.IsZero() {
		return "the zero time"
	}
	return tm.Format("15:04:05.000") + fmt.Sprintf(" (%+.1fs from now)", time.Until(tm).Seconds())
}

// waitEnded polls sb with Exec until it returns ErrEnded and returns how long after begin that
// was. It fails the test when sb still runs commands at begin+within.
func waitEnded(t *testing.T, sb sandbox.Sandbox, begin time.Time, within time.Duration) time.Duration {
	t.Helper()
	var other error
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, err := sb.Exec(ctx, shReq("true"))
		cancel()
		if errors.Is(err, sandbox.ErrEnded) {
			return time.Since(begin)
		}
		if err != nil {
			other = err // perhaps a call that raced the end; the next one must say ErrEnded
		}
		if time.Since(begin) > within {
			t.Fatalf("sandbox %s still there %v after Start began (Exec: %v; an earlier Exec failed with %v); want ErrEnded once its deadline %s has passed", sb.ID(), time.Since(begin).Round(time.Millisecond), err, other, fmtTime(sb.Deadline()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// liveEndedChecks checks that the live-sandbox methods of an ended sandbox return ErrEnded (and
// Stop succeeds); procID is a background process it had.
func liveEndedChecks(t *testing.T, sb sandbox.Sandbox, procID string) {
	t.Helper()
	_, err := sb.Exec(opCtx(t), shReq("true"))
	wantErr(t, "Exec", err, sandbox.ErrEnded)
	_, err = sb.StartProcess(opCtx(t), shReq("true"))
	wantErr(t, "StartProcess", err, sandbox.ErrEnded)
	_, err = sb.Process(opCtx(t), procID, 0, 0)
	wantErr(t, "Process", err, sandbox.ErrEnded)
	err = sb.Signal(opCtx(t), procID, syscall.SIGKILL)
	wantErr(t, "Signal", err, sandbox.ErrEnded)
	conn, err := sb.DialPort(opCtx(t), 8123)
	if err == nil {
		conn.Close()
	}
	wantErr(t, "DialPort", err, sandbox.ErrEnded)
	err = sb.Extend(opCtx(t), time.Now().Add(time.Hour))
	wantErr(t, "Extend", err, sandbox.ErrEnded)
	if err := sb.Stop(opCtx(t)); err != nil {
		t.Errorf("Stop of an ended sandbox: %v, want nil (a no-op)", err)
	}
}

// startProcess starts a background process and returns its id.
func startProcess(t *testing.T, sb sandbox.Sandbox, req sandbox.ExecRequest) string {
	t.Helper()
	id, err := sb.StartProcess(opCtx(t), req)
	if err != nil {
		t.Fatalf("StartProcess(%s %q): %v", req.Command, req.Args, err)
	}
	if id == "" {
		t.Fatalf("StartProcess(%s %q) returned an empty id", req.Command, req.Args)
	}
	return id
}

// startSh starts script with sh -c as a background process.
func startSh(t *testing.T, sb sandbox.Sandbox, script string) string {
	t.Helper()
	return startProcess(t, sb, shReq(script))
}

// callProcess calls Process with a context bounded by wait plus 30s.
func callProcess(ctx context.Context, sb sandbox.Sandbox, id string, since int64, wait time.Duration) (sandbox.ProcessStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	return sb.Process(ctx, id, since, wait)
}

// processStatus calls Process, fails the test on error and checks what every status must
// satisfy (see checkStatus).
func processStatus(t *testing.T, sb sandbox.Sandbox, id string, since int64, wait time.Duration) sandbox.ProcessStatus {
	t.Helper()
	st, err := callProcess(t.Context(), sb, id, since, wait)
	if err != nil {
		t.Fatalf("Process(%q, since %d, wait %v): %v", id, since, wait, err)
	}
	checkStatus(t, st, id, since)
	return st
}

// checkStatus checks the invariants of a ProcessStatus asked for from since (never past the end
// of the output): it names the process; Next = Offset + len(Output); Output starts at since
// unless older output was dropped, and then Dropped counts the bytes lost; ExitCode and Ended
// are set exactly when the process no longer runs.
func checkStatus(t *testing.T, st sandbox.ProcessStatus, id string, since int64) {
	t.Helper()
	what := fmt.Sprintf("Process(%q, since %d)", id, since)
	if st.ID != id {
		t.Errorf("%s: ID %q, want %q", what, st.ID, id)
	}
	if st.Next != st.Offset+int64(len(st.Output)) {
		t.Errorf("%s: Next %d, want Offset + len(Output) = %d + %d", what, st.Next, st.Offset, len(st.Output))
	}
	switch {
	case st.Offset < since:
		t.Errorf("%s: Offset %d: output from before since was returned", what, st.Offset)
	case st.Offset == since && st.Dropped != 0:
		t.Errorf("%s: Offset %d = since, yet Dropped %d (want 0)", what, st.Offset, st.Dropped)
	case st.Offset > since && st.Dropped != st.Offset-since:
		t.Errorf("%s: Offset %d, Dropped %d; want Dropped = Offset - since = %d", what, st.Offset, st.Dropped, st.Offset-since)
	}
	if st.Running != (st.ExitCode == nil) {
		t.Errorf("%s: Running %v but ExitCode %s; ExitCode is nil exactly while the process runs", what, st.Running, codeString(st.ExitCode))
	}
	if st.Started.IsZero() {
		t.Errorf("%s: Started is not set", what)
	}
	if st.Running != st.Ended.IsZero() {
		t.Errorf("%s: Running %v but Ended %s; Ended is set exactly when the process has ended", what, st.Running, fmtTime(st.Ended))
	}
	if !st.Running && st.Ended.Before(st.Started) {
		t.Errorf("%s: Ended %s is before Started %s", what, fmtTime(st.Ended), fmtTime(st.Started))
	}
}

func codeString(code *int) string {
	if code == nil {
		return "nil"
	}
	return fmt.Sprint(*code)
}

// describe summarizes a status for failure messages.
func describe(st sandbox.ProcessStatus) string {
	state := "running"
	if !st.Running {
		state = "exited with code " + codeString(st.ExitCode)
	}
	return fmt.Sprintf("%s, output [%d, %d)", state, st.Offset, st.Next)
}

// wantExit checks that st is of a process that has exited with code.
func wantExit(t *testing.T, what string, st sandbox.ProcessStatus, code int) {
	t.Helper()
	if st.Running || st.ExitCode == nil || *st.ExitCode != code {
		t.Errorf("%s: %s; want exited with code %d", what, describe(st), code)
	}
}

// follow reads process id's output from the start, in windows, waiting with Process's wait for
// more, until done(output so far, last status) is true, and returns the output and the last
// status. The output must be small (far below MaxProcessLog): nothing may be dropped, and each
// window must continue the last. It fails the test when within passes first, or when the process
// has exited and all of its output has been read without done becoming true.
func follow(t *testing.T, sb sandbox.Sandbox, id string, within time.Duration, done func(out string, st sandbox.ProcessStatus) bool) (string, sandbox.ProcessStatus) {
	t.Helper()
	var out []byte
	var since int64
	deadline := time.Now().Add(within)
	for {
		wait := min(max(time.Until(deadline), 0), time.Second)
		begin := time.Now()
		st := processStatus(t, sb, id, since, wait)
		if st.Offset != since {
			t.Fatalf("Process(%q, since %d): Output starts at %d, but the process has written only a few bytes, far below MaxProcessLog; output so far %q", id, since, st.Offset, clip(string(out)))
		}
		out = append(out, st.Output...)
		since = st.Next
		if done(string(out), st) {
			return string(out), st
		}
		if !st.Running && len(st.Output) == 0 {
			t.Fatalf("process %s %s; its whole output %q is not what the test waits for", id, describe(st), clip(string(out)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s after %v: %s; output so far %q is not what the test waits for", id, within, describe(st), clip(string(out)))
		}
		if len(st.Output) == 0 && time.Since(begin) < wait/2 {
			time.Sleep(100 * time.Millisecond) // Process did not wait: do not spin
		}
	}
}

// waitExit follows process id until it has exited and all its output is read.
func waitExit(t *testing.T, sb sandbox.Sandbox, id string, within time.Duration) (string, sandbox.ProcessStatus) {
	t.Helper()
	return follow(t, sb, id, within, func(_ string, st sandbox.ProcessStatus) bool {
		return !st.Running && len(st.Output) == 0
	})
}

// waitOutput follows process id until its output contains substr.
func waitOutput(t *testing.T, sb sandbox.Sandbox, id, substr string, within time.Duration) (string, sandbox.ProcessStatus) {
	t.Helper()
	return follow(t, sb, id, within, func(out string, _ sandbox.ProcessStatus) bool {
		return strings.Contains(out, substr)
	})
}

// signal sends sig to process id and fails the test on error.
func signal(t *testing.T, sb sandbox.Sandbox, id string, sig syscall.Signal) {
	t.Helper()
	if err := sb.Signal(opCtx(t), id, sig); err != nil {
		t.Fatalf("Signal(%q, %v): %v", id, sig, err)
	}
}

// waitSleeps waits until at least n processes "sleep <arg>" run inside the sandbox.
func waitSleeps(t *testing.T, sb sandbox.Sandbox, arg string, n int) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out = mustRun(t, sb, sleepScan(arg))
		if strings.Count(out, "\n") >= n {
			return
		}
	}
	t.Fatalf("after 20s, Exec sees %d processes \"sleep %s\" in /proc, want %d:\n%s", strings.Count(out, "\n"), arg, n, out)
}

// errorsIs reports whether err wraps any of targets.
func errorsIs(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
