package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

type createWorkspaceArgs struct {
	Name         string            `json:"name,omitempty" jsonschema_description:"Unique name, usable everywhere in place of the id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit. Omit it for a generated name."`
	Policy       *policyArg        `json:"policy,omitempty" jsonschema_description:"The workspace's default network egress policy for its commands (set_policy changes it later). Omit it for the server default (normally deny-all: no network). It is stored, so credentials must come from the server's environment (presets do that by default); it must lie within the limit the server's operator set."`
	ExposedPorts []int             `json:"exposed_ports,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"TCP ports (1-65535, at most 16) that live sessions of this workspace may publish as URLs."`
	Labels       map[string]string `json:"labels,omitempty" jsonschema_description:"Free-form key/value labels (at most 32) for finding workspaces later with list_workspaces."`
	Template     string            `json:"template,omitempty" jsonschema_description:"Name of a shared setup template defined by the server's operator (the server's instructions list them; an unknown name fails with the list): the workspace starts from the template's prepared state (e.g. a toolchain and dependencies installed) instead of empty. The first use of a template runs its setup command, which may take minutes; later uses are instant. Omit it to start empty."`
}

func (t *toolset) createWorkspace() server.ServerTool {
	return define(t, toolDef[createWorkspaceArgs]{
		name:  "create_workspace",
		title: "Create workspace",
		description: "Create a durable sandboxed workspace: a private /workspace directory (plus a home directory) " +
			"whose state persists between commands, with a history of commits you can list, restore and fork. " +
			"Start here when you need a fresh place to work; use list_workspaces to find an existing one instead. " +
			"The new workspace starts empty (its head is an empty first commit), or with template from an operator-defined setup " +
			"(its head is then a commit of kind \"setup\"; a template's first use runs its setup and sends progress). " +
			"Run commands in it with run_command and put files in it with write_files. " +
			"Returns the workspace (id, name, head commit, policy, policy_credentials).",
		hints: hints{},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *createWorkspaceArgs) *mcp.CallToolResult {
			pol, msg := a.Policy.policy("policy")
			if msg != "" {
				return errorText(msg)
			}
			var progress *progressReporter
			if a.Template != "" {
				progress = t.startProgress(ctx, req)
			}
			w, err := t.eng.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{
				Name: a.Name, Policy: pol, ExposedPorts: a.ExposedPorts, Labels: a.Labels, Template: a.Template,
				Progress: progress.callback(),
			})
			progress.Stop()
			if err != nil {
				return t.fail("create_workspace", err)
			}
			return result(w, "created "+workspaceLine(w))
		},
	})
}

type listWorkspacesArgs struct {
	Label string `json:"label,omitempty" jsonschema_description:"Only workspaces with this label: \"key\" (any value) or \"key=value\". Omit it to list all."`
}

// workspaceList is list_workspaces' structured result.
type workspaceList struct {
	Workspaces []engine.Workspace `json:"workspaces"`
}

func (t *toolset) listWorkspaces() server.ServerTool {
	return define(t, toolDef[listWorkspacesArgs]{
		name:  "list_workspaces",
		title: "List workspaces",
		description: "List the workspaces on this server, sorted by name, optionally only those carrying a label. " +
			"Use it to find a workspace you or another agent made earlier (workspaces outlive conversations). " +
			"Each entry has the id, name, labels, policy and head commit; get_workspace shows one in full.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *listWorkspacesArgs) *mcp.CallToolResult {
			ws, err := t.eng.ListWorkspaces(ctx, a.Label)
			if err != nil {
				return t.fail("list_workspaces", err)
			}
			if ws == nil {
				ws = []engine.Workspace{}
			}
			var b strings.Builder
			switch {
			case len(ws) == 0 && a.Label != "":
				fmt.Fprintf(&b, "no workspaces with label %q", a.Label)
			case len(ws) == 0:
				b.WriteString("no workspaces yet; create_workspace makes one")
			default:
				fmt.Fprintf(&b, "%d workspace(s):", len(ws))
				for _, w := range ws {
					b.WriteString("\n- " + workspaceLine(w))
				}
			}
			return result(workspaceList{Workspaces: ws}, b.String())
		},
	})
}

type workspaceRefArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
}

func (t *toolset) getWorkspace() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs]{
		name:  "get_workspace",
		title: "Get workspace",
		description: "Show one workspace: id, name, labels, template, exposed ports, head commit (its current durable state), " +
			"its default egress policy (policy: mode, domains, services) with where its credentials come from (policy_credentials: environment variable names, never values), " +
			"the live session holding it if any (session: session_id, state attached or detached, holder, expires_at, its policy; see open_session), " +
			"and any warnings (e.g. a policy this server cannot enforce, or a credential variable the server lacks). Use workspace_history for its commits.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return t.fail("get_workspace", err)
			}
			return result(w, workspaceLine(w))
		},
	})
}

type setPolicyArgs struct {
	Workspace string     `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
	Policy    *policyArg `json:"policy" jsonschema:"required" jsonschema_description:"The new default egress policy. It is stored, so credentials must come from the server's environment ({\"env\": \"NAME\"}, the default of every preset); a literal secret is refused here (give it in run_command's or open_session's policy instead). It must lie within the limit the server's operator set."`
}

func (t *toolset) setPolicy() server.ServerTool {
	return define(t, toolDef[setPolicyArgs]{
		name:  "set_policy",
		title: "Set workspace egress policy",
		description: "Replace a workspace's default network egress policy: what every later run_command, and every session opened later, may reach " +
			"(a run_command or open_session with its own policy uses that one instead, for that run or session only). " +
			"Use it when the work needs network access it lacks (e.g. {\"mode\": \"allow\", \"services\": [{\"id\": \"npm\"}]} to install packages), or to close access again ({\"mode\": \"deny-all\"}). " +
			"It waits for commands already queued on the workspace (they keep the old policy). While a live session holds the workspace it is refused, " +
			"except for the session's holder: then the running session switches to the new policy too, unless it was opened with its own policy. " +
			"Returns the workspace with its new policy and policy_credentials (where credentials come from; never their values).",
		hints: hints{idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *setPolicyArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			if a.Policy == nil {
				return errorText(invalidArg("policy", `missing; give the new policy, e.g. {"mode": "deny-all"} or {"mode": "allow", "services": [{"id": "npm"}]}`))
			}
			pol, msg := a.Policy.policy("policy")
			if msg != "" {
				return errorText(msg)
			}
			// Without a connection identity the caller holds no session: the lease rule applies.
			h, _ := HolderFromContext(ctx)
			w, err := t.eng.SetPolicy(ctx, h, a.Workspace, *pol)
			if err != nil {
				return t.fail("set_policy", err)
			}
			return result(w, "set the policy of "+workspaceLine(w))
		},
	})
}

// deletedWorkspace is delete_workspace's structured result.
type deletedWorkspace struct {
	Deleted bool   `json:"deleted"`
	ID      string `json:"workspace_id"`
	Name    string `json:"name"`
}

func (t *toolset) deleteWorkspace() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs]{
		name:  "delete_workspace",
		title: "Delete workspace",
		description: "Permanently delete a workspace with its files, its whole history of commits and its run records. " +
			"Commands queued or running in it are cancelled first. This cannot be undone: to keep a copy, fork_workspace first. " +
			"To go back to an earlier state instead, use restore_workspace.",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			// Resolve the reference once, so the deletion and the answer name the same workspace.
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return t.fail("delete_workspace", err)
			}
			if err := t.eng.DeleteWorkspace(ctx, w.ID); err != nil {
				return t.fail("delete_workspace", err)
			}
			return result(deletedWorkspace{Deleted: true, ID: w.ID, Name: w.Name},
				fmt.Sprintf("deleted workspace %s (%s) with its history", w.Name, w.ID))
		},
	})
}

// restoredWorkspace is restore_workspace's structured result: the workspace, and the new commit
// that holds the restored state.
type restoredWorkspace struct {
	engine.Workspace
	Commit engine.Commit `json:"commit"`
}

type restoreWorkspaceArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace: its id (ws_…) or its name."`
	CommitID  string `json:"commit_id" jsonschema:"required" jsonschema_description:"The earlier commit (c_…) whose state to bring back; workspace_history lists them."`
}

