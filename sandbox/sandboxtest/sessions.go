package sandboxtest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testLiveSandboxes: a Detached sandbox's deadline is about Start + Lifetime, and Extend moves it
// later or earlier but not into the past; Sandboxes lists exactly the running Detached sandboxes;
// Reconnect on the same provider gives a handle on the same sandbox (same files, processes and
// deadline); unknown ids are not found; after Stop or Snapshot, through any handle, the sandbox
// is no longer listed nor found, and every method but Stop returns ErrEnded.
func (s *suite) testLiveSandboxes(t *testing.T) {
	p := s.provider(t)
	wantSandboxes(t, p)

	const lifetime = 10 * time.Minute
	begin := time.Now()
	a := startLive(t, p, sandbox.StartOptions{Lifetime: lifetime})
	started := time.Now()
	b := startLive(t, p, sandbox.StartOptions{})
	plain := start(t, p, "")
	mustRun(t, a, "true")
	wantSandboxes(t, p, a.ID(), b.ID()) // not plain: it was started without Detached

	wantTimeBetween(t, "Deadline() of a sandbox started with Lifetime 10m", a.Deadline(), begin.Add(lifetime), started.Add(lifetime))
	if d := plain.Deadline(); !d.After(time.Now()) {
		t.Errorf("Deadline() of a running sandbox started without Detached = %s, want its (default) lifetime's end, in the future", fmtTime(d))
	}

	t.Run("Extend", func(t *testing.T) {
		later := time.Now().Add(lifetime + 10*time.Minute)
		extend(t, a, later)
		earlier := time.Now().Add(5 * time.Minute)
		if p.Capabilities().FixedDeadline {
			// The deadline only moves later: an earlier one is refused and changes nothing.
			wantErr(t, "Extend to an earlier deadline, with Capabilities.FixedDeadline", a.Extend(opCtx(t), earlier), sandbox.ErrUnsupported)
			earlier = later
		} else {
			extend(t, a, earlier) // earlier, still in the future
		}
		for _, past := range []time.Time{time.Now().Add(-time.Minute), {}} {
			if err := a.Extend(opCtx(t), past); err == nil {
				t.Errorf("Extend(%s), into the past: no error", fmtTime(past))
			}
		}
		wantTimeNear(t, "Deadline() after a refused Extend into the past", a.Deadline(), earlier)
		mustRun(t, a, "true") // still running
		wantTimeNear(t, "Deadline() of a handle from Reconnect after Extend", reconnect(t, p, a.ID()).Deadline(), earlier)
	})

	t.Run("Reconnect on the same provider", func(t *testing.T) {
		h := reconnect(t, p, b.ID())
		wantTimeNear(t, "Deadline() of a handle from Reconnect", h.Deadline(), b.Deadline())
		write(t, b, file("from-b.txt", "b\n"))
		if got := readAll(t, h, "from-b.txt"); string(got) != "b\n" {
			t.Errorf("ReadFile through the reconnected handle = %q, want \"b\\n\"", got)
		}
		write(t, h, file("from-h.txt", "h\n"))
		if got := mustRun(t, b, "cat from-h.txt from-b.txt"); got != "h\nb\n" {
			t.Errorf("cat through the first handle = %q, want \"h\\nb\\n\"", got)
		}

		long := startSh(t, b, `echo hello; exec sleep 3191`)
		waitOutput(t, h, long, "hello\n", 30*time.Second)
		short := startSh(t, h, `echo other; exit 4`)
		out, st := waitExit(t, b, short, 30*time.Second)
		wantExit(t, "a process started through the reconnected handle, seen through the first", st, 4)
		if out != "other\n" {
			t.Errorf("its output = %q, want \"other\\n\"", out)
		}
		signal(t, h, long, syscall.SIGTERM)
		_, st = waitExit(t, b, long, 30*time.Second)
		wantExit(t, "`exec sleep` signalled with SIGTERM through the other handle", st, 128+int(syscall.SIGTERM))
		if left := leftoverSleeps(t, b, "3191"); left != "" {
			t.Errorf("the signalled process still runs:\n%s", left)
		}
	})

	t.Run("Reconnect of unknown ids", func(t *testing.T) {
		wantReconnectNotFound(t, p, "sbt-no-such-sandbox")
		for _, id := range []string{"", "../../../../etc", "/", ".", "a/../b", "sbt\x00id"} {
			_, err := p.Reconnect(opCtx(t), id)
			if !errorsIs(err, sandbox.ErrNotFound, sandbox.ErrInvalid) {
				t.Errorf("Reconnect(%q): %v; want an error wrapping ErrNotFound or ErrInvalid", id, err)
			}
		}
	})

	t.Run("after Stop", func(t *testing.T) {
		sb := startLive(t, p, sandbox.StartOptions{})
		h := reconnect(t, p, sb.ID())
		id := startSh(t, sb, "exec sleep 3192")
		if err := h.Stop(opCtx(t)); err != nil { // through the other handle
			t.Fatalf("Stop: %v", err)
		}
		wantListed(t, p, sb.ID(), false)
		wantReconnectNotFound(t, p, sb.ID())
		liveEndedChecks(t, sb, id)
		liveEndedChecks(t, h, id)
	})

	t.Run("after Snapshot", func(t *testing.T) {
		sb := startLive(t, p, sandbox.StartOptions{})
		write(t, sb, file("kept.txt", "kept\n"))
		id := startSh(t, sb, "echo running > bg.txt; exec sleep 3193")
		waitSleeps(t, sb, "3193", 1)
		ref := snapshot(t, sb)
		wantListed(t, p, sb.ID(), false)
		wantReconnectNotFound(t, p, sb.ID())
		liveEndedChecks(t, sb, id)
		// A Detached sandbox starts from a snapshot like any other.
		again := startLive(t, p, sandbox.StartOptions{Snapshot: ref})
		checkTree(t, again, tree{"kept.txt": "file:kept\n", "bg.txt": "file:running\n"})
	})

	// The subtests' sandboxes are gone; a and b still run, plain is still not listed.
	wantSandboxes(t, p, a.ID(), b.ID())
	mustRun(t, plain, "true")
}

