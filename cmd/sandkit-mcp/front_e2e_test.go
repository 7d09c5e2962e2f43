package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The end-to-end tests of the front build both binaries into one directory, as `go install`
// puts them, and run them for real: a real daemon (sandkit-mcpd serve, started by the front's
// door) with real bubblewrap sandboxes, driven by the official MCP Go SDK client.

var (
	bins  string // holds sandkit-mcp (the front) and sandkit-mcpd (the full server)
	front string
	full  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandkit-front-e2e-")
	if err != nil {
		panic(err)
	}
	bins, front, full = dir, filepath.Join(dir, "sandkit-mcp"), filepath.Join(dir, "sandkit-mcpd")
	build := exec.Command("go", "build", "-o", dir, ".", "../sandkit-mcpd")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		os.Stderr.Write(out)
		panic("go build: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dataDir is a fresh data dir whose daemon, if one gets started, is stopped when the test ends.
func dataDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if out, err := exec.Command(full, "stop", "--data-dir", dir).CombinedOutput(); err != nil {
			t.Errorf("sandkit-mcpd stop: %v\n%s", err, out)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "daemon.log")); err == nil {
				t.Logf("daemon.log:\n%s", b)
			}
		}
	})
	return dir
}

// result is what a command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// runIn runs bin with args, env (nil: this process's) and stdin closed.
func runIn(t *testing.T, env []string, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return r
}

// connect starts bin as a stdio door with args and connects the official MCP Go SDK client to
// it; the session is closed when the test ends.
func connect(t testing.TB, bin string, args ...string) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cl := mcp.NewClient(&mcp.Implementation{Name: "front-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect to %s %v: %v", bin, args, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and returns its structured result, failing the test on an error.
func call(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if res.IsError {
		t.Fatalf("%s %v: error result %s", tool, args, b)
	}
	return out
}

// daemonOf reads the pidfile of the daemon serving dir.
func daemonOf(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "daemon.json"))
	if err != nil {
		t.Fatalf("no daemon pidfile: %v", err)
	}
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestFrontDoorRunsCommand: the front's stdio door starts the data dir's daemon through
// sandkit-mcpd (next to it, `sandkit-mcpd serve`) and relays a real session: a workspace is
// created and a command runs in a bubblewrap sandbox.
func TestFrontDoorRunsCommand(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	cs := connect(t, front, "--data-dir", dir)
	if got := cs.InitializeResult().ServerInfo; got.Name != "sandkit-mcp" {
		t.Errorf("serverInfo %+v", got)
	}
	call(t, cs, "create_workspace", map[string]any{"name": "front"})
	out := call(t, cs, "run_command", map[string]any{"workspace": "front", "command": "echo hello from the front"})
	if out["status"] != "exited" || out["exit_code"] != float64(0) || strings.TrimSpace(out["stdout"].(string)) != "hello from the front" {
		t.Errorf("run_command: %v", out)
	}
	info := daemonOf(t, dir)
	pid := int(info["pid"].(float64))
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 || args[0] != full || args[1] != "serve" {
		t.Errorf("the daemon runs %q, want %s serve …", args, full)
	}
	version := strings.TrimSpace(strings.TrimPrefix(runIn(t, nil, front, "version").stdout, "sandkit-mcp "))
	if info["version"] != version {
		t.Errorf("daemon version %v, the front's %q", info["version"], version)
	}
}

// TestFrontHandsOver: every subcommand but the door and version is sandkit-mcpd's, exit code
// included: ls and stop work on the daemon the door started, and mistakes exit 2 with the full
// binary's message.
func TestFrontHandsOver(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	cs := connect(t, front, "--data-dir", dir)
	call(t, cs, "create_workspace", map[string]any{"name": "listed"})
	cs.Close()

	ls := runIn(t, nil, front, "ls", "--json", "--data-dir", dir)
	if ls.code != 0 || !strings.Contains(ls.stdout, `"listed"`) {
		t.Errorf("sandkit-mcp ls --json: %+v", ls)
	}
	if want := runIn(t, nil, full, "ls", "--json", "--data-dir", dir); ls != want {
		t.Errorf("sandkit-mcp ls --json: %+v; sandkit-mcpd: %+v", ls, want)
	}
	for _, args := range [][]string{
		{"serve", "--bogus"}, {"nope"}, {"log", "--data-dir", dir, "no-such-workspace"}, {"stop", "--timeout", "soon"},
	} {
		got, want := runIn(t, nil, front, args...), runIn(t, nil, full, args...)
		if got != want || got.code == 0 {
			t.Errorf("sandkit-mcp %q: %+v; sandkit-mcpd: %+v", args, got, want)
		}
	}
	stop := runIn(t, nil, front, "stop", "--data-dir", dir)
	if stop.code != 0 || !strings.Contains(stop.stdout, "stopped the sandkit-mcp daemon") {
		t.Errorf("sandkit-mcp stop: %+v", stop)
	}
	if _, err := os.Stat(filepath.Join(dir, "daemon.json")); !os.IsNotExist(err) {
		t.Errorf("the daemon's pidfile is still there after stop: %v", err)
	}
}

// TestFrontHelp: the front's help is the full binary's, byte for byte, however it is asked for.
func TestFrontHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}, {"stdio", "--help"}, {"serve", "--help"}, {"version", "-h"}, {"--data-dir", "/nonexistent", "--help"}} {
		got, want := runIn(t, nil, front, args...), runIn(t, nil, full, args...)
		if got != want || got.code != 0 || !strings.HasPrefix(got.stdout, "sandkit-mcp: durable sandboxed workspaces") {
			t.Errorf("sandkit-mcp %q: exit %d, stderr %q, stdout %.80q; sandkit-mcpd: exit %d", args, got.code, got.stderr, got.stdout, want.code)
		}
	}
}

