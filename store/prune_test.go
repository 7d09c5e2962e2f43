package store

import (
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fillChain stores workspace ws_a (alpha) with the chain c_1 ← c_2 ← c_3 ← c_4 (head), c_2 and
// c_3 sharing snapshot s23, and workspace ws_b (beta) with c_b.
func fillChain(t *testing.T, s *Store) {
	t.Helper()
	mustUpdate(t, s, func(tx *Tx) error {
		a := ws("ws_a", "alpha")
		a.Head = "c_4"
		b := ws("ws_b", "beta")
		b.Head = "c_b"
		if err := createWorkspaces(tx, a, b); err != nil {
			return err
		}
		for _, c := range []Commit{
			commit("c_1", "ws_a", "", "s1", 1), commit("c_2", "ws_a", "c_1", "s23", 2),
			commit("c_3", "ws_a", "c_2", "s23", 3), commit("c_4", "ws_a", "c_3", "s4", 4),
			commit("c_b", "ws_b", "", "sb", 5),
		} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestPruneCommits(t *testing.T) {
	s := openStore(t)
	fillChain(t, s)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_2"}, "keep_commits=2", at(10)) })
	mustView(t, s, func(tx *Tx) error {
		cs, err := tx.Commits("ws_a")
		if err != nil || commitIDs(cs) != "c_1,c_3,c_4" {
			t.Errorf("Commits(ws_a) after pruning c_2 = %s, %v; want c_1,c_3,c_4", commitIDs(cs), err)
		}
		if _, err := tx.Commit("c_2"); !isNotFound(err) {
			t.Errorf("Commit(c_2) after pruning = %v, want ErrNotFound", err)
		}
		// History stops cleanly at the pruned parent; the last commit still names it.
		h, err := tx.History("c_4", 0)
		if err != nil || commitIDs(h) != "c_4,c_3" || h[1].Parent != "c_2" {
			t.Errorf("History(c_4) = %s, %v; want c_4,c_3 with c_3 naming c_2", commitIDs(h), err)
		}
		p, err := tx.PrunedCommit("ws_a", "c_2")
		want := PrunedCommit{ID: "c_2", Workspace: "ws_a", Reason: "keep_commits=2", Pruned: at(10)}
		if err != nil || !reflect.DeepEqual(p, want) {
			t.Errorf("PrunedCommit(c_2) = %+v, %v; want %+v", p, err, want)
		}
		if _, err := tx.PrunedCommit("ws_a", "c_3"); !isNotFound(err) {
			t.Errorf("PrunedCommit(c_3), a live commit = %v, want ErrNotFound", err)
		}
		if _, err := tx.PrunedCommit("ws_b", "c_2"); !isNotFound(err) {
			t.Errorf("PrunedCommit(ws_b, c_2), another workspace's = %v, want ErrNotFound", err)
		}
		// s23 is still named by c_3; s2 gone from the counts with c_2 only.
		refs, err := tx.SnapshotRefs()
		if err != nil || refs["s23"] != 1 || refs["s1"] != 1 {
			t.Errorf("SnapshotRefs = %v, %v; want s23 counted once (c_3), s1 once", refs, err)
		}
		return nil
	})
	// Pruning the last commit naming a snapshot leaves it unreferenced; an empty batch does nothing.
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_3"}, "keep_commits=1", at(11)) })
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", nil, "keep_commits=1", at(12)) })
	mustView(t, s, func(tx *Tx) error {
		refs, err := tx.SnapshotRefs()
		if err != nil || refs["s23"] != 0 {
			t.Errorf("SnapshotRefs after pruning c_3 = %v, %v; want s23 unreferenced", refs, err)
		}
		h, err := tx.History("c_4", 0)
		if err != nil || commitIDs(h) != "c_4" {
			t.Errorf("History(c_4) = %s, %v; want c_4", commitIDs(h), err)
		}
		return nil
	})
}

func TestPruneCommitsRefuses(t *testing.T) {
	s := openStore(t)
	fillChain(t, s)
	before := bucketKeys(t, s)
	cases := []struct {
		name   string
		ws     string
		ids    []string
		target error
		parts  []string
	}{
		{"the head", "ws_a", []string{"c_2", "c_4"}, errAny, []string{`"c_4"`, "head"}},
		{"a missing commit", "ws_a", []string{"c_2", "c_404"}, ErrNotFound, []string{`"c_404"`}},
		{"another workspace's commit", "ws_a", []string{"c_b"}, ErrNotFound, []string{`"c_b"`, `"ws_b"`}},
		{"a missing workspace", "ws_404", []string{"c_2"}, ErrNotFound, []string{`"ws_404"`}},
	}
	for _, tc := range cases {
		err := s.Update(func(tx *Tx) error { return tx.PruneCommits(tc.ws, tc.ids, "keep_commits=1", at(10)) })
		wantErr(t, "PruneCommits("+tc.name+")", err, tc.target, tc.parts...)
	}
	if got := bucketKeys(t, s); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused prune changed the file:\n got %v\nwant %v", got, before)
	}
}

func TestPruneCommitsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	fillChain(t, s)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_2"}, "keep_commits=2", at(10)) })
	_ = s.Close()
	damage(t, path, both(
		rawPut(bucketCommits, "c_3", []byte("{not json")),
		rawPut(bucketPrunedCommits+"/ws_a", "c_x", []byte(`{"commit_id": "c_y", "workspace_id": "ws_a"}`)),
		rawPut(bucketPrunedCommits+"/ws_a", "c_z", []byte(`{"commit_id": "c_z", "workspace_id": "ws_b"}`)),
	))
	s = openAt(t, path)
	err := s.Update(func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_3"}, "keep_commits=1", at(11)) })
	wantErr(t, "PruneCommits(undecodable commit)", err, ErrCorrupt, `bucket "commits" key "c_3"`)
	err = s.View(func(tx *Tx) error { _, err := tx.PrunedCommit("ws_a", "c_x"); return err })
	wantErr(t, "PrunedCommit(id mismatch)", err, ErrCorrupt, `"pruned_commits/ws_a"`, `"c_x"`)
	err = s.View(func(tx *Tx) error { _, err := tx.PrunedCommit("ws_a", "c_z"); return err })
	wantErr(t, "PrunedCommit(other workspace)", err, ErrCorrupt, `"c_z"`, `"ws_b"`)
	// The good tombstone still reads.
	mustView(t, s, func(tx *Tx) error {
		if p, err := tx.PrunedCommit("ws_a", "c_2"); err != nil || p.Reason != "keep_commits=2" {
			t.Errorf("PrunedCommit(c_2) = %+v, %v", p, err)
		}
		return nil
	})
}

func TestDeleteWorkspaceDropsTombstones(t *testing.T) {
	s := openStore(t)
	fillChain(t, s)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_2", "c_3"}, "keep_days=1", at(10)) })
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })
	got := bucketKeys(t, s)
	for _, b := range []string{bucketCommits, bucketWorkspaceCommits, bucketPrunedCommits} {
		sort.Strings(got[b])
	}
	want := map[string][]string{
		bucketCommits:          {"c_b"},
		bucketWorkspaceCommits: {"ws_b/", "ws_b/c_b"},
		bucketWorkspaces:       {"ws_b"},
		bucketWorkspaceNames:   {"beta"},
	}
	for _, b := range []string{bucketCommits, bucketWorkspaceCommits, bucketPrunedCommits, bucketWorkspaces, bucketWorkspaceNames} {
		if !reflect.DeepEqual(got[b], want[b]) {
			t.Errorf("bucket %s after deleting ws_a = %v, want %v", b, got[b], want[b])
		}
	}
}

func TestForkSources(t *testing.T) {
	s := openStore(t)
	fillChain(t, s)
	mustUpdate(t, s, func(tx *Tx) error {
		f := ws("ws_f", "fork")
		f.Head = "c_f"
		if err := tx.CreateWorkspace(f); err != nil {
			return err
		}
		fc := commit("c_f", "ws_f", "", "s23", 6)
		fc.Kind, fc.Source = CommitFork, "c_3"
		r := commit("c_r", "ws_a", "c_4", "s1", 7)
		r.Kind, r.Source = CommitRestore, "c_1" // a restore's source is not a fork's
		if err := tx.PutCommit(fc); err != nil {
			return err
		}
		return tx.PutCommit(r)
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.ForkSources()
		if err != nil || !reflect.DeepEqual(got, map[string]bool{"c_3": true}) {
			t.Errorf("ForkSources = %v, %v; want c_3 only", got, err)
		}
		return nil
	})
}

func TestMigrationAddsPrunedCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	fillChain(t, s)
	_ = s.Close()
	damage(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(bucketPrunedCommits)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketSchema)).Put([]byte(keySchemaVersion), []byte("5"))
	})
	s = openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PruneCommits("ws_a", []string{"c_2"}, "keep_commits=2", at(10)) })
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.PrunedCommit("ws_a", "c_2"); err != nil {
			t.Errorf("PrunedCommit after migrating from version 5: %v", err)
		}
		return nil
	})
	_ = s.Close()
	if v := rawVersion(t, path); v != cur {
		t.Fatalf("version after migration = %q, want %s", v, cur)
	}
}
