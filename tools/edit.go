package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

type editFileArgs struct {
	Workspace string `json:"workspace,omitempty" jsonschema_description:"Workspace id (ws_…) or name. Give it or session_id."`
	SessionID string `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) instead."`
	Path      string `json:"path" jsonschema:"required" jsonschema_description:"Relative to /workspace, absolute under it, or ~/…."`
	OldText   string `json:"old_text" jsonschema:"required" jsonschema_description:"Exact text to replace, whitespace included."`
	// NewText is a pointer so that a missing new_text is told from "" (delete old_text).
	NewText    *string `json:"new_text" jsonschema:"required" jsonschema_description:"Its replacement; \"\" deletes it."`
	ReplaceAll bool    `json:"replace_all,omitempty" jsonschema_description:"Replace all occurrences; else exactly one must match."`
}

// editResult is edit_file's result.
type editResult struct {
	WorkspaceID  string `json:"workspace_id,omitempty"`
	SessionID    string `json:"session_id,omitempty"`
	Path         string `json:"path" jsonschema:"required"`
	Replacements int    `json:"replacements" jsonschema:"required"`
	// Size is the file's size after the edit.
	Size int64 `json:"size"`
	// Line is where the first replacement starts in the edited file; Context the lines around
	// it, each "<number>\t<line>".
	Line    int    `json:"line"`
	Context string `json:"context"`
	// The durable edit's commit, or unchanged when the provider saw no change.
	madeChange
	Steps
}

func (r editResult) text() string {
	what := fmt.Sprintf("edited %s: %d replacement(s) from line %d, now %s", r.Path, r.Replacements, r.Line, sizeText(r.Size))
	switch {
	case r.SessionID != "":
		what += fmt.Sprintf(" in session %s (not committed)", r.SessionID)
	case r.Unchanged:
		what += "; that changed nothing, so there is no commit and the head stays"
	default:
		what += "; commit " + r.Commit.ID + " (" + r.Commit.changeText() + ")"
	}
	return what + "\n" + r.Context
}

func (t *toolset) editFile() server.ServerTool {
	return define(t, toolDef[editFileArgs, editResult]{
		name:  "edit_file",
		title: "Edit file",
		description: "Replace exact text in a UTF-8 text file (up to {max_file_size}) instead of rewriting it, keeping its mode: " +
			"with workspace as ONE commit (queued; refused while a session holds it), with session_id live.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *editFileArgs) (editResult, error) {
			if err := fileTarget(a.Workspace, a.SessionID); err != nil {
				return editResult{}, err
			}
			if a.NewText == nil {
				return editResult{}, argError("new_text", "missing; give the text that replaces old_text, or \"\" to delete old_text")
			}
			req := engine.EditRequest{Path: a.Path, OldText: a.OldText, NewText: *a.NewText, ReplaceAll: a.ReplaceAll}
			if a.SessionID != "" {
				h, err := t.holder(ctx, "edit_file")
				if err != nil {
					return editResult{}, err
				}
				ed, err := t.eng.SessionEditFile(ctx, h, a.SessionID, req)
				if err != nil {
					return editResult{}, err
				}
				r := editView(ed)
				r.SessionID = a.SessionID
				r.then("session_exec", "try the change live", map[string]any{"session_id": a.SessionID})
				r.then("commit_session", "save the session's changes as one commit", map[string]any{"session_id": a.SessionID})
				return r, nil
			}
			ed, err := t.eng.EditFile(ctx, a.Workspace, req)
			if err != nil {
				return editResult{}, err
			}
			r := editView(ed)
			r.WorkspaceID = ed.Commit.Workspace
			r.madeChange = madeCommit(ed.Commit, ed.Commit.ID)
			r.then("run_command", "test the change", map[string]any{"workspace": a.Workspace})
			return r, nil
		},
	})
}

// editView is the part of edit_file's result the engine's Edit tells.
func editView(ed engine.Edit) editResult {
	return editResult{Path: ed.Path, Replacements: ed.Replacements, Size: ed.Size, Line: ed.Line, Context: ed.Context}
}
