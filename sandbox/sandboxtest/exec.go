package sandboxtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testExecSemantics: exit codes, separate and streamed stdout/stderr, arguments, stdin, env, cwd,
// commands that cannot start, signals and Duration.
func (s *suite) testExecSemantics(t *testing.T) {
	p := s.provider(t)
	sb := startWith(t, p, sandbox.StartOptions{Env: map[string]string{"SBT_START": "from start"}})

	t.Run("exit codes", func(t *testing.T) {
		for _, c := range []struct {
			script string
			code   int
		}{
			{"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255}, {"false", 1},
			{"kill -9 $$", 128 + 9}, {"kill -15 $$", 128 + 15},
		} {
			r := run(t, sb, c.script)
			if r.ExitCode != c.code || r.TimedOut {
				t.Errorf("sh -c %q: %v; want exit %d", c.script, r, c.code)
			}
		}
	})

	t.Run("stdout and stderr are separate", func(t *testing.T) {
		r := run(t, sb, `printf out1; printf err1 >&2; printf out2; printf err2 >&2`)
		if r.ExitCode != 0 || r.Stdout != "out1out2" || r.Stderr != "err1err2" {
			t.Errorf("%v; want stdout \"out1out2\", stderr \"err1err2\"", r)
		}
	})

	t.Run("output is streamed in order", func(t *testing.T) {
		rec := newRecorder()
		req := shReq(`echo o1; sleep 0.5; echo e1 >&2; sleep 0.5; echo o2; sleep 0.5; echo e2 >&2`)
		req.Stdout, req.Stderr = rec.writer("stdout"), rec.writer("stderr")
		r := execute(t, sb, req)
		if r.ExitCode != 0 || rec.text("stdout") != "o1\no2\n" || rec.text("stderr") != "e1\ne2\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0, \"o1\\no2\\n\", \"e1\\ne2\\n\"", r.ExitCode, rec.text("stdout"), rec.text("stderr"))
		}
		var last time.Duration
		for _, e := range []struct{ stream, text string }{{"stdout", "o1\n"}, {"stderr", "e1\n"}, {"stdout", "o2\n"}, {"stderr", "e2\n"}} {
			at, _ := rec.arrival(e.stream, e.text)
			if at < last {
				t.Errorf("%q on %s arrived at %v, before the output printed earlier (at %v)", e.text, e.stream, at, last)
			}
			last = at
		}
	})

	t.Run("output arrives while the command runs", func(t *testing.T) {
		rec := newRecorder()
		req := shReq(`echo first; sleep 2; echo second`)
		req.Stdout = rec.writer("stdout")
		r := execute(t, sb, req)
		returned := time.Since(rec.start)
		if r.ExitCode != 0 || r.TimedOut {
			t.Errorf("%v; want exit 0 (no Timeout means no timeout)", r)
		}
		at, ok := rec.arrival("stdout", "first\n")
		if !ok || rec.text("stdout") != "first\nsecond\n" {
			t.Fatalf("stdout %q, want \"first\\nsecond\\n\"", rec.text("stdout"))
		}
		if returned-at < time.Second {
			t.Errorf("\"first\\n\" reached the writer at %v, Exec returned at %v: output was not streamed while the command slept 2s", at, returned)
		}
	})

	t.Run("nil writers discard output", func(t *testing.T) {
		res, err := sb.Exec(opCtx(t), shReq(`head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; exit 7`))
		if err != nil || res.ExitCode != 7 {
			t.Errorf("Exec with nil Stdout and Stderr: exit %d, err %v; want exit 7", res.ExitCode, err)
		}
	})

	t.Run("arguments are passed verbatim", func(t *testing.T) {
		args := []string{"[%s]", "a b", "", "$HOME", "*", "'q'", "tab\there", `"dq"`, "ünï"}
		r := execute(t, sb, sandbox.ExecRequest{Command: "printf", Args: args})
		want := "[a b][][$HOME][*]['q'][tab\there][\"dq\"][ünï]"
		if r.ExitCode != 0 || r.Stdout != want {
			t.Errorf("printf %q: %v; want stdout %q", args, r, want)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		big := randomBytes(1<<20, 2)
		sum := sha256.Sum256(big)
		if r := execute(t, sb, sandbox.ExecRequest{Command: "sha256sum", Stdin: big}); r.ExitCode != 0 || !strings.HasPrefix(r.Stdout, hex.EncodeToString(sum[:])+" ") {
			t.Errorf("sha256sum of 1 MiB of stdin: %v; want %x", r, sum)
		}
		if p.Capabilities().TextOutput {
			return // binary output cannot come back as it is; the checksum proved stdin exact
		}
		r := execute(t, sb, sandbox.ExecRequest{Command: "cat", Stdin: big})
		if r.ExitCode != 0 || r.Stdout != string(big) {
			t.Errorf("cat with 1 MiB of stdin: exit %d, %d bytes back (equal: %v)", r.ExitCode, len(r.Stdout), r.Stdout == string(big))
		}
		if r := execute(t, sb, sandbox.ExecRequest{Command: "wc", Args: []string{"-c"}, Stdin: []byte("abc")}); strings.TrimSpace(r.Stdout) != "3" {
			t.Errorf("wc -c with stdin \"abc\": %v; want 3", r)
		}
		for _, in := range [][]byte{nil, {}} {
			ctx := shortCtx(t, 30*time.Second)
			var out bytes.Buffer
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "cat", Stdin: in, Stdout: &out})
			if err != nil || res.ExitCode != 0 || out.Len() != 0 {
				t.Errorf("cat with stdin %#v: exit %d, stdout %q, err %v; want an empty stdin (exit 0, no output, no wait)", in, res.ExitCode, out.String(), err)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		odd := "a b\nc=d'\"$x"
		req := shReq(`printf '%s|%s|%s' "$SBT_START" "$SBT_EXEC" "$SBT_ODD"`)
		req.Env = map[string]string{"SBT_EXEC": "from exec", "SBT_ODD": odd}
		if r := execute(t, sb, req); r.Stdout != "from start|from exec|"+odd {
			t.Errorf("env: %v; want stdout %q", r, "from start|from exec|"+odd)
		}
		// Exec's env is for that command only.
		if r := run(t, sb, `printf '%s|%s' "$SBT_START" "${SBT_EXEC-unset}"`); r.Stdout != "from start|unset" {
			t.Errorf("env of a later command: %v; want stdout \"from start|unset\"", r)
		}
		if r := run(t, sb, `command -v cat >/dev/null && echo ok`); r.Stdout != "ok\n" {
			t.Errorf("PATH does not find cat: %v", r)
		}
	})

	t.Run("cwd", func(t *testing.T) {
		mustRun(t, sb, "mkdir -p d/e")
		for _, c := range []struct{ cwd, want string }{
			{"", "/workspace"}, {"d", "/workspace/d"}, {"d/e", "/workspace/d/e"},
			{"/workspace/d/e", "/workspace/d/e"}, {"/workspace", "/workspace"}, {"/tmp", "/tmp"},
		} {
			req := shReq("pwd")
			req.Cwd = c.cwd
			if r := execute(t, sb, req); r.ExitCode != 0 || r.Stdout != c.want+"\n" {
				t.Errorf("pwd in cwd %q: %v; want %q", c.cwd, r, c.want)
			}
		}
		req := shReq("echo here > here.txt")
		req.Cwd = "d"
		execute(t, sb, req)
		if got := readAll(t, sb, "d/here.txt"); string(got) != "here\n" {
			t.Errorf("file written in cwd d: ReadFile(d/here.txt) = %q", got)
		}
	})

	t.Run("command cannot be started", func(t *testing.T) {
		write(t, sb, sandbox.File{Path: "noexec.sh", Content: []byte("#!/bin/sh\necho ran\n"), Mode: 0o644})
		for _, cmd := range []string{"sbt-no-such-command", "/workspace/no/such/program", "./noexec.sh"} {
			r := execute(t, sb, sandbox.ExecRequest{Command: cmd})
			if r.ExitCode != 127 || r.Stderr == "" || r.Stdout != "" {
				t.Errorf("Exec(%q): %v; want exit 127 and a message on stderr", cmd, r)
			}
		}
	})

	t.Run("duration", func(t *testing.T) {
		begin := time.Now()
		r := run(t, sb, "sleep 0.5")
		wall := time.Since(begin)
		if r.Duration < 400*time.Millisecond || r.Duration > wall+250*time.Millisecond {
			t.Errorf("sleep 0.5: Duration %v; want at least 0.4s and at most the %v the call took", r.Duration, wall)
		}
	})
}

