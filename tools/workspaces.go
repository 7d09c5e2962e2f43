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
	"github.com/sandkit/sandkit-mcp/policies"
)

// workspaceView is a workspace as tools return it.
type workspaceView struct {
	ID   string `json:"workspace_id" jsonschema:"required"`
	Name string `json:"name" jsonschema:"required"`
	// Head is the commit holding the workspace's durable state.
	Head string `json:"head" jsonschema:"required"`
	// Provider runs its sandboxes (local, vercel).
	Provider string        `json:"provider"`
	Policy   policies.Spec `json:"policy" jsonschema:"required"`
	// Credentials says where the policy's secrets come from (variable names, never values).
	Credentials  []string          `json:"policy_credentials,omitempty"`
	ExposedPorts []int             `json:"exposed_ports,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Template     string            `json:"template,omitempty"`
	Session      *leaseView        `json:"session,omitempty"`
	Warnings     []string          `json:"warnings,omitempty"`
	Created      time.Time         `json:"created_at"`
	Updated      time.Time         `json:"updated_at"`
}

// leaseView is the open session holding a workspace.
type leaseView struct {
	SessionID   string    `json:"session_id"`
	State       string    `json:"state"`
	Holder      string    `json:"holder"`
	HolderIsYou bool      `json:"holder_is_you"`
	ExpiresAt   time.Time `json:"expires_at"`
	Policy      string    `json:"policy,omitempty"`
}

func newWorkspaceView(ctx context.Context, w engine.Workspace) workspaceView {
	v := workspaceView{
		ID: w.ID, Name: w.Name, Head: w.Head, Provider: w.Provider, Policy: policyView(w.Policy), Credentials: w.Credentials,
		ExposedPorts: w.ExposedPorts, Labels: w.Labels, Template: w.Template, Warnings: w.Warnings,
		Created: w.Created, Updated: w.Updated,
	}
	if l := w.Lease; l != nil {
		v.Session = &leaseView{SessionID: l.SessionID, State: l.State, Holder: l.Holder, HolderIsYou: l.HeldBy(engine.CallerFrom(ctx)),
			ExpiresAt: l.Expires.UTC(), Policy: l.Policy}
	}
	return v
}

// line is a one-line summary of a workspace (plus a line for its session and each warning).
func (v workspaceView) line() string {
	pol, _ := policies.FromSpec(v.Policy)
	s := fmt.Sprintf("workspace %s (%s): head %s, policy %s", v.Name, v.ID, v.Head, pol.String())
	if len(v.Credentials) > 0 {
		s += " (credentials: " + strings.Join(v.Credentials, "; ") + ")"
	}
	if len(v.ExposedPorts) > 0 {
		s += fmt.Sprintf(", ports %v", v.ExposedPorts)
	}
	if v.Template != "" {
		s += ", from template " + v.Template
	}
	if len(v.Labels) > 0 {
		keys := make([]string, 0, len(v.Labels))
		for k := range v.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + v.Labels[k]
		}
		s += ", labels " + strings.Join(keys, ",")
	}
	if l := v.Session; l != nil {
		who := l.Holder
		if l.HolderIsYou {
			who += " (you)"
		}
		s += fmt.Sprintf("\n  leased by session %s (%s, held by %s, expires %s, policy %s): durable tools (run_command, write_files, restore, fork, set_policy, delete) fail until it ends",
			l.SessionID, l.State, who, l.ExpiresAt.Format(time.RFC3339), l.Policy)
	}
	for _, w := range v.Warnings {
		s += "\n  warning: " + w
	}
	return s
}

// sessionSteps are the next calls for a workspace that a session holds.
func (v workspaceView) sessionSteps(st *Steps) {
	l := v.Session
	switch {
	case l == nil:
	case l.HolderIsYou:
		st.then("session_exec", "work in your session", map[string]any{"session_id": l.SessionID})
		st.then("commit_session", "save it and release the workspace", map[string]any{"session_id": l.SessionID})
	case l.State == "detached":
		st.then("attach_session", "take over the detached session", map[string]any{"workspace": v.Name})
	}
}

// workspaceResult is the result of the tools that return one workspace.
type workspaceResult struct {
	workspaceView
	// Imported says what from_host_dir imported.
	Imported *engine.ImportReport `json:"imported,omitempty"`
	Steps
	verb string
}

func (r workspaceResult) text() string {
	s := r.line()
	if r.verb != "" {
		s = r.verb + " " + s
	}
	if r.Imported != nil {
		s += "\n" + importLine(r.Imported)
	}
	return s
}

type createWorkspaceArgs struct {
	Name         string            `json:"name,omitempty" jsonschema_description:"Unique name, usable in place of the id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit. Default: generated."`
	Policy       *policyArg        `json:"policy,omitempty" jsonschema_description:"Default egress policy of its commands, as in set_policy. Default: the server's (normally no network)."`
	ExposedPorts []int             `json:"exposed_ports,omitempty" jsonschema_description:"TCP ports (at most {ports_max}) that live sessions may publish with session_url."`
	Labels       map[string]string `json:"labels,omitempty" jsonschema_description:"Key/value labels (at most {labels_max}) for list_workspaces."`
	Template     string            `json:"template,omitempty" jsonschema_description:"Operator-defined setup template to start from (the server's instructions list them); its first use runs the setup and may take minutes. Default: empty."`
	FromHostDir  string            `json:"from_host_dir,omitempty" jsonschema_description:"Or start from this host directory (under a host root the operator shared); a git work tree imports what git status shows, without .git. At most {import_files} entries, {import_bytes}."`
	WithGit      bool              `json:"with_git,omitempty" jsonschema_description:"Import .git too."`
}

func (t *toolset) createWorkspace() server.ServerTool {
	return define(t, toolDef[createWorkspaceArgs, workspaceResult]{
		name:  "create_workspace",
		title: "Create workspace",
		description: "Create a durable sandboxed workspace: /workspace (plus a home directory) whose files persist between commands, " +
			"with a history of commits to list, restore and fork. Use list_workspaces to find an existing one instead.",
		// With a template, the setup command runs under the template's network policy.
		hints: hints{openWorld: true},
		handle: func(ctx context.Context, req mcp.CallToolRequest, a *createWorkspaceArgs) (workspaceResult, error) {
			pol, err := a.Policy.policy("policy")
			if err != nil {
				return workspaceResult{}, err
			}
			var progress *progressReporter
			if a.Template != "" || a.FromHostDir != "" {
				progress = t.startProgress(ctx, req)
			}
			w, err := t.eng.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{
				Name: a.Name, Policy: pol, ExposedPorts: a.ExposedPorts, Labels: a.Labels, Template: a.Template,
				FromHostDir: a.FromHostDir, WithGit: a.WithGit, Progress: progress.callback(),
			})
			progress.Stop()
			if err != nil {
				return workspaceResult{}, err
			}
			r := workspaceResult{workspaceView: newWorkspaceView(ctx, w), Imported: w.Imported, verb: "created"}
			r.then("write_files", "put files in it", map[string]any{"workspace": w.Name})
			r.then("run_command", "run a command in it", map[string]any{"workspace": w.Name})
			return r, nil
		},
	})
}

type listWorkspacesArgs struct {
	Label  string `json:"label,omitempty" jsonschema_description:"Only workspaces with this label: \"key\" or \"key=value\"."`
	Limit  int    `json:"limit,omitempty" jsonschema_description:"At most this many: default {list_workspaces_default}, at most {list_workspaces_max}."`
	Cursor string `json:"cursor,omitempty" jsonschema_description:"A previous result's next_cursor, for the next page."`
}

// workspaceList is list_workspaces' result.
type workspaceList struct {
	Workspaces []workspaceView `json:"workspaces" jsonschema:"required"`
	NextCursor string          `json:"next_cursor,omitempty"`
	Steps
	label string
}

func (l workspaceList) text() string {
	var b strings.Builder
	switch {
	case len(l.Workspaces) == 0 && l.label != "":
		fmt.Fprintf(&b, "no workspaces with label %q", l.label)
	case len(l.Workspaces) == 0:
		b.WriteString("no workspaces yet")
	default:
		fmt.Fprintf(&b, "%d workspace(s):", len(l.Workspaces))
		for _, w := range l.Workspaces {
			b.WriteString("\n- " + w.line())
		}
	}
	if l.NextCursor != "" {
		fmt.Fprintf(&b, "\nmore follow: list_workspaces with cursor %q", l.NextCursor)
	}
	return b.String()
}

func (t *toolset) listWorkspaces() server.ServerTool {
	return define(t, toolDef[listWorkspacesArgs, workspaceList]{
		name:        "list_workspaces",
		title:       "List workspaces",
		description: "List the workspaces on this server (they outlive conversations), sorted by name, optionally by label.",
		hints:       hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *listWorkspacesArgs) (workspaceList, error) {
			ws, next, err := t.eng.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Label: a.Label, Limit: a.Limit, Cursor: a.Cursor})
			if err != nil {
				return workspaceList{}, err
			}
			l := workspaceList{Workspaces: make([]workspaceView, 0, len(ws)), NextCursor: next, label: a.Label}
			for _, w := range ws {
				l.Workspaces = append(l.Workspaces, newWorkspaceView(ctx, w))
			}
			if next != "" {
				args := map[string]any{"cursor": next}
				if a.Label != "" {
					args["label"] = a.Label
				}
				if a.Limit != 0 {
					args["limit"] = a.Limit
				}
				l.then("list_workspaces", "the next page", args)
			}
			if len(ws) == 0 && a.Cursor == "" {
				l.then("create_workspace", "make one", nil)
			}
			return l, nil
		},
	})
}

type workspaceRefArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
}

func (t *toolset) getWorkspace() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs, workspaceResult]{
		name:  "get_workspace",
		title: "Get workspace",
		description: "Show one workspace: head commit, egress policy and where its credentials come from, exposed ports, labels, " +
			"the live session holding it if any, and warnings.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) (workspaceResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return workspaceResult{}, err
			}
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return workspaceResult{}, err
			}
			r := workspaceResult{workspaceView: newWorkspaceView(ctx, w)}
			r.sessionSteps(&r.Steps)
			return r, nil
		},
	})
}

type setPolicyArgs struct {
	Workspace string     `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	Policy    *policyArg `json:"policy" jsonschema:"required" jsonschema_description:"{policy_grammar}"`
}

