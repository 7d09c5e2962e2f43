package tools

import (
	"context"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Completions of resource template arguments and prompt arguments (completion/complete):
//
//   - workspace: workspace names starting with the value;
//   - commit: commit ids of the context's workspace, newest first;
//   - path: entries of the typed directory, at head or at the context's commit;
//   - run_id: recent runs of the context's workspace (none without one).
//
// Any other argument, or a failure (an unknown workspace), completes nothing: completion is a
// hint, never an error.

// maxCompletions is the most values one completion returns (the spec's bound).
const maxCompletions = 100

// ServerOptions are the mcp-go options the resources and completions need; pass them to
// server.NewMCPServer along with the others, and Register on that server.
func ServerOptions(e *engine.Engine) []server.ServerOption {
	c := &completer{eng: e}
	return []server.ServerOption{
		server.WithResourceCapabilities(true, false), // subscribe: subscriptions.go, with Hooks
		server.WithCompletions(),
		server.WithResourceCompletionProvider(c),
		server.WithPromptCompletionProvider(c),
	}
}

type completer struct{ eng *engine.Engine }

// CompletePromptArgument completes a prompt's workspace argument.
func (c *completer) CompletePromptArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if arg.Name != "workspace" {
		return completion(nil), nil
	}
	return completion(c.workspaces(ctx, arg.Value)), nil
}

// CompleteResourceArgument completes the arguments of the resource templates.
func (c *completer) CompleteResourceArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	ws := cc.Arguments["workspace"]
	var values []string
	switch arg.Name {
	case "workspace":
		values = c.workspaces(ctx, arg.Value)
	case "commit":
		values = c.commits(ctx, ws, arg.Value)
	case "path":
		values = c.paths(ctx, ws, cc.Arguments["commit"], arg.Value)
	case "run_id":
		values = c.runs(ctx, ws, arg.Value)
	}
	return completion(values), nil
}

func completion(values []string) *mcp.Completion {
	if values == nil {
		values = []string{}
	}
	more := len(values) > maxCompletions
	if more {
		values = values[:maxCompletions]
	}
	return &mcp.Completion{Values: values, HasMore: more}
}

// workspaces are the names starting with prefix, by name (one more than fit, to tell HasMore).
func (c *completer) workspaces(ctx context.Context, prefix string) []string {
	var out []string
	cursor := ""
	for len(out) <= maxCompletions {
		ws, next, err := c.eng.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Limit: engine.MaxListWorkspaces, Cursor: cursor})
		if err != nil {
			return nil
		}
		for _, w := range ws {
			if strings.HasPrefix(w.Name, prefix) {
				out = append(out, w.Name)
			} else if w.Name > prefix && len(out) > 0 {
				return out // sorted by name: past the prefix
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return out
}

func (c *completer) commits(ctx context.Context, ws, prefix string) []string {
	if ws == "" {
		return nil
	}
	commits, err := c.eng.History(ctx, ws, engine.MaxHistoryLimit)
	if err != nil {
		return nil
	}
	var out []string
	for _, cm := range commits {
		if strings.HasPrefix(cm.ID, prefix) {
			out = append(out, cm.ID)
		}
	}
	return out
}

// paths lists the directory the value names up to its last slash, and keeps the entries that
// start with the value; directories end with a slash.
func (c *completer) paths(ctx context.Context, ws, commit, value string) []string {
	if ws == "" || strings.HasPrefix(value, "~") || strings.HasPrefix(value, "/") {
		return nil
	}
	dir := ""
	if i := strings.LastIndex(value, "/"); i >= 0 {
		dir = value[:i]
	}
	entries, err := c.eng.ListFilesAt(ctx, ws, commit, dir, 1)
	if err != nil {
		return nil
	}
	var out []string
	for _, en := range entries {
		p := strings.TrimPrefix(en.Path, "/workspace/")
		if en.Type == "dir" {
			p += "/"
		}
		if strings.HasPrefix(p, value) {
			out = append(out, p)
		}
	}
	return out
}

func (c *completer) runs(ctx context.Context, ws, prefix string) []string {
	if ws == "" {
		return nil
	}
	runs, _, err := c.eng.ListRuns(ctx, engine.ListRunsRequest{Workspace: ws, Limit: engine.MaxListRuns})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range runs {
		if strings.HasPrefix(r.ID, prefix) {
			out = append(out, r.ID)
		}
	}
	return out
}