// testReconnectAfterRestart: a Detached sandbox outlives its provider: after the provider is
// closed and a new one opened over the same storage, Sandboxes lists it, Reconnect finds it with
// its deadline, files (also in /tmp), running background process (whose log is intact and still
// growing) and the status of an exited one; it runs commands and processes, and Snapshot keeps
// its changes. A sandbox started without Detached ended with the provider, and a Detached one
// whose lifetime ran out while no provider was open ended by itself.
func (s *suite) testReconnectAfterRestart(t *testing.T) {
	r, ok := s.h.(Restarter)
	if !ok {
		t.Skip("the harness does not implement sandboxtest.Restarter")
	}
	p1 := s.makeProvider(t)
	// The live sandboxes outlive p1, so the test stops them itself through whichever provider is
	// open at the end (the restarted one, or a new one over the same storage).
	open := p1
	var live []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		p := open
		if p == nil {
			p = r.RestartProvider(ctx, t, p1)
		}
		for _, id := range live {
			if sb, err := p.Reconnect(ctx, id); err == nil {
				if err := sb.Stop(ctx); err != nil {
					t.Errorf("cleanup: Stop of live sandbox %s: %v", id, err)
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Errorf("cleanup: Provider.Close: %v", err)
		}
	})

	sb := startUnmanaged(t, p1, sandbox.StartOptions{Detached: true, Lifetime: liveLifetime})
	live = append(live, sb.ID())
	write(t, sb, file("kept.txt", "kept\n"), file("dir/deep.txt", "deep\n"))
	mustRun(t, sb, `echo home > "$HOME/sbt-live.txt"; echo tmp > /tmp/sbt-live-tmp`)
	ticker := startSh(t, sb, `i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 0.2; done`)
	finished := startSh(t, sb, `echo finished; exit 3`)
	before, _ := waitOutput(t, sb, ticker, "tick 2\n", 30*time.Second)
	waitExit(t, sb, finished, 30*time.Second)
	until := time.Now().Add(20 * time.Minute)
	extend(t, sb, until)

	expiring := startUnmanaged(t, p1, sandbox.StartOptions{Detached: true, Lifetime: 4 * time.Second})
	live = append(live, expiring.ID())
	expires := expiring.Deadline()
	plain := start(t, p1, "")
	mustRun(t, plain, "true")

	open = nil
	if err := p1.Close(); err != nil {
		t.Errorf("Provider.Close: %v", err)
	}
	_, err := plain.Exec(opCtx(t), shReq("true"))
	wantErr(t, "Exec on a sandbox started without Detached, after its provider was closed", err, sandbox.ErrEnded)

	p2 := r.RestartProvider(opCtx(t), t, p1)
	if p2 == nil {
		t.Fatal("RestartProvider returned nil")
	}
	open = p2
	wantListed(t, p2, sb.ID(), true)
	wantListed(t, p2, plain.ID(), false)
	wantReconnectNotFound(t, p2, plain.ID())
	h := reconnect(t, p2, sb.ID())
	wantTimeNear(t, "Deadline() after the restart (it was extended before)", h.Deadline(), until)

	t.Run("background processes", func(t *testing.T) {
		st := processStatus(t, h, ticker, 0, 0)
		if !st.Running || st.Offset != 0 || !strings.HasPrefix(string(st.Output), before) {
			t.Errorf("the ticker after the restart: %s, output %q; want running, with the output read before the restart (%q) at offset 0", describe(st), clip(string(st.Output)), before)
		}
		n := strings.Count(before, "\n")
		out, _ := follow(t, h, ticker, 30*time.Second, func(out string, _ sandbox.ProcessStatus) bool {
			return strings.Count(out, "\n") >= n+10
		})
		checkTicks(t, out)

		st = processStatus(t, h, finished, 0, 0)
		wantExit(t, "a process that exited before the restart", st, 3)
		if string(st.Output) != "finished\n" {
			t.Errorf("its output after the restart = %q, want \"finished\\n\"", st.Output)
		}

		again := startSh(t, h, "echo new; exit 0")
		if out, st := waitExit(t, h, again, 30*time.Second); out != "new\n" {
			t.Errorf("a process started after the restart: %s, output %q; want \"new\\n\"", describe(st), out)
		}
		signal(t, h, ticker, syscall.SIGTERM)
		_, st = follow(t, h, ticker, 30*time.Second, func(_ string, st sandbox.ProcessStatus) bool { return !st.Running })
		wantExit(t, "the ticker started before the restart, signalled after it", st, 128+int(syscall.SIGTERM))
	})

	t.Run("files and commands", func(t *testing.T) {
		checkTree(t, h, tree{"kept.txt": "file:kept\n", "dir": "dir", "dir/deep.txt": "file:deep\n"})
		if got := run(t, h, `cat "$HOME/sbt-live.txt" /tmp/sbt-live-tmp`); got.Stdout != "home\ntmp\n" {
			t.Errorf("home and /tmp files after the restart: %v; want stdout \"home\\ntmp\\n\" (the sandbox kept running: even /tmp is as it was)", got)
		}
		write(t, h, file("after.txt", "after\n"))
	})

	t.Run("expired while no provider was open", func(t *testing.T) {
		waitUnlisted(t, p2, expiring.ID(), time.Until(expires)+clockSlack+5*time.Second)
		wantReconnectNotFound(t, p2, expiring.ID())
	})

	wantSandboxes(t, p2, sb.ID())
	ref := snapshot(t, h)
	wantSandboxes(t, p2)
	wantReconnectNotFound(t, p2, sb.ID())
	after := start(t, p2, ref)
	checkTree(t, after, tree{"kept.txt": "file:kept\n", "dir": "dir", "dir/deep.txt": "file:deep\n", "after.txt": "file:after\n"})
	if got := homeFile(t, after, "sbt-live.txt"); got != "home\n" {
		t.Errorf("home file in the snapshot of the reconnected sandbox = %q, want \"home\\n\"", got)
	}
}

