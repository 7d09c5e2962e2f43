//go:build linux

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/testutil"
)

// TestFullDataDir: the data dir on a small file system. With the default --disk-reserve (1G,
// more than the whole file system) run_command is refused with a storage error that names the
// reserve; with --disk-reserve 0 and the disk filled, a run whose end cannot be stored is never
// reported running (a storage error, or a failed run that says what could not be stored), and
// once space is freed the next run commits.
func TestFullDataDir(t *testing.T) {
	dir := testutil.SmallFS(t, "96m", "0700")
	t.Cleanup(func() { stopDaemonOf(t, dir); killLeftovers(t, dir) })
	door := func(extra ...string) *client {
		cmd := exec.Command(binary(t), append([]string{"--data-dir", dir, "--log-level", "warn"}, extra...)...)
		cmd.Stderr = testLog{t}
		return connectVia(t, "full-disk", &mcp.CommandTransport{Command: cmd})
	}

	c := door()
	c.ok("create_workspace", map[string]any{"name": "w"})
	out, text, isErr := c.call("run_command", map[string]any{"workspace": "w", "command": "echo hi > a"})
	e, _ := out["error"].(map[string]any)
	kind, _ := e["kind"].(string)
	if !isErr || kind != "storage" || !strings.Contains(text, "below its reserve") || !strings.Contains(text, dir) {
		t.Fatalf("run_command below the default reserve: error %v, kind %q: %s", isErr, kind, text)
	}
	c.cs.Close()
	stopDaemonOf(t, dir)

	c = door("--disk-reserve", "0")
	c.ok("run_command", map[string]any{"workspace": "w", "command": "echo hi > a"})
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	free, err := engine.FreeSpaceOf(dir)()
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, free); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	f.Close()
	out, text, isErr = c.call("run_command", map[string]any{"workspace": "w", "command": "seq 1 400000; echo more > b 2>/dev/null; true"})
	// Either a storage error, or the run (a tool error or not) read failed, saying what could not
	// be stored.
	if e, _ := out["error"].(map[string]any); e != nil {
		if kind, _ := e["kind"].(string); !isErr || kind != "storage" {
			t.Fatalf("run_command on a full disk: error %v: %s", e, text)
		}
	} else {
		if out["status"] != "failed" || !strings.Contains(text, "could not") {
			t.Fatalf("run_command on a full disk: status %v: %s", out["status"], text)
		}
	}
	if strings.Contains(text, "is running") {
		t.Fatalf("a run whose end could not be stored is reported running: %s", text)
	}
	ws := c.ok("get_workspace", map[string]any{"workspace": "w"})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := c.ok("run_command", map[string]any{"workspace": "w", "command": "echo again > c"})
	if after["status"] != "exited" || after["commit_id"] == nil || after["commit_id"] == "" {
		t.Fatalf("once space was freed: %v", after)
	}
	if head := ws["head"]; head == nil || head == after["commit_id"] {
		t.Fatalf("head before the freed run: %v", head)
	}
}
