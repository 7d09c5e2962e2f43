package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

type workspaceDiffArgs struct {
	Workspace string   `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	From      string   `json:"from,omitempty" jsonschema_description:"Commit id (c_…). Default: to's parent."`
	To        string   `json:"to,omitempty" jsonschema_description:"Commit id. Default: the head."`
	Paths     []string `json:"paths,omitempty" jsonschema_description:"Only these files or directories."`
}

// diffView is workspace_diff's result.
type diffView struct {
	WorkspaceID string `json:"workspace_id" jsonschema:"required"`
	// From is "" when to is a first commit: it is compared with the empty state.
	From  string            `json:"from" jsonschema:"required"`
	To    string            `json:"to" jsonschema:"required"`
	Files []engine.DiffFile `json:"files" jsonschema:"required"`
	// Diff is the unified diff of the text files, bounded; markers in it name what it leaves out.
	Diff string `json:"diff" jsonschema:"required"`
	// Changed counts every changed path, also those beyond files; the other totals count the
	// listed ones.
	Changed      int64 `json:"changed"`
	Added        int   `json:"added"`
	Modified     int   `json:"modified"`
	Deleted      int   `json:"deleted"`
	LinesAdded   int   `json:"lines_added"`
	LinesRemoved int   `json:"lines_removed"`
	// Truncated is set when the diff leaves out or cuts the diff of some files (diff_omitted on
	// each), or files does not list every change (incomplete).
	Truncated  bool `json:"truncated,omitempty"`
	Omitted    int  `json:"omitted_files,omitempty"`
	Incomplete bool `json:"incomplete,omitempty"`
	Steps
}

func (t *toolset) workspaceDiff() server.ServerTool {
	return define(t, toolDef[workspaceDiffArgs, diffView]{
		name:  "workspace_diff",
		title: "Workspace diff",
		description: "What changed between two commits (default: the head's last change): files added, modified, deleted with sizes, " +
			"and a unified diff of text files, at most " + sizeText(engine.MaxDiffBytes) + ".",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceDiffArgs) (diffView, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return diffView{}, err
			}
			d, err := t.eng.Diff(ctx, engine.DiffRequest{Workspace: a.Workspace, From: a.From, To: a.To, Paths: a.Paths})
			if err != nil {
				return diffView{}, err
			}
			v := diffView{
				WorkspaceID: d.Workspace, From: d.From, To: d.To, Files: d.Files, Diff: d.Text,
				Changed: d.Changed, Added: d.Added, Modified: d.Modified, Deleted: d.Deleted,
				LinesAdded: d.LinesAdded, LinesRemoved: d.LinesRemoved,
				Truncated: d.Omitted > 0 || d.Incomplete, Omitted: d.Omitted, Incomplete: d.Incomplete,
			}
			if v.Files == nil {
				v.Files = []engine.DiffFile{}
			}
			for _, f := range d.Files {
				if !f.DiffOmitted {
					continue
				}
				commit := d.To
				if f.Op == "deleted" {
					commit = d.From
				}
				v.then("read_file", "read "+f.Path+" whole", map[string]any{"workspace": d.Workspace, "path": f.Path, "commit": commit})
				args := map[string]any{"workspace": d.Workspace, "to": d.To, "paths": []string{f.Path}}
				if d.From != "" {
					args["from"] = d.From
				}
				v.then("workspace_diff", "the diff of "+f.Path+" alone", args)
				break
			}
			return v, nil
		},
	})
}

// text is workspace_diff's human text: a summary line, one line per file, then the diff.
func (v diffView) text() string {
	var b strings.Builder
	from := v.From
	if from == "" {
		from = "(empty)"
	}
	fmt.Fprintf(&b, "%s → %s: ", from, v.To)
	if len(v.Files) == 0 && v.Changed == 0 {
		b.WriteString("no changes")
		return b.String()
	}
	fmt.Fprintf(&b, "%d changed path(s): %d added, %d modified, %d deleted; +%d -%d lines", v.Changed, v.Added, v.Modified, v.Deleted, v.LinesAdded, v.LinesRemoved)
	if v.Incomplete {
		fmt.Fprintf(&b, " (%d listed; give paths to narrow)", len(v.Files))
	}
	marks := map[string]string{"added": "+", "modified": "~", "deleted": "-"}
	for _, f := range v.Files {
		fmt.Fprintf(&b, "\n%s%s", marks[f.Op], f.Path)
		var facts []string
		if f.Type != "file" {
			facts = append(facts, f.Type)
		}
		switch {
		case f.SizeBefore != nil && f.SizeAfter != nil:
			facts = append(facts, sizeText(*f.SizeBefore)+" → "+sizeText(*f.SizeAfter))
		case f.SizeBefore != nil:
			facts = append(facts, sizeText(*f.SizeBefore))
		case f.SizeAfter != nil:
			facts = append(facts, sizeText(*f.SizeAfter))
		}
		if f.Binary {
			facts = append(facts, "binary")
		}
		if f.LinesAdded+f.LinesRemoved > 0 {
			facts = append(facts, fmt.Sprintf("+%d -%d", f.LinesAdded, f.LinesRemoved))
		}
		if f.Note != "" {
			facts = append(facts, f.Note)
		}
		if len(facts) > 0 {
			b.WriteString("  (" + strings.Join(facts, ", ") + ")")
		}
	}
	if v.Diff != "" {
		b.WriteString("\n\n" + v.Diff)
	}
	return b.String()
}
