//go:build linux

package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Some tests need a provider in another process, to kill it: the test binary runs itself again
// with childProviderEnv holding a childSpec, and TestMain turns that process into a provider
// that starts one detached sandbox as told, prints a childReport line on stdout and waits to be
// killed.
const childProviderEnv = "SANDKIT_TEST_CHILD_PROVIDER"

type childSpec struct {
	Dir      string            `json:"dir"`
	Lifetime time.Duration     `json:"lifetime"`
	Files    map[string]string `json:"files"`
	// Procs are shell scripts started as background processes, in order.
	Procs []string `json:"procs"`
}

type childReport struct {
	ID       string   `json:"id"`
	Procs    []string `json:"procs"`
	AgentPid int      `json:"agent_pid"`
	OuterPid int      `json:"outer_pid"`
	Err      string   `json:"err,omitempty"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childProviderEnv); spec != "" {
		runChildProvider(spec)
		return
	}
	os.Exit(m.Run())
}

func runChildProvider(specJSON string) {
	report := func(r childReport) {
		_ = json.NewEncoder(os.Stdout).Encode(r)
	}
	fail := func(err error) {
		report(childReport{Err: err.Error()})
		os.Exit(1)
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fail(err)
	}
	p, err := New(Options{Dir: spec.Dir})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	sb, err := p.Start(ctx, sandbox.StartOptions{Detached: true, Lifetime: spec.Lifetime, Label: "child"})
	if err != nil {
		fail(err)
	}
	var files []sandbox.File
	for name, content := range spec.Files {
		files = append(files, sandbox.File{Path: name, Content: []byte(content)})
	}
	if err := sb.WriteFiles(ctx, files); err != nil {
		fail(err)
	}
	r := childReport{ID: sb.ID(), AgentPid: sb.(*localSandbox).childPid, OuterPid: sb.(*localSandbox).outerPid}
	for _, script := range spec.Procs {
		id, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}})
		if err != nil {
			fail(err)
		}
		r.Procs = append(r.Procs, id)
	}
	report(r)
	select {} // until killed
}

// childProvider runs a provider in a child process that starts a detached sandbox per spec, and
// returns what it reported and the running child. The child is SIGKILLed at cleanup at the
// latest.
func childProvider(t *testing.T, spec childSpec) (childReport, *exec.Cmd) {
	t.Helper()
	b, _ := json.Marshal(spec)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childProviderEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var r childReport
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatal("the child provider exited without a report")
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("child provider report %q: %v", l, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no report from the child provider within 60s")
	}
	if r.Err != "" {
		t.Fatalf("child provider: %s", r.Err)
	}
	return r, cmd
}

// killChild SIGKILLs the child provider and waits until it is gone.
func killChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child provider did not die of SIGKILL: %v", err)
	}
}

// alive reports whether pid is a living process.
func alive(pid int) bool { return procStartTime(pid) != 0 }

// waitGone waits up to d for pid to exit.
func waitGone(t *testing.T, pid int, d time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for alive(pid) {
		if time.Since(t0) > d {
			t.Fatalf("process %d still runs after %s", pid, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}

func (r childReport) String() string {
	return fmt.Sprintf("sandbox %s (agent pid %d, bwrap pid %d, processes %v)", r.ID, r.AgentPid, r.OuterPid, r.Procs)
}