// testTimeout: when Timeout elapses the whole process tree is killed, Exec returns promptly with
// TimedOut and exit code -1, and output printed before is delivered; a background child holding
// stdout open does not keep Exec waiting.
func (s *suite) testTimeout(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")

	t.Run("kills the whole process tree", func(t *testing.T) {
		req := shReq(`echo started; sleep 3171 & sleep 3171 & wait`)
		req.Timeout = 300 * time.Millisecond
		begin := time.Now()
		r := execute(t, sb, req)
		if elapsed := time.Since(begin); elapsed > 5*time.Second {
			t.Errorf("Exec with Timeout 300ms returned after %v", elapsed)
		}
		if !r.TimedOut || r.ExitCode != -1 || r.Stdout != "started\n" {
			t.Errorf("%v; want TimedOut, exit -1, stdout \"started\\n\"", r)
		}
		if r.Duration < 250*time.Millisecond {
			t.Errorf("Duration %v of a command killed after 300ms", r.Duration)
		}
		if left := leftoverSleeps(t, sb, "3171"); left != "" {
			t.Errorf("processes of the timed-out command are still running:\n%s", left)
		}
	})

	t.Run("kills children in their own session", func(t *testing.T) {
		if run(t, sb, "command -v setsid").ExitCode != 0 {
			t.Skip("no setsid in this sandbox")
		}
		req := shReq(`setsid sleep 3176 & sleep 3176 & wait`)
		req.Timeout = 300 * time.Millisecond
		if r := execute(t, sb, req); !r.TimedOut || r.ExitCode != -1 {
			t.Errorf("%v; want TimedOut and exit -1", r)
		}
		if left := leftoverSleeps(t, sb, "3176"); left != "" {
			t.Errorf("a child that left the process group survived the timeout of its command:\n%s", left)
		}
	})

	t.Run("command that finishes in time", func(t *testing.T) {
		req := shReq("echo ok")
		req.Timeout = 10 * time.Second
		if r := execute(t, sb, req); r.TimedOut || r.ExitCode != 0 || r.Stdout != "ok\n" {
			t.Errorf("%v; want exit 0, not timed out", r)
		}
	})

	t.Run("background child holding stdout open", func(t *testing.T) {
		begin := time.Now()
		r := execute(t, sb, shReq(`sleep 3172 & echo done`))
		if elapsed := time.Since(begin); elapsed > 10*time.Second {
			t.Errorf("Exec returned after %v: it waited for a background child holding stdout", elapsed)
		}
		if r.ExitCode != 0 || r.Stdout != "done\n" {
			t.Errorf("%v; want exit 0, stdout \"done\\n\"", r)
		}
	})
}

