package store

import (
	"fmt"
	"sort"
	"time"
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
// a Parent that is no longer stored (pruned by retention: PrunedCommit has its tombstone; or of a
// workspace since deleted); the last commit returned still names that Parent. A loop in the chain is damage (ErrCorrupt). headID itself must
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

// deleteCommitsOf removes the commits of a workspace, their index and the tombstones of its
// pruned commits.
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
	if err := t.dropNested(bucketPrunedCommits, workspaceID); err != nil {
		return err
	}
	return t.dropNested(bucketWorkspaceCommits, workspaceID)
}

// PruneCommits removes commits of a workspace that retention let go, in the caller's Update,
// leaving a tombstone (PrunedCommit, with reason and at) for each, so that naming one later
// can be told apart from naming a commit that never was. Every id must be a commit of the
// workspace other than its head (the head always names a commit); otherwise nothing is removed
// and the error says which: ErrNotFound for a missing workspace or commit (or a commit of another
// workspace), ErrCorrupt for a record that does not decode, a plain error for the head. Commits
// whose parent is pruned keep naming it: History ends there, and PrunedCommit tells why. The
// snapshots the commits named are the caller's to collect (SnapshotRefs no longer counts them).
func (t *Tx) PruneCommits(workspaceID string, ids []string, reason string, at time.Time) error {
	w, err := t.Workspace(workspaceID)
	if err != nil {
		return err
	}
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return err
	}
	idx, err := t.nested(bucketWorkspaceCommits, workspaceID, false)
	if err != nil {
		return err
	}
	// Check every id before anything changes.
	for _, id := range ids {
		raw := b.Get([]byte(id))
		if raw == nil {
			return fmt.Errorf("store: prune: commit %q %w", id, ErrNotFound)
		}
		c, err := decode[Commit](bucketCommits, id, raw)
		if err != nil {
			return err
		}
		if c.Workspace != workspaceID {
			return fmt.Errorf("store: prune: commit %q belongs to workspace %q, not %q: %w", id, c.Workspace, workspaceID, ErrNotFound)
		}
		if id == w.Head {
			return fmt.Errorf("store: prune: commit %q is the head of workspace %q, which always names a commit", id, workspaceID)
		}
	}
	tomb, err := t.nested(bucketPrunedCommits, workspaceID, len(ids) > 0)
	if err != nil {
		return err
	}
	tombName := bucketPrunedCommits + "/" + workspaceID
	for _, id := range ids {
		if err := del(b, bucketCommits, id); err != nil {
			return err
		}
		if idx != nil {
			if err := del(idx, bucketWorkspaceCommits+"/"+workspaceID, id); err != nil {
				return err
			}
		}
		p := PrunedCommit{ID: id, Workspace: workspaceID, Reason: reason, Pruned: at}
		if err := put(tomb, tombName, id, p); err != nil {
			return err
		}
	}
	return nil
}

// PrunedCommit returns the tombstone PruneCommits left for commit id of a workspace; ErrNotFound
// when the workspace pruned no such commit.
func (t *Tx) PrunedCommit(workspaceID, id string) (PrunedCommit, error) {
	tomb, err := t.nested(bucketPrunedCommits, workspaceID, false)
	if err != nil {
		return PrunedCommit{}, err
	}
	var raw []byte
	if tomb != nil {
		raw = tomb.Get([]byte(id))
	}
	if raw == nil {
		return PrunedCommit{}, fmt.Errorf("store: pruned commit %q of workspace %q %w", id, workspaceID, ErrNotFound)
	}
	p, err := decode[PrunedCommit](bucketPrunedCommits+"/"+workspaceID, id, raw)
	if err == nil && p.Workspace != workspaceID {
		err = corrupt(bucketPrunedCommits+"/"+workspaceID, id, fmt.Errorf("tombstone names workspace %q", p.Workspace))
	}
	return p, err
}

// ForkSources returns the ids of the commits that forks were made from (Commit.Source of every
// commit of kind fork), in any workspace. Retention keeps them, so that a fork's origin can be
// followed into the workspace it came from. It reads every commit, as SnapshotRefs does.
func (t *Tx) ForkSources() (map[string]bool, error) {
	b, err := t.bucket(bucketCommits)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	err = b.ForEach(func(k, v []byte) error {
		c, err := decode[Commit](bucketCommits, string(k), v)
		if err != nil {
			return err
		}
		if c.Kind == CommitFork && c.Source != "" {
			out[c.Source] = true
		}
		return nil
	})
	return out, err
}
