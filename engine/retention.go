package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// Retention: the operator may bound how much history each workspace keeps (Options.Retention,
// the operator config's "retention"). The zero value keeps everything.
//
// A commit is pruned when it is outside every kept set that is configured: it is kept when it
// is among the newest KeepCommits commits of its workspace (by creation, whatever branch of
// the history it is on) or younger than KeepDays days. When only one is set, only that one
// applies. Always kept, whatever the policy:
//
//   - the workspace's head;
//   - its first commit (no parent: the empty, setup, import or fork commit it began with),
//     which export_workspace's git-branch and patch need as the origin;
//   - the base of its open session;
//   - every commit another workspace was forked from, so the fork's origin can still be followed
//     into its source (the fork's own commits are its own: its first commit shares the
//     snapshot, which is referenced for as long as any commit names it).
//
// The commit a run in flight started from needs no rule of its own: a durable run holds its
// workspace's queue and pruning waits in that queue, so while a run is in flight its base is
// the head.
//
// When: after every commit (a restore too), in the background, and for KeepDays also at start
// and every RetentionInterval. A prune is a job in the workspace's queue (so it never races a
// durable operation there) that removes the commits in one store transaction, leaving
// tombstones (store.PrunedCommit) so that naming a pruned commit later is answered "pruned by
// the retention policy" rather than "no such commit". Then, outside the queue, the snapshots
// that no commit references any more are deleted (gcSnapshots → Provider.DeleteSnapshot; the
// local provider frees a layer chain once no snapshot or sandbox needs it). The order is the
// crash-safe one: a crash between the two leaves only unreferenced snapshots, which the orphan
// sweep at start (reconcile) deletes.
//
// History tolerates the gaps: workspace_history ends at the oldest commit whose parent is kept
// and says that earlier commits were pruned (HistoryPage.PrunedBy); restore, fork, read_file
// and workspace_diff naming a pruned commit fail with ErrNotFound saying so; runs whose base or
// result commit is pruned stay readable.

// Retention bounds the history each workspace keeps; the zero value keeps everything.
type Retention struct {
	// KeepCommits keeps the newest KeepCommits commits of each workspace; 0: no bound by count.
	KeepCommits int
	// KeepDays keeps the commits younger than KeepDays days; 0: no bound by age.
	KeepDays int
}

// DefaultRetentionInterval is how often KeepDays is applied to every workspace besides at start.
const DefaultRetentionInterval = time.Hour

// On reports whether the policy prunes anything.
func (r Retention) On() bool { return r.KeepCommits > 0 || r.KeepDays > 0 }

// String names the policy as the operator config writes it: "keep_commits=3, keep_days=7",
// "keep everything" when off.
func (r Retention) String() string {
	var parts []string
	if r.KeepCommits > 0 {
		parts = append(parts, fmt.Sprintf("keep_commits=%d", r.KeepCommits))
	}
	if r.KeepDays > 0 {
		parts = append(parts, fmt.Sprintf("keep_days=%d", r.KeepDays))
	}
	if len(parts) == 0 {
		return "keep everything"
	}
	return strings.Join(parts, ", ")
}

// MaxRetentionDays bounds Retention.KeepDays (a hundred years; past it, no bound is meant).
const MaxRetentionDays = 36500

// Check refuses a policy that is not one: negative bounds, or days beyond MaxRetentionDays.
// Messages name the operator config's keys.
func (r Retention) Check() error {
	if r.KeepCommits < 0 {
		return fmt.Errorf("retention.keep_commits: %d is negative; write the number of newest commits each workspace keeps (1 or more), or 0 (or leave it out) to keep every commit", r.KeepCommits)
	}
	if r.KeepDays < 0 {
		return fmt.Errorf("retention.keep_days: %d is negative; write how many days of history each workspace keeps (1 or more), or 0 (or leave it out) for no bound by age", r.KeepDays)
	}
	if r.KeepDays > MaxRetentionDays {
		return fmt.Errorf("retention.keep_days: %d is more than %d (a hundred years); write 0 (or leave it out) for no bound by age", r.KeepDays, MaxRetentionDays)
	}
	return nil
}

// kept returns the ids the policy keeps of cs (a workspace's commits, oldest first) at now: all
// of them when the policy is off. The rules that keep commits whatever the policy are the
// caller's.
func (r Retention) kept(cs []store.Commit, now time.Time) map[string]bool {
	keep := make(map[string]bool, len(cs))
	if !r.On() {
		for _, c := range cs {
			keep[c.ID] = true
		}
		return keep
	}
	if r.KeepCommits > 0 {
		for _, c := range cs[max(0, len(cs)-r.KeepCommits):] {
			keep[c.ID] = true
		}
	}
	if r.KeepDays > 0 {
		cutoff := now.Add(-time.Duration(r.KeepDays) * 24 * time.Hour)
		for _, c := range cs {
			if c.Created.After(cutoff) {
				keep[c.ID] = true
			}
		}
	}
	return keep
}

// retention is the engine's retention state.
type retention struct {
	policy Retention
	every  time.Duration
	now    func() time.Time

	mu sync.Mutex
	// pending are the workspaces with a prune queued that has not started: another commit
	// meanwhile needs no prune of its own.
	pending map[string]bool
}

func (r *retention) init(o Options) {
	r.policy = o.Retention
	r.every = o.RetentionInterval
	if r.every <= 0 {
		r.every = DefaultRetentionInterval
	}
	r.now = o.Now
	if r.now == nil {
		r.now = time.Now
	}
	r.pending = map[string]bool{}
}

