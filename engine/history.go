package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// History lists commits from the head back along parent links, newest first, at most limit
// (<=0: 50; at most 1000). HistoryOf says too whether more commits follow and whether retention
// pruned those before the oldest one.
func (e *Engine) History(ctx context.Context, ref string, limit int) ([]Commit, error) {
	p, err := e.HistoryOf(ctx, ref, limit)
	return p.Commits, err
}

// HistoryOf is History with what lies beyond the oldest commit listed: more commits (More), or
// a gap retention left (PrunedBy).
func (e *Engine) HistoryOf(ctx context.Context, ref string, limit int) (HistoryPage, error) {
	if limit < 0 || limit > MaxHistoryLimit {
		return HistoryPage{}, errorf(ErrInvalid, "limit %d is out of range: give 1 to %d, or omit it for %d", limit, MaxHistoryLimit, DefaultHistoryLimit).
			with(ErrorFields{Argument: "limit", Limit: ptr(int64(MaxHistoryLimit)), Got: ptr(int64(limit))})
	}
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	var out HistoryPage
	err := e.st.View(func(tx *store.Tx) error {
		w, err := lookupTx(tx, ref)
		if err != nil {
			return err
		}
		if out.Commits, err = tx.History(w.Head, limit); err != nil {
			return err
		}
		last := out.Commits[len(out.Commits)-1]
		if last.Parent == "" {
			return nil
		}
		_, err = tx.Commit(last.Parent)
		switch {
		case err == nil:
			out.More = true
		case errors.Is(err, store.ErrNotFound):
			if p, perr := tx.PrunedCommit(w.ID, last.Parent); perr == nil {
				out.PrunedBy = p.Reason
			}
		default:
			return err
		}
		return nil
	})
	return out, err
}

// commitOf finds a commit of workspace w (any commit it ever had, not only those on the current
// history chain).
func commitOf(tx *store.Tx, w store.Workspace, id string) (store.Commit, error) {
	if id == "" {
		return store.Commit{}, errorf(ErrInvalid, "commit_id is required; workspace_history lists the commits")
	}
	c, err := tx.Commit(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Workspace != w.ID) {
		if perr := prunedCommit(tx, w, id, "commit_id", ""); perr != nil {
			return store.Commit{}, perr
		}
		return store.Commit{}, errorf(ErrNotFound, "workspace %s has no commit %q; workspace_history lists its commits", w.Name, id)
	}
	return c, err
}

// Restore makes a new commit (kind "restore") whose state is that of an earlier commit of the same
// workspace and moves head to it. History is kept: the commits after the restored one stay
// reachable by id and can be restored in turn. It costs no copy: the commit shares the snapshot.
// The commit records what it changed against the head it replaced (its parent), from the
// provider's Diff; unknown when the provider cannot compare snapshots. A restore to a state
// identical to the head (the same snapshot, or a Diff that finds nothing) makes no commit: head
// stays, and the returned Commit has an empty ID (changes.go).
func (e *Engine) Restore(ctx context.Context, ref, commitID string) (Workspace, Commit, error) {
	if e.isClosed() {
		return Workspace{}, Commit{}, ErrClosed
	}
	if strings.TrimSpace(commitID) == "" {
		return Workspace{}, Commit{}, badArg("commit_id", nil, nil, "commit_id is required: the commit (c_…) whose state to bring back; workspace_history lists them")
	}
	w, err := e.lookup(ref)
	if err != nil {
		return Workspace{}, Commit{}, err
	}
	var c store.Commit
	var out store.Workspace
	var jerr error
	j := e.enqueue(w.ID, func(jctx context.Context) {
		// Read the head and the source, compare them at the provider (outside any transaction),
		// then commit if the head is still the one compared.
		var head, src store.Commit
		jerr = e.st.View(func(tx *store.Tx) error {
			cur, err := tx.Workspace(w.ID)
			if err != nil {
				return err
			}
			if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
				return err
			}
			if src, err = commitOf(tx, cur, commitID); err != nil {
				return err
			}
			head, err = tx.Commit(cur.Head)
			return err
		})
		if jerr != nil {
			return
		}
		changes := e.restoreChanges(jctx, head, src)
		jerr = e.st.Update(func(tx *store.Tx) error {
			cur, err := tx.Workspace(w.ID)
			if err != nil {
				return err
			}
			if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
				return err
			}
			if cur.Head != head.ID {
				return errorf(ErrBusy, "head moved from %s to %s meanwhile; retry", head.ID, cur.Head)
			}
			msg := fmt.Sprintf("restore to %s (%s)", src.ID, src.Message)
			if changes.None() {
				c = noCommit(w.ID, cur.Head, CommitRestore, msg)
				c.Source = src.ID
				out = cur
				return nil
			}
			c = withChanges(store.Commit{
				ID: newID(commitPrefix), Workspace: w.ID, Parent: cur.Head, Snapshot: src.Snapshot,
				Kind: CommitRestore, Source: src.ID, Message: msg, Created: time.Now().UTC(),
			}, changes)
			if err := tx.PutCommit(c); err != nil {
				return err
			}
			cur.Head = c.ID
			cur.Updated = c.Created
			out, err = tx.PutWorkspace(cur)
			return err
		})
	})
	<-j.done
	if errors.Is(jerr, store.ErrNotFound) {
		return Workspace{}, Commit{}, errorf(ErrNotFound, "the workspace was deleted")
	}
	if jerr != nil {
		return Workspace{}, Commit{}, jerr
	}
	if c.ID != "" {
		e.headMoved(w.ID)
		e.retainAfterCommit(w.ID)
	}
	return e.view(out), c, nil
}

