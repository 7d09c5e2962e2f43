package store

import (
	"fmt"
	"sort"
)

// Commit returns the commit with the given id.
func (t *Tx) Commit(id string) (Commit, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return Commit{}, err
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return Commit{}, fmt.Errorf("store: commit %q %w", id, ErrNotFound)
	}
	return decode[Commit](bucketCommits, id, raw)
}

// PutCommit stores a new commit. Commits are immutable: an id that is already stored fails with
// ErrExists. Neither Workspace nor Parent has to exist yet, so that creating or forking a workspace
// may store its first commit before the workspace record in the same Update; a caller storing a
// commit for an existing workspace reads that workspace in the same Update (to move its head), which
// keeps a late commit from outliving a deleted workspace.
func (t *Tx) PutCommit(c Commit) error {
	if c.ID == "" || c.Workspace == "" {
		return fmt.Errorf("store: put commit: id %q and workspace %q must both be set", c.ID, c.Workspace)
	}
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return err
	}
	if b.Get([]byte(c.ID)) != nil {
		return fmt.Errorf("store: commit %q %w (commits are immutable)", c.ID, ErrExists)
	}
	idx, err := t.nested(bucketWorkspaceCommits, c.Workspace, true)
	if err != nil {
		return err
	}
	if err := put(b, bucketCommits, c.ID, c); err != nil {
		return err
	}
	return putRaw(idx, bucketWorkspaceCommits+"/"+c.Workspace, c.ID, []byte{})
}

// Commits returns every commit of a workspace, oldest first (by Created, then by id). It fails
// with ErrNotFound when the workspace does not exist.
func (t *Tx) Commits(workspaceID string) ([]Commit, error) {
	ok, err := t.workspaceExists(workspaceID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("store: workspace %q %w", workspaceID, ErrNotFound)
	}
	idx, err := t.nested(bucketWorkspaceCommits, workspaceID, false)
	if err != nil {
		return nil, err
	}
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	idxName := bucketWorkspaceCommits + "/" + workspaceID
	var out []Commit
	for _, id := range keys(idx) {
		raw := b.Get([]byte(id))
		if raw == nil {
			return nil, corrupt(idxName, id, fmt.Errorf("index names commit %q, which does not exist", id))
		}
		c, err := decode[Commit](bucketCommits, id, raw)
		if err != nil {
			return nil, err
		}
		if c.Workspace != workspaceID {
			return nil, corrupt(idxName, id, fmt.Errorf("index names commit %q, which belongs to workspace %q", id, c.Workspace))
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// History follows Parent links from headID and returns the commits it meets, newest (headID)
// first, at most limit of them (limit <= 0: all). The walk ends at a commit with no Parent, or at
// a Parent that is no longer stored (it belonged to a workspace since deleted); the last commit
// returned still names that Parent. A loop in the chain is damage (ErrCorrupt). headID itself must
// exist (ErrNotFound).
func (t *Tx) History(headID string, limit int) ([]Commit, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	c, err := t.Commit(headID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{c.ID: true}
	out := []Commit{c}
	for (limit <= 0 || len(out) < limit) && c.Parent != "" {
		if seen[c.Parent] {
			return nil, corrupt(bucketCommits, c.ID, fmt.Errorf("parent %q loops back into the history of %q", c.Parent, headID))
		}
		raw := b.Get([]byte(c.Parent))
		if raw == nil {
			break
		}
		if c, err = decode[Commit](bucketCommits, c.Parent, raw); err != nil {
			return nil, err
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

// SnapshotRefs counts, for every snapshot ref named by a stored commit or template snapshot
// record, how many of them name it. Commits with an empty Snapshot are not counted. A snapshot
// absent from the map is referenced by nothing and may be collected.
func (t *Tx) SnapshotRefs() (map[string]int, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	refs := map[string]int{}
	err = b.ForEach(func(k, v []byte) error {
		c, err := decode[Commit](bucketCommits, string(k), v)
		if err != nil {
			return err
		}
		if c.Snapshot != "" {
			refs[c.Snapshot]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	tpl, err := t.TemplateSnapshots()
	if err != nil {
		return nil, err
	}
	for _, ts := range tpl {
		refs[ts.Snapshot]++
	}
	return refs, nil
}

// deleteCommitsOf removes the commits of a workspace and their index.
func (t *Tx) deleteCommitsOf(workspaceID string) error {
	idx, err := t.nested(bucketWorkspaceCommits, workspaceID, false)
	if err != nil {
		return err
	}
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return err
	}
	for _, id := range keys(idx) {
		// A damaged index must not take another workspace's commit with it.
		if c, err := decode[Commit](bucketCommits, id, b.Get([]byte(id))); err == nil && c.Workspace != workspaceID {
			continue
		}
		if err := del(b, bucketCommits, id); err != nil {
			return err
		}
	}
	return t.dropNested(bucketWorkspaceCommits, workspaceID)
}