// startRetention applies the policy to every workspace now and, for KeepDays (commits age
// without new ones being made), every interval until the engine closes.
func (e *Engine) startRetention() {
	if !e.ret.policy.On() {
		return
	}
	e.workers.Add(1)
	go func() {
		defer e.workers.Done()
		e.sweepRetention()
		if e.ret.policy.KeepDays == 0 {
			return
		}
		t := time.NewTicker(e.ret.every)
		defer t.Stop()
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
				e.sweepRetention()
			}
		}
	}()
}

// sweepRetention queues a prune of every workspace.
func (e *Engine) sweepRetention() {
	var ids []string
	if err := e.st.View(func(tx *store.Tx) error {
		ws, err := tx.Workspaces()
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		return err
	}); err != nil {
		e.log.Warn("retention: list workspaces", "err", err)
		return
	}
	for _, id := range ids {
		e.retainAfterCommit(id)
	}
}

// retainAfterCommit prunes workspace wsID in the background, after a commit to it (or in a
// sweep). Calls while a prune of it waits to start add nothing.
func (e *Engine) retainAfterCommit(wsID string) {
	if !e.ret.policy.On() || e.isClosed() {
		return
	}
	e.ret.mu.Lock()
	if e.ret.pending[wsID] {
		e.ret.mu.Unlock()
		return
	}
	e.ret.pending[wsID] = true
	e.ret.mu.Unlock()
	e.workers.Add(1)
	go func() {
		defer e.workers.Done()
		if _, err := e.pruneWorkspace(wsID); err != nil && !errors.Is(err, ErrClosed) {
			e.log.Warn("retention: prune", "workspace", wsID, "err", err)
		}
	}()
}

// Prune applies the retention policy to every workspace now and returns how many commits it
// pruned; it returns when their snapshots are collected. The engine prunes by itself (after
// commits, at start, every RetentionInterval); Prune is for callers that must know it is done.
func (e *Engine) Prune(ctx context.Context) (int, error) {
	if e.isClosed() {
		return 0, ErrClosed
	}
	if !e.ret.policy.On() {
		return 0, nil
	}
	var ids []string
	if err := e.st.View(func(tx *store.Tx) error {
		ws, err := tx.Workspaces()
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		return err
	}); err != nil {
		return 0, err
	}
	total := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := e.pruneWorkspace(id)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneWorkspace prunes one workspace: the store part as a job in its queue, then the snapshots
// no commit references any more.
func (e *Engine) pruneWorkspace(wsID string) (int, error) {
	var (
		pruned []string
		snaps  []string
		err    error
	)
	j := e.enqueue(wsID, func(ctx context.Context) {
		e.ret.mu.Lock()
		delete(e.ret.pending, wsID)
		e.ret.mu.Unlock()
		if ctx.Err() != nil {
			err = ErrClosed
			return
		}
		pruned, snaps, err = e.pruneCommits(wsID)
	})
	<-j.done
	if err != nil {
		return 0, err
	}
	if len(pruned) > 0 {
		e.gcSnapshots(snaps...)
		e.log.Info("retention: pruned commits", "workspace", wsID, "count", len(pruned), "policy", e.ret.policy.String())
	}
	return len(pruned), nil
}

// pruneCommits removes, in one transaction, the commits of workspace wsID that the policy lets
// go and no rule keeps; it returns their ids and the snapshots they named.
func (e *Engine) pruneCommits(wsID string) (ids, snaps []string, err error) {
	now := e.ret.now().UTC()
	err = e.st.Update(func(tx *store.Tx) error {
		ids, snaps = nil, nil
		w, err := tx.Workspace(wsID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile: nothing left to prune
		}
		if err != nil {
			return err
		}
		cs, err := tx.Commits(wsID)
		if err != nil {
			return err
		}
		keep := e.ret.policy.kept(cs, now)
		keep[w.Head] = true
		for _, c := range cs {
			if c.Parent == "" {
				keep[c.ID] = true // the first commit: the origin exports start from
			}
		}
		if w.Session != "" {
			s, err := tx.Session(w.Session)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil && s.Open() {
				keep[s.Base] = true
			}
		}
		var cand []store.Commit
		for _, c := range cs {
			if !keep[c.ID] {
				cand = append(cand, c)
			}
		}
		if len(cand) == 0 {
			return nil
		}
		forked, err := tx.ForkSources()
		if err != nil {
			return err
		}
		for _, c := range cand {
			if forked[c.ID] {
				continue
			}
			ids = append(ids, c.ID)
			snaps = append(snaps, c.Snapshot)
		}
		return tx.PruneCommits(wsID, ids, e.ret.policy.String(), now)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("retention: workspace %s: %w", wsID, err)
	}
	return ids, snaps, nil
}

// prunedCommit is the error for commit id of w when retention pruned it (arg names the
// argument that named it; of, when set, the commit whose parent it is, for a default), or nil
// when it did not.
func prunedCommit(tx *store.Tx, w store.Workspace, id, arg, of string) error {
	p, err := tx.PrunedCommit(w.ID, id)
	if err != nil {
		return nil
	}
	what := "commit " + id
	if of != "" {
		what += ", the parent of " + of + ","
	}
	hist := map[string]any{"workspace": w.ID}
	return errorf(ErrNotFound, "%s: %s of workspace %s was pruned by the retention policy (%s) at %s; its state is gone: give a commit that workspace_history lists",
		arg, what, w.Name, p.Reason, p.Pruned.UTC().Format(time.RFC3339)).
		with(ErrorFields{Workspace: w.ID, Commit: id, Argument: arg}).then("workspace_history", "list the commits that are kept", hist)
}
