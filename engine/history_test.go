package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/store"
)

// changeLines renders a commit's changes as "op type path" lines.
func changeLines(c engine.Commit) []string {
	var out []string
	for _, ch := range c.Changes {
		out = append(out, ch.Op+" "+ch.Type+" "+ch.Path)
	}
	return out
}

// wantCommitChanges checks what a commit says it changed: exactly want when the provider can
// tell, "unknown" (no list, zero figures) when it cannot.
func wantCommitChanges(t *testing.T, v *env, what string, c engine.Commit, want ...string) {
	t.Helper()
	if c.ID == "" {
		t.Fatalf("%s: no commit was made (%+v), want one", what, c)
	}
	if !v.pv.Capabilities().Changes {
		if c.ChangesKnown || c.Changes != nil || c.ChangedFiles != 0 || c.ChangedBytes != 0 {
			t.Errorf("%s: the provider cannot tell what changed, yet commit %s says %+v (%d files, %d bytes)", what, c.ID, c.Changes, c.ChangedFiles, c.ChangedBytes)
		}
		return
	}
	if got := changeLines(c); !c.ChangesKnown || !slices.Equal(got, want) || c.ChangedFiles != int64(len(want)) {
		t.Errorf("%s: commit %s changes (known %v, %d files) %v, want %v", what, c.ID, c.ChangesKnown, c.ChangedFiles, got, want)
	}
}

