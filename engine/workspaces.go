package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/store"
)

// CreateWorkspace makes a new workspace. Its head is an empty commit, or, with a template, a
// commit of kind "setup" holding the template's snapshot (built first if it is not yet; see
// templates.go). The policy (or the operator default) must be durable and within the operator's
// limit.
func (e *Engine) CreateWorkspace(ctx context.Context, req CreateWorkspaceRequest) (Workspace, error) {
	if e.isClosed() {
		return Workspace{}, ErrClosed
	}
	id := newID(wsPrefix)
	name := req.Name
	if name == "" {
		name = "workspace-" + id[len(wsPrefix):len(wsPrefix)+8]
	}
	if err := validName(name); err != nil {
		return Workspace{}, err
	}
	if err := validLabels(req.Labels); err != nil {
		return Workspace{}, err
	}
	ports, err := validPorts(req.ExposedPorts)
	if err != nil {
		return Workspace{}, err
	}
	if err := e.providerPorts(ports); err != nil {
		return Workspace{}, err
	}
	pol := e.defPol
	if req.Policy != nil {
		if pol, err = e.checkPolicy(*req.Policy, useDefault); err != nil {
			return Workspace{}, err
		}
	}
	var def *templateDef
	if req.Template != "" && req.FromHostDir != "" {
		return Workspace{}, ArgError("from_host_dir", "a workspace starts from a template or from a host directory, not both")
	}
	if req.WithGit && req.FromHostDir == "" {
		return Workspace{}, ArgError("with_git", "with_git applies to from_host_dir")
	}
	if req.Template != "" {
		if def, err = e.tpl.lookup(req.Template); err != nil {
			return Workspace{}, err
		}
	}
	if def != nil || req.FromHostDir != "" {
		// Fail on a taken name before a setup that may take minutes.
		if err := e.st.View(func(tx *store.Tx) error {
			_, err := tx.WorkspaceByName(name)
			return err
		}); err == nil {
			return Workspace{}, errorf(ErrExists, "a workspace named %q already exists; pick another name or use that workspace", name)
		}
	}
	var imp *imported
	if def != nil || req.FromHostDir != "" {
		if err := e.checkSpace("create_workspace"); err != nil {
			return Workspace{}, err
		}
	}
	if req.FromHostDir != "" {
		if imp, err = e.importHostDir(ctx, req.FromHostDir, req.WithGit, req.Progress); err != nil {
			return Workspace{}, err
		}
	}
	w := store.Workspace{
		ID: id, Name: name, Labels: req.Labels, Provider: e.prov.Name(), Policy: pol,
		ExposedPorts: ports, Created: time.Now().UTC(),
	}
	// With a template, the setup snapshot may be rebuilt (a stale or replaced one) between
	// reading it and recording the workspace: the record is checked again in the same
	// transaction, and a moved one is read again.
	for attempt := 0; ; attempt++ {
		now := time.Now().UTC()
		first := store.Commit{
			ID: newID(commitPrefix), Workspace: id, Kind: CommitEmpty,
			Message: "empty workspace", Created: now,
		}
		var tplKey, tplSnap string
		if def != nil {
			ts, _, err := e.ensureTemplate(ctx, def, false, req.Progress)
			if err != nil {
				return Workspace{}, err
			}
			tplKey, tplSnap = ts.Key, ts.Snapshot
			first.Kind = CommitSetup
			first.Snapshot = ts.Snapshot
			first.Message = fmt.Sprintf("setup: template %s (%s)", def.name, cmdline(def.Command, def.Args))
			first.ChangedBytes, first.ChangedFiles = ts.ChangedBytes, ts.ChangedFiles
			w.Template = def.name
		}
		if imp != nil {
			first.Kind, first.Snapshot, first.Message = CommitImport, string(imp.info.Ref), imp.report.message()
			first.ChangedBytes, first.ChangedFiles, first.Import = imp.info.ChangedBytes, imp.info.ChangedFiles, imp.source()
		}
		w.Head, w.Updated = first.ID, now
		err = e.st.Update(func(tx *store.Tx) error {
			if tplKey != "" {
				cur, err := tx.TemplateSnapshot(tplKey)
				if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Snapshot != tplSnap) {
					return errTemplateMoved
				}
				if err != nil {
					return err
				}
			}
			if err := tx.PutCommit(first); err != nil {
				return err
			}
			return tx.CreateWorkspace(w)
		})
		if errors.Is(err, errTemplateMoved) && attempt < 3 {
			continue
		}
		break
	}
	if err != nil && imp != nil {
		e.gcSnapshots(string(imp.info.Ref))
	}
	if errors.Is(err, store.ErrExists) {
		return Workspace{}, errorf(ErrExists, "a workspace named %q already exists; pick another name or use that workspace", name)
	}
	if errors.Is(err, errTemplateMoved) {
		return Workspace{}, errorf(ErrBusy, "template %q was rebuilt several times while this workspace was being created; try again", def.name)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("create workspace: %w", err)
	}
	w.Version = 1
	e.log.Info("workspace created", "workspace", id, "name", name, "template", w.Template, "from_host_dir", req.FromHostDir)
	v := e.view(w)
	if imp != nil {
		v.Imported = &imp.report
	}
	return v, nil
}

