//go:build linux

package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// TestDetachedSurvivesProviderKill: a provider in another process starts a detached sandbox with
// a file, an HTTP server and two background processes, and is SIGKILLed. The sandbox runs on; a
// new provider on the same directory lists it, reconnects, and everything works: processes and
// their logs, exec, ports, Extend, and a Snapshot that keeps the files.
func TestDetachedSurvivesProviderKill(t *testing.T) {
	requireBwrap(t)
	dir := t.TempDir()
	const port = 18765
	r, child := childProvider(t, childSpec{
		Dir:      dir,
		Lifetime: 10 * time.Minute,
		Files:    map[string]string{"kept.txt": "written before the crash\n"},
		Procs: []string{
			"echo started; exec sleep 1000.4711",
			"exec python3 -m http.server " + strconv.Itoa(port) + " --bind 127.0.0.1",
		},
	})
	t.Logf("child provider started %s", r)
	killChild(t, child)
	time.Sleep(100 * time.Millisecond)
	if !alive(r.AgentPid) {
		t.Fatalf("the sandbox's agent (pid %d) died with the provider", r.AgentPid)
	}
	if len(hostProcsWith("1000.4711")) == 0 {
		t.Fatal("the background sleep died with the provider")
	}

	p := newTestProvider(t, Options{Dir: dir})
	ctx := context.Background()
	ids, err := p.Sandboxes(ctx)
	if err != nil || len(ids) != 1 || ids[0] != r.ID {
		t.Fatalf("Sandboxes after the restart = %v, %v; want [%s]", ids, err, r.ID)
	}
	sb, err := p.Reconnect(ctx, r.ID)
	if err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	if again, err := p.Reconnect(ctx, r.ID); err != nil || again != sb {
		t.Fatalf("second Reconnect: %v, %v; want the same handle", again, err)
	}
	if d := time.Until(sb.Deadline()); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("Deadline after the restart is in %s, want about 10m", d)
	}
	if got := shOK(t, sb, "cat kept.txt; echo $HOME"); got != "written before the crash\n/home/sandbox" {
		t.Fatalf("exec after the restart: %q", got)
	}

	st, err := sb.Process(ctx, r.Procs[0], 0, 0)
	if err != nil || !st.Running || string(st.Output) != "started\n" || st.Command != "sh" {
		t.Fatalf("the first process after the restart: %+v %v", st, err)
	}

	client := sandboxHTTPClient(sb)
	body := waitHTTP(t, client, fmt.Sprintf("http://sandbox:%d/kept.txt", port), 20*time.Second)
	if body != "written before the crash\n" {
		t.Fatalf("GET /kept.txt through DialPort = %q", body)
	}

	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := sb.Extend(ctx, until); err != nil {
		t.Fatal(err)
	}
	if m, err := readMeta(filepath.Join(dir, "sandboxes", r.ID)); err != nil || !m.Deadline.Equal(until) {
		t.Fatalf("meta.json after Extend: deadline %v (%v), want %v", m.Deadline, err, until)
	}

	if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "after.txt", Content: []byte("after\n")}}); err != nil {
		t.Fatal(err)
	}
	info := snapshot(t, sb)
	if alive(r.AgentPid) || alive(r.OuterPid) {
		t.Fatalf("sandbox processes left after Snapshot (agent %v, bwrap %v)", alive(r.AgentPid), alive(r.OuterPid))
	}
	waitNoHostProcs(t, "1000.4711", 2*time.Second)
	if ids, _ := p.Sandboxes(ctx); len(ids) != 0 {
		t.Fatalf("Sandboxes after Snapshot: %v", ids)
	}
	if _, err := p.Reconnect(ctx, r.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Reconnect after Snapshot: %v, want ErrNotFound", err)
	}
	sb2 := startSandbox(t, p, sandbox.StartOptions{Snapshot: info.Ref})
	if got := shOK(t, sb2, "cat kept.txt after.txt"); got != "written before the crash\nafter" {
		t.Fatalf("snapshot of the reconnected sandbox: %q", got)
	}
}

