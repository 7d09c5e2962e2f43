package sandboxtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testBackgroundProcesses: StartProcess returns at once; Process reports the command, its
// stdout and stderr interleaved as produced, windows of the output by offset, its exit code and
// times; wait makes Process return as soon as output arrives or the process exits, and after
// about wait otherwise; output beyond what is kept is dropped from the front and accounted for;
// env, cwd and stdin apply while Timeout and the writers are ignored; many processes run at once;
// unknown ids are not found.
func (s *suite) testBackgroundProcesses(t *testing.T) {
	p := s.provider(t)
	sb := startLive(t, p, sandbox.StartOptions{Env: map[string]string{"SBT_START": "from start"}})

	t.Run("output, status and offsets", func(t *testing.T) {
		req := shReq(`for i in 1 2 3; do echo "out $i"; sleep 0.1; echo "err $i" >&2; sleep 0.1; done`)
		before := time.Now()
		id := startProcess(t, sb, req)
		after := time.Now()
		const want = "out 1\nerr 1\nout 2\nerr 2\nout 3\nerr 3\n"
		if out, _ := waitExit(t, sb, id, 30*time.Second); out != want {
			t.Errorf("output read while it ran = %q, want %q (stdout and stderr interleaved as produced)", out, want)
		}
		st := processStatus(t, sb, id, 0, 0)
		if string(st.Output) != want || st.Offset != 0 || st.Next != int64(len(want)) {
			t.Errorf("Process(since 0) after exit: output %q [%d, %d), want %q [0, %d)", st.Output, st.Offset, st.Next, want, len(want))
		}
		wantExit(t, "sh -c <loop>", st, 0)
		if st.Command != req.Command || !slices.Equal(st.Args, req.Args) {
			t.Errorf("Process: Command %q Args %q, want %q %q", st.Command, st.Args, req.Command, req.Args)
		}
		wantTimeBetween(t, "Started", st.Started, before, after)
		if d := st.Ended.Sub(st.Started); d < 500*time.Millisecond || d > time.Since(before)+time.Second {
			t.Errorf("Ended - Started = %v for a script that sleeps 0.6s, in a call that took %v", d, time.Since(before))
		}
		for _, since := range []int64{1, 6, int64(len(want)) - 1, int64(len(want))} {
			st := processStatus(t, sb, id, since, 0)
			if string(st.Output) != want[since:] || st.Offset != since {
				t.Errorf("Process(since %d): output %q at offset %d, want %q at %d", since, st.Output, st.Offset, want[since:], since)
			}
		}
	})

	t.Run("both streams at full speed", func(t *testing.T) {
		id := startSh(t, sb, `i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done`)
		out, st := waitExit(t, sb, id, 60*time.Second)
		wantExit(t, "the loop", st, 0)
		var outs, errs []string
		for line := range strings.Lines(out) {
			switch stream, _, _ := strings.Cut(line, " "); stream {
			case "out":
				outs = append(outs, line)
			case "err":
				errs = append(errs, line)
			default:
				t.Fatalf("output has a line %q that no command printed: lines were mixed up; output %q", line, clip(out))
			}
		}
		for i := range 300 {
			if i >= len(outs) || outs[i] != fmt.Sprintf("out %d\n", i+1) || i >= len(errs) || errs[i] != fmt.Sprintf("err %d\n", i+1) {
				t.Fatalf("line %d of stdout or stderr is missing or out of order; output %q", i+1, clip(out))
			}
		}
	})

	t.Run("reading while it runs", func(t *testing.T) {
		id := startSh(t, sb, `i=1; while [ $i -le 10 ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done`)
		var got []byte
		var since int64
		early := false // some output was read while the process still ran
		for deadline := time.Now().Add(30 * time.Second); ; {
			st := processStatus(t, sb, id, since, 2*time.Second)
			if st.Offset != since {
				t.Fatalf("Process(since %d): Offset %d; nothing should be dropped from a few bytes of output", since, st.Offset)
			}
			got = append(got, st.Output...)
			since = st.Next
			early = early || st.Running && len(st.Output) > 0
			if !st.Running && len(st.Output) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30s: %s, output %q", describe(st), got)
			}
		}
		var want strings.Builder
		for i := 1; i <= 10; i++ {
			fmt.Fprintf(&want, "line %d\n", i)
		}
		if string(got) != want.String() {
			t.Errorf("output read piece by piece = %q, want %q", got, want.String())
		}
		if !early {
			t.Errorf("no output could be read while the process ran (for a second, printing a line every 0.1s)")
		}
		st := processStatus(t, sb, id, since, 0)
		if len(st.Output) != 0 || st.Next != since {
			t.Errorf("Process(since Next = %d) after everything was read: output %q, Next %d; want nothing new", since, st.Output, st.Next)
		}
	})

	t.Run("wait", func(t *testing.T) {
		id := startSh(t, sb, `echo first; sleep 2; echo second; exec sleep 3195`)
		_, st := waitOutput(t, sb, id, "first\n", 30*time.Second)

		begin := time.Now()
		st = processStatus(t, sb, id, st.Next, 20*time.Second)
		took := time.Since(begin)
		if string(st.Output) != "second\n" || took > 10*time.Second {
			t.Errorf("Process(wait 20s) returned %q after %v; want \"second\\n\" as soon as it was printed, about 2s after \"first\"", st.Output, took.Round(time.Millisecond))
		}

		const wait = 1500 * time.Millisecond
		begin = time.Now()
		st = processStatus(t, sb, id, st.Next, wait)
		took = time.Since(begin)
		if len(st.Output) != 0 || !st.Running {
			t.Errorf("Process(wait %v) of a process sleeping silently: %s, output %q; want running, no output", wait, describe(st), st.Output)
		}
		if took < wait-100*time.Millisecond || took > wait+5*time.Second {
			t.Errorf("Process(wait %v) of a process sleeping silently returned after %v; want after about %v", wait, took.Round(time.Millisecond), wait)
		}

		signalled := make(chan error, 1)
		timer := time.AfterFunc(time.Second, func() {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			signalled <- sb.Signal(ctx, id, syscall.SIGTERM)
		})
		defer timer.Stop()
		begin = time.Now()
		st = processStatus(t, sb, id, st.Next, 20*time.Second)
		took = time.Since(begin)
		if err := <-signalled; err != nil {
			t.Fatalf("Signal: %v", err)
		}
		if st.Running || took > 10*time.Second {
			t.Errorf("Process(wait 20s) while the process was killed after 1s: %s after %v; want it to return when the process exits", describe(st), took.Round(time.Millisecond))
		}
		wantExit(t, "`exec sleep` after SIGTERM", st, 128+int(syscall.SIGTERM))

		begin = time.Now()
		st = processStatus(t, sb, id, st.Next, 20*time.Second)
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("Process(wait 20s) of an exited process returned after %v; want at once", took.Round(time.Millisecond))
		}

		quiet := startSh(t, sb, `sleep 1`)
		begin = time.Now()
		st = processStatus(t, sb, quiet, 0, 20*time.Second)
		if took := time.Since(begin); st.Running || took > 10*time.Second {
			t.Errorf("Process(wait 20s) of `sleep 1`: %s after %v; want it to return when the process exits, about 1s", describe(st), took.Round(time.Millisecond))
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		cases := []struct {
			script, out string
			code        int
		}{
			{"exit 0", "", 0}, {"exit 3", "", 3}, {"false", "", 1}, {"true", "", 0},
			{"echo bye; exit 5", "bye\n", 5}, {"printf 'no newline' >&2; exit 6", "no newline", 6},
			{"kill -TERM $$", "", 128 + int(syscall.SIGTERM)}, {"kill -KILL $$", "", 128 + int(syscall.SIGKILL)},
			{"sleep 0.5; echo late", "late\n", 0},
		}
		ids := make([]string, len(cases))
		for i, c := range cases {
			ids[i] = startSh(t, sb, c.script)
		}
		for i, c := range cases {
			out, st := waitExit(t, sb, ids[i], 30*time.Second)
			wantExit(t, fmt.Sprintf("sh -c %q", c.script), st, c.code)
			if out != c.out {
				t.Errorf("sh -c %q: output %q, want %q", c.script, out, c.out)
			}
		}

		begin := time.Now()
		id := startSh(t, sb, "exec sleep 3196")
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("StartProcess(sleep) took %v; it returns at once", took)
		}
		signal(t, sb, id, syscall.SIGKILL)
	})

	t.Run("command that cannot be started", func(t *testing.T) {
		id, err := sb.StartProcess(opCtx(t), sandbox.ExecRequest{Command: "sbt-no-such-command"})
		if err != nil {
			// The contract leaves open whether this fails at once or makes a process exiting 127.
			if !errorsIs(err, sandbox.ErrNotFound, sandbox.ErrInvalid) {
				t.Errorf("StartProcess(sbt-no-such-command): %v; want a process exiting 127 with a message, or an error wrapping ErrNotFound or ErrInvalid", err)
			}
			return
		}
		out, st := waitExit(t, sb, id, 30*time.Second)
		wantExit(t, "StartProcess(sbt-no-such-command)", st, 127)
		if out == "" {
			t.Errorf("StartProcess(sbt-no-such-command) exited 127 with no message in its output")
		}
	})

	t.Run("env, cwd and stdin apply; Timeout and writers are ignored", func(t *testing.T) {
		mustRun(t, sb, "mkdir -p d")
		var stdout, stderr lockedBuffer
		req := shReq(`pwd; printf '%s|%s\n' "$SBT_START" "$SBT_PROC"; cat; sleep 0.1; echo err >&2; sleep 0.5; echo survived`)
		req.Cwd, req.Env, req.Stdin = "d", map[string]string{"SBT_PROC": "from request"}, []byte("stdin data\n")
		req.Timeout, req.Stdout, req.Stderr = 100*time.Millisecond, &stdout, &stderr
		out, st := waitExit(t, sb, startProcess(t, sb, req), 30*time.Second)
		want := "/workspace/d\nfrom start|from request\nstdin data\nerr\nsurvived\n"
		if out != want {
			t.Errorf("output %q, want %q", out, want)
		}
		wantExit(t, "the process with a Timeout of 100ms (ignored)", st, 0)
		if stdout.String() != "" || stderr.String() != "" {
			t.Errorf("the request's writers received stdout %q, stderr %q; StartProcess ignores them", stdout.String(), stderr.String())
		}

		out, st = waitExit(t, sb, startProcess(t, sb, sandbox.ExecRequest{Command: "cat"}), 30*time.Second)
		if out != "" {
			t.Errorf("cat with a nil Stdin printed %q", out)
		}
		wantExit(t, "cat with a nil Stdin (an empty stdin)", st, 0)
	})

	t.Run("output beyond MaxProcessLog", func(t *testing.T) {
		// seq prints fixed-width lines: 450000 lines of 8 bytes, 3.6 MB.
		const first, count = 1000000, 450000
		var full bytes.Buffer
		for n := first; n < first+count; n++ {
			full.WriteString(strconv.Itoa(n))
			full.WriteByte('\n')
		}
		total := int64(full.Len())
		id := startProcess(t, sb, sandbox.ExecRequest{Command: "seq", Args: []string{strconv.Itoa(first), strconv.Itoa(first + count - 1)}})
		// Wait for the end, reading along (what is read is checked below, from the start).
		var next int64
		for deadline := time.Now().Add(60 * time.Second); ; {
			st := processStatus(t, sb, id, next, time.Second)
			next = st.Next
			if !st.Running {
				wantExit(t, "seq", st, 0)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("seq still runs after 60s: %s", describe(st))
			}
		}

		st := processStatus(t, sb, id, 0, 0)
		kept := append([]byte(nil), st.Output...)
		for next := st.Next; next < total; {
			w := processStatus(t, sb, id, next, 0)
			if len(w.Output) == 0 {
				t.Fatalf("Process(since %d) returned no output, but the process wrote %d bytes", next, total)
			}
			kept = append(kept, w.Output...)
			next = w.Next
		}
		if st.Offset == 0 {
			t.Logf("the provider kept all %d bytes of output (at least MaxProcessLog = %d is required), so dropping was not exercised", total, sandbox.MaxProcessLog)
		}
		if int64(len(kept)) < sandbox.MaxProcessLog {
			t.Errorf("kept %d bytes of output, want at least MaxProcessLog = %d", len(kept), sandbox.MaxProcessLog)
		}
		if end := st.Offset + int64(len(kept)); end != total {
			t.Fatalf("the output kept ends at offset %d, but the process wrote %d bytes", end, total)
		}
		if !bytes.Equal(kept, full.Bytes()[st.Offset:]) {
			i := 0
			for i < len(kept) && kept[i] == full.Bytes()[st.Offset+int64(i)] {
				i++
			}
			t.Fatalf("the output kept from offset %d differs from what seq printed at byte %d (offset %d)", st.Offset, i, st.Offset+int64(i))
		}
		if st.Offset > 1000 {
			w := processStatus(t, sb, id, 1000, 0) // Dropped = Offset - since is checked there
			if w.Offset != st.Offset {
				t.Errorf("Process(since 1000): Offset %d, but since 0 gave %d", w.Offset, st.Offset)
			}
		}
		w := processStatus(t, sb, id, total-16, 0)
		if !bytes.Equal(w.Output, full.Bytes()[total-16:]) || w.Next != total {
			t.Errorf("Process(since %d): output %q next %d, want %q next %d", total-16, w.Output, w.Next, full.Bytes()[total-16:], total)
		}
	})

	t.Run("many processes at once", func(t *testing.T) {
		const n = 16
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
				defer cancel()
				ids[i], errs[i] = sb.StartProcess(ctx, shReq(fmt.Sprintf(`echo "proc %d"; sleep 0.3; exit %d`, i, i%7)))
			})
		}
		wg.Wait()
		seen := map[string]int{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("concurrent StartProcess %d: %v", i, errs[i])
			}
			if j, dup := seen[ids[i]]; dup || ids[i] == "" {
				t.Fatalf("processes %d and %d got the same id %q", j, i, ids[i])
			}
			seen[ids[i]] = i
		}
		for i := range n {
			out, st := waitExit(t, sb, ids[i], 30*time.Second)
			wantExit(t, fmt.Sprintf("process %d", i), st, i%7)
			if want := fmt.Sprintf("proc %d\n", i); out != want {
				t.Errorf("process %d: output %q, want %q", i, out, want)
			}
		}
	})

	t.Run("unknown ids", func(t *testing.T) {
		begin := time.Now()
		_, err := callProcess(t.Context(), sb, "sbt-no-such-process", 0, 5*time.Second)
		wantErr(t, "Process of an unknown id", err, sandbox.ErrNotFound)
		if took := time.Since(begin); took > 3*time.Second {
			t.Errorf("Process(unknown id, wait 5s) took %v; want ErrNotFound at once", took)
		}
		err = sb.Signal(opCtx(t), "sbt-no-such-process", syscall.SIGTERM)
		wantErr(t, "Signal of an unknown id", err, sandbox.ErrNotFound)

		// Process ids belong to their sandbox.
		id := startSh(t, sb, "exit 0")
		other := startLive(t, p, sandbox.StartOptions{})
		_, err = other.Process(opCtx(t), id, 0, 0)
		wantErr(t, "Process in another sandbox", err, sandbox.ErrNotFound)
	})
}

