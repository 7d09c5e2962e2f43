package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// CreateWorkspace makes a new workspace whose head is an empty commit.
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
	pol := e.defPol
	if req.Policy != nil {
		if pol, err = normalizePolicy(*req.Policy); err != nil {
			return Workspace{}, err
		}
	}
	if req.Template != "" {
		return Workspace{}, fmt.Errorf("%w: template %q is not defined: this server has no setup templates configured", ErrNotFound, req.Template)
	}
	now := time.Now().UTC()
	first := store.Commit{
		ID: newID(commitPrefix), Workspace: id, Kind: CommitEmpty,
		Message: "empty workspace", Created: now,
	}
	w := store.Workspace{
		ID: id, Name: name, Labels: req.Labels, Provider: e.prov.Name(), Policy: pol,
		ExposedPorts: ports, Head: first.ID, Created: now, Updated: now,
	}
	err = e.st.Update(func(tx *store.Tx) error {
		if err := tx.PutCommit(first); err != nil {
			return err
		}
		return tx.CreateWorkspace(w)
	})
	if errors.Is(err, store.ErrExists) {
		return Workspace{}, fmt.Errorf("%w: a workspace named %q already exists; pick another name or use that workspace", ErrExists, name)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("create workspace: %w", err)
	}
	w.Version = 1
	e.log.Info("workspace created", "workspace", id, "name", name)
	return e.view(w), nil
}

// ListWorkspaces lists workspaces sorted by name, optionally filtered by a label: "key" matches
// workspaces that have the label, "key=value" those whose label has that value.
func (e *Engine) ListWorkspaces(ctx context.Context, label string) ([]Workspace, error) {
	var all []store.Workspace
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		all, err = tx.Workspaces()
		return err
	}); err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	key, val, hasVal := strings.Cut(label, "=")
	out := []Workspace{}
	for _, w := range all {
		if label != "" {
			v, ok := w.Labels[key]
			if !ok || (hasVal && v != val) {
				continue
			}
		}
		out = append(out, e.view(w))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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
		return store.Workspace{}, fmt.Errorf("%w: workspace is required (an id like ws_… or a name)", ErrInvalid)
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
		return store.Workspace{}, fmt.Errorf("%w: no workspace with id or name %q; list_workspaces shows the existing ones, create_workspace makes one", ErrNotFound, ref)
	}
	return w, err
}

// view turns a stored workspace into the agent-facing view.
func (e *Engine) view(w store.Workspace) Workspace {
	v := Workspace{Workspace: w}
	if w.Session != "" {
		_ = e.st.View(func(tx *store.Tx) error {
			if s, err := tx.Session(w.Session); err == nil && s.Open() {
				v.Lease = &Lease{SessionID: s.ID, State: s.State, Holder: s.HolderClient, Expires: s.Expires}
			}
			return nil
		})
	}
	if w.Provider != e.prov.Name() {
		v.Warnings = append(v.Warnings, fmt.Sprintf("this workspace belongs to provider %q but this server runs provider %q; its commands cannot run here", w.Provider, e.prov.Name()))
	}
	if w.Policy.Mode != "deny-all" && !e.prov.Capabilities().Egress {
		v.Warnings = append(v.Warnings, fmt.Sprintf("egress policy %q is stored but not enforced by the %s provider yet: commands in this workspace have no network access at all", w.Policy.String(), e.prov.Name()))
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
	if err := e.checkLease(w.ID); err != nil {
		return fmt.Errorf("%w (a leased workspace cannot be deleted: its holder must commit_session or discard_session first)", err)
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
			if err := checkLeaseTx(tx, cur); err != nil {
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
		return fmt.Errorf("%w: workspace %q was already deleted", ErrNotFound, ref)
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
