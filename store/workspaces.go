package store

import (
	"errors"
	"fmt"
	"sort"
)

// Workspace returns the workspace with the given id.
func (t *Tx) Workspace(id string) (Workspace, error) {
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return Workspace{}, err
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return Workspace{}, fmt.Errorf("store: workspace %q %w", id, ErrNotFound)
	}
	return decode[Workspace](bucketWorkspaces, id, raw)
}

// WorkspaceByName returns the workspace with the given name, found through the name index.
func (t *Tx) WorkspaceByName(name string) (Workspace, error) {
	names, err := t.bucket(bucketWorkspaceNames)
	if err != nil {
		return Workspace{}, err
	}
	raw := names.Get([]byte(name))
	if raw == nil {
		return Workspace{}, fmt.Errorf("store: workspace named %q %w", name, ErrNotFound)
	}
	id := string(raw)
	w, err := t.Workspace(id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Workspace{}, corrupt(bucketWorkspaceNames, name, fmt.Errorf("index names workspace %q, which does not exist", id))
	case err != nil:
		return Workspace{}, err
	case w.Name != name:
		return Workspace{}, corrupt(bucketWorkspaceNames, name, fmt.Errorf("index names workspace %q, which is named %q", id, w.Name))
	}
	return w, nil
}

// CountWorkspaces counts the workspaces without decoding them.
func (t *Tx) CountWorkspaces() (int, error) {
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return 0, err
	}
	return b.Stats().KeyN, nil
}

// Workspaces returns every workspace, sorted by name. One damaged record fails the whole listing.
func (t *Tx) Workspaces() ([]Workspace, error) {
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return nil, err
	}
	var out []Workspace
	err = b.ForEach(func(k, v []byte) error {
		w, err := decode[Workspace](bucketWorkspaces, string(k), v)
		if err != nil {
			return err
		}
		out = append(out, w)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateWorkspace stores a new workspace with Version 1. It fails with ErrExists when the id or
// the name is taken.
func (t *Tx) CreateWorkspace(w Workspace) error {
	if w.ID == "" || w.Name == "" {
		return fmt.Errorf("store: create workspace: id %q and name %q must both be set", w.ID, w.Name)
	}
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return err
	}
	names, err := t.bucket(bucketWorkspaceNames)
	if err != nil {
		return err
	}
	if b.Get([]byte(w.ID)) != nil {
		return fmt.Errorf("store: workspace %q %w", w.ID, ErrExists)
	}
	if owner := names.Get([]byte(w.Name)); owner != nil {
		return fmt.Errorf("store: workspace name %q %w (taken by workspace %q)", w.Name, ErrExists, owner)
	}
	w.Version = 1
	if err := put(b, bucketWorkspaces, w.ID, w); err != nil {
		return err
	}
	if err := t.indexLabels(nil, &w); err != nil {
		return err
	}
	return putRaw(names, bucketWorkspaceNames, w.Name, []byte(w.ID))
}

// PutWorkspace replaces a workspace, storing w with the stored Version plus one (a write
// transaction is serializable: the caller reads the workspace, decides and writes in the same
// transaction, so there is nothing left to compare). Renaming moves the name index entry; a name
// taken by another workspace fails with ErrExists. It returns the record as stored.
func (t *Tx) PutWorkspace(w Workspace) (Workspace, error) {
	if w.Name == "" {
		return Workspace{}, fmt.Errorf("store: put workspace %q: name must be set", w.ID)
	}
	cur, err := t.Workspace(w.ID)
	if err != nil {
		return Workspace{}, err
	}
	names, err := t.bucket(bucketWorkspaceNames)
	if err != nil {
		return Workspace{}, err
	}
	if w.Name != cur.Name {
		if owner := names.Get([]byte(w.Name)); owner != nil && string(owner) != w.ID {
			return Workspace{}, fmt.Errorf("store: workspace name %q %w (taken by workspace %q)", w.Name, ErrExists, owner)
		}
		if string(names.Get([]byte(cur.Name))) == w.ID {
			if err := del(names, bucketWorkspaceNames, cur.Name); err != nil {
				return Workspace{}, err
			}
		}
		if err := putRaw(names, bucketWorkspaceNames, w.Name, []byte(w.ID)); err != nil {
			return Workspace{}, err
		}
	}
	w.Version = cur.Version + 1
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return Workspace{}, err
	}
	if err := put(b, bucketWorkspaces, w.ID, w); err != nil {
		return Workspace{}, err
	}
	if err := t.indexLabels(&cur, &w); err != nil {
		return Workspace{}, err
	}
	return w, nil
}

// DeleteWorkspace removes a workspace and everything it owns: its name index entry, its commits,
// its runs, their output and their idempotency keys. Other workspaces' records are untouched, even
// those that share a snapshot or name one of its commits as a fork source. A workspace whose own
// record is damaged can still be deleted (its name entry is then found by scanning the index).
func (t *Tx) DeleteWorkspace(id string) error {
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return err
	}
	names, err := t.bucket(bucketWorkspaceNames)
	if err != nil {
		return err
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("store: workspace %q %w", id, ErrNotFound)
	}
	var stale []string
	if w, err := decode[Workspace](bucketWorkspaces, id, raw); err == nil {
		if string(names.Get([]byte(w.Name))) == id {
			stale = append(stale, w.Name)
		}
		if err := t.indexLabels(&w, nil); err != nil {
			return err
		}
	} else {
		if err := t.unindexID(id); err != nil {
			return err
		}
		_ = names.ForEach(func(k, v []byte) error {
			if string(v) == id {
				stale = append(stale, string(k))
			}
			return nil
		})
	}
	for _, name := range stale {
		if err := del(names, bucketWorkspaceNames, name); err != nil {
			return err
		}
	}
	if err := t.deleteCommitsOf(id); err != nil {
		return err
	}
	if err := t.deleteRunsOf(id); err != nil {
		return err
	}
	if err := t.deleteSessionsOf(id); err != nil {
		return err
	}
	return del(b, bucketWorkspaces, id)
}

// workspaceExists reports whether a workspace record is stored under id, without decoding it.
func (t *Tx) workspaceExists(id string) (bool, error) {
	b, err := t.bucket(bucketWorkspaces)
	if err != nil {
		return false, err
	}
	return b.Get([]byte(id)) != nil, nil
}
