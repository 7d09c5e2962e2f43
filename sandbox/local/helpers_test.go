//go:build linux

package local

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Tests use the real bwrap. It is a hard requirement: without it the provider is not tested.
func requireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Fatal("bwrap (bubblewrap) is required by these tests: apt-get install -y bubblewrap")
	}
}

func newTestProvider(t testing.TB, opts Options) *Provider {
	t.Helper()
	requireBwrap(t)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close provider: %v", err)
		}
	})
	return p
}

func startSandbox(t testing.TB, p *Provider, opts sandbox.StartOptions) sandbox.Sandbox {
	t.Helper()
	sb, err := p.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

type execOut struct {
	stdout, stderr string
	res            sandbox.ExecResult
}

// sh runs a shell script in the sandbox and fails the test if Exec itself fails.
func sh(t testing.TB, sb sandbox.Sandbox, script string) execOut {
	t.Helper()
	var o, e bytes.Buffer
	res, err := sb.Exec(context.Background(), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}, Stdout: &o, Stderr: &e, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	return execOut{o.String(), e.String(), res}
}

// shOK runs a script that must exit 0 and returns its trimmed stdout.
func shOK(t testing.TB, sb sandbox.Sandbox, script string) string {
	t.Helper()
	o := sh(t, sb, script)
	if o.res.ExitCode != 0 {
		t.Fatalf("%q exited %d: stdout %q stderr %q", script, o.res.ExitCode, o.stdout, o.stderr)
	}
	return strings.TrimSpace(o.stdout)
}

func snapshot(t testing.TB, sb sandbox.Sandbox) sandbox.SnapshotInfo {
	t.Helper()
	info := snapshotAllowUnchanged(t, sb)
	if info.Unchanged {
		t.Fatalf("snapshot: the sandbox changed nothing, so there is no snapshot: %+v", info)
	}
	return info
}

// snapshotAllowUnchanged snapshots sb, which may have changed nothing (then there is no ref).
func snapshotAllowUnchanged(t testing.TB, sb sandbox.Sandbox) sandbox.SnapshotInfo {
	t.Helper()
	info, err := sb.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return info
}

// hostProcsWith lists host processes whose command line contains marker.
func hostProcsWith(marker string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cl, marker) {
			out = append(out, e.Name()+": "+cl)
		}
	}
	return out
}

// waitNoHostProcs waits up to d for every host process containing marker to be gone.
func waitNoHostProcs(t testing.TB, marker string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := hostProcsWith(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still running on the host: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