// UpdateWorkspaceRequest holds update_workspace's arguments. A nil field stays as it is.
type UpdateWorkspaceRequest struct {
	// Workspace is an id or a name.
	Workspace string
	// Name renames the workspace (the rules of create_workspace; unique).
	Name *string
	// Labels replace all the workspace's labels (an empty map removes them).
	Labels *map[string]string
	// ExposedPorts replace the workspace's exposed ports (an empty list removes them).
	ExposedPorts *[]int
}

// UpdateWorkspace changes a workspace's durable metadata: its name, labels and exposed ports.
// It touches no files, makes no commit and queues behind nothing: runs and sessions refer to
// workspaces by id, and none of the three changes what a sandbox holds. The rules:
//
//   - A new name follows create_workspace's rules and must be free (ErrExists otherwise); the
//     old name stops resolving at once.
//   - Labels and the name may change while a session holds the workspace, by any caller: they
//     only describe it.
//   - Exposed ports may not change while a session is open: a session's ports are fixed when it
//     opens (Vercel routes them at start). The lease error names the session; its holder can
//     end it and open a new one, or give open_session exposed_ports for one session.
//   - The change is one compare-and-swap of the workspace record: all of it applies, or none.
func (e *Engine) UpdateWorkspace(ctx context.Context, req UpdateWorkspaceRequest) (Workspace, error) {
	if e.isClosed() {
		return Workspace{}, ErrClosed
	}
	if req.Name == nil && req.Labels == nil && req.ExposedPorts == nil {
		return Workspace{}, errorf(ErrInvalid, "update_workspace was given nothing to change: give name, labels or exposed_ports")
	}
	if req.Name != nil {
		if err := validName(*req.Name); err != nil {
			return Workspace{}, err
		}
	}
	if req.Labels != nil {
		if err := validLabels(*req.Labels); err != nil {
			return Workspace{}, err
		}
	}
	var ports []int
	if req.ExposedPorts != nil {
		var err error
		if ports, err = validPorts(*req.ExposedPorts); err != nil {
			return Workspace{}, err
		}
		if err := e.providerPorts(ports); err != nil {
			return Workspace{}, err
		}
	}
	var out store.Workspace
	err := e.st.Update(func(tx *store.Tx) error {
		cur, err := lookupTx(tx, req.Workspace)
		if err != nil {
			return err
		}
		if req.ExposedPorts != nil && !slices.Equal(ports, cur.ExposedPorts) {
			if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
				return noted(err, "exposed ports are fixed for a session's life, so they cannot change while one is open; "+
					"end the session first, or give open_session exposed_ports for a single session")
			}
		}
		if req.Name != nil {
			cur.Name = *req.Name
		}
		if req.Labels != nil {
			cur.Labels = maps.Clone(*req.Labels)
			if len(cur.Labels) == 0 {
				cur.Labels = nil
			}
		}
		if req.ExposedPorts != nil {
			cur.ExposedPorts = ports
		}
		cur.Updated = time.Now().UTC()
		out, err = tx.PutWorkspace(cur)
		return err
	})
	if errors.Is(err, store.ErrExists) {
		return Workspace{}, errorf(ErrExists, "a workspace named %q already exists; pick another name (nothing was changed)", *req.Name).
			with(ErrorFields{Argument: "name"})
	}
	if err != nil {
		return Workspace{}, err
	}
	e.log.Info("workspace updated", "workspace", out.ID, "name", out.Name)
	return e.view(out), nil
}

// ListWorkspacesRequest holds list_workspaces' arguments.
type ListWorkspacesRequest struct {
	// Label keeps workspaces with that label: "key" (any value) or "key=value"; "" keeps all.
	Label string
	// Limit is the page size: 0 means DefaultListWorkspaces, at most MaxListWorkspaces.
	Limit int
	// Cursor continues a listing: the next cursor a previous call returned; "" starts with the
	// first name.
	Cursor string
}

// ListWorkspaces lists workspaces sorted by name, a page at a time; next is the cursor of the
// following page, "" when there is none. A page costs what it returns, whatever the number of
// workspaces: names and labels are read through the store's indexes. A cursor stays valid while
// workspaces come and go: the next page goes on after the last name returned.
func (e *Engine) ListWorkspaces(ctx context.Context, req ListWorkspacesRequest) (ws []Workspace, next string, err error) {
	limit, err := CheckListWorkspacesLimit(req.Limit)
	if err != nil {
		return nil, "", err
	}
	after := ""
	if req.Cursor != "" {
		if after, err = decodeWorkspaceCursor(req.Cursor); err != nil {
			return nil, "", err
		}
	}
	var f store.LabelFilter
	if req.Label != "" {
		f.Key, f.Value, f.HasValue = strings.Cut(req.Label, "=")
	}
	var page []store.Workspace
	var more bool
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		page, more, err = tx.WorkspacePage(after, limit, f)
		return err
	}); err != nil {
		return nil, "", fmt.Errorf("list workspaces: %w", err)
	}
	out := make([]Workspace, 0, len(page))
	for _, w := range page {
		out = append(out, e.view(w))
	}
	if more {
		next = encodeWorkspaceCursor(page[len(page)-1].Name)
	}
	return out, next, nil
}

