package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testCapabilities: a provider has a stable name and a file size limit; sandboxes have distinct
// ids; a provider that cannot enforce egress policies warns about it.
func (s *suite) testCapabilities(t *testing.T) {
	p := s.provider(t)
	name := p.Name()
	if name == "" || p.Name() != name {
		t.Errorf("Name() = %q then %q; want a stable non-empty identifier", name, p.Name())
	}
	caps := p.Capabilities()
	if caps.MaxFileSize <= 0 {
		t.Errorf("Capabilities().MaxFileSize = %d, want a positive limit", caps.MaxFileSize)
	}
	a, b := start(t, p, ""), start(t, p, "")
	if a.ID() == "" || a.ID() == b.ID() {
		t.Errorf("sandbox ids %q and %q; want distinct non-empty ids", a.ID(), b.ID())
	}
	if caps.Egress {
		return
	}
	for _, pol := range []policies.Policy{{Mode: policies.AllowAll}, {Mode: policies.Allow, Domains: []string{"example.com"}}} {
		sb := startWith(t, p, sandbox.StartOptions{Policy: pol})
		if len(sb.Warnings()) == 0 {
			t.Errorf("Capabilities().Egress is false, yet a sandbox started with policy %v has no warning saying it is not enforced", pol)
		}
	}
}

// testSnapshotDeletion: a deleted snapshot no longer starts; snapshots derived from it, and
// sandboxes already started from it, are unaffected; Snapshots lists exactly the live refs;
// deleting an unknown or already deleted ref is not an error.
func (s *suite) testSnapshotDeletion(t *testing.T) {
	p := s.provider(t)
	wantSnapshots(t, p)

	sb := start(t, p, "")
	write(t, sb, file("a.txt", "a\n"), file("dir/in-s1.txt", "s1\n"))
	s1 := snapshot(t, sb)
	state1 := tree{"a.txt": "file:a\n", "dir": "dir", "dir/in-s1.txt": "file:s1\n"}

	early := start(t, p, s1) // started before the deletion
	sb = start(t, p, s1)
	mustRun(t, sb, "echo b > b.txt; rm dir/in-s1.txt")
	s2 := snapshot(t, sb)
	state2 := tree{"a.txt": "file:a\n", "dir": "dir", "b.txt": "file:b\n"}
	wantSnapshots(t, p, s1, s2)

	if err := p.DeleteSnapshot(opCtx(t), s1); err != nil {
		t.Fatalf("DeleteSnapshot(s1): %v", err)
	}
	wantStartNotFound(t, p, s1)
	checkTree(t, start(t, p, s2), state2)

	t.Run("sandbox started before the deletion", func(t *testing.T) {
		checkTree(t, early, state1)
		write(t, early, file("c.txt", "c\n"))
		sx := snapshot(t, early)
		checkTree(t, start(t, p, sx), tree{"a.txt": "file:a\n", "dir": "dir", "dir/in-s1.txt": "file:s1\n", "c.txt": "file:c\n"})
		wantSnapshots(t, p, s2, sx)

		for _, ref := range []sandbox.SnapshotRef{s1, "sbt-no-such-ref"} {
			if err := p.DeleteSnapshot(opCtx(t), ref); err != nil {
				t.Errorf("DeleteSnapshot(%q) of a snapshot that does not exist: %v, want nil", ref, err)
			}
		}

		if err := p.DeleteSnapshot(opCtx(t), s2); err != nil {
			t.Fatalf("DeleteSnapshot(s2): %v", err)
		}
		wantStartNotFound(t, p, s2)
		checkTree(t, start(t, p, sx), tree{"a.txt": "file:a\n", "dir": "dir", "dir/in-s1.txt": "file:s1\n", "c.txt": "file:c\n"})
		wantSnapshots(t, p, sx)

		if err := p.DeleteSnapshot(opCtx(t), sx); err != nil {
			t.Fatalf("DeleteSnapshot(sx): %v", err)
		}
		wantStartNotFound(t, p, sx)
		wantSnapshots(t, p)
		checkTree(t, start(t, p, ""), tree{})
	})
}