func (t *toolset) setPolicy() server.ServerTool {
	return define(t, toolDef[setPolicyArgs, workspaceResult]{
		name:  "set_policy",
		title: "Set workspace egress policy",
		description: "Replace a workspace's default network egress policy for later commands and sessions " +
			"(a run_command or open_session policy overrides it for that run or session). It is stored, so credentials must come from server variables, not literal secrets. " +
			"It waits for queued commands; while a session holds the workspace only its holder may set it, and the live session switches too unless it has its own policy.",
		hints: hints{idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *setPolicyArgs) (workspaceResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return workspaceResult{}, err
			}
			if a.Policy == nil {
				return workspaceResult{}, argError("policy", `missing; give the new policy, e.g. {} for no network or {"allow": ["npm"]}`)
			}
			pol, err := a.Policy.policy("policy")
			if err != nil {
				return workspaceResult{}, err
			}
			w, err := t.eng.SetPolicy(ctx, engine.CallerFrom(ctx), a.Workspace, *pol)
			if err != nil {
				return workspaceResult{}, err
			}
			return workspaceResult{workspaceView: newWorkspaceView(ctx, w), verb: "set the policy of"}, nil
		},
	})
}

type updateWorkspaceArgs struct {
	Workspace    string             `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	Name         *string            `json:"name,omitempty" jsonschema_description:"New unique name."`
	Labels       *map[string]string `json:"labels,omitempty" jsonschema_description:"Replaces all."`
	ExposedPorts *[]int             `json:"exposed_ports,omitempty" jsonschema_description:"Replaces all."`
}

func (t *toolset) updateWorkspace() server.ServerTool {
	return define(t, toolDef[updateWorkspaceArgs, workspaceResult]{
		name:        "update_workspace",
		title:       "Update workspace",
		description: "Rename a workspace or replace its labels or exposed_ports (not while a session is open). No commit.",
		hints:       hints{idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *updateWorkspaceArgs) (workspaceResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return workspaceResult{}, err
			}
			w, err := t.eng.UpdateWorkspace(ctx, engine.UpdateWorkspaceRequest{
				Workspace: a.Workspace, Name: a.Name, Labels: a.Labels, ExposedPorts: a.ExposedPorts,
			})
			if err != nil {
				return workspaceResult{}, err
			}
			r := workspaceResult{workspaceView: newWorkspaceView(ctx, w), verb: "updated"}
			r.sessionSteps(&r.Steps)
			return r, nil
		},
	})
}

// deletedWorkspace is delete_workspace's result.
type deletedWorkspace struct {
	ID   string `json:"workspace_id" jsonschema:"required"`
	Name string `json:"name" jsonschema:"required"`
	Steps
}

func (d deletedWorkspace) text() string {
	return fmt.Sprintf("deleted workspace %s (%s) with its history", d.Name, d.ID)
}

func (t *toolset) deleteWorkspace() server.ServerTool {
	return define(t, toolDef[workspaceRefArgs, deletedWorkspace]{
		name:  "delete_workspace",
		title: "Delete workspace",
		description: "Permanently delete a workspace with its files, history and run records; queued or running commands are cancelled. " +
			"Cannot be undone (fork_workspace first to keep a copy).",
		hints: hints{destructive: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *workspaceRefArgs) (deletedWorkspace, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return deletedWorkspace{}, err
			}
			// Resolve the reference once, so the deletion and the answer name the same workspace.
			w, err := t.eng.GetWorkspace(ctx, a.Workspace)
			if err != nil {
				return deletedWorkspace{}, err
			}
			if err := t.eng.DeleteWorkspace(ctx, w.ID); err != nil {
				return deletedWorkspace{}, err
			}
			return deletedWorkspace{ID: w.ID, Name: w.Name}, nil
		},
	})
}

type restoreWorkspaceArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name."`
	CommitID  string `json:"commit_id" jsonschema:"required" jsonschema_description:"The earlier commit (c_…) to bring back; workspace_history lists them."`
}