// A workspace cursor is opaque to agents: base64url of "w1 <name>".
const workspaceCursorVersion = "w1 "

func encodeWorkspaceCursor(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(workspaceCursorVersion + name))
}

func decodeWorkspaceCursor(c string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	name, ok := strings.CutPrefix(string(raw), workspaceCursorVersion)
	if err != nil || !ok || name == "" {
		return "", badArg("cursor", nil, nil, "cursor %q is not one list_workspaces returned; omit it to start from the first workspace", c)
	}
	return name, nil
}

// GetWorkspace finds a workspace by id or name.
func (e *Engine) GetWorkspace(ctx context.Context, ref string) (Workspace, error) {
	w, err := e.lookup(ref)
	if err != nil {
		return Workspace{}, err
	}
	return e.view(w), nil
}

// lookup resolves an id or a name to the stored workspace.
func (e *Engine) lookup(ref string) (store.Workspace, error) {
	var w store.Workspace
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		w, err = lookupTx(tx, ref)
		return err
	})
	return w, err
}

func lookupTx(tx *store.Tx, ref string) (store.Workspace, error) {
	if strings.TrimSpace(ref) == "" {
		return store.Workspace{}, errorf(ErrInvalid, "workspace is required (an id like ws_… or a name)")
	}
	if hasPrefix(ref, wsPrefix) {
		w, err := tx.Workspace(ref)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Workspace{}, err
		}
	}
	w, err := tx.WorkspaceByName(ref)
	if errors.Is(err, store.ErrNotFound) {
		return store.Workspace{}, errorf(ErrNotFound, "no workspace with id or name %q; list_workspaces shows the existing ones, create_workspace makes one", ref)
	}
	return w, err
}

// view turns a stored workspace into the agent-facing view.
func (e *Engine) view(w store.Workspace) Workspace {
	v := Workspace{Workspace: w}
	if w.Session != "" {
		_ = e.st.View(func(tx *store.Tx) error {
			if s, err := tx.Session(w.Session); err == nil && s.Open() {
				v.Lease = &Lease{SessionID: s.ID, State: s.State, Holder: s.HolderClient, Expires: s.Expires, Policy: s.Policy, holderConn: s.HolderConn}
			}
			return nil
		})
	}
	if w.Provider != e.prov.Name() {
		v.Warnings = append(v.Warnings, fmt.Sprintf("this workspace belongs to provider %q but this server runs provider %q; its commands cannot run here", w.Provider, e.prov.Name()))
	}
	// A stored default is durable; redacting anyway keeps a damaged record from showing a secret.
	v.Policy = policies.Redact(w.Policy)
	v.Credentials = policyCredentials(w.Policy)
	v.Warnings = append(v.Warnings, e.policyWarnings(w.Policy)...)
	if err := e.withinLimit(w.Policy); err != nil {
		v.Warnings = append(v.Warnings, fmt.Sprintf("this workspace's policy is wider than the operator now allows, so its commands and sessions are refused until set_policy narrows it: %v", err))
	}
	return v
}

// DeleteWorkspace deletes a workspace, its history and runs, and frees its snapshots. Runs queued
// or running on it are cancelled first.
func (e *Engine) DeleteWorkspace(ctx context.Context, ref string) error {
	if e.isClosed() {
		return ErrClosed
	}
	w, err := e.lookup(ref)
	if err != nil {
		return err
	}
	if err := e.checkLease(ctx, w.ID); err != nil {
		return noted(err, "a leased workspace cannot be deleted: its holder must commit_session or discard_session first")
	}
	e.cancelWorkspaceRuns(w.ID, "the workspace was deleted")
	var snaps []string
	var derr error
	j := e.enqueue(w.ID, func(context.Context) {
		derr = e.st.Update(func(tx *store.Tx) error {
			cur, err := tx.Workspace(w.ID)
			if err != nil {
				return err
			}
			if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
				return err
			}
			commits, err := tx.Commits(w.ID)
			if err != nil {
				return err
			}
			for _, c := range commits {
				snaps = append(snaps, c.Snapshot)
			}
			return tx.DeleteWorkspace(w.ID)
		})
	})
	<-j.done
	if errors.Is(derr, store.ErrNotFound) {
		return errorf(ErrNotFound, "workspace %q was already deleted", ref)
	}
	if errors.Is(derr, ErrLeased) {
		return derr
	}
	if derr != nil {
		return fmt.Errorf("delete workspace %s: %w", w.ID, derr)
	}
	e.gcSnapshots(snaps...)
	e.log.Info("workspace deleted", "workspace", w.ID, "name", w.Name)
	return nil
}
