package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

// demo spawns this binary as an MCP server on stdio (with a fresh data dir unless --data-dir is
// given), drives it with the official MCP Go SDK client through the whole durable story, and
// prints each step.
func demo(ctx context.Context, args []string) error {
	cfg, fs, err := parseConfig("demo", args)
	if err != nil {
		return err
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "data-dir" })
	if !explicit && os.Getenv("SANDKIT_DATA_DIR") == "" {
		dir, err := os.MkdirTemp("", "sandkit-demo-")
		if err != nil {
			return err
		}
		// Runs after the client closed (deferred later, so earlier): stop the daemon the
		// door started for this temporary data dir, then remove the dir.
		defer func() {
			if _, err := stopDaemon(context.Background(), dir, 30*time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "sandkit-mcp demo: %v\n", err)
			}
			os.RemoveAll(dir)
		}()
		cfg.dataDir = dir
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srvArgs := doorArgs(cfg)
	cmd := exec.Command(self, srvArgs...)
	cmd.Stderr = os.Stderr
	d := &demoRun{out: os.Stdout}
	d.say("sandkit-mcp demo: spawning the stdio door `%s %s` (it starts the daemon for the data dir) and connecting the official MCP Go SDK client to it", self, strings.Join(srvArgs, " "))
	client := mcp.NewClient(&mcp.Implementation{Name: "sandkit-demo", Version: version}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		return fmt.Errorf("connect to the server: %w", err)
	}
	defer cs.Close()
	d.cs = cs
	tl, err := cs.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(tl.Tools))
	for _, t := range tl.Tools {
		names = append(names, t.Name)
	}
	d.say("server offers %d tools: %s", len(names), strings.Join(names, ", "))

	steps := []struct {
		title string
		tool  string
		args  map[string]any
		show  func(map[string]any) string
	}{
		{"create a workspace", "create_workspace", map[string]any{"name": "demo"}, func(r map[string]any) string {
			return fmt.Sprintf("workspace %v (%v), head %v", r["name"], r["workspace_id"], r["head"])
		}},
		{"write a file (one commit)", "write_files", map[string]any{"workspace": "demo", "files": []map[string]any{{"path": "hello.txt", "content": "hello from the demo\n"}}}, nil},
		{"run a command that reads it and writes another file", "run_command", map[string]any{"workspace": "demo", "command": "cat hello.txt; echo step2 > step.txt; ls -l"}, nil},
		{"run a command that sees the previous command's file", "run_command", map[string]any{"workspace": "demo", "command": "cat", "args": []string{"step.txt"}}, nil},
		{"show the history", "workspace_history", map[string]any{"workspace": "demo"}, nil},
	}
	for _, s := range steps {
		r, err := d.call(ctx, s.title, s.tool, s.args)
		if err != nil {
			return err
		}
		if s.show != nil {
			d.say("  → %s", s.show(r))
		}
	}
	hist, err := d.call(ctx, "", "workspace_history", map[string]any{"workspace": "demo"})
	if err != nil {
		return err
	}
	commits, _ := hist["commits"].([]any)
	if len(commits) < 3 {
		return fmt.Errorf("expected at least 3 commits, got %d", len(commits))
	}
	writeCommit := commits[len(commits)-2].(map[string]any)["commit_id"]
	if _, err := d.call(ctx, "fork the workspace at its head", "fork_workspace", map[string]any{"workspace": "demo", "name": "demo-fork"}); err != nil {
		return err
	}
	if _, err := d.call(ctx, "change the fork only", "run_command", map[string]any{"workspace": "demo-fork", "command": "echo fork-only > fork.txt; ls"}); err != nil {
		return err
	}
	if _, err := d.call(ctx, "the original does not see the fork's change", "list_files", map[string]any{"workspace": "demo"}); err != nil {
		return err
	}
	if _, err := d.call(ctx, fmt.Sprintf("restore the original to the commit after the write (%v)", writeCommit), "restore_workspace", map[string]any{"workspace": "demo", "commit_id": writeCommit}); err != nil {
		return err
	}
	if _, err := d.call(ctx, "after the restore, step.txt is gone again", "list_files", map[string]any{"workspace": "demo"}); err != nil {
		return err
	}
	if _, err := d.call(ctx, "an error an agent can act on", "read_file", map[string]any{"workspace": "demo", "path": "../etc/passwd"}); err != nil {
		return err
	}
	if err := d.liveStory(ctx); err != nil {
		return err
	}
	if !explicit && os.Getenv("SANDKIT_DATA_DIR") == "" {
		// The data dir goes at the end; its workspaces' snapshots must not outlive it (on Vercel
		// they would stay in the project, billed, with nothing left that knows them).
		for _, ws := range []string{"demo-fork", "demo", "demo-site"} {
			if _, err := d.call(ctx, "delete the throw-away workspace "+ws+" (its snapshots go with it)", "delete_workspace", map[string]any{"workspace": ws}); err != nil {
				return err
			}
			if d.failed {
				return fmt.Errorf("delete_workspace %s: %s", ws, d.failText)
			}
		}
	}
	sandboxes := "bubblewrap sandboxes on this machine"
	if oc, err := loadOperatorConfig(cfg); err == nil && providerName(cfg, oc) == "vercel" {
		sandboxes = "Vercel sandboxes"
	}
	d.say("\ndemo finished: every step above went through MCP to real %s, with a commit after each change.", sandboxes)
	if explicit || os.Getenv("SANDKIT_DATA_DIR") != "" {
		d.say("the daemon for %s keeps serving other doors; it exits after %v with nothing to do, or now with `sandkit-mcp stop --data-dir %s`",
			cfg.dataDir, door.IdleExit, cfg.dataDir)
	}
	return nil
}

type demoRun struct {
	out io.Writer
	cs  *mcp.ClientSession
	n   int
	// failed reports whether the last call was a tool error (with its text in failText).
	failed   bool
	failText string
}

func (d *demoRun) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// call invokes a tool, prints the step (title, arguments, text result) and returns the structured
// result. A tool error is printed, not returned: the demo shows errors on purpose.
func (d *demoRun) call(ctx context.Context, title, tool string, args map[string]any) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if title != "" {
		d.n++
		a, _ := json.Marshal(args)
		d.say("\n%d. %s\n   %s %s", d.n, title, tool, a)
	}
	start := time.Now()
	res, err := d.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	d.failed, d.failText = res.IsError, ""
	if res.IsError {
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				d.failText += t.Text
			}
		}
	}
	if title != "" {
		for _, c := range res.Content {
			if t, ok := c.(*mcp.TextContent); ok {
				prefix := "   "
				if res.IsError {
					prefix = "   error: "
				}
				d.say("%s%s", prefix, strings.ReplaceAll(strings.TrimRight(t.Text, "\n"), "\n", "\n   "))
			}
		}
		d.say("   (%d ms)", time.Since(start).Milliseconds())
	}
	out := map[string]any{}
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
	}
	return out, nil
}