// checkTicks checks that the complete lines of out are "tick 0", "tick 1", ... with no line lost
// or repeated.
func checkTicks(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, line := range lines[:len(lines)-1] { // the last is empty or incomplete
		if line != "tick "+strconv.Itoa(i) {
			t.Errorf("line %d of the ticker's output is %q, want \"tick %d\"; output %q", i, line, i, clip(out))
			return
		}
	}
}

// testLiveLifetime: a Detached sandbox ends by itself when its deadline passes, after which it is
// neither listed nor found; Extend really moves the end, later or earlier.
func (s *suite) testLiveLifetime(t *testing.T) {
	p := s.provider(t)

	// endsAt starts a Detached sandbox with lifetime, applies change (which returns the deadline
	// it set, or zero), and checks that it ends at the deadline (not more than 100ms before nor
	// 5s after).
	endsAt := func(t *testing.T, lifetime time.Duration, change func(sb sandbox.Sandbox, begin time.Time) time.Time) {
		begin := time.Now()
		sb := startLive(t, p, sandbox.StartOptions{Lifetime: lifetime})
		wantTimeBetween(t, fmt.Sprintf("Deadline() with Lifetime %v", lifetime), sb.Deadline(), begin.Add(lifetime), time.Now().Add(lifetime))
		end := lifetime
		if until := change(sb, begin); !until.IsZero() {
			end = until.Sub(begin)
		}
		id := startSh(t, sb, "exec sleep 3194")
		ended := waitEnded(t, sb, begin, end+5*time.Second)
		if ended < end-100*time.Millisecond {
			t.Errorf("the sandbox ended %v after Start began, before its deadline %v after", ended.Round(time.Millisecond), end)
		}
		waitUnlisted(t, p, sb.ID(), 5*time.Second)
		wantReconnectNotFound(t, p, sb.ID())
		liveEndedChecks(t, sb, id)
	}

	t.Run("ends by itself", func(t *testing.T) {
		t.Parallel()
		endsAt(t, 2*time.Second, func(sandbox.Sandbox, time.Time) time.Time { return time.Time{} })
	})

	t.Run("Extend later", func(t *testing.T) {
		t.Parallel()
		endsAt(t, 2*time.Second, func(sb sandbox.Sandbox, begin time.Time) time.Time {
			until := begin.Add(6 * time.Second)
			extend(t, sb, until)
			time.Sleep(time.Until(begin.Add(3500 * time.Millisecond)))
			if r, err := sb.Exec(opCtx(t), shReq("true")); err != nil || r.ExitCode != 0 {
				t.Errorf("Exec 3.5s after Start, with Lifetime 2s extended to 6s: exit %d, err %v; want a running sandbox", r.ExitCode, err)
			}
			wantListed(t, p, sb.ID(), true)
			return until
		})
	})

	t.Run("Extend earlier", func(t *testing.T) {
		t.Parallel()
		if p.Capabilities().FixedDeadline {
			sb := startLive(t, p, sandbox.StartOptions{Lifetime: 10 * time.Minute})
			before := sb.Deadline()
			err := sb.Extend(opCtx(t), time.Now().Add(2*time.Minute))
			wantErr(t, "Extend to an earlier deadline, with Capabilities.FixedDeadline", err, sandbox.ErrUnsupported)
			wantTimeNear(t, "Deadline() after a refused earlier Extend", sb.Deadline(), before)
			if r, err := sb.Exec(opCtx(t), shReq("true")); err != nil || r.ExitCode != 0 {
				t.Errorf("Exec after a refused earlier Extend: exit %d, err %v; want a running sandbox", r.ExitCode, err)
			}
			return
		}
		endsAt(t, 10*time.Minute, func(sb sandbox.Sandbox, begin time.Time) time.Time {
			until := time.Now().Add(2 * time.Second)
			extend(t, sb, until)
			return until
		})
	})
}