// TestDeadlineEndsDetachedSandboxAlone: with no provider running at all, a detached sandbox ends
// itself at its deadline, and the next provider cleans up after it.
func TestDeadlineEndsDetachedSandboxAlone(t *testing.T) {
	requireBwrap(t)
	dir := t.TempDir()
	const lifetime = 1500 * time.Millisecond
	r, child := childProvider(t, childSpec{Dir: dir, Lifetime: lifetime, Procs: []string{"exec sleep 1000.4712"}})
	started := time.Now()
	killChild(t, child)
	if !alive(r.AgentPid) {
		t.Fatal("the sandbox died with its provider")
	}
	waitGone(t, r.AgentPid, 10*time.Second)
	if took := time.Since(started); took > lifetime+3*time.Second {
		t.Fatalf("the sandbox ended %s after its start, its lifetime was %s", took, lifetime)
	}
	waitGone(t, r.OuterPid, 5*time.Second)
	waitNoHostProcs(t, "1000.4712", 2*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "sandboxes", r.ID)); err != nil {
		t.Fatalf("the sandbox directory should still be there for the next provider: %v", err)
	}
	p := newTestProvider(t, Options{Dir: dir})
	if ids, _ := p.Sandboxes(context.Background()); len(ids) != 0 {
		t.Fatalf("Sandboxes: %v, want none", ids)
	}
	if _, err := p.Reconnect(context.Background(), r.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Reconnect: %v, want ErrNotFound", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "sandboxes")); len(ents) != 0 {
		t.Fatalf("leftovers: %v", ents)
	}
}

// TestNewKeepsLiveRemovesDead: New adopts live detached sandboxes and removes durable ones and
// dead ones, and stops live ones started by another version (agent protocol); Close leaves
// detached sandboxes running (their handles stop working).
func TestNewKeepsLiveRemovesDead(t *testing.T) {
	requireBwrap(t)
	dir := t.TempDir()
	p1, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	live := startSandbox(t, p1, sandbox.StartOptions{Detached: true})
	dead := startSandbox(t, p1, sandbox.StartOptions{Detached: true})
	old := startSandbox(t, p1, sandbox.StartOptions{Detached: true})
	durable := startSandbox(t, p1, sandbox.StartOptions{})
	shOK(t, live, "echo live > f")
	deadAgent := dead.(*localSandbox).childPid
	oldAgent := old.(*localSandbox).childPid
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	// One looks as if an older version of the provider had started it.
	m, err := readMeta(old.(*localSandbox).dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Protocol = "sandkit-agent-protocol/1"
	if err := writeMeta(old.(*localSandbox).dir, m); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Exec(ctx, sandbox.ExecRequest{Command: "true"}); !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "Reconnect") {
		t.Fatalf("Exec on a detached sandbox's handle after Close: %v", err)
	}
	if _, err := durable.Exec(ctx, sandbox.ExecRequest{Command: "true"}); !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("Exec on a durable sandbox after Close: %v", err)
	}
	// One detached sandbox dies while no provider runs.
	if err := syscall.Kill(deadAgent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, deadAgent, 5*time.Second)

	p2 := newTestProvider(t, Options{Dir: dir})
	ids, _ := p2.Sandboxes(ctx)
	if len(ids) != 1 || ids[0] != live.ID() {
		t.Fatalf("Sandboxes = %v, want [%s]", ids, live.ID())
	}
	if alive(oldAgent) {
		t.Fatal("a live sandbox of another agent protocol was kept running")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "sandboxes"))
	if len(ents) != 1 || ents[0].Name() != live.ID() {
		t.Fatalf("sandbox directories: %v, want only %s", ents, live.ID())
	}
	sb, err := p2.Reconnect(ctx, live.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got := shOK(t, sb, "cat f"); got != "live" {
		t.Fatalf("reconnected: %q", got)
	}
	for _, id := range []string{dead.ID(), old.ID(), durable.ID(), "0123456789abcdef", "../etc"} {
		if _, err := p2.Reconnect(ctx, id); !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Reconnect(%q): %v, want ErrNotFound", id, err)
		}
	}
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sandboxes", live.ID())); !os.IsNotExist(err) {
		t.Fatalf("directory of a stopped reconnected sandbox: %v", err)
	}
}