// wantSnapshots checks that p.Snapshots lists exactly want, unless the provider cannot list.
func wantSnapshots(t *testing.T, p sandbox.Provider, want ...sandbox.SnapshotRef) {
	t.Helper()
	got, err := p.Snapshots(opCtx(t))
	if errors.Is(err, sandbox.ErrUnsupported) {
		t.Logf("Snapshots: %v; not checked", err)
		return
	}
	if err != nil {
		t.Errorf("Snapshots: %v", err)
		return
	}
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Snapshots() = %q, want exactly the live snapshots %q", got, want)
	}
}

// wantStartNotFound checks that Start(ref) fails with ErrNotFound.
func wantStartNotFound(t *testing.T, p sandbox.Provider, ref sandbox.SnapshotRef) {
	t.Helper()
	sb, err := p.Start(opCtx(t), sandbox.StartOptions{Snapshot: ref, Policy: policies.Deny(), Label: t.Name()})
	if err == nil {
		stopOnCleanup(t, sb)
	}
	wantErr(t, fmt.Sprintf("Start(%q)", ref), err, sandbox.ErrNotFound)
}

// testLifecycle: after Snapshot or Stop every method but Stop returns ErrEnded and Stop is a
// no-op; Stop discards changes; Snapshot succeeds with processes still running; unknown
// snapshots do not start; closing the provider stops its sandboxes.
func (s *suite) testLifecycle(t *testing.T) {
	p := s.provider(t)
	base := start(t, p, "")
	write(t, base, file("base.txt", "base\n"))
	s0 := snapshot(t, base)

	endedChecks := func(t *testing.T, sb sandbox.Sandbox) {
		t.Helper()
		_, err := sb.Exec(opCtx(t), shReq("true"))
		wantErr(t, "Exec", err, sandbox.ErrEnded)
		err = sb.WriteFiles(opCtx(t), []sandbox.File{file("x.txt", "x")})
		wantErr(t, "WriteFiles", err, sandbox.ErrEnded)
		_, err = sb.ReadFile(opCtx(t), "base.txt", 0, 0)
		wantErr(t, "ReadFile", err, sandbox.ErrEnded)
		_, err = sb.ListFiles(opCtx(t), ".", 1)
		wantErr(t, "ListFiles", err, sandbox.ErrEnded)
		_, err = sb.Snapshot(opCtx(t))
		wantErr(t, "Snapshot", err, sandbox.ErrEnded)
		for range 2 {
			if err := sb.Stop(opCtx(t)); err != nil {
				t.Errorf("Stop of an ended sandbox: %v, want nil (a no-op)", err)
			}
		}
	}

	t.Run("after Snapshot", func(t *testing.T) {
		sb := start(t, p, s0)
		write(t, sb, file("x.txt", "x"))
		snapshot(t, sb)
		endedChecks(t, sb)
	})

	t.Run("after Stop", func(t *testing.T) {
		sb := start(t, p, s0)
		write(t, sb, file("changed.txt", "changed\n"))
		mustRun(t, sb, `rm base.txt; echo stopped > "$HOME/sbt-stopped.txt"`)
		if err := sb.Stop(opCtx(t)); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		endedChecks(t, sb)
		// Stop discarded the changes.
		again := start(t, p, s0)
		checkTree(t, again, tree{"base.txt": "file:base\n"})
		if got := homeFile(t, again, "sbt-stopped.txt"); got != "" {
			t.Errorf("a home file written before Stop is in the snapshot: %q", got)
		}
	})

	t.Run("Start of an unknown snapshot", func(t *testing.T) {
		wantStartNotFound(t, p, "sbt-no-such-ref")
		for _, ref := range []sandbox.SnapshotRef{"../../../../etc", "/", ".", "a/../b", "sbt\x00ref"} {
			sb, err := p.Start(opCtx(t), sandbox.StartOptions{Snapshot: ref, Policy: policies.Deny(), Label: t.Name()})
			if err == nil {
				stopOnCleanup(t, sb)
			}
			if !errors.Is(err, sandbox.ErrNotFound) && !errors.Is(err, sandbox.ErrInvalid) {
				t.Errorf("Start(%q): %v; want an error wrapping ErrNotFound or ErrInvalid", ref, err)
			}
		}
	})

	t.Run("Snapshot with processes still running", func(t *testing.T) {
		sb := start(t, p, s0)
		mustRun(t, sb, `(while :; do date > ticker.txt; sleep 0.1; done) >/dev/null 2>&1 </dev/null &
sleep 0.3`)
		ctx := shortCtx(t, 60*time.Second)
		info, err := sb.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot with a background process running: %v", err)
		}
		after := start(t, p, info.Ref)
		got := list(t, after, ".", 1)
		wantPaths(t, "ListFiles(., 1)", got, "base.txt", "ticker.txt")
		endedChecks(t, sb)
	})

	t.Run("Close stops running sandboxes", func(t *testing.T) {
		p2 := s.makeProvider(t)
		sb := start(t, p2, "")
		mustRun(t, sb, "true")
		if err := p2.Close(); err != nil {
			t.Errorf("Provider.Close: %v", err)
		}
		_, err := sb.Exec(opCtx(t), shReq("true"))
		wantErr(t, "Exec after Provider.Close", err, sandbox.ErrEnded)
		if err := sb.Stop(opCtx(t)); err != nil {
			t.Errorf("Stop after Provider.Close: %v, want nil (a no-op)", err)
		}
	})
}

