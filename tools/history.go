package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

type workspaceHistoryArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
	Limit     int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=1000" jsonschema_description:"Return at most this many commits, newest first. Default 50, maximum 1000."`
}

// historyView is workspace_history's structured result.
type historyView struct {
	WorkspaceID string          `json:"workspace_id"`
	Name        string          `json:"name"`
	Head        string          `json:"head"`
	Commits     []engine.Commit `json:"commits"`
}

func (t *toolset) workspaceHistory() server.ServerTool {
	return define(t, toolDef[workspaceHistoryArgs]{
		name:  "workspace_history",
		title: "Workspace history",
		description: "List a workspace's commits from its head back, newest first. Every durable change is a commit: " +
			"each run_command (kind \"run\", with its run_id and exit code), each write_files (\"write\"), each commit_session (\"session\"), " +
			"each restore (\"restore\"), " +
			"and the first commit (\"empty\" or \"fork\"). Each commit has an id (c_…), its parent, a message and the size of its change. " +
			"Use a commit id with restore_workspace to go back to that state, or with fork_workspace to branch from it.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceHistoryArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			if a.Limit < 0 || a.Limit > maxHistoryLimit {
				return errorText(invalidArg("limit", fmt.Sprintf("%d is out of range: give 1 to %d, or omit it for %d", a.Limit, maxHistoryLimit, defaultHistoryLimit)))
			}
			limit := a.Limit
			if limit == 0 {
				limit = defaultHistoryLimit
			}
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return t.fail("workspace_history", err)
			}
			commits, err := t.eng.History(ctx, w.ID, limit)
			if err != nil {
				return t.fail("workspace_history", err)
			}
			if commits == nil {
				commits = []engine.Commit{}
			}
			v := historyView{WorkspaceID: w.ID, Name: w.Name, Head: w.Head, Commits: commits}
			return result(v, historyText(v, limit))
		},
	})
}

// historyText is workspace_history's human text: one line per commit.
func historyText(v historyView, limit int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "workspace %s (%s): %d commit(s), newest first", v.Name, v.WorkspaceID, len(v.Commits))
	if n := len(v.Commits); n == limit && v.Commits[n-1].Parent != "" {
		fmt.Fprintf(&b, " (older commits exist; raise limit, at most %d, to see them)", maxHistoryLimit)
	}
	for _, c := range v.Commits {
		fmt.Fprintf(&b, "\n%s  %s  %-7s  %s", c.ID, c.Created.UTC().Format(time.RFC3339), c.Kind, c.Message)
		if c.ID == v.Head {
			b.WriteString("  [head]")
		}
	}
	return b.String()
}
