package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

// The commands for the humans who supervise agents: they look at the same data dir as the
// agents, through its daemon (started if none runs, as the stdio door starts it), as an MCP
// client of their own. Each prints a readable table or text by default, and the tool's
// structured result with --json.
//
//	sandkit-mcp ls               list_workspaces
//	sandkit-mcp log WS           workspace_history
//	sandkit-mcp runs WS          list_runs
//	sandkit-mcp show RUN         get_run
//	sandkit-mcp diff WS [FROM [TO]]  workspace_diff
//	sandkit-mcp export WS DIR [--git-branch NAME]   export_workspace: files into DIR (new or empty),
//	                             or a branch of the repository DIR the workspace was imported from

// humanCommand describes one of them.
type humanCommand struct {
	usage string   // "log WS"
	args  []string // names of the positional arguments
	// optional is how many more positional arguments may follow.
	optional int
	tool     string
	// toolArgs makes the tool's arguments from the positional ones.
	toolArgs func(pos []string) map[string]any
	// roots, when set, gives the host roots this command's connection shares (the user's own
	// directories: host roots limit agents, not the person at the terminal).
	roots func(pos []string) []string
	// table renders the structured result for people; nil prints the tool's text.
	table func(w io.Writer, out map[string]any)
}

var humanCommands = map[string]humanCommand{
	"ls": {usage: "ls", tool: "list_workspaces",
		toolArgs: func([]string) map[string]any { return map[string]any{"limit": 1000} },
		table:    workspacesTable},
	"log": {usage: "log WS", args: []string{"WS"}, tool: "workspace_history",
		toolArgs: func(p []string) map[string]any { return map[string]any{"workspace": p[0], "limit": 1000} },
		table:    historyTable},
	"runs": {usage: "runs WS", args: []string{"WS"}, tool: "list_runs",
		toolArgs: func(p []string) map[string]any { return map[string]any{"workspace": p[0], "limit": 200} },
		table:    runsTable},
	"show": {usage: "show RUN", args: []string{"RUN"}, tool: "get_run",
		toolArgs: func(p []string) map[string]any { return map[string]any{"run_id": p[0]} }},
	"export": {usage: "export WS DIR [--git-branch NAME]", args: []string{"WS", "DIR"}, tool: "export_workspace",
		toolArgs: func(p []string) map[string]any { return map[string]any{"workspace": p[0], "host_dir": p[1]} },
		// The person at the terminal may write where they ask: their connection shares DIR's parent
		// (DIR itself, the repository, for a branch).
		roots: func(p []string) []string { return []string{filepath.Dir(p[1])} }},
	"diff": {usage: "diff WS [FROM [TO]]", args: []string{"WS"}, optional: 2, tool: "workspace_diff",
		toolArgs: func(p []string) map[string]any {
			a := map[string]any{"workspace": p[0]}
			if len(p) > 1 {
				a["from"] = p[1]
			}
			if len(p) > 2 {
				a["to"] = p[2]
			}
			return a
		}},
}

// valueFlags are the flags of parseConfig that take a value (so the next argument is not a
// positional one).
var valueFlags = map[string]bool{"data-dir": true, "bwrap": true, "log-level": true, "config": true,
	"provider": true, "memory-limit": true, "pids-limit": true, "warm-sandboxes": true, "disk-reserve": true}

// splitArgs separates positional arguments from flags (and --json, and export's --git-branch).
func splitArgs(args []string) (pos, flags []string, asJSON bool, branch string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--json" || a == "-json":
			asJSON = true
		case (a == "--git-branch" || a == "-git-branch") && i+1 < len(args):
			i++
			branch = args[i]
		case strings.HasPrefix(a, "--git-branch="):
			branch = strings.TrimPrefix(a, "--git-branch=")
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if valueFlags[name] && !strings.Contains(name, "=") && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return pos, flags, asJSON, branch
}

// human runs one of the commands for people.
func human(ctx context.Context, name string, args []string, stdout io.Writer) error {
	hc := humanCommands[name]
	pos, flags, asJSON, branch := splitArgs(args)
	if len(pos) < len(hc.args) || len(pos) > len(hc.args)+hc.optional || (branch != "" && name != "export") {
		return usageError{fmt.Errorf("usage: sandkit-mcp %s [--json] [flags]", hc.usage)}
	}
	cfg, _, err := parseConfig(name, flags)
	if err != nil {
		return err
	}
	var roots []string
	if hc.roots != nil {
		for i, p := range pos {
			if abs, err := filepath.Abs(p); err == nil && i > 0 {
				pos[i] = abs
			}
		}
		roots = hc.roots(pos)
		if branch != "" {
			roots = []string{pos[len(pos)-1]}
		}
	}
	cs, err := connectDoor(ctx, cfg, "sandkit-cli", roots)
	if err != nil {
		return err
	}
	defer cs.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	toolArgs := hc.toolArgs(pos)
	if branch != "" {
		toolArgs["as"], toolArgs["branch"] = "git-branch", branch
	}
	res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: hc.tool, Arguments: toolArgs})
	if err != nil {
		return fmt.Errorf("%s: %w", hc.tool, err)
	}
	text := resultText(res)
	if res.IsError {
		return fmt.Errorf("%s", text)
	}
	out := map[string]any{}
	if b, err := json.Marshal(res.StructuredContent); err == nil {
		_ = json.Unmarshal(b, &out)
	}
	delete(out, "next") // the next steps are calls for agents
	switch {
	case asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case hc.table != nil:
		hc.table(stdout, out)
		return nil
	}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "next: ") {
			fmt.Fprintln(stdout, line)
		}
	}
	return nil
}

