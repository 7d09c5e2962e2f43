package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Node end-to-end tests drive the built binary over stdio with two independent clients from
// the MCP project: the TypeScript SDK (@modelcontextprotocol/sdk, testdata/node/sdk-client.mjs)
// and the Inspector CLI 2.x (@modelcontextprotocol/inspector, bin mcp-inspector). Both validate
// every result's structuredContent against the outputSchema the tool declares in tools/list.
// scripts/node-tools.sh installs the pinned versions (testdata/node/package-lock.json) and prints
// the directory, which scripts/test exports as SANDKIT_NODE_TOOLS.

const nodeToolsHint = "the Node MCP clients are not installed: run `export SANDKIT_NODE_TOOLS=$(scripts/node-tools.sh)` " +
	"from the repository root (scripts/test does this), then re-run"

// nodeTools returns the directory scripts/node-tools.sh installed. Without SANDKIT_NODE_TOOLS the
// test fails under CI=true and is skipped elsewhere.
func nodeTools(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SANDKIT_NODE_TOOLS")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SANDKIT_NODE_TOOLS is not set and CI=true: " + nodeToolsHint)
		}
		t.Skip("SANDKIT_NODE_TOOLS is not set: " + nodeToolsHint)
	}
	for _, p := range []string{"node_modules/.bin/node", "node_modules/.bin/mcp-inspector", "node_modules/@modelcontextprotocol/sdk/package.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatalf("SANDKIT_NODE_TOOLS=%s lacks %s (%v): %s", dir, p, err, nodeToolsHint)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "node_modules/.bin/node"), "--version").Output()
	if err != nil {
		t.Fatalf("%s/node_modules/.bin/node --version: %v", dir, err)
	}
	if v := strings.TrimSpace(string(out)); !nodeAtLeast(v, 22, 19) {
		t.Fatalf("node %s in SANDKIT_NODE_TOOLS=%s; Inspector 2.x needs >= 22.19: %s", v, dir, nodeToolsHint)
	}
	return dir
}

// nodeAtLeast reports whether a `node --version` string (v24.1.0) is at least major.minor.
func nodeAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (ma > major || ma == major && mi >= minor)
}

// nodeResult is what one node process did.
type nodeResult struct {
	stdout, stderr []byte
	exitCode       int
	elapsed        time.Duration
}

// runNode runs node (from tools) with args in dir and waits for it, within timeout. It runs in
// its own process group, which is killed afterwards — also when it ends on its own, so no door it
// spawned outlives it. The daemon a door starts is in its own session and is stopped by dataDir.
func runNode(t *testing.T, tools, dir string, env []string, timeout time.Duration, args ...string) nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(tools, "node_modules/.bin/node"), args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %v: %v", args, err)
	}
	err := cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	res := nodeResult{stdout: stdout.Bytes(), stderr: stderr.Bytes(), elapsed: time.Since(began)}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("node %v: no answer within %v (killed)\nstdout:\n%s\nstderr:\n%s", args, timeout, res.stdout, res.stderr)
	case errors.As(err, &exit):
		res.exitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("node %v: %v\nstderr:\n%s", args, err, res.stderr)
	}
	return res
}

// nodeEnv is the environment of the node processes: the test's, with the installed node first on
// PATH, and HOME and the Inspector's config files in home, so nothing is written to the real home.
func nodeEnv(tools, home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "MCP_CATALOG_PATH", "MCP_CLIENT_CONFIG_PATH", "NODE_OPTIONS", "NODE_PATH":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PATH="+filepath.Join(tools, "node_modules/.bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home,
		"MCP_CATALOG_PATH="+filepath.Join(home, "mcp-inspector-catalog.json"),
		"MCP_CLIENT_CONFIG_PATH="+filepath.Join(home, "mcp-inspector-client.json"),
		"NO_COLOR=1",
	)
	return append(env, extra...)
}

