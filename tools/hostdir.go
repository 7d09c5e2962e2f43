package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Host directories (engine/hostdir.go): the roots a call may read and write come from the
// server, never from the agent. Options.HostRoots apply to every connection; a client session
// that implements SessionWithHostRoots (the daemon's Unix-socket door, whose stdio door announced
// its --host-root) adds its own.

// SessionWithHostRoots is a client session with host roots of its own connection.
type SessionWithHostRoots interface {
	HostRoots() []string
}

// withHostRoots puts the call's host roots in ctx.
func (t *toolset) withHostRoots(ctx context.Context) context.Context {
	roots := t.opts.HostRoots
	if s, ok := server.ClientSessionFromContext(ctx).(SessionWithHostRoots); ok {
		if own := s.HostRoots(); len(own) > 0 {
			roots = append(append([]string{}, own...), roots...)
		}
	}
	if len(roots) == 0 {
		return ctx
	}
	return engine.WithHostRoots(ctx, roots)
}

// importLine is the text line of an import.
func importLine(r *engine.ImportReport) string {
	s := fmt.Sprintf("imported %s: %d files, %d bytes", r.HostDir, r.Files, r.Bytes)
	if r.Git {
		s += ", git HEAD " + r.GitHead
		if r.Dirty {
			s += " (with uncommitted changes)"
		}
		if r.WithGit {
			s += ", .git included"
		}
	}
	if r.SkippedCount > 0 {
		s += fmt.Sprintf("\n  skipped %d: %s", r.SkippedCount, strings.Join(r.Skipped, ", "))
	}
	return s
}

type exportArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id or name."`
	Commit    string `json:"commit_id,omitempty" jsonschema_description:"Default: head."`
	HostDir   string `json:"host_dir" jsonschema:"required" jsonschema_description:"files: new or empty directory; git-branch: the repository imported from; patch: new file. Under a host root."`
	As        string `json:"as,omitempty" jsonschema_description:"Default files. git-branch: commits on the import's git HEAD (workspace's .gitignore applies), repo work tree untouched. patch: diff since the import."`
	Branch    string `json:"branch,omitempty" jsonschema_description:"git-branch: default sandkit/<workspace name>; an existing one only fast-forwards."`
}

// JSONSchemaExtend lists the formats.
func (exportArgs) JSONSchemaExtend(s *jsonschema.Schema) {
	if p, ok := s.Properties.Get("as"); ok {
		for _, f := range engine.ExportFormats {
			p.Enum = append(p.Enum, f)
		}
	}
}

// exportResult is export_workspace's result.
type exportResult struct {
	engine.ExportReport
	Steps
}

func (r exportResult) text() string {
	var s string
	switch r.As {
	case engine.ExportGitBranch:
		s = fmt.Sprintf("exported commit %s of workspace %s as branch %s of %s: commit %s", r.Commit, r.Workspace, r.Branch, r.HostDir, r.GitCommit)
		if r.Unchanged {
			s += " (the branch already held it; nothing written)"
		}
	case engine.ExportPatch:
		s = fmt.Sprintf("exported the changes of workspace %s up to commit %s as a patch: %s (%d files, %d bytes)", r.Workspace, r.Commit, r.HostDir, r.Files, r.Bytes)
	default:
		s = fmt.Sprintf("exported commit %s of workspace %s to %s: %d files, %d bytes", r.Commit, r.Workspace, r.HostDir, r.Files, r.Bytes)
	}
	if r.Review != "" {
		s += "\n  review: " + r.Review
	}
	if r.Apply != "" {
		s += "\n  apply: " + r.Apply
	}
	if len(r.Skipped) > 0 {
		s += "\n  skipped: " + strings.Join(r.Skipped, ", ")
	}
	return s
}

func (t *toolset) exportWorkspace() server.ServerTool {
	return define(t, toolDef[exportArgs, exportResult]{
		name:        "export_workspace",
		title:       "Export workspace",
		description: "Write a commit's /workspace to a host directory the operator shared: as files, a git branch, or a patch. The result has the commands a human runs to review and apply it.",
		hints:       hints{openWorld: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *exportArgs) (exportResult, error) {
			progress := t.startProgress(ctx, req)
			rep, err := t.eng.ExportWorkspace(ctx, engine.ExportRequest{
				Workspace: a.Workspace, Commit: a.Commit, HostDir: a.HostDir, As: a.As, Branch: a.Branch, Progress: progress.callback(),
			})
			progress.Stop()
			if err != nil {
				return exportResult{}, err
			}
			res := exportResult{ExportReport: rep}
			if rep.Origin != "" && rep.Origin != rep.Commit {
				res.then("workspace_diff", "what the export holds: the changes since the import, to check before a human applies it",
					map[string]any{"workspace": rep.Workspace, "from": rep.Origin, "to": rep.Commit})
			}
			return res, nil
		},
	})
}
