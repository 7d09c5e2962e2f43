//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestEndedSandboxErrors(t *testing.T) {
	p := newTestProvider(t, Options{})
	ctx := context.Background()
	check := func(t *testing.T, sb sandbox.Sandbox) {
		t.Helper()
		if _, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"}); !errors.Is(err, sandbox.ErrEnded) {
			t.Errorf("Exec: %v", err)
		}
		if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "x"}}); !errors.Is(err, sandbox.ErrEnded) {
			t.Errorf("WriteFiles: %v", err)
		}
		if _, err := sb.ReadFile(ctx, "x", 0, 0); !errors.Is(err, sandbox.ErrEnded) {
			t.Errorf("ReadFile: %v", err)
		}
		if _, err := sb.ListFiles(ctx, ".", 1); !errors.Is(err, sandbox.ErrEnded) {
			t.Errorf("ListFiles: %v", err)
		}
		if _, err := sb.Snapshot(ctx); !errors.Is(err, sandbox.ErrEnded) {
			t.Errorf("Snapshot: %v", err)
		}
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("Stop of an ended sandbox: %v", err)
		}
		// A snapshotted sandbox's directory goes in the background (finishBehind).
		sb.(*localSandbox).p.tidy.Wait()
		if _, err := os.Stat(sb.(*localSandbox).dir); !os.IsNotExist(err) {
			t.Errorf("sandbox directory still there: %v", err)
		}
	}
	t.Run("stopped", func(t *testing.T) {
		sb := startSandbox(t, p, sandbox.StartOptions{})
		if err := sb.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, sb)
	})
	t.Run("snapshotted", func(t *testing.T) {
		sb := startSandbox(t, p, sandbox.StartOptions{})
		shOK(t, sb, "echo x > x")
		snapshot(t, sb)
		check(t, sb)
	})
	t.Run("snapshotted unchanged", func(t *testing.T) {
		sb := startSandbox(t, p, sandbox.StartOptions{})
		snapshotAllowUnchanged(t, sb)
		check(t, sb)
	})
	t.Run("died", func(t *testing.T) {
		sb := startSandbox(t, p, sandbox.StartOptions{})
		// Kill bwrap's init from the host: the whole sandbox dies.
		ls := sb.(*localSandbox)
		if err := syscall.Kill(ls.childPid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-ls.exited
		deadline := time.Now().Add(5 * time.Second)
		for ls.checkRunning() == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		_, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"})
		if !errors.Is(err, sandbox.ErrEnded) || !strings.Contains(err.Error(), "died") {
			t.Fatalf("Exec after death: %v", err)
		}
		check(t, sb)
	})
	t.Run("ends while a command runs", func(t *testing.T) {
		sb := startSandbox(t, p, sandbox.StartOptions{})
		errc := make(chan error, 1)
		go func() {
			_, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sleep", Args: []string{"30"}})
			errc <- err
		}()
		time.Sleep(200 * time.Millisecond)
		if err := sb.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, sandbox.ErrEnded) {
				t.Fatalf("Exec interrupted by Stop: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Exec still running after Stop")
		}
	})
}

func TestLifetime(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Lifetime: 300 * time.Millisecond})
	shOK(t, sb, "true")
	ls := sb.(*localSandbox)
	select {
	case <-ls.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("sandbox outlived its lifetime")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ls.checkRunning() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := sb.Exec(context.Background(), sandbox.ExecRequest{Command: "true"})
	if !errors.Is(err, sandbox.ErrEnded) || !strings.Contains(err.Error(), "lifetime") {
		t.Fatalf("Exec after the lifetime: %v", err)
	}
}