// testLifetime: a sandbox started with Lifetime 1s ends by itself after about a second; its
// running command ends with it; afterwards its methods return ErrEnded.
func (s *suite) testLifetime(t *testing.T) {
	p := s.provider(t)
	const lifetime = time.Second
	begin := time.Now()
	sb := startWith(t, p, sandbox.StartOptions{Lifetime: lifetime})
	if time.Since(begin) < lifetime/2 {
		mustRun(t, sb, "true")
	}

	ctx := shortCtx(t, 30*time.Second)
	_, err := sb.Exec(ctx, shReq("sleep 3177"))
	ended := time.Since(begin)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a command was still running 30s after the sandbox's Lifetime of %v elapsed", lifetime)
	}
	if ended < lifetime-100*time.Millisecond {
		t.Errorf("the running command ended %v after Start began, before the Lifetime of %v (err %v)", ended, lifetime, err)
	}
	if ended > lifetime+5*time.Second {
		t.Errorf("the running command ended only %v after Start began, with a Lifetime of %v", ended, lifetime)
	}

	time.Sleep(time.Until(begin.Add(2 * lifetime)))
	_, err = sb.Exec(opCtx(t), shReq("true"))
	wantErr(t, "Exec after the Lifetime elapsed", err, sandbox.ErrEnded)
	err = sb.WriteFiles(opCtx(t), []sandbox.File{file("late.txt", "late")})
	wantErr(t, "WriteFiles after the Lifetime elapsed", err, sandbox.ErrEnded)
	_, err = sb.Snapshot(opCtx(t))
	wantErr(t, "Snapshot after the Lifetime elapsed", err, sandbox.ErrEnded)
	if err := sb.Stop(opCtx(t)); err != nil {
		t.Errorf("Stop of a sandbox whose Lifetime elapsed: %v, want nil", err)
	}
}