// restoredWorkspace is restore_workspace's result.
type restoredWorkspace struct {
	WorkspaceID string `json:"workspace_id" jsonschema:"required"`
	Name        string `json:"name" jsonschema:"required"`
	Head        string `json:"head" jsonschema:"required"`
	// The restore's commit, or unchanged when the head already had that state.
	madeChange
	Steps
	source string
}

func (r restoredWorkspace) text() string {
	if r.Unchanged {
		return fmt.Sprintf("workspace %s already has the state of %s: no commit, the head stays %s", r.Name, r.source, r.Head)
	}
	return fmt.Sprintf("restored workspace %s to the state of %s as commit %s (%s, against the head it replaced); it is the new head",
		r.Name, r.source, r.Commit.ID, r.Commit.changeText())
}

func (t *toolset) restoreWorkspace() server.ServerTool {
	return define(t, toolDef[restoreWorkspaceArgs, restoredWorkspace]{
		name:  "restore_workspace",
		title: "Restore workspace to a commit",
		description: "Bring a workspace back to the state of an earlier commit. Nothing is lost: a new commit (kind restore) with that state " +
			"becomes the head, listing what it changed; later commits stay in the history. To try an old state without moving this workspace, use fork_workspace.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *restoreWorkspaceArgs) (restoredWorkspace, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return restoredWorkspace{}, err
			}
			w, c, err := t.eng.Restore(ctx, a.Workspace, a.CommitID)
			if err != nil {
				return restoredWorkspace{}, err
			}
			r := restoredWorkspace{WorkspaceID: w.ID, Name: w.Name, Head: w.Head, source: a.CommitID}
			r.madeChange = madeCommit(c, w.Head)
			return r, nil
		},
	})
}