// inspector runs `mcp-inspector --cli --format json <args> -- <the door on data>` and returns its
// JSON envelope on stdout ({"result":…}), its stderr and its exit code. Its working directory is a
// fresh dir whose parent has no package.json (inspector-cli 1.x died there; 2.x must not).
func inspector(t *testing.T, tools, home, data string, args ...string) (map[string]any, string, int) {
	t.Helper()
	cwd, err := os.MkdirTemp(home, "cwd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(cwd)
	argv := append([]string{filepath.Join(tools, "node_modules/.bin/mcp-inspector"), "--cli", "--format", "json"}, args...)
	argv = append(argv, "--", binary(t), "--data-dir", data, "--log-level", "warn")
	res := runNode(t, tools, cwd, nodeEnv(tools, home), 3*time.Minute, argv...)
	t.Logf("mcp-inspector %s: exit %d in %v", strings.Join(args, " "), res.exitCode, res.elapsed.Round(time.Millisecond))
	var env map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(res.stdout), &env); err != nil {
		// With no result, the CLI's last stderr line is its error envelope: a protocol error, or
		// structuredContent that does not match the tool's outputSchema (Ajv's message).
		lines := strings.Split(strings.TrimSpace(string(res.stderr)), "\n")
		t.Fatalf("mcp-inspector %s: exit %d, no result on stdout (%v); its error: %s\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), res.exitCode, err, lines[len(lines)-1], res.stdout, res.stderr)
	}
	return env, string(res.stderr), res.exitCode
}

// inspectorCall runs tools/call for tool with args and returns the result's structuredContent,
// its text and isError. A tool error must exit 5 (the CLI's TOOL_ERROR); anything else but 0 —
// a protocol error, or structuredContent that does not match the tool's outputSchema (the CLI
// validates it like the SDK) — fails, as does an error result without structuredContent from a
// tool that declares an outputSchema (declared: tool name → has one).
func inspectorCall(t *testing.T, tools, home, data string, declared map[string]bool, tool string, args map[string]any) (map[string]any, string, bool) {
	t.Helper()
	b, _ := json.Marshal(args)
	env, stderr, code := inspector(t, tools, home, data, "--method", "tools/call", "--tool-name", tool, "--tool-args-json", string(b))
	res, _ := env["result"].(map[string]any)
	if res == nil || (code != 0 && code != 5) {
		t.Fatalf("tools/call %s %s: exit %d, no result\nstdout: %v\nstderr:\n%s", tool, b, code, env, stderr)
	}
	isErr, _ := res["isError"].(bool)
	if isErr != (code == 5) {
		t.Fatalf("tools/call %s: isError %v but exit %d\nstderr:\n%s", tool, isErr, code, stderr)
	}
	if _, ok := res["structuredContent"].(map[string]any); !ok && declared[tool] {
		t.Errorf("tools/call %s %s: the tool declares an outputSchema but its result (isError=%v) has no structuredContent: %v", tool, b, isErr, res)
	}
	var text strings.Builder
	content, _ := res["content"].([]any)
	for _, c := range content {
		if m, _ := c.(map[string]any); m["type"] == "text" {
			s, _ := m["text"].(string)
			text.WriteString(s)
		}
	}
	sc, _ := res["structuredContent"].(map[string]any)
	return sc, text.String(), isErr
}

// TestInspectorCLI lints the tool list with the Inspector CLI's --strict (schema portability of
// every inputSchema and outputSchema; any finding fails the test and is printed), then calls
// tools with it, one connection per call, and checks the results.
func TestInspectorCLI(t *testing.T) {
	t.Parallel()
	tools := nodeTools(t)
	data := dataDir(t)
	home := t.TempDir()

	env, stderr, code := inspector(t, tools, home, data, "--method", "tools/list", "--strict")
	res, _ := env["result"].(map[string]any)
	list, _ := res["tools"].([]any)
	if len(list) < 13 {
		t.Fatalf("tools/list: %d tools (exit %d)\nstdout: %v\nstderr:\n%s", len(list), code, env, stderr)
	}
	var withSchema, without []string
	declared := map[string]bool{}
	for _, x := range list {
		tool, _ := x.(map[string]any)
		name, _ := tool["name"].(string)
		if _, ok := tool["outputSchema"].(map[string]any); ok {
			withSchema = append(withSchema, name)
			declared[name] = true
		} else {
			without = append(without, name)
		}
	}
	t.Logf("tools/list: %d tools, %d with an outputSchema; without one: %v", len(list), len(withSchema), without)
	findings, _ := env["schemaFindings"].([]any)
	if len(findings) > 0 || code != 0 {
		var report strings.Builder
		for _, x := range findings {
			r, _ := x.(map[string]any)
			fs, _ := r["findings"].([]any)
			for _, y := range fs {
				f, _ := y.(map[string]any)
				path := fmt.Sprint(f["schema"])
				if p, _ := f["path"].(string); p != "" {
					path += "." + p
				}
				fmt.Fprintf(&report, "%s: tool %v, %s [%v]\n  issue: %v\n  suggestion: %v\n", f["severity"], r["toolName"], path, f["rule"], f["issue"], f["suggestion"])
			}
		}
		t.Errorf("mcp-inspector --strict (exit %d) reported schema portability problems:\n%s\nstderr:\n%s", code, report.String(), stderr)
	}

	ws, text, isErr := inspectorCall(t, tools, home, data, declared, "create_workspace", map[string]any{"name": "insp"})
	if isErr || ws["name"] != "insp" || !strings.HasPrefix(fmt.Sprint(ws["workspace_id"]), "ws_") || !strings.HasPrefix(fmt.Sprint(ws["head"]), "c_") {
		t.Fatalf("create_workspace: %v %s", ws, text)
	}
	run, text, isErr := inspectorCall(t, tools, home, data, declared, "run_command", map[string]any{"workspace": "insp", "command": "echo hi | tee hi.txt"})
	if isErr || run["stdout"] != "hi\n" || run["exit_code"] != 0.0 || run["status"] != "exited" || !strings.HasPrefix(fmt.Sprint(run["commit_id"]), "c_") {
		t.Fatalf("run_command echo hi: %v %s", run, text)
	}
	lw, text, isErr := inspectorCall(t, tools, home, data, declared, "list_workspaces", map[string]any{})
	wss, _ := lw["workspaces"].([]any)
	if isErr || len(wss) != 1 || wss[0].(map[string]any)["id"] != ws["id"] {
		t.Fatalf("list_workspaces: %v %s", lw, text)
	}
	gw, text, isErr := inspectorCall(t, tools, home, data, declared, "get_workspace", map[string]any{"workspace": "insp"})
	if isErr || gw["head"] != run["commit_id"] {
		t.Fatalf("get_workspace after the run: head %v, want the run's commit %v: %s", gw["head"], run["commit_id"], text)
	}
	_, text, isErr = inspectorCall(t, tools, home, data, declared, "get_workspace", map[string]any{"workspace": "nope"})
	if !isErr || !strings.Contains(text, "nope") {
		t.Fatalf("get_workspace of a missing workspace: isError %v, text %q", isErr, text)
	}
	_, text, isErr = inspectorCall(t, tools, home, data, declared, "read_file", map[string]any{"workspace": "insp", "path": "missing.txt"})
	if !isErr || !strings.Contains(text, "not found") {
		t.Fatalf("read_file of a missing file: isError %v, text %q", isErr, text)
	}
}

// sdkLine is one line of sdk-client.mjs's output.
type sdkLine struct {
	Step, Tool, Expect   string
	IsError, OK          bool
	HasOutputSchema      bool
	HasStructuredContent bool
	ValidationError      string
	ProtocolError        string
	Text                 string
	StructuredContent    map[string]any
	Tools                []struct {
		Name            string
		HasOutputSchema bool
	}
	Selftest bool
	Done     bool
}

// TestTypeScriptSDK runs testdata/node/sdk-client.mjs: the official TypeScript SDK's Client over
// StdioClientTransport lists the tools (caching a validator per outputSchema), then makes calls
// that succeed and that fail and a live-session story. It fails on any SDK validation error, any
// protocol error, a call whose isError is not the expected one, and an error result without
// structuredContent from a tool that declares an outputSchema (the SDK lets those through).
func TestTypeScriptSDK(t *testing.T) {
	t.Parallel()
	tools := nodeTools(t)
	data := dataDir(t)
	work := t.TempDir()
	for _, f := range []string{"sdk-client.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "node", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The script's bare imports resolve from its own directory.
	if err := os.Symlink(filepath.Join(tools, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	res := runNode(t, tools, work, nodeEnv(tools, work, "SANDKIT_BIN="+binary(t), "SANDKIT_DATA_DIR="+data), 8*time.Minute, "sdk-client.mjs")
	t.Logf("sdk-client.mjs: exit %d in %v", res.exitCode, res.elapsed.Round(time.Millisecond))
	if len(res.stderr) > 0 {
		t.Logf("sdk-client.mjs stderr:\n%s", res.stderr)
	}

	var problems []string
	var calls, validated int
	var done bool
	var withSchema, without []string
	schemaOf := map[string]bool{}
	for _, raw := range bytes.Split(bytes.TrimSpace(res.stdout), []byte("\n")) {
		var l sdkLine
		if err := json.Unmarshal(raw, &l); err != nil {
			problems = append(problems, fmt.Sprintf("not a JSON line: %s", raw))
			continue
		}
		switch {
		case l.Done:
			done = true
		case l.Tools != nil:
			for _, tl := range l.Tools {
				schemaOf[tl.Name] = tl.HasOutputSchema
				if tl.HasOutputSchema {
					withSchema = append(withSchema, tl.Name)
				} else {
					without = append(without, tl.Name)
				}
			}
		case l.Selftest:
			if l.ValidationError == "" {
				problems = append(problems, fmt.Sprintf("self-test: a result against a schema it cannot match was not rejected by the SDK: %s", raw))
			} else {
				t.Logf("self-test: the SDK rejects a non-matching structuredContent: %s", l.ValidationError)
			}
		case l.Tool != "":
			calls++
			if l.HasOutputSchema && l.HasStructuredContent {
				validated++
			}
			t.Logf("%-16s %-18s isError=%-5v outputSchema=%-5v %s", l.Step, l.Tool, l.IsError, l.HasOutputSchema, firstLine(l.Text))
			switch {
			case l.ValidationError != "":
				problems = append(problems, fmt.Sprintf("%s (%s): SDK validation error: %s\n    structuredContent: %s", l.Step, l.Tool, l.ValidationError, mustJSON(l.StructuredContent)))
			case l.ProtocolError != "":
				problems = append(problems, fmt.Sprintf("%s (%s): protocol error: %s", l.Step, l.Tool, l.ProtocolError))
			case !l.OK:
				problems = append(problems, fmt.Sprintf("%s (%s): expected %s, got isError=%v: %s", l.Step, l.Tool, l.Expect, l.IsError, l.Text))
			case l.HasOutputSchema && !l.HasStructuredContent:
				problems = append(problems, fmt.Sprintf("%s (%s): the tool declares an outputSchema but its result (isError=%v) has no structuredContent: %s", l.Step, l.Tool, l.IsError, l.Text))
			}
		}
	}
	t.Logf("tools/list: %d tools, %d with an outputSchema; without one: %v", len(schemaOf), len(withSchema), without)
	t.Logf("%d calls, %d of them with structuredContent validated by the SDK against an outputSchema", calls, validated)
	if res.exitCode != 0 || !done {
		problems = append(problems, fmt.Sprintf("sdk-client.mjs exited %d before finishing (no done line)", res.exitCode))
	}
	if len(schemaOf) < 13 {
		problems = append(problems, fmt.Sprintf("tools/list gave %d tools", len(schemaOf)))
	}
	if len(problems) > 0 {
		t.Errorf("the TypeScript SDK found %d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
		if !done {
			t.Logf("sdk-client.mjs stdout:\n%s", res.stdout)
		}
	}
}

var firstLineRE = regexp.MustCompile(`^[^\n]*`)

func firstLine(s string) string {
	l := firstLineRE.FindString(s)
	if len(l) > 110 {
		l = l[:110] + "…"
	}
	return l
}