func (t *toolset) restoreWorkspace() server.ServerTool {
	return define(t, toolDef[restoreWorkspaceArgs]{
		name:  "restore_workspace",
		title: "Restore workspace to a commit",
		description: "Bring a workspace back to the state of an earlier commit. Nothing is lost: this adds a new commit " +
			"(kind \"restore\") whose files are those of the chosen commit, and moves the head to it; the commits after it " +
			"stay in the history and can be restored in turn. Use workspace_history to find the commit. " +
			"To try something from an old state without moving this workspace, use fork_workspace instead.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *restoreWorkspaceArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			if strings.TrimSpace(a.CommitID) == "" {
				return errorText(invalidArg("commit_id", "missing; give the commit (c_…) to restore; workspace_history lists them"))
			}
			w, c, err := t.eng.Restore(ctx, a.Workspace, a.CommitID)
			if err != nil {
				return t.fail("restore_workspace", err)
			}
			return result(restoredWorkspace{Workspace: w, Commit: c},
				fmt.Sprintf("restored workspace %s to the state of %s; new head %s", w.Name, a.CommitID, c.ID))
		},
	})
}

type forkWorkspaceArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"The workspace to fork: its id (ws_…) or its name."`
	CommitID  string `json:"commit_id,omitempty" jsonschema_description:"The commit (c_…) to fork from; workspace_history lists them. Omit it to fork from the current head."`
	Name      string `json:"name,omitempty" jsonschema_description:"Unique name for the new workspace (same rules as create_workspace). Omit it for a generated name."`
}

func (t *toolset) forkWorkspace() server.ServerTool {
	return define(t, toolDef[forkWorkspaceArgs]{
		name:  "fork_workspace",
		title: "Fork workspace",
		description: "Make a new, independent workspace that starts from the state of a commit of an existing one (its head by default). " +
			"Changes in either never affect the other. Use it to try an alternative without touching the original, " +
			"or to keep a copy before a risky change. The new workspace has the source's policy, ports and labels. " +
			"Returns the new workspace.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *forkWorkspaceArgs) *mcp.CallToolResult {
			if msg := workspaceRef(a.Workspace); msg != "" {
				return errorText(msg)
			}
			w, err := t.eng.Fork(ctx, a.Workspace, a.CommitID, a.Name)
			if err != nil {
				return t.fail("fork_workspace", err)
			}
			from := a.Workspace
			if a.CommitID != "" {
				from += " at " + a.CommitID
			}
			return result(w, fmt.Sprintf("forked %s into %s", from, workspaceLine(w)))
		},
	})
}

// workspaceLine is a one-line summary of a workspace.
func workspaceLine(w engine.Workspace) string {
	s := fmt.Sprintf("workspace %s (%s): head %s, policy %s", w.Name, w.ID, w.Head, w.Policy.String())
	if len(w.Credentials) > 0 {
		s += " (credentials: " + strings.Join(w.Credentials, "; ") + ")"
	}
	if w.Template != "" {
		s += ", from template " + w.Template
	}
	if len(w.Labels) > 0 {
		keys := make([]string, 0, len(w.Labels))
		for k := range w.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + w.Labels[k]
		}
		s += ", labels " + strings.Join(keys, ",")
	}
	if l := w.Lease; l != nil {
		s += fmt.Sprintf("\n  leased by session %s (%s, held by %s, expires %s, policy %s): run_command, write_files, restore, fork, set_policy and delete fail until it ends; "+
			"only its holder can use it; attach_session takes over a detached one", l.SessionID, l.State, l.Holder, l.Expires.UTC().Format(time.RFC3339), l.Policy)
	}
	for _, warn := range w.Warnings {
		s += "\n  warning: " + warn
	}
	return s
}