// testHomeIsDurable: the sandbox user's home directory is durable state, across layers of
// changes, like /workspace.
func (s *suite) testHomeIsDurable(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	home := mustRun(t, sb, `printf %s "$HOME"`)
	if !strings.HasPrefix(home, "/") {
		t.Fatalf("$HOME = %q, want an absolute path", home)
	}
	mustRun(t, sb, `set -e; cd; echo home > .sbt_home; mkdir -p sub/deeper; printf x > sub/deeper/y; echo keep > keep.txt`)
	s1 := snapshot(t, sb)

	sb2 := start(t, p, s1)
	if got := mustRun(t, sb2, `printf %s "$HOME"`); got != home {
		t.Errorf("$HOME after Snapshot/Start = %q, was %q", got, home)
	}
	if got := run(t, sb2, `cd && cat .sbt_home sub/deeper/y keep.txt`); got.Stdout != "home\nxkeep\n" {
		t.Errorf("home files after Snapshot/Start: %v; want stdout \"home\\nxkeep\\n\"", got)
	}
	mustRun(t, sb2, `set -e; cd; rm .sbt_home; echo v2 > sub/deeper/y; mkdir later; echo l > later/l.txt`)
	s2 := snapshot(t, sb2)

	sb3 := start(t, p, s2)
	want := "gone\nv2\nkeep\nl\n"
	if got := run(t, sb3, `cd && { test -e .sbt_home || echo gone; } && cat sub/deeper/y keep.txt later/l.txt`); got.Stdout != want {
		t.Errorf("home after a second Snapshot/Start: %v; want stdout %q", got, want)
	}
	// The first snapshot is unchanged.
	if got := run(t, start(t, p, s1), `cd && cat .sbt_home sub/deeper/y && { test -e later || echo no-later; }`); got.Stdout != "home\nxno-later\n" {
		t.Errorf("home in the first snapshot: %v; want stdout \"home\\nxno-later\\n\"", got)
	}
}

// testConcurrency: four sandboxes forked from one snapshot work at the same time and each
// snapshot holds exactly its own changes; concurrent calls on one sandbox are safe.
func (s *suite) testConcurrency(t *testing.T) {
	p := s.provider(t)
	base := start(t, p, "")
	write(t, base, file("shared.txt", "base\n"), file("common/keep.txt", "keep\n"))
	s0 := snapshot(t, base)

	const n = 4
	var log strings.Builder
	for i := range 200 {
		fmt.Fprintf(&log, "%d\n", i)
	}
	refs := make([]sandbox.SnapshotRef, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { refs[i], errs[i] = forkAndWork(t.Context(), p, s0, i) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("sandbox %d: %v", i, errs[i])
			continue
		}
		checkTree(t, start(t, p, refs[i]), tree{
			"shared.txt":                    fmt.Sprintf("file:%d\n", i),
			"common":                        "dir",
			fmt.Sprintf("own-%d.txt", i):    fmt.Sprintf("file:own %d\n", i),
			"log.txt":                       "file:" + log.String(),
			fmt.Sprintf("dir%d", i):         "dir",
			fmt.Sprintf("dir%d/zeros", i):   "file:" + strings.Repeat("\x00", 100000),
			fmt.Sprintf("dir%d/.hidden", i): "file:h",
		})
	}
	checkTree(t, start(t, p, s0), tree{"shared.txt": "file:base\n", "common": "dir", "common/keep.txt": "file:keep\n"})

	t.Run("concurrent calls on one sandbox", func(t *testing.T) {
		sb := start(t, p, s0)
		outs := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
				defer cancel()
				var out lockedBuffer
				res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", fmt.Sprintf("echo %d > c%d.txt; sleep 0.2; cat c%d.txt", i, i, i)}, Stdout: &out})
				if err == nil && res.ExitCode != 0 {
					err = fmt.Errorf("exit %d", res.ExitCode)
				}
				if err == nil {
					err = sb.WriteFiles(ctx, []sandbox.File{file(fmt.Sprintf("w%d.txt", i), fmt.Sprint(i))})
				}
				outs[i], errs[i] = out.String(), err
			})
		}
		wg.Wait()
		want := tree{"shared.txt": "file:base\n", "common": "dir", "common/keep.txt": "file:keep\n"}
		for i := range n {
			if errs[i] != nil || outs[i] != fmt.Sprintf("%d\n", i) {
				t.Errorf("concurrent call %d: stdout %q, err %v; want %q", i, outs[i], errs[i], fmt.Sprintf("%d\n", i))
			}
			want[fmt.Sprintf("c%d.txt", i)] = fmt.Sprintf("file:%d\n", i)
			want[fmt.Sprintf("w%d.txt", i)] = fmt.Sprintf("file:%d", i)
		}
		checkTree(t, sb, want)
	})
}