func TestExtend(t *testing.T) {
	p := newTestProvider(t, Options{})
	ctx := context.Background()
	sb := startSandbox(t, p, sandbox.StartOptions{Detached: true, Lifetime: time.Second})
	ls := sb.(*localSandbox)
	if d := time.Until(sb.Deadline()); d <= 0 || d > time.Second {
		t.Fatalf("Deadline in %s, want within 1s", d)
	}
	if err := sb.Extend(ctx, time.Now().Add(-time.Second)); !errors.Is(err, sandbox.ErrInvalid) {
		t.Fatalf("Extend into the past: %v", err)
	}
	later := time.Now().Add(4 * time.Second)
	if err := sb.Extend(ctx, later); err != nil {
		t.Fatal(err)
	}
	if !sb.Deadline().Equal(later) {
		t.Fatalf("Deadline = %v, want %v", sb.Deadline(), later)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := shOK(t, sb, "echo alive"); got != "alive" {
		t.Fatal("the sandbox ended at its old deadline")
	}
	if m, err := readMeta(ls.dir); err != nil || !m.Deadline.Equal(later) {
		t.Fatalf("meta.json deadline %v (%v), want %v", m.Deadline, err, later)
	}
	// Earlier: the agent ends the sandbox even if the provider's own timer did not exist.
	ls.mu.Lock()
	ls.timer.Stop()
	ls.mu.Unlock()
	sooner := time.Now().Add(300 * time.Millisecond)
	if err := sb.Extend(ctx, sooner); err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	ls.timer.Stop()
	ls.mu.Unlock()
	select {
	case <-ls.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the sandbox outlived its shortened deadline")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ls.checkRunning() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := sb.Exec(ctx, sandbox.ExecRequest{Command: "true"})
	if !errors.Is(err, sandbox.ErrEnded) || !strings.Contains(err.Error(), "lifetime") {
		t.Fatalf("Exec after the deadline: %v", err)
	}
	if err := sb.Extend(ctx, time.Now().Add(time.Hour)); !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("Extend of an ended sandbox: %v", err)
	}
}

func TestBackgroundLogs(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Detached: true})
	ctx := context.Background()
	start := func(script string) string {
		t.Helper()
		id, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	t.Run("ring buffer keeps the last MaxProcessLog bytes", func(t *testing.T) {
		id := start("seq 1 400000")
		var full bytes.Buffer
		for i := 1; i <= 400000; i++ {
			fmt.Fprintf(&full, "%d\n", i)
		}
		st, err := sb.Process(ctx, id, 0, 0)
		for err == nil && st.Running {
			st, err = sb.Process(ctx, id, st.Next, 10*time.Second)
		}
		if err != nil {
			t.Fatal(err)
		}
		st, err = sb.Process(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		total := int64(full.Len())
		if st.Next != total || len(st.Output) != sandbox.MaxProcessLog || st.Offset != total-sandbox.MaxProcessLog || st.Dropped != st.Offset {
			t.Fatalf("after %d bytes: offset %d, dropped %d, %d bytes kept, next %d", total, st.Offset, st.Dropped, len(st.Output), st.Next)
		}
		if !bytes.Equal(st.Output, full.Bytes()[st.Offset:]) {
			t.Fatal("the kept output is not the end of what the process wrote")
		}
		if st.ExitCode == nil || *st.ExitCode != 0 || st.Ended.Before(st.Started) {
			t.Fatalf("status: %+v", st)
		}
		// Reading from inside the kept window drops nothing; reading from its end returns nothing.
		mid, err := sb.Process(ctx, id, total-10, 0)
		if err != nil || mid.Dropped != 0 || mid.Offset != total-10 || !bytes.Equal(mid.Output, full.Bytes()[total-10:]) {
			t.Fatalf("read from %d: %+v %v", total-10, mid, err)
		}
		end, err := sb.Process(ctx, id, total, 0)
		if err != nil || len(end.Output) != 0 || end.Next != total {
			t.Fatalf("read from the end: %+v %v", end, err)
		}
		if _, err := sb.Process(ctx, id, total+1, 0); !errors.Is(err, sandbox.ErrInvalid) {
			t.Fatalf("read past the end: %v", err)
		}
	})

	t.Run("wait returns early on output and on exit", func(t *testing.T) {
		id := start("sleep 0.4; echo hi; sleep 30")
		t0 := time.Now()
		st, err := sb.Process(ctx, id, 0, 20*time.Second)
		took := time.Since(t0)
		if err != nil || string(st.Output) != "hi\n" || !st.Running || st.ExitCode != nil {
			t.Fatalf("first wait: %+v %v", st, err)
		}
		if took < 300*time.Millisecond || took > 5*time.Second {
			t.Fatalf("the wait for output took %s, want about 0.4s", took)
		}
		t0 = time.Now()
		st2, err := sb.Process(ctx, id, st.Next, 300*time.Millisecond)
		if took := time.Since(t0); err != nil || len(st2.Output) != 0 || st2.Next != st.Next || took < 250*time.Millisecond {
			t.Fatalf("wait without news: %+v %v after %s", st2, err, took)
		}
		ex := start("sleep 0.3; exit 4")
		t0 = time.Now()
		st3, err := sb.Process(ctx, ex, 0, 20*time.Second)
		if took := time.Since(t0); err != nil || st3.Running || st3.ExitCode == nil || *st3.ExitCode != 4 || took > 5*time.Second {
			t.Fatalf("wait for the exit: %+v %v after %s", st3, err, took)
		}
		// A cancelled wait returns at once.
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		t0 = time.Now()
		if _, err := sb.Process(cctx, id, st.Next, 20*time.Second); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 3*time.Second {
			t.Fatalf("cancelled wait: %v after %s", err, time.Since(t0))
		}
	})

	t.Run("offsets never go backwards", func(t *testing.T) {
		id := start("for i in $(seq 1 50); do echo line $i; sleep 0.01; done")
		var next int64
		var out strings.Builder
		for {
			st, err := sb.Process(ctx, id, next, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if st.Offset != next || st.Next < next || st.Dropped != 0 {
				t.Fatalf("asked from %d, got offset %d next %d dropped %d", next, st.Offset, st.Next, st.Dropped)
			}
			out.Write(st.Output)
			next = st.Next
			if !st.Running {
				break
			}
		}
		if n := strings.Count(out.String(), "\n"); n != 50 || !strings.HasSuffix(out.String(), "line 50\n") {
			t.Fatalf("followed output: %d lines, %q", n, out.String())
		}
	})

	t.Run("stdout and stderr interleaved, exit codes like Exec", func(t *testing.T) {
		id := start("echo out; echo err >&2; kill -TERM $$")
		st := waitProcessExit(t, sb, id)
		if string(st.Output) != "out\nerr\n" || *st.ExitCode != 128+int(syscall.SIGTERM) {
			t.Fatalf("%q exit %d", st.Output, *st.ExitCode)
		}
		id, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "no-such-program"})
		if err != nil {
			t.Fatal(err)
		}
		st = waitProcessExit(t, sb, id)
		if *st.ExitCode != 127 || !strings.Contains(string(st.Output), "no-such-program: command not found") {
			t.Fatalf("not found: %q exit %d", st.Output, *st.ExitCode)
		}
	})

	t.Run("unknown ids", func(t *testing.T) {
		if _, err := sb.Process(ctx, "p999", 0, 0); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("Process: %v", err)
		}
		if err := sb.Signal(ctx, "nope", syscall.SIGTERM); !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("Signal: %v", err)
		}
	})
}

