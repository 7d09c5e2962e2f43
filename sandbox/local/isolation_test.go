//go:build linux

package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestIsolation(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("these tests need /usr/bin/python3 on the host: apt-get install -y python3")
	}
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})

	t.Run("sandbox user", func(t *testing.T) {
		if got := shOK(t, sb, "id -u; id -g; id -un; echo $HOME; hostname"); got != "1000\n1000\nsandbox\n/home/sandbox\nsandbox" {
			t.Fatalf("identity: %q", got)
		}
	})
	t.Run("no privileges", func(t *testing.T) {
		status := shOK(t, sb, "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status")
		for _, want := range []string{"CapEff:\t0000000000000000", "CapPrm:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(status, want) {
				t.Errorf("/proc/self/status lacks %q:\n%s", want, status)
			}
		}
		// No nested user namespaces (bwrap --disable-userns).
		if o := sh(t, sb, "unshare -U true"); o.res.ExitCode == 0 {
			t.Errorf("unshare -U succeeded inside the sandbox")
		}
	})
	t.Run("unix sockets denied by seccomp", func(t *testing.T) {
		o := sh(t, sb, `python3 -c 'import socket; socket.socket(socket.AF_UNIX)'`)
		if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "PermissionError") {
			t.Fatalf("AF_UNIX socket: exit %d stderr %q; want PermissionError", o.res.ExitCode, o.stderr)
		}
		// Other sockets still work (loopback TCP), and socketpair is allowed.
		shOK(t, sb, `python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); socket.socketpair()'`)
	})
	t.Run("no network", func(t *testing.T) {
		o := sh(t, sb, `python3 -c 'import socket; socket.create_connection(("1.1.1.1", 53), timeout=3)'`)
		if o.res.ExitCode == 0 {
			t.Fatal("connected to 1.1.1.1:53 from the sandbox")
		}
		ifaces := shOK(t, sb, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
		if ifaces != "lo" {
			t.Fatalf("network interfaces: %q, want only lo", ifaces)
		}
	})
	t.Run("read-only system", func(t *testing.T) {
		for _, path := range []string{"/usr/sbt-x", "/etc/sbt-x", "/usr/bin/sbt-x"} {
			o := sh(t, sb, "touch "+path)
			if o.res.ExitCode == 0 || !strings.Contains(o.stderr, "Read-only file system") && !strings.Contains(o.stderr, "Permission denied") {
				t.Errorf("touch %s: exit %d %q", path, o.res.ExitCode, o.stderr)
			}
		}
	})
	t.Run("host is hidden", func(t *testing.T) {
		wd, _ := os.Getwd()
		out := shOK(t, sb, "for f in /root /run /var /work /proc/1/root/work "+wd+" "+p.opts.Dir+"; do [ -e $f ] && echo $f; done; true")
		if out != "" {
			t.Fatalf("host paths visible in the sandbox: %q", out)
		}
		if cmd := shOK(t, sb, "tr '\\0' ' ' < /proc/1/cmdline"); strings.Contains(cmd, p.opts.Dir) || strings.Contains(cmd, "/run") {
			t.Fatalf("/proc/1/cmdline shows host paths: %q", cmd)
		}
		if n, _ := strconv.Atoi(shOK(t, sb, "ls /proc | grep -c '^[0-9]'")); n == 0 || n > 10 {
			t.Fatalf("sandbox sees %d processes; want only its own few", n)
		}
	})
	t.Run("files owned by the sandbox user", func(t *testing.T) {
		if err := sb.WriteFiles(context.Background(), []sandbox.File{{Path: "owned.txt", Content: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if got := shOK(t, sb, "stat -c '%u:%g %a' owned.txt; echo x > byexec; stat -c '%u:%g' byexec /workspace /home/sandbox"); got != "1000:1000 644\n1000:1000\n1000:1000\n1000:1000" {
			t.Fatalf("ownership: %q", got)
		}
	})
	t.Run("runtimes work", func(t *testing.T) {
		shOK(t, sb, "python3 -c 'import ssl, json, sqlite3; print(1)'")
		shOK(t, sb, "awk 'BEGIN{print 1}' && git --version >/dev/null 2>&1 || true")
	})
}

func TestHostUIDIsUnprivileged(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, "echo x > mine; sleep 0.2 & true")
	ls := sb.(*localSandbox)
	fi, err := os.Stat(ls.upper() + "/workspace/mine")
	if err != nil {
		t.Fatal(err)
	}
	uid := int(fi.Sys().(*syscall.Stat_t).Uid)
	if uid != p.uid || (os.Geteuid() == 0 && uid == 0) {
		t.Fatalf("a file written in the sandbox is owned by host uid %d, want %d", uid, p.uid)
	}
}

// TestPolicyNoDirectNetwork: egress policies are enforced (by the proxy; see egress_test.go),
// so no warnings; and whatever the policy, the sandbox itself still has only loopback.
func TestPolicyNoDirectNetwork(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	if !p.Capabilities().Egress {
		t.Fatal("Capabilities().Egress = false; the local provider enforces egress policies")
	}
	for _, pol := range []policies.Policy{{Mode: policies.AllowAll}, policies.Deny(), {}} {
		sb := startSandbox(t, p, sandbox.StartOptions{Policy: pol})
		if w := sb.Warnings(); len(w) != 0 {
			t.Fatalf("policy %v: warnings %q", pol, w)
		}
		if o := sh(t, sb, `python3 -c 'import socket; socket.create_connection(("1.1.1.1", 53), timeout=3)'`); o.res.ExitCode == 0 {
			t.Fatalf("policy %v: a direct connection to 1.1.1.1 succeeded", pol)
		}
	}
}

func TestMissingBwrap(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Dir: t.TempDir(), Bwrap: "/nonexistent/bwrap"})
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install -y bubblewrap") {
		t.Fatalf("err = %v", err)
	}
}

func TestDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newTestProvider(t, Options{Dir: dir})
	_, err := New(Options{Dir: dir})
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second provider on the same directory: %v", err)
	}
}

func TestDiagnose(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	checks := Diagnose("")
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
		t.Logf("%-30s ok=%v %s %s", c.Name, c.OK, c.Detail, c.Fix)
		if c.Name == "cgroups (memory/pids limits)" {
			continue // optional; depends on the host
		}
		if !c.OK {
			t.Errorf("check %s failed: %s (fix: %s)", c.Name, c.Detail, c.Fix)
		}
	}
	for _, want := range []string{"bwrap", "user namespaces", "overlayfs", "sandbox agent", "sandbox start", "cgroups (memory/pids limits)", "seccomp filter"} {
		if !names[want] {
			t.Errorf("no %q check", want)
		}
	}
	bad := Diagnose("/nonexistent/bwrap")
	if bad[0].OK || !strings.Contains(bad[0].Fix, "apt-get install -y bubblewrap") {
		t.Errorf("missing bwrap: %+v", bad[0])
	}
}

// TestMountinfoHidesHostPaths: the sandbox's /proc/self/mountinfo names no host path of the
// provider: not its data directory (as given or with symlinks resolved), not the ids of the
// layers under /workspace and the home, not the sandbox's own directory. What it may show is
// what the sandbox sees anyway (/usr, a mount root "/" or the agent's file name) and
// /proc/self/fd/N, the descriptors the mounts were made with. With $SANDKIT_TEST_BWRAP_NEW the
// same holds for that bwrap.
func TestMountinfoHidesHostPaths(t *testing.T) {
	t.Parallel()
	bwraps := []string{""}
	if nb := os.Getenv("SANDKIT_TEST_BWRAP_NEW"); nb != "" {
		bwraps = append(bwraps, nb)
	}
	for _, bw := range bwraps {
		name := "bwrap from PATH"
		if bw != "" {
			name = bw
		}
		t.Run(name, func(t *testing.T) {
			p := newTestProvider(t, Options{Bwrap: bw})
			first := startSandbox(t, p, sandbox.StartOptions{})
			shOK(t, first, "echo a > a; echo h > ~/h")
			ref := snapshot(t, first).Ref
			second := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
			shOK(t, second, "echo b > b")
			ref = snapshot(t, second).Ref
			sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
			if got := shOK(t, sb, "cat a b ~/h"); got != "a\nb\nh" {
				t.Fatalf("the chain's files: %q", got)
			}
			mountinfo := shOK(t, sb, "cat /proc/self/mountinfo")

			secrets := []string{p.opts.Dir, sb.(*localSandbox).dir, filepath.Base(sb.(*localSandbox).dir), "../"}
			if real, err := filepath.EvalSymlinks(p.opts.Dir); err == nil {
				secrets = append(secrets, real)
			}
			layers, err := os.ReadDir(p.store.layers)
			if err != nil {
				t.Fatal(err)
			}
			var ids int
			for _, l := range layers {
				if l.IsDir() {
					secrets = append(secrets, l.Name())
					ids++
				}
			}
			if ids < 2 {
				t.Fatalf("%d layers in %s, want the chain's two", ids, p.store.layers)
			}
			for _, s := range secrets {
				if strings.Contains(mountinfo, s) {
					t.Errorf("the sandbox's /proc/self/mountinfo shows %q:\n%s", s, mountinfo)
				}
			}
			// The mounts are still there, and say nothing but descriptors.
			for _, target := range []string{" /workspace ", " " + p.opts.HomeDir + " ", " /etc ", " " + agentPath + " "} {
				var line string
				for _, l := range strings.Split(mountinfo, "\n") {
					if strings.Contains(l, target) {
						line = l
					}
				}
				if !strings.Contains(line, " - overlay overlay ") || !strings.Contains(line, "lowerdir=/proc/self/fd/") {
					t.Errorf("mount at%s: %q, want an overlay mounted by descriptor", target, line)
				}
			}
		})
	}
}
