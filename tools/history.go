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

// commitView is a commit as tools return it.
type commitView struct {
	ID     string `json:"commit_id" jsonschema:"required"`
	Parent string `json:"parent,omitempty"`
	// Kind is empty, run, write, session, restore, fork, setup or import.
	Kind    string `json:"kind" jsonschema:"required"`
	Message string `json:"message"`
	RunID   string `json:"run_id,omitempty"`
	// Source is the commit a restore or fork took its state from.
	Source string `json:"source_commit,omitempty"`
	// ChangesKnown says whether the provider told what the commit changed (older commits, first
	// commits and the vercel provider's: unknown); then Changes lists the first changed paths and
	// ChangedFiles counts all of them.
	ChangesKnown bool         `json:"changes_known"`
	Changes      []pathChange `json:"changes,omitempty"`
	ChangedFiles int64        `json:"changed_files"`
	ChangedBytes int64        `json:"changed_bytes"`
	Created      time.Time    `json:"created_at"`
	IsHead       bool         `json:"head,omitempty"`
	// Import is where an import commit came from.
	Import *importSourceView `json:"import,omitempty"`
}

// importSourceView is the host directory an import commit was made from: its git HEAD and
// whether it had uncommitted changes, for a git work tree.
type importSourceView struct {
	HostDir string `json:"host_dir"`
	Git     bool   `json:"git,omitempty"`
	GitHead string `json:"git_head,omitempty"`
	Dirty   bool   `json:"dirty,omitempty"`
	WithGit bool   `json:"with_git,omitempty"`
}

// pathChange is one changed path of a commit.
type pathChange struct {
	Path string `json:"path"`
	// Op is added, modified or deleted.
	Op string `json:"op"`
}

// Bounds of the changed paths a result lists per commit.
const (
	commitPaths  = 50 // a result about one commit
	historyPaths = 5  // each commit of workspace_history
)

// newCommitView shows c, listing at most paths of its changed paths.
func newCommitView(c engine.Commit, head string, paths int) commitView {
	v := commitView{
		ID: c.ID, Parent: c.Parent, Kind: c.Kind, Message: c.Message, RunID: c.RunID, Source: c.Source,
		ChangesKnown: c.ChangesKnown, ChangedFiles: c.ChangedFiles, ChangedBytes: c.ChangedBytes, Created: c.Created.UTC(), IsHead: c.ID == head,
	}
	if im := c.Import; im != nil {
		v.Import = &importSourceView{HostDir: im.HostDir, Git: im.Git, GitHead: im.GitHead, Dirty: im.Dirty, WithGit: im.WithGit}
	}
	for i, ch := range c.Changes {
		if i == paths {
			break
		}
		v.Changes = append(v.Changes, pathChange{Path: ch.Path, Op: ch.Op})
	}
	return v
}

// madeChange is what a durable change made, in the results of the tools that make one: its
// commit, or Unchanged when it changed nothing (no commit, the head stays).
type madeChange struct {
	Commit    *commitView `json:"commit,omitempty"`
	Unchanged bool        `json:"unchanged,omitempty"`
}

// madeCommit shows the commit a durable change made (head is the workspace's head after it), or
// unchanged when it made none (an empty c).
func madeCommit(c engine.Commit, head string) madeChange {
	if c.ID == "" {
		return madeChange{Unchanged: true}
	}
	cv := newCommitView(c, head, commitPaths)
	return madeChange{Commit: &cv}
}

// changeText summarizes what a commit changed: "2 file(s) changed, 28 bytes: +a.txt ~b/c -d".
func (c commitView) changeText() string {
	switch {
	case !c.ChangesKnown && c.Parent == "":
		return "the first commit"
	case !c.ChangesKnown:
		return "changes unknown"
	}
	s := fmt.Sprintf("%d file(s) changed, %s", c.ChangedFiles, sizeText(c.ChangedBytes))
	if len(c.Changes) == 0 {
		return s
	}
	marks := map[string]string{"added": "+", "modified": "~", "deleted": "-"}
	parts := make([]string, 0, len(c.Changes))
	for _, ch := range c.Changes {
		parts = append(parts, marks[ch.Op]+ch.Path)
	}
	s += ": " + strings.Join(parts, " ")
	if more := c.ChangedFiles - int64(len(c.Changes)); more > 0 {
		s += fmt.Sprintf(" (and %d more)", more)
	}
	return s
}

type workspaceHistoryArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	Limit     int    `json:"limit,omitempty" jsonschema_description:"At most this many commits, newest first: 1 to {history_max}, default {history_default}."`
}

// historyView is workspace_history's result.
type historyView struct {
	WorkspaceID string       `json:"workspace_id" jsonschema:"required"`
	Name        string       `json:"name" jsonschema:"required"`
	Head        string       `json:"head" jsonschema:"required"`
	Commits     []commitView `json:"commits" jsonschema:"required"`
	// More is true when older commits exist beyond limit.
	More bool `json:"more,omitempty"`
	// PrunedBefore is true when the oldest commit listed had a parent that the operator's
	// retention policy pruned: the history before it is gone.
	PrunedBefore bool `json:"pruned_before,omitempty"`
	// PrunedBy names that policy, as the operator config writes it ("keep_commits=3").
	PrunedBy string `json:"pruned_by,omitempty"`
	Steps
}

func (v historyView) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workspace %s (%s): %d commit(s), newest first", v.Name, v.WorkspaceID, len(v.Commits))
	if v.More {
		b.WriteString(" (older commits exist: raise limit)")
	}
	if v.PrunedBefore {
		fmt.Fprintf(&b, " (earlier commits were pruned by the retention policy: %s)", v.PrunedBy)
	}
	for _, c := range v.Commits {
		fmt.Fprintf(&b, "\n%s  %s  %-7s  %s  (%s)", c.ID, c.Created.Format(time.RFC3339), c.Kind, c.Message, c.changeText())
		if c.IsHead {
			b.WriteString("  [head]")
		}
	}
	return b.String()
}

func (t *toolset) workspaceHistory() server.ServerTool {
	return define(t, toolDef[workspaceHistoryArgs, historyView]{
		name:  "workspace_history",
		title: "Workspace history",
		description: "List a workspace's commits from the head back, newest first: each run_command, write_files, commit_session and restore " +
			"that changed something made one, with its first changed paths (+added ~modified -deleted) and totals. Use a commit id with restore_workspace or fork_workspace.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceHistoryArgs) (historyView, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return historyView{}, err
			}
			page, err := t.eng.HistoryOf(ctx, a.Workspace, a.Limit)
			if err != nil {
				return historyView{}, err
			}
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return historyView{}, err
			}
			v := historyView{WorkspaceID: w.ID, Name: w.Name, Head: w.Head, Commits: make([]commitView, 0, len(page.Commits)),
				More: page.More, PrunedBefore: page.PrunedBy != "", PrunedBy: page.PrunedBy}
			for _, c := range page.Commits {
				v.Commits = append(v.Commits, newCommitView(c, w.Head, historyPaths))
			}
			return v, nil
		},
	})
}