func waitProcessExit(t *testing.T, sb sandbox.Sandbox, id string) sandbox.ProcessStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := sb.Process(context.Background(), id, 0, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s still runs", id)
		}
	}
}

// TestSignalKillsProcessGroup: Signal reaches every process of the background process's group,
// also after its leader exited.
func TestSignalKillsProcessGroup(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Detached: true})
	ctx := context.Background()
	id, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "sleep 1000.5151 & sleep 1000.5152 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	waitHostProcs(t, 2, "1000.515")
	if err := sb.Signal(ctx, id, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNoHostProcs(t, "1000.515", 3*time.Second)
	if st := waitProcessExit(t, sb, id); *st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d", *st.ExitCode)
	}
	if err := sb.Signal(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatalf("Signal after the exit: %v", err)
	}

	// The leader exits at once; the group lives on in its background child.
	orphan, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "sleep 1000.5153 >/dev/null 2>&1 &"}})
	if err != nil {
		t.Fatal(err)
	}
	waitProcessExit(t, sb, orphan)
	waitHostProcs(t, 1, "1000.5153")
	if err := sb.Signal(ctx, orphan, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitNoHostProcs(t, "1000.5153", 3*time.Second)
	if err := sb.Signal(ctx, orphan, syscall.Signal(99)); !errors.Is(err, sandbox.ErrInvalid) {
		t.Fatalf("Signal 99: %v", err)
	}
}