// testSignals: Signal reaches the whole process group of a background process with the signal
// asked for; the exit code says which signal ended it; signalling a process that has exited is
// not an error.
func (s *suite) testSignals(t *testing.T) {
	p := s.provider(t)
	sb := startLive(t, p, sandbox.StartOptions{})

	for _, c := range []struct {
		name, arg string
		sig       syscall.Signal
	}{
		{"SIGTERM ends the process group", "3181", syscall.SIGTERM},
		{"SIGKILL ends the process group", "3182", syscall.SIGKILL},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := startSh(t, sb, `sleep `+c.arg+` & sleep `+c.arg+` & wait`)
			waitSleeps(t, sb, c.arg, 2)
			signal(t, sb, id, c.sig)
			_, st := waitExit(t, sb, id, 30*time.Second)
			code := 128 + int(c.sig)
			wantExit(t, fmt.Sprintf("sh waiting for two sleeps, after signal %d", c.sig), st, code)
			if left := leftoverSleeps(t, sb, c.arg); left != "" {
				t.Errorf("children in the process group survived signal %d:\n%s", c.sig, left)
			}
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
				if err := sb.Signal(opCtx(t), id, sig); err != nil {
					t.Errorf("Signal(%v) of a process that has exited: %v, want nil", sig, err)
				}
			}
			wantExit(t, "the status after more signals", processStatus(t, sb, id, 0, 0), code)
		})
	}

	t.Run("every member of the group receives it", func(t *testing.T) {
		// The leader ignores SIGTERM; a member traps it. Only a signal to the whole group
		// reaches the member (whatever the provider does when a leader exits).
		id := startSh(t, sb, `trap '' TERM
(trap 'echo "member got TERM"; exit 0' TERM; echo "member ready"; while :; do sleep 0.1; done) &
wait
echo "leader still here"
while :; do sleep 0.1; done`)
		waitOutput(t, sb, id, "member ready\n", 30*time.Second)
		signal(t, sb, id, syscall.SIGTERM)
		out, st := waitOutput(t, sb, id, "leader still here\n", 30*time.Second)
		if !strings.Contains(out, "member got TERM\n") || !st.Running {
			t.Errorf("after SIGTERM: %s, output %q; want the member to get it and the leader (ignoring it) to run on", describe(st), out)
		}
		signal(t, sb, id, syscall.SIGKILL)
		_, st = waitExit(t, sb, id, 30*time.Second)
		wantExit(t, "the leader after SIGKILL", st, 128+int(syscall.SIGKILL))
	})

	t.Run("the signal is the one asked for", func(t *testing.T) {
		deaf := startSh(t, sb, `trap '' TERM; echo ready; while :; do sleep 0.2; done`)
		waitOutput(t, sb, deaf, "ready\n", 30*time.Second)
		signal(t, sb, deaf, syscall.SIGTERM)
		time.Sleep(time.Second)
		if st := processStatus(t, sb, deaf, 0, 0); !st.Running {
			t.Errorf("a process ignoring SIGTERM: %s a second after SIGTERM; want still running", describe(st))
		}
		signal(t, sb, deaf, syscall.SIGKILL)
		_, st := waitExit(t, sb, deaf, 30*time.Second)
		wantExit(t, "the process ignoring SIGTERM, after SIGKILL", st, 128+int(syscall.SIGKILL))

		handler := startSh(t, sb, `trap 'echo got USR1; exit 7' USR1; echo ready; while :; do sleep 0.2; done`)
		waitOutput(t, sb, handler, "ready\n", 30*time.Second)
		signal(t, sb, handler, syscall.SIGUSR1)
		out, st := waitExit(t, sb, handler, 30*time.Second)
		wantExit(t, "a process trapping SIGUSR1 with `exit 7`, after SIGUSR1", st, 7)
		// The shell may also report that its foreground sleep, in the same group, died of SIGUSR1.
		if !strings.HasPrefix(out, "ready\n") || !strings.Contains(out, "got USR1\n") {
			t.Errorf("its output = %q, want \"ready\\n\" and then \"got USR1\\n\" from the trap", out)
		}
	})
}
