package store

import (
	"reflect"
	"testing"
)

func TestCommitsImmutableAndListed(t *testing.T) {
	s := openStore(t)
	exit := 3
	first := commit("c_1", "ws_a", "", "snap_1", 1)
	first.ExitCode = &exit
	first.RunID = "run_1"
	mustUpdate(t, s, func(tx *Tx) error {
		if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_b", "beta")); err != nil {
			return err
		}
		// Inserted out of time order; ids out of order too.
		for _, c := range []Commit{commit("c_3", "ws_a", "c_2", "snap_3", 3), first,
			commit("c_2", "ws_a", "c_1", "snap_2", 2), commit("c_9", "ws_b", "", "snap_9", 0)} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})

	changed := first
	changed.Message = "rewritten"
	err := s.Update(func(tx *Tx) error { return tx.PutCommit(changed) })
	wantErr(t, "PutCommit(existing)", err, ErrExists, `commit "c_1" already exists`, "immutable")

	// A new workspace's first commit is stored before the workspace, in the same Update.
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutCommit(commit("c_first", "ws_new", "", "", 0)); err != nil {
			return err
		}
		return tx.CreateWorkspace(ws("ws_new", "new"))
	})
	mustView(t, s, func(tx *Tx) error {
		cs, err := tx.Commits("ws_new")
		if err != nil || commitIDs(cs) != "c_first" {
			t.Errorf("Commits(ws_new) = %s, %v; want c_first", commitIDs(cs), err)
		}
		return nil
	})

	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Commit("c_1")
		wantErr(t, "Commit", err, nil)
		if !reflect.DeepEqual(got, first) {
			t.Errorf("Commit(c_1) = %+v, want %+v (unchanged)", got, first)
		}
		_, err = tx.Commit("c_404")
		wantErr(t, "Commit(missing)", err, ErrNotFound, `commit "c_404" not found`)

		cs, err := tx.Commits("ws_a")
		wantErr(t, "Commits", err, nil)
		if got, want := commitIDs(cs), "c_1,c_2,c_3"; got != want {
			t.Errorf("Commits(ws_a) = %s, want %s (oldest first)", got, want)
		}
		cs, err = tx.Commits("ws_b")
		if err != nil || commitIDs(cs) != "c_9" {
			t.Errorf("Commits(ws_b) = %s, %v; want c_9", commitIDs(cs), err)
		}
		_, err = tx.Commits("ws_gone")
		wantErr(t, "Commits(missing workspace)", err, ErrNotFound, `"ws_gone"`)
		return nil
	})
}

func TestHistory(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_f", "fork")); err != nil {
			return err
		}
		for _, c := range []Commit{
			commit("c_1", "ws_a", "", "s1", 1),
			commit("c_2", "ws_a", "c_1", "s2", 2),
			commit("c_3", "ws_a", "c_2", "s3", 3),
			commit("c_4", "ws_a", "c_3", "s4", 4),
			commit("c_2b", "ws_a", "c_2", "s2b", 5), // a branch: a restore made from c_2
			// a fork whose parent lives in another workspace
			commit("f_1", "ws_f", "c_3", "s3", 6),
			commit("f_2", "ws_f", "f_1", "s5", 7),
		} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})
	cases := []struct {
		head  string
		limit int
		want  string
	}{
		{"c_4", 0, "c_4,c_3,c_2,c_1"},
		{"c_4", -1, "c_4,c_3,c_2,c_1"},
		{"c_4", 1, "c_4"},
		{"c_4", 2, "c_4,c_3"},
		{"c_4", 4, "c_4,c_3,c_2,c_1"},
		{"c_4", 100, "c_4,c_3,c_2,c_1"},
		{"c_3", 0, "c_3,c_2,c_1"},
		{"c_1", 0, "c_1"},
		{"c_2b", 0, "c_2b,c_2,c_1"},
		{"f_2", 3, "f_2,f_1,c_3"},
	}
	for _, tc := range cases {
		mustView(t, s, func(tx *Tx) error {
			h, err := tx.History(tc.head, tc.limit)
			if err != nil || commitIDs(h) != tc.want {
				t.Errorf("History(%s, %d) = %s, %v; want %s", tc.head, tc.limit, commitIDs(h), err, tc.want)
			}
			return nil
		})
	}
	err := s.View(func(tx *Tx) error { _, err := tx.History("c_404", 0); return err })
	wantErr(t, "History(missing head)", err, ErrNotFound, `"c_404"`)

	// Deleting the source workspace ends the fork's history where its parent was.
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })
	mustView(t, s, func(tx *Tx) error {
		h, err := tx.History("f_2", 0)
		if err != nil || commitIDs(h) != "f_2,f_1" || h[1].Parent != "c_3" {
			t.Errorf("History(f_2) after deleting the source = %s, %v; want f_2,f_1 (f_1 still naming c_3)", commitIDs(h), err)
		}
		return nil
	})
}

func TestHistoryLoopIsCorrupt(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
			return err
		}
		// Immutable commits cannot form a loop through the API unless ids are reused; build one
		// by naming parents that are stored later.
		for _, c := range []Commit{commit("c_1", "ws_a", "c_3", "s", 1), commit("c_2", "ws_a", "c_1", "s", 2),
			commit("c_3", "ws_a", "c_2", "s", 3)} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.View(func(tx *Tx) error { _, err := tx.History("c_3", 0); return err })
	wantErr(t, "History(loop)", err, ErrCorrupt, `bucket "commits" key "c_1"`, "loops")
	mustView(t, s, func(tx *Tx) error {
		h, err := tx.History("c_3", 3)
		if err != nil || commitIDs(h) != "c_3,c_2,c_1" {
			t.Errorf("History(c_3, 3) = %s, %v; a limit stops before the loop is seen", commitIDs(h), err)
		}
		return nil
	})
}

func TestSnapshotRefs(t *testing.T) {
	s := openStore(t)
	mustView(t, s, func(tx *Tx) error {
		refs, err := tx.SnapshotRefs()
		if err != nil || len(refs) != 0 {
			t.Errorf("SnapshotRefs() on an empty store = %v, %v; want empty", refs, err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error {
		if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_b", "beta")); err != nil {
			return err
		}
		for _, c := range []Commit{
			commit("c_0", "ws_a", "", "", 0), // the empty first commit references no snapshot
			commit("c_1", "ws_a", "c_0", "snap_1", 1),
			commit("c_2", "ws_a", "c_1", "snap_2", 2),
			commit("c_3", "ws_a", "c_2", "snap_1", 3), // a restore of c_1
			commit("c_4", "ws_b", "", "snap_2", 4),    // a fork of c_2
			commit("c_5", "ws_b", "c_4", "snap_5", 5),
		} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(want map[string]int) {
		t.Helper()
		mustView(t, s, func(tx *Tx) error {
			refs, err := tx.SnapshotRefs()
			if err != nil || !reflect.DeepEqual(refs, want) {
				t.Errorf("SnapshotRefs() = %v, %v; want %v", refs, err, want)
			}
			return nil
		})
	}
	check(map[string]int{"snap_1": 2, "snap_2": 2, "snap_5": 1})
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })
	check(map[string]int{"snap_2": 1, "snap_5": 1})
}