func waitHostProcs(t *testing.T, n int, marker string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(hostProcsWith(marker)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("want %d processes with %q, have %v", n, marker, hostProcsWith(marker))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sandboxHTTPClient is an HTTP client whose connections go to the sandbox through DialPort.
func sandboxHTTPClient(sb sandbox.Sandbox) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				n, err := strconv.Atoi(port)
				if err != nil {
					return nil, err
				}
				return sb.DialPort(ctx, n)
			},
		},
	}
}

// waitHTTP GETs url until the server answers 200 (it may still be starting).
func waitHTTP(t *testing.T, c *http.Client, url string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = fmt.Errorf("status %s, %v", resp.Status, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		if !errors.Is(err, sandbox.ErrRefused) {
			t.Logf("GET %s: %v (retrying)", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsServer is a tiny WebSocket echo server (RFC 6455, unfragmented text frames) in Python's
// standard library, for the port relay test.
const wsServer = `
import base64, hashlib, socketserver, struct
class H(socketserver.StreamRequestHandler):
    def handle(self):
        key = None
        while True:
            line = self.rfile.readline().decode().strip()
            if not line: break
            k, _, v = line.partition(":")
            if k.lower() == "sec-websocket-key": key = v.strip()
        acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
        while True:
            h = self.rfile.read(2)
            if len(h) < 2: return
            op, n = h[0] & 15, h[1] & 127
            if n == 126: n = struct.unpack(">H", self.rfile.read(2))[0]
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if op == 8: return
            out = b"echo: " + data
            hdr = bytes([0x81, len(out)]) if len(out) < 126 else bytes([0x81, 126]) + struct.pack(">H", len(out))
            self.wfile.write(hdr + out)
socketserver.TCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", 18766), H).serve_forever()
`

func TestDialPort(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{Detached: true})
	ctx := context.Background()

	t.Run("refused", func(t *testing.T) {
		_, err := sb.DialPort(ctx, 9)
		if !errors.Is(err, sandbox.ErrRefused) || !strings.Contains(err.Error(), "port 9") {
			t.Fatalf("DialPort(9) with nothing listening: %v", err)
		}
		if _, err := sb.DialPort(ctx, 70000); !errors.Is(err, sandbox.ErrInvalid) {
			t.Fatalf("DialPort(70000): %v", err)
		}
	})

	t.Run("HTTP", func(t *testing.T) {
		if err := sb.WriteFiles(ctx, []sandbox.File{{Path: "www/index.html", Content: []byte("<h1>hello from the sandbox</h1>\n")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "python3", Args: []string{"-m", "http.server", "18764", "--bind", "127.0.0.1"}, Cwd: "www"}); err != nil {
			t.Fatal(err)
		}
		client := sandboxHTTPClient(sb)
		if got := waitHTTP(t, client, "http://sandbox:18764/", 20*time.Second); got != "<h1>hello from the sandbox</h1>\n" {
			t.Fatalf("GET /: %q", got)
		}
		// Several requests at once.
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				resp, err := client.Get("http://sandbox:18764/index.html")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		if _, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "python3", Args: []string{"-c", wsServer}}); err != nil {
			t.Fatal(err)
		}
		var c net.Conn
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			if c, err = sb.DialPort(ctx, 18766); err == nil {
				break
			}
			if !errors.Is(err, sandbox.ErrRefused) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		key := base64.StdEncoding.EncodeToString([]byte("sandkit-ws-test!"))
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: sandbox\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
		}
		for _, msg := range []string{"hello", strings.Repeat("x", 300)} {
			if _, err := c.Write(wsFrame([]byte(msg))); err != nil {
				t.Fatal(err)
			}
			got, err := readWSFrame(br)
			if err != nil || got != "echo: "+msg {
				t.Fatalf("echo of %d bytes: %q %v", len(msg), clip(got), err)
			}
		}
	})

	t.Run("half-close", func(t *testing.T) {
		// The server reads until EOF, then answers: the half-close must reach it, and its
		// answer must still come back.
		if _, err := sb.StartProcess(ctx, sandbox.ExecRequest{Command: "python3", Args: []string{"-c", `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 18767)); s.listen()
while True:
    c, _ = s.accept()
    data = b""
    while True:
        b = c.recv(65536)
        if not b: break
        data += b
    c.sendall(b"got %d bytes" % len(data)); c.close()
`}}); err != nil {
			t.Fatal(err)
		}
		var c net.Conn
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			if c, err = sb.DialPort(ctx, 18767); err == nil {
				break
			}
			if !errors.Is(err, sandbox.ErrRefused) || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		defer c.Close()
		payload := bytes.Repeat([]byte("0123456789"), 100000)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "got 1000000 bytes" {
			t.Fatalf("after half-close: %q %v", got, err)
		}
	})
}

func wsFrame(payload []byte) []byte {
	mask := []byte{1, 2, 3, 4}
	var b []byte
	if len(payload) < 126 {
		b = []byte{0x81, 0x80 | byte(len(payload))}
	} else {
		b = []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload))}
	}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

