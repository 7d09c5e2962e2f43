package store

import (
	"path/filepath"
	"reflect"
	"testing"
)

func tplSnap(provider, fp, snap string) TemplateSnapshot {
	return TemplateSnapshot{
		Key: TemplateKey(provider, fp), Provider: provider, Fingerprint: fp, Template: "node",
		Snapshot: snap, Command: "sh", Args: []string{"-c", "npm ci"}, Policy: "allow:registry.npmjs.org",
		DurationMS: 1200, Built: t0,
	}
}

func TestTemplateSnapshots(t *testing.T) {
	s := openStore(t)
	a, b := tplSnap("local", "aaa", "snap-a"), tplSnap("local", "bbb", "snap-b")
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutTemplateSnapshot(b); err != nil {
			return err
		}
		return tx.PutTemplateSnapshot(a)
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.TemplateSnapshot("local/aaa")
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("TemplateSnapshot = %+v, %v; want %+v", got, err, a)
		}
		all, err := tx.TemplateSnapshots()
		if err != nil || len(all) != 2 || all[0].Key != "local/aaa" || all[1].Key != "local/bbb" {
			t.Errorf("TemplateSnapshots = %+v, %v; want aaa, bbb in key order", all, err)
		}
		_, err = tx.TemplateSnapshot("local/zzz")
		wantErr(t, "TemplateSnapshot(missing)", err, ErrNotFound, "local/zzz")
		return nil
	})

	// A template snapshot counts as a reference, with commits sharing it.
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
			return err
		}
		c := commit("c_ws_a", "ws_a", "", "snap-a", 1)
		c.Kind = CommitSetup
		return tx.PutCommit(c)
	})
	mustView(t, s, func(tx *Tx) error {
		refs, err := tx.SnapshotRefs()
		if err != nil || refs["snap-a"] != 2 || refs["snap-b"] != 1 {
			t.Errorf("SnapshotRefs = %v, %v; want snap-a 2 (record + commit), snap-b 1", refs, err)
		}
		return nil
	})

	// Replacing a record moves the reference; deleting drops it; deleting twice is fine.
	mustUpdate(t, s, func(tx *Tx) error {
		b2 := b
		b2.Snapshot = "snap-b2"
		if err := tx.PutTemplateSnapshot(b2); err != nil {
			return err
		}
		if err := tx.DeleteTemplateSnapshot("local/aaa"); err != nil {
			return err
		}
		return tx.DeleteTemplateSnapshot("local/aaa")
	})
	mustView(t, s, func(tx *Tx) error {
		refs, _ := tx.SnapshotRefs()
		if refs["snap-a"] != 1 || refs["snap-b"] != 0 || refs["snap-b2"] != 1 {
			t.Errorf("SnapshotRefs after replace and delete = %v; want snap-a 1 (the commit), snap-b2 1", refs)
		}
		return nil
	})

	// Bad records are refused before anything is written.
	for name, bad := range map[string]TemplateSnapshot{
		"no snapshot":   func() TemplateSnapshot { x := a; x.Snapshot = ""; return x }(),
		"key mismatch":  func() TemplateSnapshot { x := a; x.Key = "local/other"; return x }(),
		"no provider":   func() TemplateSnapshot { x := a; x.Provider = ""; x.Key = "/aaa"; return x }(),
		"no key at all": {},
	} {
		err := s.Update(func(tx *Tx) error { return tx.PutTemplateSnapshot(bad) })
		wantErr(t, "PutTemplateSnapshot("+name+")", err, errAny, "put template snapshot")
	}
}

func TestCorruptTemplateSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutTemplateSnapshot(tplSnap("local", "aaa", "snap-a")) })
	_ = s.Close()
	damage(t, path, rawPut(bucketTemplates, "local/aaa", []byte(`{"key":"local/aaa","provider":"local"`)))
	s = openAt(t, path)
	for name, read := range map[string]func(tx *Tx) error{
		"TemplateSnapshot":  func(tx *Tx) error { _, err := tx.TemplateSnapshot("local/aaa"); return err },
		"TemplateSnapshots": func(tx *Tx) error { _, err := tx.TemplateSnapshots(); return err },
		"SnapshotRefs":      func(tx *Tx) error { _, err := tx.SnapshotRefs(); return err },
	} {
		wantErr(t, name, s.View(read), ErrCorrupt, `bucket "templates" key "local/aaa"`)
	}
}

// TestMigrateVersion2 opens a file of schema version 2 (no templates bucket) with this binary: it
// is migrated to the current version, keeps its data, and can hold template snapshots.
func TestMigrateVersion2(t *testing.T) {
	path := newFile(t)
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error {
		return tx.PutSession(Session{ID: "ses_1", Workspace: "ws_a", State: SessionAttached, Policy: "deny-all"})
	})
	_ = s.Close()
	s = openAsVersion(t, path, "2", bucketTemplates)
	mustView(t, s, func(tx *Tx) error {
		if w, err := tx.Workspace("ws_a"); err != nil || w.Name != "alpha" {
			t.Errorf("workspace lost in migration: %+v %v", w, err)
		}
		if ses, err := tx.Session("ses_1"); err != nil || ses.Policy != "deny-all" || ses.Override != nil {
			t.Errorf("session after migration: %+v %v", ses, err)
		}
		if got, err := tx.TemplateSnapshots(); err != nil || len(got) != 0 {
			t.Errorf("template snapshots after migration: %v %v", got, err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutTemplateSnapshot(tplSnap("local", "aaa", "snap-a")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rawVersion(t, path); got != cur {
		t.Fatalf("version after migration = %q, want %s", got, cur)
	}
}
