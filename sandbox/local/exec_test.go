//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestExec(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Env: map[string]string{"FROM_START": "s", "OVERRIDE": "start"}})
	ctx := context.Background()

	t.Run("streams and exit code", func(t *testing.T) {
		o := sh(t, sb, "echo out; echo err >&2; exit 7")
		if o.res.ExitCode != 7 || o.stdout != "out\n" || o.stderr != "err\n" {
			t.Fatalf("got %+v", o)
		}
		if o.res.Duration <= 0 {
			t.Fatalf("duration %v", o.res.Duration)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		var out bytes.Buffer
		res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "wc", Args: []string{"-c"}, Stdin: bytes.Repeat([]byte("a"), 300000), Stdout: &out})
		if err != nil || res.ExitCode != 0 || strings.TrimSpace(out.String()) != "300000" {
			t.Fatalf("wc -c: %+v %v %q", res, err, out.String())
		}
	})
	t.Run("large output in order", func(t *testing.T) {
		var out bytes.Buffer
		res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "seq", Args: []string{"1", "200000"}, Stdout: &out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("seq: %+v %v", res, err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 200000 || lines[0] != "1" || lines[199999] != "200000" || lines[123456] != "123457" {
			t.Fatalf("seq output: %d lines", len(lines))
		}
	})
	t.Run("environment", func(t *testing.T) {
		var out bytes.Buffer
		_, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "echo $FROM_START $OVERRIDE $HOME $USER $LANG $PATH"}, Env: map[string]string{"OVERRIDE": "exec"}, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		want := "s exec /home/sandbox sandbox C.UTF-8 " + defaultPath
		if strings.TrimSpace(out.String()) != want {
			t.Fatalf("env: %q, want %q", out.String(), want)
		}
		_, err = sb.Exec(ctx, sandbox.ExecRequest{Command: "true", Env: map[string]string{"A=B": "x"}})
		if !errors.Is(err, sandbox.ErrInvalid) {
			t.Fatalf("bad env name: %v", err)
		}
	})
	t.Run("cwd", func(t *testing.T) {
		shOK(t, sb, "mkdir -p sub/dir")
		for cwd, want := range map[string]string{"": "/workspace", "sub/dir": "/workspace/sub/dir", "/tmp": "/tmp", "/workspace/sub": "/workspace/sub"} {
			var out bytes.Buffer
			res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "pwd", Cwd: cwd, Stdout: &out})
			if err != nil || res.ExitCode != 0 || strings.TrimSpace(out.String()) != want {
				t.Errorf("cwd %q: %q %+v %v", cwd, out.String(), res, err)
			}
		}
		var e bytes.Buffer
		res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "pwd", Cwd: "nope", Stderr: &e})
		if err != nil || res.ExitCode != 127 || !strings.Contains(e.String(), "/workspace/nope") {
			t.Fatalf("missing cwd: %+v %v %q", res, err, e.String())
		}
	})
	t.Run("cannot start", func(t *testing.T) {
		var e bytes.Buffer
		res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "no-such-program", Stderr: &e})
		if err != nil || res.ExitCode != 127 || !strings.Contains(e.String(), "no-such-program: command not found") {
			t.Fatalf("not found: %+v %v %q", res, err, e.String())
		}
		shOK(t, sb, "printf 'x' > notexec && chmod 644 notexec")
		e.Reset()
		res, err = sb.Exec(ctx, sandbox.ExecRequest{Command: "./notexec", Stderr: &e})
		if err != nil || res.ExitCode != 127 || !strings.Contains(e.String(), "permission denied") {
			t.Fatalf("not executable: %+v %v %q", res, err, e.String())
		}
		if _, err := sb.Exec(ctx, sandbox.ExecRequest{}); !errors.Is(err, sandbox.ErrInvalid) {
			t.Fatalf("empty command: %v", err)
		}
	})
	t.Run("signal exit code", func(t *testing.T) {
		o := sh(t, sb, "kill -TERM $$")
		if o.res.ExitCode != 128+15 {
			t.Fatalf("killed by SIGTERM: exit %d", o.res.ExitCode)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]string, 16)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out bytes.Buffer
				res, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", fmt.Sprintf("sleep 0.1; echo %d", i)}, Stdout: &out})
				if err != nil || res.ExitCode != 0 || strings.TrimSpace(out.String()) != fmt.Sprint(i) {
					errs[i] = fmt.Sprintf("%d: %+v %v %q", i, res, err, out.String())
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Error(e)
			}
		}
	})
}

func TestExecTimeoutKillsProcessTree(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	marker := "100.4242"
	t0 := time.Now()
	res, err := sb.Exec(context.Background(), sandbox.ExecRequest{
		Command: "sh", Args: []string{"-c", "sleep " + marker + " & sleep " + marker + "; echo never"},
		Timeout: 300 * time.Millisecond,
	})
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != -1 {
		t.Fatalf("result %+v, want TimedOut and exit -1", res)
	}
	if took > 3*time.Second {
		t.Fatalf("timed-out exec took %v", took)
	}
	waitNoHostProcs(t, marker, 2*time.Second)
	// The sandbox is still usable.
	if shOK(t, sb, "echo alive") != "alive" {
		t.Fatal("sandbox unusable after a timeout")
	}
}

func TestExecSetsidChildIsKilledOnTimeout(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	marker := "100.5151"
	res, err := sb.Exec(context.Background(), sandbox.ExecRequest{
		Command: "sh", Args: []string{"-c", "setsid sleep " + marker + " & sleep " + marker},
		Timeout: 300 * time.Millisecond,
	})
	if err != nil || !res.TimedOut {
		t.Fatalf("%+v %v", res, err)
	}
	waitNoHostProcs(t, marker, 2*time.Second)
}

func TestExecBackgroundProcessDoesNotHang(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	t0 := time.Now()
	o := sh(t, sb, "sleep 30 & echo started")
	if took := time.Since(t0); took > 3*time.Second {
		t.Fatalf("exec waited %v for a background process holding stdout", took)
	}
	if o.res.ExitCode != 0 || o.stdout != "started\n" {
		t.Fatalf("%+v", o)
	}
	// The background process keeps running in the sandbox.
	if out := shOK(t, sb, "pgrep -x sleep >/dev/null && echo yes"); out != "yes" {
		t.Fatalf("background sleep is gone: %q", out)
	}
}

func TestExecContextCancelKills(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	marker := "100.6363"
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "sleep " + marker + " & sleep " + marker}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Fatalf("cancelled exec took %v", took)
	}
	waitNoHostProcs(t, marker, 2*time.Second)
	if shOK(t, sb, "echo alive") != "alive" {
		t.Fatal("sandbox unusable after a cancel")
	}
}
