package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/internal/testutil"
)

// The daemon and its doors: one engine per data dir, shared by every stdio door.

// daemonFile is the daemon's pidfile, as the tests read it.
type daemonFile struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
	Socket  string `json:"socket"`
	HTTP    string `json:"http"`
	Preview string `json:"preview"`
}

func readDaemonFile(t testing.TB, dir string) daemonFile {
	t.Helper()
	var d daemonFile
	b, err := os.ReadFile(filepath.Join(dir, "daemon.json"))
	if err != nil {
		t.Fatalf("daemon pidfile: %v", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("daemon pidfile: %v", err)
	}
	return d
}

// daemonsOf lists the live `serve` processes for a data dir (zombies excluded).
func daemonsOf(t testing.TB, dir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) < 4 || args[1] != "serve" || !containsPair(args, "--data-dir", dir) {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s := string(st)
			if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

func containsPair(args []string, k, v string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == k && args[i+1] == v {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// served is a `sandkit-mcp serve` child process.
type served struct {
	cmd    *exec.Cmd
	info   daemonFile
	stderr *testutil.SyncBuffer
	done   chan struct{}
}

// startServe runs `sandkit-mcp serve --data-dir dir args…` and waits until it serves (its
// pidfile names it). It is stopped (SIGTERM) when the test ends.
func startServe(t testing.TB, dir string, env []string, args ...string) *served {
	t.Helper()
	return startServeOf(t, binary(t), dir, env, args...)
}

// startServeOf is startServe with another build of the binary.
func startServeOf(t testing.TB, bin, dir string, env []string, args ...string) *served {
	t.Helper()
	s := &served{stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--data-dir", dir, "--log-level", "warn"}, args...)...)
	s.cmd.Stderr = s.stderr
	s.cmd.Env = append(os.Environ(), env...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "daemon.json"))
		if err == nil && json.Unmarshal(b, &s.info) == nil && s.info.PID == s.cmd.Process.Pid {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited at start-up: %v\n%s", s.cmd.ProcessState, s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start within 30s\n%s", s.stderr)
		}
	}
}

// stop ends the daemon gracefully and waits for it.
func (s *served) stop(t testing.TB) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("serve did not stop within 30s of SIGTERM\n%s", s.stderr)
	}
}

// exited reports whether the serve process has ended.
func (s *served) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func TestTwoDoorsStartedAtOnceShareOneDaemon(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	var wg sync.WaitGroup
	clients := make([]*client, 2)
	errs := make([]error, 2)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cl := newClient(t, fmt.Sprintf("door-%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: doorCommand(t, dir)}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
			if err == nil {
				t.Cleanup(func() { cs.Close() })
				err = c.use(cs)
			}
			clients[i], errs[i] = c, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("door %d: %v", i, err)
		}
	}
	a, b := clients[0], clients[1]
	a.ok("create_workspace", map[string]any{"name": "shared"})
	a.ok("write_files", map[string]any{"workspace": "shared", "files": []any{map[string]any{"path": "from-a.txt", "content": "A wrote this\n"}}})
	r := b.ok("run_command", map[string]any{"workspace": "shared", "command": "cat", "args": []any{"from-a.txt"}})
	if r["stdout"] != "A wrote this\n" {
		t.Fatalf("door B does not see door A's write: %v", r)
	}
	pids := daemonsOf(t, dir)
	if len(pids) != 1 {
		t.Fatalf("expected exactly one daemon for the data dir, found %v", pids)
	}
	if info := readDaemonFile(t, dir); info.PID != pids[0] {
		t.Fatalf("pidfile names %d, the daemon is %d", info.PID, pids[0])
	}
	if fi, err := os.Stat(filepath.Join(dir, "sandkit.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v (want mode 0600)", fi.Mode(), err)
	}
}

func TestSecondServeFailsAtOnce(t *testing.T) {
	dir := dataDir(t)
	c := connect(t, dir)
	c.ok("list_workspaces", map[string]any{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, binary(t), "serve", "--data-dir", dir).CombinedOutput()
	if err == nil {
		t.Fatal("a second serve on a data dir already served must fail")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the second serve took %v to fail; it must fail at once", took)
	}
	pid := readDaemonFile(t, dir).PID
	for _, want := range []string{"already served", fmt.Sprintf("pid %d", pid), "sandkit-mcp stop"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("unclear error (no %q): %s", want, out)
		}
	}
	// The running daemon is unharmed.
	c.ok("list_workspaces", map[string]any{})
}

func TestDoorWhoseDaemonDiesSaysSo(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	var stderr testutil.SyncBuffer
	cmd := doorCommand(t, dir)
	cmd.Stderr = &stderr
	a := connectVia(t, "victim", &mcp.CommandTransport{Command: cmd})
	a.ok("create_workspace", map[string]any{"name": "kept"})
	pid := readDaemonFile(t, dir).PID
	killDaemon(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_workspaces", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call through a door whose daemon died must fail")
	}
	a.cs.Close()
	if !strings.Contains(stderr.String(), "lost the connection to the sandkit-mcp daemon") {
		t.Fatalf("the door did not say what happened on stderr: %q", stderr.String())
	}
	// A new door starts a new daemon over the stale socket; the workspace is still there.
	b := connect(t, dir)
	w := b.ok("get_workspace", map[string]any{"workspace": "kept"})
	if w["name"] != "kept" {
		t.Fatalf("get_workspace after restart: %v", w)
	}
	if info := readDaemonFile(t, dir); info.PID == pid {
		t.Fatal("the pidfile still names the dead daemon")
	}
}

func TestIdleExit(t *testing.T) {
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--idle-exit", "1s")
	c := connect(t, dir)
	c.ok("list_workspaces", map[string]any{})
	time.Sleep(2 * time.Second)
	if s.exited() {
		t.Fatal("the daemon exited while a door was connected")
	}
	c.cs.Close()
	waitFor(t, 15*time.Second, "the idle daemon to exit", s.exited)
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("idle exit status %d\n%s", code, s.stderr)
	}
	for _, f := range []string{"daemon.json", "sandkit.sock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind after a clean exit (%v)", f, err)
		}
	}
}

func TestStopWithoutDaemon(t *testing.T) {
	out, err := exec.Command(binary(t), "stop", "--data-dir", t.TempDir()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "no sandkit-mcp daemon is running") {
		t.Fatalf("stop without a daemon: %v %s", err, out)
	}
}

func TestLongDataDirPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(dataDir(t), strings.Repeat("a-long-directory-name/", 6))
	t.Cleanup(func() { stopDaemonOf(t, dir) })
	if len(filepath.Join(dir, "sandkit.sock")) <= 108 {
		t.Fatalf("path not long enough to test: %d", len(dir))
	}
	c := connect(t, dir)
	c.ok("create_workspace", map[string]any{"name": "deep"})
}

func TestDoorReconnectsWhenTheDaemonNeverAnswered(t *testing.T) {
	dir := dataDir(t)
	// A "daemon" that dies right after accepting: it takes the door's first connection, closes
	// it without a word, and goes away.
	ln, err := net.Listen("unix", filepath.Join(dir, "sandkit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(200 * time.Millisecond) // the client's initialize is on its way
			c.Close()
		}
		ln.Close()
		close(accepted)
	}()
	c := connect(t, dir)
	<-accepted
	c.ok("create_workspace", map[string]any{"name": "replayed"})
	if pids := daemonsOf(t, dir); len(pids) != 1 {
		t.Fatalf("want one real daemon after the reconnect, found %v", pids)
	}
}