func TestCloseStopsSandboxes(t *testing.T) {
	requireBwrap(t)
	p, err := New(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := p.Start(context.Background(), sandbox.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	marker := "100.7878"
	shOK(t, sb, "sleep "+marker+" >/dev/null 2>&1 &")
	if len(hostProcsWith(marker)) == 0 {
		t.Fatal("background sleep not running")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitNoHostProcs(t, marker, 2*time.Second)
	if _, err := sb.Exec(context.Background(), sandbox.ExecRequest{Command: "true"}); !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("Exec after Close: %v", err)
	}
	if _, err := p.Start(context.Background(), sandbox.StartOptions{}); !errors.Is(err, sandbox.ErrUnavailable) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestSnapshotKillsProcesses: a snapshot ends everything running in the sandbox.
func TestSnapshotKillsProcesses(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	marker := "100.8989"
	// The writer replaces the file atomically, so whenever it is killed the file is complete.
	shOK(t, sb, "(while true; do date > /workspace/.clock && mv /workspace/.clock /workspace/clock; sleep 0.01; done) >/dev/null 2>&1 & sleep "+marker+" >/dev/null 2>&1 &")
	deadline := time.Now().Add(5 * time.Second)
	for shOK(t, sb, "test -s clock && echo ok || true") != "ok" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ref := snapshot(t, sb).Ref
	waitNoHostProcs(t, marker, 2*time.Second)
	sb2 := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
	if got := shOK(t, sb2, "test -s clock && echo ok"); got != "ok" {
		t.Fatalf("clock file: %q", got)
	}
}

// TestLimits checks the cgroup limits where the host offers them (root on cgroup v1 here), and
// that sandboxes start without them where it does not.
func TestLimits(t *testing.T) {
	p := newTestProvider(t, Options{MemoryLimit: 64 << 20, PidsLimit: 40})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	ls := sb.(*localSandbox)
	if ok, why := cgroupSupport(""); !ok {
		if ls.cg != nil {
			t.Fatalf("cgroups made although unsupported (%s)", why)
		}
		t.Logf("cgroup limits unavailable here (%s); checked that sandboxes run without them", why)
		shOK(t, sb, "true")
		return
	}
	checkLimited(t, ls)
}

// checkLimited checks that a running sandbox of a provider with MemoryLimit 64 MiB and
// PidsLimit 40 is held to them, that its agent is in its memory and pids cgroups, and that Stop
// removes them.
func checkLimited(t *testing.T, ls *localSandbox) {
	t.Helper()
	sb := sandbox.Sandbox(ls)
	if ls.cg == nil || len(ls.cg.dirs) != 2 {
		t.Fatalf("sandbox cgroups: %+v", ls.cg)
	}
	// Seen from the host: the agent (PID 1 inside) is in the sandbox's cgroups.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", ls.childPid))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" || c == "pids" {
				in[filepath.Join(cgroupRoot, c, parts[2])] = true
			}
		}
	}
	for _, d := range ls.cg.dirs {
		if !in[d] {
			t.Fatalf("the agent (pid %d) is not in %s: /proc/pid/cgroup:\n%s", ls.childPid, d, b)
		}
	}
	for file, want := range map[string]string{"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "40"} {
		ctl, name, _ := strings.Cut(file, "/")
		for _, d := range ls.cg.dirs {
			if strings.HasPrefix(d, filepath.Join(cgroupRoot, ctl)+"/") {
				if got, err := os.ReadFile(filepath.Join(d, name)); err != nil || strings.TrimSpace(string(got)) != want {
					t.Fatalf("%s/%s: %q %v, want %s", d, name, got, err, want)
				}
			}
		}
	}
	o := sh(t, sb, `python3 -c 'b = bytearray(256 << 20); b[::4096] = b"x" * len(b[::4096]); print("survived")'`)
	if o.res.ExitCode == 0 || strings.Contains(o.stdout, "survived") {
		t.Fatalf("256 MiB allocation under a 64 MiB limit: %+v", o)
	}
	o = sh(t, sb, `python3 -c '
import subprocess
ps = []
for i in range(100):
    try:
        ps.append(subprocess.Popen(["sleep", "5"]))
    except OSError:
        break
print(len(ps))
for p in ps:
    p.kill()
'`)
	if n, err := strconv.Atoi(strings.TrimSpace(o.stdout)); err != nil || n == 0 || n >= 40 {
		t.Fatalf("started %q processes under a pids limit of 40 (stderr %q)", o.stdout, o.stderr)
	}
	dirs := ls.cg.dirs
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left after Stop: %v", d, err)
		}
	}
}

// TestUnprivilegedProvider runs the provider as an ordinary user: the helper then mounts the
// overlays in a user namespace of its own and sandboxes run as that user. As root, the test
// runs itself again in a copy of the test binary as an unprivileged uid.
func TestUnprivilegedProvider(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		const uid = 1000000001
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "sandkit-unpriv-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = removeTree(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "local.test")
		data, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		home := filepath.Join(dir, "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, uid, uid); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run", "^TestUnprivilegedProvider$", "-test.count=1", "-test.v")
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + home, "TMPDIR=" + home, "PATH=" + os.Getenv("PATH")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestUnprivilegedProvider") {
			t.Fatalf("as uid %d: %v\n%s", uid, err, out)
		}
		return
	}
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	if got := shOK(t, sb, "id -u; echo data > f; rm -f nothing; grep Seccomp: /proc/self/status"); got != "1000\nSeccomp:\t2" {
		t.Fatalf("inside: %q", got)
	}
	ref := snapshot(t, sb).Ref
	layer := filepath.Join(p.store.layers, chainOf(p, ref)[0], "workspace", "f")
	fi, err := os.Stat(layer)
	if err != nil {
		t.Fatal(err)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != os.Geteuid() {
		t.Fatalf("layer file owned by %d, want the provider's uid %d", uid, os.Geteuid())
	}
	sb2 := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
	shOK(t, sb2, "rm f; mkdir d; echo x > d/x")
	ref2 := snapshot(t, sb2).Ref
	sb3 := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref2})
	if got := shOK(t, sb3, "ls -R"); got != ".:\nd\n\n./d:\nx" {
		t.Fatalf("after delete: %q", got)
	}

	// A live sandbox outlives its provider and is adopted by the next one, unprivileged too.
	dir := t.TempDir()
	p1, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	live := startSandbox(t, p1, sandbox.StartOptions{Detached: true})
	shOK(t, live, "mkdir d && echo x > d/x")
	id, err := live.StartProcess(context.Background(), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "echo bg; exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := newTestProvider(t, Options{Dir: dir})
	re, err := p2.Reconnect(context.Background(), live.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got := shOK(t, re, "id -u; cat d/x"); got != "1000\nx" {
		t.Fatalf("reconnected: %q", got)
	}
	if st, err := re.Process(context.Background(), id, 0, 0); err != nil || !st.Running || string(st.Output) != "bg\n" {
		t.Fatalf("process after the restart: %+v %v", st, err)
	}
	ref3 := snapshot(t, re).Ref
	sb4 := startSandbox(t, p2, sandbox.StartOptions{Snapshot: ref3})
	if got := shOK(t, sb4, "cat d/x"); got != "x" {
		t.Fatalf("snapshot of the adopted sandbox: %q", got)
	}
}

// TestAgentEndsWithMonitor: the agent ends once bwrap's monitor outside the sandbox is gone, even
// where bwrap's --die-with-parent does not tie them (a detached sandbox has none; a durable one's
// is set too late when the monitor dies right after the clone): the life pipe (helper.Spec
// LifePipe, the agent's -life-fd).
func TestAgentEndsWithMonitor(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Detached: true})
	ls := sb.(*localSandbox)
	if err := syscall.Kill(ls.outerPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ls.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent (pid %d) still runs 10 s after bwrap's monitor (pid %d) was killed", ls.childPid, ls.outerPid)
	}
}