type forkWorkspaceArgs struct {
	Workspace string `json:"workspace" jsonschema:"required" jsonschema_description:"Workspace id (ws_…) or name to fork."`
	CommitID  string `json:"commit_id,omitempty" jsonschema_description:"Commit (c_…) to fork from. Default: the head."`
	Name      string `json:"name,omitempty" jsonschema_description:"Name of the new workspace (rules as in create_workspace). Default: generated."`
}

func (t *toolset) forkWorkspace() server.ServerTool {
	return define(t, toolDef[forkWorkspaceArgs, workspaceResult]{
		name:  "fork_workspace",
		title: "Fork workspace",
		description: "Make a new, independent workspace starting from a commit of an existing one (its head by default), " +
			"with the same policy, ports and labels: try an alternative, or keep a copy before a risky change.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *forkWorkspaceArgs) (workspaceResult, error) {
			if err := workspaceRef(a.Workspace); err != nil {
				return workspaceResult{}, err
			}
			w, err := t.eng.Fork(ctx, a.Workspace, a.CommitID, a.Name)
			if err != nil {
				return workspaceResult{}, err
			}
			from := a.Workspace
			if a.CommitID != "" {
				from += " at " + a.CommitID
			}
			r := workspaceResult{workspaceView: newWorkspaceView(ctx, w), verb: "forked " + from + " into"}
			r.then("run_command", "work in the fork", map[string]any{"workspace": w.Name})
			return r, nil
		},
	})
}
