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
	HostDir   string `json:"host_dir" jsonschema:"required" jsonschema_description:"New or empty directory under a host root."`
	As        string `json:"as,omitempty" jsonschema_description:"Default files (git-branch and patch: later)."`
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
	s := fmt.Sprintf("exported commit %s of workspace %s to %s: %d files, %d bytes", r.Commit, r.Workspace, r.HostDir, r.Files, r.Bytes)
	if len(r.Skipped) > 0 {
		s += "\n  skipped: " + strings.Join(r.Skipped, ", ")
	}
	return s
}

func (t *toolset) exportWorkspace() server.ServerTool {
	return define(t, toolDef[exportArgs, exportResult]{
		name:        "export_workspace",
		title:       "Export workspace",
		description: "Write a commit's /workspace files into a host directory the operator shared.",
		hints:       hints{openWorld: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *exportArgs) (exportResult, error) {
			progress := t.startProgress(ctx, req)
			rep, err := t.eng.ExportWorkspace(ctx, engine.ExportRequest{
				Workspace: a.Workspace, Commit: a.Commit, HostDir: a.HostDir, As: a.As, Progress: progress.callback(),
			})
			progress.Stop()
			if err != nil {
				return exportResult{}, err
			}
			return exportResult{ExportReport: rep}, nil
		},
	})
}