// forkAndWork starts a sandbox from ref, changes it in ways particular to i and snapshots it.
// It runs on its own goroutine, so it returns errors instead of failing the test.
func forkAndWork(ctx context.Context, p sandbox.Provider, ref sandbox.SnapshotRef, i int) (sandbox.SnapshotRef, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	sb, err := p.Start(ctx, sandbox.StartOptions{Snapshot: ref, Policy: policies.Deny(), Label: fmt.Sprintf("concurrency-%d", i)})
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	defer sb.Stop(context.Background())
	if err := sb.WriteFiles(ctx, []sandbox.File{file(fmt.Sprintf("own-%d.txt", i), fmt.Sprintf("own %d\n", i))}); err != nil {
		return "", fmt.Errorf("write files: %w", err)
	}
	var stderr lockedBuffer
	script := fmt.Sprintf(`set -e
n=0; while [ $n -lt 200 ]; do echo $n >> log.txt; n=$((n+1)); done
echo %d > shared.txt; rm common/keep.txt; mkdir dir%d; head -c 100000 /dev/zero > dir%d/zeros; printf h > dir%d/.hidden`, i, i, i, i)
	res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}, Stderr: &stderr})
	if err != nil {
		return "", fmt.Errorf("exec: %w", err)
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("script exited %d: %s", res.ExitCode, stderr.String())
	}
	info, err := sb.Snapshot(ctx)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return info.Ref, nil
}

// testRestart: snapshots survive a restart of the provider (a new provider over the same
// storage), and closing the old provider ended its running sandboxes.
func (s *suite) testRestart(t *testing.T) {
	r, ok := s.h.(Restarter)
	if !ok {
		t.Skip("the harness does not implement sandboxtest.Restarter")
	}
	p1 := s.makeProvider(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			p1.Close()
		}
	})
	sb := start(t, p1, "")
	write(t, sb, file("kept.txt", "kept\n"))
	mustRun(t, sb, `echo home > "$HOME/sbt-restart.txt"`)
	s1 := snapshot(t, sb)
	running := start(t, p1, s1)
	mustRun(t, running, "echo lost > lost.txt")

	closed = true
	if err := p1.Close(); err != nil {
		t.Errorf("Provider.Close: %v", err)
	}
	_, err := running.Exec(opCtx(t), shReq("true"))
	wantErr(t, "Exec on a sandbox of a closed provider", err, sandbox.ErrEnded)

	p2 := r.RestartProvider(opCtx(t), t, p1)
	if p2 == nil {
		t.Fatal("RestartProvider returned nil")
	}
	t.Cleanup(func() {
		if err := p2.Close(); err != nil {
			t.Errorf("Provider.Close after restart: %v", err)
		}
	})
	after := start(t, p2, s1)
	checkTree(t, after, tree{"kept.txt": "file:kept\n"})
	if got := homeFile(t, after, "sbt-restart.txt"); got != "home\n" {
		t.Errorf("home file after restart = %q, want \"home\\n\"", got)
	}
	wantSnapshots(t, p2, s1)
	write(t, after, file("more.txt", "more\n"))
	s2 := snapshot(t, after)
	wantSnapshots(t, p2, s1, s2)
	if err := p2.DeleteSnapshot(opCtx(t), s1); err != nil {
		t.Fatalf("DeleteSnapshot after restart: %v", err)
	}
	wantStartNotFound(t, p2, s1)
	checkTree(t, start(t, p2, s2), tree{"kept.txt": "file:kept\n", "more.txt": "file:more\n"})
}