// testProcessesShareSandbox: background processes and Exec work in one sandbox: a background
// process sees files written before and the sandbox's environment; what it writes is seen by
// Exec and ReadFile; Exec sees it in /proc and can kill it; an Exec that times out leaves it
// alone; Snapshot with it running keeps what it wrote.
func (s *suite) testProcessesShareSandbox(t *testing.T) {
	p := s.provider(t)
	sb := startLive(t, p, sandbox.StartOptions{Env: map[string]string{"SBT_LIVE": "live env"}})
	write(t, sb, file("input.txt", "from WriteFiles\n"))
	id := startSh(t, sb, `cat input.txt; echo from-bg > bg.txt; printf '%s\n' "$SBT_LIVE" > env.txt; echo $$ > bg.pid; exec sleep 3187`)
	waitOutput(t, sb, id, "from WriteFiles\n", 30*time.Second)

	req := shReq(`while [ ! -s bg.pid ]; do sleep 0.1; done; cat bg.txt env.txt`)
	req.Timeout = 20 * time.Second
	if r := execute(t, sb, req); r.ExitCode != 0 || r.Stdout != "from-bg\nlive env\n" {
		t.Fatalf("files written by a background process, read by Exec: %v; want stdout \"from-bg\\nlive env\\n\"", r)
	}
	if got := readAll(t, sb, "bg.txt"); string(got) != "from-bg\n" {
		t.Errorf("ReadFile(bg.txt) written by a background process = %q", got)
	}
	pid := strings.TrimSpace(string(readAll(t, sb, "bg.pid")))
	if got := run(t, sb, `tr '\0' ' ' < /proc/`+pid+`/cmdline`); got.Stdout != "sleep 3187 " {
		t.Errorf("Exec reading /proc/%s/cmdline of the background process: %v; want stdout \"sleep 3187 \"", pid, got)
	}
	waitSleeps(t, sb, "3187", 1)

	timeout := shReq("sleep 3188")
	timeout.Timeout = 300 * time.Millisecond
	if r := execute(t, sb, timeout); !r.TimedOut {
		t.Errorf("sleep 3188 with Timeout 300ms: %v; want TimedOut", r)
	}
	if st := processStatus(t, sb, id, 0, 0); !st.Running {
		t.Errorf("after an Exec timed out, the background process: %s; want still running (a timeout kills the command's tree only)", describe(st))
	}

	mustRun(t, sb, "kill -TERM "+pid)
	_, st := waitExit(t, sb, id, 30*time.Second)
	wantExit(t, "a background process killed with SIGTERM by Exec", st, 128+int(syscall.SIGTERM))

	startSh(t, sb, `while :; do date > ticker.txt; sleep 0.1; done`)
	req = shReq(`while [ ! -s ticker.txt ]; do sleep 0.1; done`)
	req.Timeout = 20 * time.Second
	if r := execute(t, sb, req); r.ExitCode != 0 {
		t.Fatalf("waiting for ticker.txt: %v", r)
	}
	info, err := sb.Snapshot(shortCtx(t, 60*time.Second))
	if err != nil {
		t.Fatalf("Snapshot with a background process running: %v", err)
	}
	wantPaths(t, "ListFiles(., 1) of the snapshot", list(t, start(t, p, info.Ref), ".", 1), "input.txt", "bg.txt", "env.txt", "bg.pid", "ticker.txt")
}
