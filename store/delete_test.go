package store

import (
	"reflect"
	"sort"
	"testing"
)

// TestDeleteWorkspaceCascades fills two workspaces with everything a workspace owns, deletes one,
// and checks that no key of it is left anywhere in the file while the other is byte-for-byte intact.
func TestDeleteWorkspaceCascades(t *testing.T) {
	s := openStore(t)
	fill := func(tx *Tx, id, name string) error {
		if err := tx.CreateWorkspace(ws(id, name)); err != nil {
			return err
		}
		for _, c := range []Commit{commit(id+"_c1", id, "", "snap_"+id, 1), commit(id+"_c2", id, id+"_c1", "snap_shared", 2)} {
			if err := tx.PutCommit(c); err != nil {
				return err
			}
		}
		for _, r := range []Run{run(id+"_r1", id, "key1", 1), run(id+"_r2", id, "", 2)} {
			if err := tx.PutRun(r); err != nil {
				return err
			}
			if err := tx.PutRunOutput(r.ID, Output{Head: []byte("out " + r.ID)}, Output{}); err != nil {
				return err
			}
		}
		return nil
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := fill(tx, "ws_a", "alpha"); err != nil {
			return err
		}
		return fill(tx, "ws_b", "beta")
	})
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutMeta("settings", []byte("x")) })

	// What ws_b alone looks like: fill a second file with only ws_b.
	only := openStore(t)
	mustUpdate(t, only, func(tx *Tx) error { return fill(tx, "ws_b", "beta") })
	mustUpdate(t, only, func(tx *Tx) error { return tx.PutMeta("settings", []byte("x")) })
	want := bucketKeys(t, only)

	var beforeB Workspace
	mustView(t, s, func(tx *Tx) error { var err error; beforeB, err = tx.Workspace("ws_b"); return err })

	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })

	got := bucketKeys(t, s)
	for _, m := range []map[string][]string{got, want} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys left after deleting ws_a:\n got %v\nwant %v", got, want)
	}

	mustView(t, s, func(tx *Tx) error {
		for what, err := range map[string]error{
			"Workspace":           func() error { _, err := tx.Workspace("ws_a"); return err }(),
			"WorkspaceByName":     func() error { _, err := tx.WorkspaceByName("alpha"); return err }(),
			"Commit":              func() error { _, err := tx.Commit("ws_a_c2"); return err }(),
			"Commits":             func() error { _, err := tx.Commits("ws_a"); return err }(),
			"Run":                 func() error { _, err := tx.Run("ws_a_r1"); return err }(),
			"RunByIdempotencyKey": func() error { _, err := tx.RunByIdempotencyKey("ws_a", "key1"); return err }(),
			"RunOutput":           func() error { _, _, err := tx.RunOutput("ws_a_r1"); return err }(),
		} {
			wantErr(t, what+" after delete", err, ErrNotFound)
		}
		b, err := tx.Workspace("ws_b")
		if err != nil || !reflect.DeepEqual(b, beforeB) {
			t.Errorf("ws_b after deleting ws_a = %+v, %v; want unchanged", b, err)
		}
		cs, err := tx.Commits("ws_b")
		if err != nil || commitIDs(cs) != "ws_b_c1,ws_b_c2" {
			t.Errorf("Commits(ws_b) = %s, %v", commitIDs(cs), err)
		}
		r, err := tx.RunByIdempotencyKey("ws_b", "key1")
		if err != nil || r.ID != "ws_b_r1" {
			t.Errorf("RunByIdempotencyKey(ws_b, key1) = %s, %v", r.ID, err)
		}
		out, _, err := tx.RunOutput("ws_b_r2")
		if err != nil || string(out.Head) != "out ws_b_r2" {
			t.Errorf("RunOutput(ws_b_r2) = %q, %v", out.Head, err)
		}
		refs, err := tx.SnapshotRefs()
		if wantRefs := map[string]int{"snap_ws_b": 1, "snap_shared": 1}; err != nil || !reflect.DeepEqual(refs, wantRefs) {
			t.Errorf("SnapshotRefs() = %v, %v; want %v", refs, err, wantRefs)
		}
		return nil
	})

	// Late run writes for the deleted workspace are refused instead of leaving orphans.
	for what, op := range map[string]func(tx *Tx) error{
		"PutRun":       func(tx *Tx) error { return tx.PutRun(run("ws_a_r1", "ws_a", "key1", 1)) },
		"PutRunOutput": func(tx *Tx) error { return tx.PutRunOutput("ws_a_r2", Output{}, Output{}) },
		"Delete again": func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") },
	} {
		wantErr(t, what+" on deleted workspace", s.Update(op), ErrNotFound, "ws_a")
	}

	// The name is free again, and a new workspace under it starts clean.
	mustUpdate(t, s, func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_a2", "alpha")) })
	mustView(t, s, func(tx *Tx) error {
		cs, err := tx.Commits("ws_a2")
		if err != nil || len(cs) != 0 {
			t.Errorf("Commits(ws_a2) = %s, %v; want none", commitIDs(cs), err)
		}
		return nil
	})
}