func (v *env) history(t *testing.T, ws string) []engine.Commit {
	t.Helper()
	h, err := v.e.History(ctxT(t), ws, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (v *env) commit(t *testing.T, id string) engine.Commit {
	t.Helper()
	var c store.Commit
	if err := v.st.View(func(tx *store.Tx) error {
		var err error
		c, err = tx.Commit(id)
		return err
	}); err != nil {
		t.Fatalf("commit %s: %v", id, err)
	}
	return c
}

// TestHonestHistory: runs, writes, sessions and restores that change nothing make no commit and
// say so; the others list what they changed (restores against the head they replace). On a
// provider that cannot tell (Vercel) everything commits as before and says the changes are
// unknown.
func TestHonestHistory(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := ctxT(t)
	knows := v.pv.Capabilities().Changes
	v.mkws(t, "w")
	h0 := head(t, v, "w")

	t.Run("run that changes nothing", func(t *testing.T) {
		before := len(v.history(t, "w"))
		r := v.sh(t, "w", "true; ls -la . ~ >/dev/null")
		switch {
		case knows && (!r.Run.Unchanged || r.Run.CommitID != "" || r.Run.ChangesUnknown || r.Run.Status != engine.RunExited):
			t.Errorf("true: run %+v, want exited, unchanged, no commit", r.Run)
		case knows && (head(t, v, "w") != h0 || len(v.history(t, "w")) != before):
			t.Errorf("true: head %s (was %s), history %d commits (was %d); want both unchanged", head(t, v, "w"), h0, len(v.history(t, "w")), before)
		case !knows && (r.Run.Unchanged || r.Run.CommitID == "" || !r.Run.ChangesUnknown || head(t, v, "w") != r.Run.CommitID):
			t.Errorf("true on a provider that cannot tell: run %+v, want a commit (the new head) and changes unknown", r.Run)
		}
	})

	r := v.sh(t, "w", "touch x")
	if r.Run.CommitID == "" || r.Run.Unchanged || head(t, v, "w") != r.Run.CommitID || r.Run.ChangesUnknown == knows {
		t.Fatalf("touch x: run %+v, want a commit that is the new head", r.Run)
	}
	cTouch := v.commit(t, r.Run.CommitID)
	wantCommitChanges(t, v, "touch x", cTouch, "added file x")

	// The local provider rewrites the file: its modification time moves, which is a change.
	c, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "x", Content: nil}}})
	if err != nil {
		t.Fatal(err)
	}
	wantCommitChanges(t, v, "write_files of x with the content it has", c, "modified file x")
	c, err = v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "dir/y", Content: []byte("yy")}}})
	if err != nil {
		t.Fatal(err)
	}
	wantCommitChanges(t, v, "write_files of dir/y", c, "added file dir/y")
	if knows && c.ChangedBytes != 2 {
		t.Errorf("write_files of dir/y: ChangedBytes %d, want 2", c.ChangedBytes)
	}

	t.Run("history lists the changes", func(t *testing.T) {
		h := v.history(t, "w")
		if len(h) < 4 || h[0].ID != c.ID || h[len(h)-1].Kind != engine.CommitEmpty || h[len(h)-1].ChangesKnown {
			t.Fatalf("history %+v", h)
		}
		wantCommitChanges(t, v, "history[0]", h[0], "added file dir/y")
	})

	t.Run("restore reports what it changed against the head", func(t *testing.T) {
		before := head(t, v, "w")
		_, rc, err := v.e.Restore(ctx, "w", cTouch.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Parent != before || head(t, v, "w") != rc.ID {
			t.Fatalf("restore commit %+v, head %s; want a new head on top of %s", rc, head(t, v, "w"), before)
		}
		if v.pv.Capabilities().Diff {
			wantCommitChanges(t, v, "restore", rc, "deleted dir dir", "modified file x")
		} else if rc.ChangesKnown || rc.ChangedFiles != 0 {
			t.Errorf("restore on a provider without Diff: %+v, want unknown changes", rc)
		}
		if got := v.commit(t, rc.ID); got.ChangesKnown != rc.ChangesKnown || got.ChangedFiles != rc.ChangedFiles {
			t.Errorf("stored restore commit %+v differs from the returned one %+v", got, rc)
		}
		// Restoring the state the head already has (the same snapshot) makes no commit.
		_, again, err := v.e.Restore(ctx, "w", cTouch.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != "" || again.Parent != rc.ID || head(t, v, "w") != rc.ID || !again.ChangesKnown || again.ChangedFiles != 0 {
			t.Errorf("restore to the head's own state: %+v, head %s; want no commit and head %s", again, head(t, v, "w"), rc.ID)
		}
	})

	t.Run("restore to an identical state in another snapshot", func(t *testing.T) {
		v.sh(t, "w", "rm x") // back to the empty state, in a new snapshot
		before := head(t, v, "w")
		_, rc, err := v.e.Restore(ctx, "w", h0)
		if err != nil {
			t.Fatal(err)
		}
		if v.pv.Capabilities().Diff {
			if rc.ID != "" || head(t, v, "w") != before {
				t.Errorf("restore of the empty state onto an empty workspace: %+v; want no commit", rc)
			}
		} else if rc.ID == "" || head(t, v, "w") != rc.ID {
			t.Errorf("restore on a provider without Diff: %+v; want a commit", rc)
		}
	})

	t.Run("commit_session", func(t *testing.T) {
		before := head(t, v, "w")
		s := v.open(t, alice, "w", time.Minute)
		v.sexec(t, alice, s.ID, "cat /etc/hostname >/dev/null; true")
		c, err := v.e.CommitSession(ctx, alice, s.ID, "nothing")
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.e.GetSession(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if knows {
			if c.ID != "" || c.Parent != before || head(t, v, "w") != before || got.State != store.SessionCommitted || !got.Unchanged || got.CommitID != "" {
				t.Errorf("commit_session without changes: commit %+v, session %+v, head %s; want no commit, head %s, session committed and unchanged", c, got.Session, head(t, v, "w"), before)
			}
			if w, _ := v.e.GetWorkspace(ctx, "w"); w.Lease != nil {
				t.Errorf("the workspace is still leased after commit_session: %+v", w.Lease)
			}
		} else if c.ID == "" || got.Unchanged || head(t, v, "w") != c.ID {
			t.Errorf("commit_session on a provider that cannot tell: %+v; want a commit", c)
		}
		s = v.open(t, alice, "w", time.Minute)
		v.sexec(t, alice, s.ID, "echo s > s; echo h > ~/h")
		c, err = v.e.CommitSession(ctx, alice, s.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		wantCommitChanges(t, v, "commit_session with changes", c, "added file s", "added file ~/h")
		if head(t, v, "w") != c.ID {
			t.Errorf("head %s, want %s", head(t, v, "w"), c.ID)
		}
	})
}

// TestOldCommitsReadUnknown: a commit recorded before commits recorded their changes (its record
// has changed_files but no changes_known) reads as "changes unknown" through History.
func TestOldCommitsReadUnknown(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	w := v.mkws(t, "w")
	old := store.Commit{
		ID: "c_old0000000000000000000", Workspace: w.ID, Parent: w.Head, Kind: engine.CommitRun,
		Message: "run: make (exit 0)", ChangedFiles: 3, ChangedBytes: 10, Created: time.Now().UTC(),
	}
	if err := v.st.Update(func(tx *store.Tx) error {
		if err := tx.PutCommit(old); err != nil {
			return err
		}
		cur, err := tx.Workspace(w.ID)
		if err != nil {
			return err
		}
		cur.Head = old.ID
		_, err = tx.PutWorkspace(cur)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h := v.history(t, "w")
	if len(h) != 2 || h[0].ID != old.ID || h[0].ChangesKnown || h[0].Changes != nil || h[0].ChangedFiles != 3 {
		t.Fatalf("history %+v, want the old commit first with changes unknown", h)
	}
	if !strings.HasPrefix(h[1].ID, "c_") || h[1].ChangesKnown {
		t.Fatalf("the first (empty) commit: %+v, want changes unknown", h[1])
	}
}