func readWSFrame(r *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	n := int(h[1] & 127)
	if n == 126 {
		var e [2]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return "", err
		}
		n = int(e[0])<<8 | int(e[1])
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return string(b), err
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

var builtAgent atomic.Pointer[[]byte]

// freshAgent builds cmd/sandkit-agent from this source tree exactly as go generate does, once
// per test binary.
func freshAgent(t testing.TB) []byte {
	t.Helper()
	if b := builtAgent.Load(); b != nil {
		return *b
	}
	out := filepath.Join(t.TempDir(), "sandkit-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/sandkit/sandkit-mcp/cmd/sandkit-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the agent (the go command is needed to test the static agent): %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	builtAgent.Store(&b)
	return b
}

// TestEmbeddedAgentIsCurrent: the agent embedded from agentbin/ must be what the agent source
// builds to now; otherwise sandboxes would run an old agent.
func TestEmbeddedAgentIsCurrent(t *testing.T) {
	t.Parallel()
	embedded, why := embeddedOnce()
	fresh := freshAgent(t)
	if embedded == nil {
		if _, err := agentFiles.ReadFile(embeddedAgentName); err == nil {
			t.Fatalf("an agent binary is embedded but unusable: %s", why)
		}
		t.Logf("no agent embedded (%s): the provider falls back to re-exec; TestAgentKinds tests the static agent built from source", why)
		return
	}
	if !bytes.Equal(embedded, fresh) {
		t.Fatalf("the embedded agent (%d bytes) differs from a fresh build of cmd/sandkit-agent (%d bytes): it is stale; run `go generate ./sandbox/local`", len(embedded), len(fresh))
	}
}

// TestAgentKinds runs the same checks with the static agent (built from this source) and the
// re-exec fallback: the agent is PID 1 and reaps orphans, exec, background processes and ports
// work, durable and detached; and it logs the idle memory of a live sandbox.
func TestAgentKinds(t *testing.T) {
	for _, kind := range []string{agentStatic, agentReexec} {
		t.Run(kind, func(t *testing.T) {
			opts := Options{}
			if kind == agentStatic {
				opts.agent.binary = freshAgent(t)
			} else {
				opts.agent.reexec = true
			}
			p := newTestProvider(t, opts)
			if p.agent.kind != kind {
				t.Fatalf("provider agent %q, want %q", p.agent.kind, kind)
			}
			// The helpers (here the warm pool's spares) run the same executable: the small
			// static agent, or this one.
			wantExe := p.agent.path
			if kind == agentReexec {
				var err error
				if wantExe, err = os.Executable(); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range readySpares(t, p) {
				if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.cmd.Process.Pid)); err != nil || got != wantExe {
					t.Fatalf("a spare helper runs %q (%v), want %q", got, err, wantExe)
				}
			}
			for _, detached := range []bool{false, true} {
				sb := startSandbox(t, p, sandbox.StartOptions{Detached: detached})
				if got := shOK(t, sb, "tr '\\0' ' ' < /proc/1/cmdline"); !strings.HasPrefix(got, agentPath+" ") {
					t.Fatalf("PID 1 is %q, want the agent", got)
				}
				size, _ := strconv.ParseInt(shOK(t, sb, "stat -c %s "+agentPath), 10, 64)
				want := int64(len(freshAgent(t)))
				if kind == agentReexec {
					fi, err := os.Stat("/proc/self/exe")
					if err != nil {
						t.Fatal(err)
					}
					want = fi.Size()
				}
				if size != want {
					t.Fatalf("the %s agent in the sandbox has %d bytes, want %d", kind, size, want)
				}
				// Orphans are reparented to PID 1; a zombie left would show in /proc.
				zombies := shOK(t, sb, `for i in 1 2 3 4 5 6 7 8; do (sleep 0.05 &); done; sleep 0.5; cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == "Z"' | wc -l`)
				if zombies != "0" {
					t.Fatalf("%s zombies in the sandbox: the agent does not reap orphans", zombies)
				}
				id, err := sb.StartProcess(context.Background(), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "echo bg"}})
				if err != nil {
					t.Fatal(err)
				}
				if st := waitProcessExit(t, sb, id); string(st.Output) != "bg\n" {
					t.Fatalf("background output %q", st.Output)
				}
				if _, err := sb.DialPort(context.Background(), 9); !errors.Is(err, sandbox.ErrRefused) {
					t.Fatalf("DialPort: %v", err)
				}
				if detached {
					rss := idleRSS(t, sb)
					t.Logf("%s agent: idle live sandbox uses %.1f MiB (agent %.1f MiB + bwrap %.1f MiB)", kind, rss.total(), rss.agent, rss.outer)
					if kind == agentStatic && rss.total() > 15 {
						t.Errorf("idle live sandbox uses %.1f MiB, want at most 15 MiB", rss.total())
					}
				}
			}
		})
	}
}