// TestFrontDoorErrors: the front's door refuses what the full binary's door refuses, with the
// same message and exit code, and a daemon that cannot start says why from its log (bubblewrap
// missing, the Vercel provider without credentials).
func TestFrontDoorErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus (see sandkit-mcp --help)"},
		{[]string{"stdio", "extra"}, `unexpected argument "extra"`},
		{[]string{"--provider", "docker"}, "--provider: unknown provider"},
		{[]string{"--memory-limit", "lots"}, "--memory-limit"},
		{[]string{"--host-root", filepath.Join(dir, "missing")}, "--host-root"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"version", "extra"}, "version takes no arguments"},
		{[]string{"--data-dir", filepath.Join(dir, "nobwrap"), "--bwrap", "/nonexistent/bwrap"}, "bubblewrap (bwrap) not found"},
		{[]string{"--data-dir", filepath.Join(dir, "novercel"), "--provider", "vercel"}, "no Vercel credentials"},
	} {
		env := withoutVercel(os.Environ())
		got, want := runIn(t, env, front, c.args...), runIn(t, env, full, c.args...)
		if got != want || got.code == 0 || !strings.Contains(got.stderr, c.want) || got.stdout != "" {
			t.Errorf("sandkit-mcp %q: %+v; want what sandkit-mcpd says (%+v), holding %q", c.args, got, want, c.want)
		}
	}
}

// withoutVercel is env without the Vercel credentials.
func withoutVercel(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "VERCEL_") && !strings.HasPrefix(e, "SANDKIT_VERCEL_") {
			out = append(out, e)
		}
	}
	return out
}