// testContextCancellation: cancelling ctx (or its deadline passing) kills the command and Exec
// returns ctx.Err() promptly; the sandbox stays usable and the command's processes are gone.
func (s *suite) testContextCancellation(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")

	execAsync := func(ctx context.Context, script string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := sb.Exec(ctx, shReq(script))
			done <- err
		}()
		return done
	}
	wait := func(t *testing.T, done <-chan error, since time.Time) (time.Duration, error) {
		t.Helper()
		select {
		case err := <-done:
			return time.Since(since), err
		case <-time.After(30 * time.Second):
			t.Fatalf("Exec did not return within 30s after its context ended")
			return 0, nil
		}
	}

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := execAsync(ctx, "sleep 3173")
		time.Sleep(500 * time.Millisecond)
		cancel()
		after, err := wait(t, done, time.Now())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Exec after cancel: %v, want ctx.Err() (context.Canceled)", err)
		}
		if after > 5*time.Second {
			t.Errorf("Exec returned %v after its context was cancelled", after)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		begin := time.Now()
		after, err := wait(t, execAsync(ctx, "sleep 3173"), begin)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Exec after its deadline: %v, want ctx.Err() (context.DeadlineExceeded)", err)
		}
		if after > 5500*time.Millisecond {
			t.Errorf("Exec returned %v after it started with a 500ms deadline", after)
		}
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := wait(t, execAsync(ctx, "sleep 3173"), time.Now())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Exec with a cancelled context: %v, want context.Canceled", err)
		}
	})

	t.Run("sandbox still usable", func(t *testing.T) {
		if left := leftoverSleeps(t, sb, "3173"); left != "" {
			t.Errorf("processes of cancelled commands are still running:\n%s", left)
		}
		write(t, sb, file("after.txt", "after\n"))
		if got := mustRun(t, sb, "cat after.txt"); got != "after\n" {
			t.Errorf("cat after.txt = %q", got)
		}
		checkTree(t, start(t, p, snapshot(t, sb)), tree{"after.txt": "file:after\n"})
	})
}

// testOutputNotBuffered: a command writing 64 MiB delivers exactly that to the writer, while the
// provider's live heap stays far below the output size (it streams instead of buffering).
func (s *suite) testOutputNotBuffered(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	mustRun(t, sb, "true") // warm up whatever a first Exec sets up

	const total = 64 << 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	w := &zeroCounter{marks: []int64{16 << 20, 32 << 20, 48 << 20, 60 << 20}, atMark: func() {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}}
	r := execute(t, sb, sandbox.ExecRequest{Command: "head", Args: []string{"-c", itoa(total), "/dev/zero"}, Stdout: w})
	if r.ExitCode != 0 || w.n != total || w.nonZero {
		t.Fatalf("head -c %d /dev/zero: exit %d, stderr %q, %d bytes delivered (non-zero bytes: %v); want exactly %d zero bytes", total, r.ExitCode, r.Stderr, w.n, w.nonZero, total)
	}
	growth := int64(peak) - int64(base)
	t.Logf("live heap grew by %.1f MiB while 64 MiB of output streamed (largest single Write: %d bytes)", float64(growth)/(1<<20), w.largest)
	if growth > 32<<20 {
		t.Errorf("live heap grew by %.1f MiB while a command wrote 64 MiB: output is buffered, not streamed", float64(growth)/(1<<20))
	}

	t.Run("both streams at once", func(t *testing.T) {
		const each = 8 << 20
		out, errw := &zeroCounter{}, &zeroCounter{}
		req := shReq(`head -c 8388608 /dev/zero >&2 & head -c 8388608 /dev/zero; wait`)
		req.Stdout, req.Stderr = out, errw
		r := execute(t, sb, req)
		if r.ExitCode != 0 || out.n != each || errw.n != each || out.nonZero || errw.nonZero {
			t.Errorf("exit %d: %d bytes on stdout, %d on stderr; want %d zero bytes on each", r.ExitCode, out.n, errw.n, each)
		}
	})
}