type rssFigures struct{ agent, outer float64 } // MiB

func (r rssFigures) total() float64 { return r.agent + r.outer }

// idleRSS lets a live sandbox settle and reads the resident memory of its agent and of bwrap
// outside it (the only two processes an idle live sandbox has).
func idleRSS(t testing.TB, sb sandbox.Sandbox) rssFigures {
	t.Helper()
	ls := sb.(*localSandbox)
	time.Sleep(300 * time.Millisecond)
	return rssFigures{agent: vmRSS(t, ls.childPid), outer: vmRSS(t, ls.outerPid)}
}

func vmRSS(t testing.TB, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

func TestAgentCheck(t *testing.T) {
	t.Parallel()
	c := agentCheck(nil, "no agent binary was embedded at build time (run `go generate ./sandbox/local` before `go build`)")
	if !c.OK || !strings.Contains(c.Detail, "falling back") || !strings.Contains(c.Detail, "go generate ./sandbox/local") {
		t.Fatalf("fallback: %+v", c)
	}
	if c := agentCheck([]byte("x"), ""); !c.OK || !strings.Contains(c.Detail, "static agent embedded") {
		t.Fatalf("embedded: %+v", c)
	}
	if why := checkAgentBinary([]byte("#!/bin/sh\n")); !strings.Contains(why, "not an ELF") {
		t.Fatalf("a script as agent: %q", why)
	}
	fresh := freshAgent(t)
	if why := checkAgentBinary(fresh); why != "" {
		t.Fatalf("a fresh build: %q", why)
	}
	stale := bytes.ReplaceAll(fresh, []byte(agent.Protocol), []byte(strings.Repeat("x", len(agent.Protocol))))
	if why := checkAgentBinary(stale); !strings.Contains(why, "another version") {
		t.Fatalf("an agent of another protocol: %q", why)
	}
}

// TestLongDataDirectory: a data directory too deep for a socket path (108 bytes) still works,
// also across a restart.
func TestLongDataDirectory(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	p1, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, p1, sandbox.StartOptions{Detached: true})
	if ls := sb.(*localSandbox); !strings.HasPrefix(ls.sock, "/proc/self/fd/") {
		t.Fatalf("socket path %q", ls.sock)
	}
	shOK(t, sb, "echo deep > f")
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := newTestProvider(t, Options{Dir: dir})
	re, err := p2.Reconnect(context.Background(), sb.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got := shOK(t, re, "cat f"); got != "deep" {
		t.Fatalf("%q", got)
	}
	if err := re.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
