package main_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandkit/sandkit-mcp/internal/benchutil"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
)

// BenchmarkRunCommandTrue measures, interleaved in one loop so machine noise hits all of them alike:
//
//   - sh: plain `sh -c true` on the host (fork+exec);
//   - bwrap-bind: plain bubblewrap with the reference profile of local-isolation-measured.md and a
//     bind-mounted directory (no overlay, no helper): the floor of any bwrap sandbox;
//   - bwrap: the raw sandbox of the local provider running `true` (helper + bwrap + overlay, no
//     agent, nothing kept);
//   - sandkit: `run_command true` (args [], the program run directly) through MCP over stdio to the
//     built binary, with the default flags: including the snapshot and the run recorded in bbolt
//     (true changes nothing, so there is no commit). The sandbox is the warm one the previous run
//     left (--warm-sandboxes, the local provider's warm.go);
//   - sandkit-cold: the same with --warm-sandboxes 0 (another daemon, data dir and workspace): every
//     run boots its sandbox;
//   - sandkit-shell: the same as a shell line (no args: `sh -lc true`, reading the login profile).
//
// After each run the loop waits 50 ms, so what a run leaves to do in the background (the next
// warm sandbox, the spare helper's replacement, the removal of the ended sandbox) is done before
// the baselines are timed, as it is done before an agent's next command.
//
// It reports each as ms/op and the ratios sandkit/bwrap, sandkit/bwrap-bind (target ≤ 3),
// sandkit-cold/bwrap-bind and sandkit-shell/bwrap-bind.
//
//	go test ./cmd/sandkit-mcpd/ -run '^$' -bench RunCommandTrue -benchtime 100x
func BenchmarkRunCommandTrue(b *testing.B) {
	ctx := context.Background()
	prov := bareProvider(b)
	c := connect(b, dataDir(b))
	c.ok("create_workspace", map[string]any{"name": "bench"})
	coldCmd := doorCommand(b, dataDir(b))
	coldCmd.Args = append(coldCmd.Args, "--warm-sandboxes", "0")
	cold := connectVia(b, "e2e-cold", &mcp.CommandTransport{Command: coldCmd})
	cold.ok("create_workspace", map[string]any{"name": "bench"})
	// The program true, run directly (args present), and the same as a shell line (sh -lc true),
	// which is what a command without args is.
	args := map[string]any{"workspace": "bench", "command": "true", "args": []any{}}
	shellArgs := map[string]any{"workspace": "bench", "command": "true"}
	bindDir := b.TempDir()
	plain := func() *exec.Cmd {
		return exec.Command("bwrap", "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
			"--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			"--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
			"--tmpfs", "/tmp", "--bind", bindDir, "/workspace", "--chdir", "/workspace",
			"--clearenv", "--setenv", "PATH", "/usr/bin", "true")
	}
	_ = plain().Run()
	// Warm up all three paths once.
	_ = exec.Command("sh", "-c", "true").Run()
	_ = prov.RunBare(ctx, "/usr/bin/true")
	c.ok("run_command", args)
	c.ok("run_command", shellArgs)
	cold.ok("run_command", args)
	settle := func() { time.Sleep(50 * time.Millisecond) }
	settle()

	var sh, bb, bw, sk, skc, sks time.Duration
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
		sh += time.Since(t)
		t = time.Now()
		if err := plain().Run(); err != nil {
			b.Fatal(err)
		}
		bb += time.Since(t)
		t = time.Now()
		if err := prov.RunBare(ctx, "/usr/bin/true"); err != nil {
			b.Fatal(err)
		}
		bw += time.Since(t)
		t = time.Now()
		mustCall(ctx, b, c, "run_command", args)
		sk += time.Since(t)
		settle()
		t = time.Now()
		mustCall(ctx, b, cold, "run_command", args)
		skc += time.Since(t)
		settle()
		t = time.Now()
		mustCall(ctx, b, c, "run_command", shellArgs)
		sks += time.Since(t)
		settle()
	}
	benchutil.Report(b, benchutil.Ms{"sh-ms/op": sh, "bwrap-bind-ms/op": bb, "bwrap-ms/op": bw, "sandkit-ms/op": sk, "sandkit-cold-ms/op": skc, "sandkit-shell-ms/op": sks},
		benchutil.Ratios{"sandkit/bwrap": {sk, bw}, "sandkit/bwrap-bind": {sk, bb}, "sandkit-cold/bwrap-bind": {skc, bb}, "sandkit-shell/bwrap-bind": {sks, bb}})
}

