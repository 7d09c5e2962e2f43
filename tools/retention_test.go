package tools

import (
	"context"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// TestRetentionHistory: under keep_commits=2, workspace_history says that earlier commits were
// pruned (pruned_before and pruned_by, and in the text), and a tool naming a pruned commit fails with kind
// not_found saying the retention policy pruned it and to pick one from workspace_history; the
// results match their output schemas (the rig checks).
func TestRetentionHistory(t *testing.T) {
	eng := newEngineWith(t, func(o *engine.Options) { o.Retention = engine.Retention{KeepCommits: 2} })
	r := newRigOn(t, eng)
	r.ok("create_workspace", map[string]any{"name": "w"})
	var commits []string
	for _, f := range []string{"a", "b", "c", "d"} {
		out, _ := r.ok("write_files", map[string]any{"workspace": "w", "files": []any{map[string]any{"path": f, "content": f}}})
		commits = append(commits, str(sub(out, "commit"), "commit_id"))
	}
	if _, err := eng.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, text := r.ok("workspace_history", map[string]any{"workspace": "w"})
	if h["pruned_before"] != true || h["pruned_by"] != "keep_commits=2" || h["more"] != nil || len(h["commits"].([]any)) != 2 ||
		!strings.Contains(text, "earlier commits were pruned by the retention policy: keep_commits=2") {
		t.Errorf("history after pruning: %v\n%s", h, text)
	}
	if h, _ := r.ok("workspace_history", map[string]any{"workspace": "w", "limit": 1}); h["pruned_before"] != nil || h["more"] != true {
		t.Errorf("history with limit 1: %v; want more, not pruned", h)
	}
	pruned := commits[0]
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"restore_workspace", map[string]any{"workspace": "w", "commit_id": pruned}},
		{"fork_workspace", map[string]any{"workspace": "w", "commit_id": pruned}},
		{"read_file", map[string]any{"workspace": "w", "commit": pruned, "path": "a"}},
		{"workspace_diff", map[string]any{"workspace": "w", "from": pruned}},
	} {
		out, text := r.fails(c.tool, c.args, "was pruned by the retention policy (keep_commits=2)")
		e := sub(out, "error")
		if str(e, "kind") != "not_found" || str(e, "commit_id") != pruned || !strings.Contains(text, "workspace_history") {
			t.Errorf("%s on a pruned commit: %v\n%s", c.tool, out, text)
		}
	}
}