// restoreChanges is what restoring src changes against head: nothing when they share the snapshot,
// the provider's Diff otherwise, unknown when it cannot compare (or fails to: the restore itself
// does not need the comparison, so it goes on).
func (e *Engine) restoreChanges(ctx context.Context, head, src store.Commit) sandbox.Changes {
	if head.Snapshot == src.Snapshot {
		return sandbox.Changes{Known: true}
	}
	if !e.prov.Capabilities().Diff {
		return sandbox.Changes{}
	}
	ch, err := e.prov.Diff(ctx, sandbox.SnapshotRef(head.Snapshot), sandbox.SnapshotRef(src.Snapshot))
	if err != nil {
		e.log.Warn("restore: could not compare the snapshots; the restore commit's changes are unknown", "head", head.ID, "source", src.ID, "err", err)
		return sandbox.Changes{}
	}
	return ch
}

// Fork makes a new workspace whose head shares the state of a commit of the source workspace
// (commitID "" = the source's head at the time the fork reaches the front of the source's queue).
// The new workspace copies the source's policy, exposed ports and labels; it costs no copy.
func (e *Engine) Fork(ctx context.Context, ref, commitID, name string) (Workspace, error) {
	if e.isClosed() {
		return Workspace{}, ErrClosed
	}
	src, err := e.lookup(ref)
	if err != nil {
		return Workspace{}, err
	}
	id := newID(wsPrefix)
	if name == "" {
		name = src.Name + "-fork-" + id[len(wsPrefix):len(wsPrefix)+6]
		if len(name) > 64 {
			name = "fork-" + id[len(wsPrefix):len(wsPrefix)+8]
		}
	}
	if err := validName(name); err != nil {
		return Workspace{}, err
	}
	var nw store.Workspace
	var jerr error
	j := e.enqueue(src.ID, func(context.Context) {
		jerr = e.st.Update(func(tx *store.Tx) error {
			cur, err := tx.Workspace(src.ID)
			if err != nil {
				return err
			}
			if err := checkLeaseTx(tx, cur, CallerFrom(ctx)); err != nil {
				return err
			}
			from := cur.Head
			if commitID != "" {
				from = commitID
			}
			sc, err := commitOf(tx, cur, from)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			first := store.Commit{
				ID: newID(commitPrefix), Workspace: id, Snapshot: sc.Snapshot, Kind: CommitFork, Source: sc.ID,
				Message: fmt.Sprintf("fork of %s at %s", cur.Name, sc.ID), Created: now,
			}
			labels := map[string]string{}
			for k, v := range cur.Labels {
				labels[k] = v
			}
			nw = store.Workspace{
				ID: id, Name: name, Labels: labels, Provider: cur.Provider, Policy: cur.Policy, Template: cur.Template,
				ExposedPorts: append([]int(nil), cur.ExposedPorts...), Head: first.ID, Created: now, Updated: now,
			}
			if err := tx.PutCommit(first); err != nil {
				return err
			}
			if err := tx.CreateWorkspace(nw); err != nil {
				return err
			}
			nw.Version = 1
			return nil
		})
	})
	<-j.done
	switch {
	case errors.Is(jerr, store.ErrExists):
		return Workspace{}, errorf(ErrExists, "a workspace named %q already exists; give fork_workspace another name", name)
	case errors.Is(jerr, ErrNotFound), errors.Is(jerr, ErrInvalid), errors.Is(jerr, ErrLeased):
		return Workspace{}, jerr
	case errors.Is(jerr, store.ErrNotFound):
		return Workspace{}, errorf(ErrNotFound, "the source workspace was deleted")
	case jerr != nil:
		return Workspace{}, fmt.Errorf("fork: %w", jerr)
	}
	e.log.Info("workspace forked", "from", src.ID, "to", id)
	return e.view(nw), nil
}

// HistoryPage is a workspace's history from the head back, newest first.
type HistoryPage struct {
	Commits []Commit
	// More is true when older commits exist beyond the limit.
	More bool
	// PrunedBy, when set, says that the history went on before the oldest commit listed but
	// retention pruned it, naming the policy that did ("keep_commits=3").
	PrunedBy string
}

// rootCommit is the first commit of workspace wsID (the one without a parent; retention keeps
// it), or ErrNotFound.
func rootCommit(tx *store.Tx, wsID string) (store.Commit, error) {
	cs, err := tx.Commits(wsID)
	if err != nil {
		return store.Commit{}, err
	}
	roots := cs[:0:0]
	for _, c := range cs {
		if c.Parent == "" {
			roots = append(roots, c)
		}
	}
	if len(roots) == 0 {
		return store.Commit{}, fmt.Errorf("workspace %s has no first commit: %w", wsID, store.ErrNotFound)
	}
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].Created.Before(roots[j].Created) })
	return roots[0], nil
}