// bareProvider is a local provider for raw sandbox starts (RunBare), closed when the benchmark
// ends.
func bareProvider(b *testing.B) *local.Provider {
	prov, err := local.New(local.Options{Dir: filepath.Join(b.TempDir(), "bare")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { prov.Close() })
	return prov
}

// mustCall calls a tool through the MCP client, failing the benchmark when the call or the tool
// fails.
func mustCall(ctx context.Context, b *testing.B, c *client, tool string, args map[string]any) *mcp.CallToolResult {
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil || res.IsError {
		b.Fatalf("%s %v: %v %+v", tool, args, err, res)
	}
	return res
}

// benchSession opens a session on a fresh workspace, skipping the benchmark when the provider
// has no live sessions yet.
func benchSession(b *testing.B, c *client, ws string) string {
	c.ok("create_workspace", map[string]any{"name": ws})
	out, text, isErr := c.call("open_session", map[string]any{"workspace": ws})
	if isErr {
		b.Skipf("open_session: %s", text)
	}
	sid := out["session_id"].(string)
	if _, text, isErr := c.call("session_exec", map[string]any{"session_id": sid, "command": "true"}); isErr {
		b.Skipf("session_exec: %s", text)
	}
	return sid
}

// BenchmarkSessionExecTrue measures, interleaved: plain `true` on the host (fork+exec) and
// `session_exec true` through MCP — stdio door, Unix socket, daemon, engine, the agent in the
// live sandbox — run directly (args []) and as a shell line (sh -lc, reading the login profile),
// and reports each ratio to the plain exec (target for the direct one: ≤ 1.5).
//
//	go test ./cmd/sandkit-mcpd/ -run '^$' -bench SessionExecTrue -benchtime 200x
func BenchmarkSessionExecTrue(b *testing.B) {
	ctx := context.Background()
	c := connect(b, dataDir(b))
	sid := benchSession(b, c, "bench-exec")
	// The program true run directly (args present), as the baseline runs it; and the same as a
	// shell line (no args: sh -lc true, which reads the login profile).
	args := map[string]any{"session_id": sid, "command": "true", "args": []any{}}
	shellArgs := map[string]any{"session_id": sid, "command": "true"}
	var plain, sk, sks time.Duration
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
		plain += time.Since(t)
		t = time.Now()
		mustCall(ctx, b, c, "session_exec", args)
		sk += time.Since(t)
		t = time.Now()
		mustCall(ctx, b, c, "session_exec", shellArgs)
		sks += time.Since(t)
	}
	c.ok("discard_session", map[string]any{"session_id": sid})
	benchutil.Report(b, benchutil.Ms{"exec-ms/op": plain, "session_exec-ms/op": sk, "session_exec-shell-ms/op": sks},
		benchutil.Ratios{"session_exec/exec": {sk, plain}, "session_exec-shell/exec": {sks, plain}})
}

// BenchmarkSessionOpenCommit measures, interleaved: a raw bwrap sandbox start running `true`
// (the local provider's RunBare), open_session until its first session_exec has answered, and
// commit_session of a session that changed a file; it reports each against the raw start
// (target ≤ 10).
//
//	go test ./cmd/sandkit-mcpd/ -run '^$' -bench SessionOpenCommit -benchtime 30x
func BenchmarkSessionOpenCommit(b *testing.B) {
	ctx := context.Background()
	prov := bareProvider(b)
	c := connect(b, dataDir(b))
	sid := benchSession(b, c, "bench-open")
	c.ok("discard_session", map[string]any{"session_id": sid})
	_ = prov.RunBare(ctx, "/usr/bin/true")
	call := func(tool string, args map[string]any) map[string]any {
		out, _, _ := decode(mustCall(ctx, b, c, tool, args))
		return out
	}
	var bare, open, commit time.Duration
	for b.Loop() {
		t := time.Now()
		if err := prov.RunBare(ctx, "/usr/bin/true"); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(t)
		t = time.Now()
		sid := call("open_session", map[string]any{"workspace": "bench-open"})["session_id"]
		call("session_exec", map[string]any{"session_id": sid, "command": "true"})
		open += time.Since(t)
		call("session_exec", map[string]any{"session_id": sid, "command": "sh", "args": []any{"-c", "date > stamp.txt"}})
		t = time.Now()
		call("commit_session", map[string]any{"session_id": sid})
		commit += time.Since(t)
	}
	benchutil.Report(b, benchutil.Ms{"bwrap-ms/op": bare, "open-ready-ms/op": open, "commit-ms/op": commit},
		benchutil.Ratios{"open/bwrap": {open, bare}, "commit/bwrap": {commit, bare}})
}