// TestFrontWithoutFull: a front installed without sandkit-mcpd says exactly what to install;
// its version and its door to a daemon that already runs need nothing else. sandkit-mcpd on
// PATH, or next to the target of a symlink to the front, is found.
func TestFrontWithoutFull(t *testing.T) {
	t.Parallel()
	lone := filepath.Join(t.TempDir(), "sandkit-mcp")
	copyFile(t, front, lone)
	env := append(withoutPath(os.Environ()), "PATH=/usr/bin:/bin")

	for _, args := range [][]string{{"doctor"}, {"--help"}, {"--data-dir", t.TempDir()}} {
		r := runIn(t, env, lone, args...)
		for _, want := range []string{
			"sandkit-mcpd, the full sandkit-mcp server, is neither in " + filepath.Dir(lone),
			"go install github.com/sandkit/sandkit-mcp/cmd/sandkit-mcp@",
			"github.com/sandkit/sandkit-mcp/cmd/sandkit-mcpd@",
			"or put sandkit-mcpd in " + filepath.Dir(lone),
		} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("sandkit-mcp %q alone: %+v; want exit 1 and %q", args, r, want)
			}
		}
	}
	if r := runIn(t, env, lone, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "sandkit-mcp ") {
		t.Errorf("sandkit-mcp version alone: %+v", r)
	}
	// The front copied under the server's name is not the server: no exec loop.
	hardlink := filepath.Join(filepath.Dir(lone), "sandkit-mcpd")
	if err := os.Link(lone, hardlink); err != nil {
		t.Fatal(err)
	}
	if r := runIn(t, env, lone, "doctor"); r.code != 1 || !strings.Contains(r.stderr, "is neither in") {
		t.Errorf("sandkit-mcp doctor beside itself as sandkit-mcpd: %+v", r)
	}
	os.Remove(hardlink)

	// A daemon already serves the data dir: the lone front's door reaches it.
	dir := dataDir(t)
	cs := connect(t, full, "--data-dir", dir)
	call(t, cs, "create_workspace", map[string]any{"name": "shared"})
	cmd := exec.Command(lone, "--data-dir", dir)
	cmd.Env = env
	cl := mcp.NewClient(&mcp.Implementation{Name: "lone", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lcs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("the lone front's door: %v", err)
	}
	if out := call(t, lcs, "list_workspaces", map[string]any{}); !strings.Contains(jsonOf(out), `"shared"`) {
		t.Errorf("list_workspaces through the lone front: %v", out)
	}
	lcs.Close()

	// sandkit-mcpd on PATH.
	onPath := append(withoutPath(os.Environ()), "PATH="+bins+":/usr/bin:/bin")
	if r := runIn(t, onPath, lone, "ls", "--json", "--data-dir", dir); r.code != 0 || !strings.Contains(r.stdout, `"shared"`) {
		t.Errorf("sandkit-mcp ls with sandkit-mcpd on PATH: %+v", r)
	}
	// A symlink to the front: sandkit-mcpd is looked for next to its target.
	link := filepath.Join(t.TempDir(), "sandkit-mcp")
	if err := os.Symlink(front, link); err != nil {
		t.Fatal(err)
	}
	if r := runIn(t, env, link, "ls", "--json", "--data-dir", dir); r.code != 0 || !strings.Contains(r.stdout, `"shared"`) {
		t.Errorf("sandkit-mcp ls through a symlink to the front: %+v", r)
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// withoutPath is env without PATH.
func withoutPath(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "PATH=") {
			out = append(out, e)
		}
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestFrontWarnsOfAnotherVersion: a front whose daemon runs another version says so on stderr
// (and relays all the same).
func TestFrontWarnsOfAnotherVersion(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	cs := connect(t, front, "--data-dir", dir)
	call(t, cs, "list_workspaces", map[string]any{})
	info := daemonOf(t, dir)
	info["version"] = "v0.0.1-other"
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(front, "--data-dir", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cl := mcp.NewClient(&mcp.Implementation{Name: "other", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ocs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	call(t, ocs, "list_workspaces", map[string]any{})
	ocs.Close()
	if !strings.Contains(stderr.String(), "another version of sandkit-mcp") || !strings.Contains(stderr.String(), "v0.0.1-other") {
		t.Errorf("stderr of a front whose daemon is another version: %q", stderr.String())
	}
}

// TestFrontLinksNothingHeavy: the front links only the door, the standard library's light part,
// x/sys/unix and tint; none of the server's packages, whose inits would slow every start, and not
// net, so the binary is statically linked (no dynamic loader at start).
func TestFrontLinksNothingHeavy(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/sandkit/sandkit-mcp/cmd/sandkit-mcp":    true,
		"github.com/sandkit/sandkit-mcp/internal/door":      true,
		"github.com/sandkit/sandkit-mcp/internal/buildinfo": true,
		"github.com/lmittmann/tint":                         true,
		"golang.org/x/sys/unix":                             true,
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if !strings.Contains(first, ".") {
			// net links runtime/cgo, which makes the binary dynamically linked (internal/door.Conn).
			if p == "net" || p == "runtime/cgo" || strings.HasPrefix(p, "net/http") || strings.HasPrefix(p, "crypto/") || strings.HasSuffix(p, "/template") {
				t.Errorf("the front links %s", p)
			}
			continue // the standard library
		}
		if !allowed[p] {
			t.Errorf("the front links %s", p)
		}
	}
}