// doorArgs are the arguments of a stdio door this binary starts for cfg's data dir and sandbox
// settings (the CLI's and the demo's).
func doorArgs(cfg config) []string {
	return door.AppendSetFlags([]string{"--data-dir", cfg.dataDir, "--log-level", "warn"},
		"--bwrap", cfg.bwrap, "--provider", cfg.provider, "--config", cfg.configFile)
}

// connectDoor starts this binary as the stdio door of cfg's data dir (which starts the daemon
// when none runs) and connects an MCP client to it.
func connectDoor(ctx context.Context, cfg config, client string, roots []string) (*mcp.ClientSession, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := doorArgs(cfg)
	for _, r := range roots {
		args = append(args, "--host-root", r)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	c := mcp.NewClient(&mcp.Implementation{Name: client, Version: version}, nil)
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		return nil, fmt.Errorf("connect to the daemon of %s: %w", cfg.dataDir, err)
	}
	return cs, nil
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// Helpers for reading structured results.
func field(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	case bool:
		if v {
			return "yes"
		}
		return ""
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func items(m map[string]any, k string) []map[string]any {
	list, _ := m[k].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if e, ok := x.(map[string]any); ok {
			out = append(out, e)
		}
	}
	return out
}

// when shows a timestamp in the local time zone, to the second.
func when(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// newTable starts a table on w under a tab-separated header.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

// writeTable writes rows as a table under a tab-separated header, row giving a row's
// tab-separated cells; no rows is the line none instead. It reports whether there were rows.
func writeTable(w io.Writer, rows []map[string]any, none, header string, row func(map[string]any) string) bool {
	if len(rows) == 0 {
		fmt.Fprintln(w, none)
		return false
	}
	tw := newTable(w, header)
	for _, x := range rows {
		fmt.Fprintln(tw, row(x))
	}
	tw.Flush()
	return true
}

func workspacesTable(w io.Writer, out map[string]any) {
	writeTable(w, items(out, "workspaces"), "no workspaces", "NAME\tID\tHEAD\tSESSION\tUPDATED", func(x map[string]any) string {
		ses := ""
		if s, ok := x["session"].(map[string]any); ok {
			ses = field(s, "session_id") + " (" + field(s, "state") + ", " + field(s, "holder") + ")"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", field(x, "name"), field(x, "workspace_id"), field(x, "head"), ses, when(field(x, "updated_at")))
	})
	if field(out, "next_cursor") != "" {
		fmt.Fprintf(w, "(the first %d workspaces by name; more follow)\n", len(items(out, "workspaces")))
	}
}

func historyTable(w io.Writer, out map[string]any) {
	fmt.Fprintf(w, "workspace %s (%s), head %s\n", field(out, "name"), field(out, "workspace_id"), field(out, "head"))
	tw := newTable(w, "COMMIT\tWHEN\tKIND\tCHANGED\tMESSAGE")
	for _, c := range items(out, "commits") {
		changed := "?"
		if c["changes_known"] == true {
			changed = field(c, "changed_files") + " file(s)"
		}
		mark := ""
		if c["head"] == true {
			mark = " [head]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", field(c, "commit_id"), when(field(c, "created_at")), field(c, "kind"), changed, field(c, "message"), mark)
	}
	tw.Flush()
	if out["pruned_before"] == true {
		fmt.Fprintln(w, "(earlier commits were pruned by the retention policy)")
	}
}

func runsTable(w io.Writer, out map[string]any) {
	had := writeTable(w, items(out, "runs"), "no runs", "RUN\tSTARTED\tSTATUS\tEXIT\tCOMMIT\tCOMMAND", func(r map[string]any) string {
		commit := field(r, "commit_id")
		if r["unchanged"] == true {
			commit = "(no change)"
		}
		line := field(r, "command")
		if list, ok := r["args"].([]any); ok {
			for _, a := range list {
				line += " " + fmt.Sprint(a)
			}
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", field(r, "run_id"), when(field(r, "created_at")), field(r, "status"), field(r, "exit_code"), commit, line)
	})
	if next := field(out, "next_cursor"); had && next != "" {
		fmt.Fprintln(w, "(older runs exist)")
	}
}
