package store

import (
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// names lists a page's workspace names.
func names(ws []Workspace) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

// pages reads every page of limit with f and returns the names, page by page.
func pages(t *testing.T, s *Store, limit int, f LabelFilter) [][]string {
	t.Helper()
	var out [][]string
	after := ""
	for i := 0; i < 100; i++ {
		var page []Workspace
		var more bool
		mustView(t, s, func(tx *Tx) error {
			var err error
			page, more, err = tx.WorkspacePage(after, limit, f)
			return err
		})
		out = append(out, names(page))
		if !more {
			return out
		}
		after = page[len(page)-1].Name
	}
	t.Fatal("WorkspacePage never ends")
	return nil
}

// TestWorkspacePageAndLabelIndex: pages in name order with a cursor, filtered by a label key or
// key=value through the index, which follows creates, relabels, renames and deletes; keys and
// values with odd bytes do not run into each other.
func TestWorkspacePageAndLabelIndex(t *testing.T) {
	s := openStore(t)
	mk := func(id, name string, labels map[string]string) {
		w := ws(id, name)
		w.Labels = labels
		mustUpdate(t, s, func(tx *Tx) error { return tx.CreateWorkspace(w) })
	}
	mk("ws_1", "echo", map[string]string{"team": "a", "env": "prod"})
	mk("ws_2", "alpha", map[string]string{"team": "b"})
	mk("ws_3", "delta", map[string]string{"team": "a"})
	mk("ws_4", "bravo", nil)
	mk("ws_5", "charlie", map[string]string{"te": "am\x00a", "team\x00a": "x"})

	if got, want := pages(t, s, 2, LabelFilter{}), [][]string{{"alpha", "bravo"}, {"charlie", "delta"}, {"echo"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("all, 2 a page: %v, want %v", got, want)
	}
	if got, want := pages(t, s, 10, LabelFilter{Key: "team"}), [][]string{{"alpha", "delta", "echo"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("team: %v, want %v", got, want)
	}
	if got, want := pages(t, s, 1, LabelFilter{Key: "team", Value: "a", HasValue: true}), [][]string{{"delta"}, {"echo"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("team=a, 1 a page: %v, want %v", got, want)
	}
	if got, want := pages(t, s, 10, LabelFilter{Key: "te"}), [][]string{{"charlie"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("te: %v, want %v", got, want)
	}
	if got, want := pages(t, s, 10, LabelFilter{Key: "team", Value: "", HasValue: true}), [][]string{{}}; !reflect.DeepEqual(got, want) {
		t.Errorf("team= (empty value): %v, want none", got)
	}

	// Relabel and rename echo, delete delta.
	mustUpdate(t, s, func(tx *Tx) error {
		w, err := tx.Workspace("ws_1")
		if err != nil {
			return err
		}
		w.Name, w.Labels = "aaron", map[string]string{"team": "b"}
		if _, err := tx.PutWorkspace(w); err != nil {
			return err
		}
		return tx.DeleteWorkspace("ws_3")
	})
	if got, want := pages(t, s, 10, LabelFilter{Key: "team", Value: "a", HasValue: true}), [][]string{{}}; !reflect.DeepEqual(got, want) {
		t.Errorf("team=a after the changes: %v, want none", got)
	}
	if got, want := pages(t, s, 10, LabelFilter{Key: "team", Value: "b", HasValue: true}), [][]string{{"aaron", "alpha"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("team=b after the changes: %v, want %v", got, want)
	}
	if got, want := pages(t, s, 10, LabelFilter{Key: "env"}), [][]string{{}}; !reflect.DeepEqual(got, want) {
		t.Errorf("env after the relabel: %v, want none", got)
	}
	mustView(t, s, func(tx *Tx) error {
		if _, _, err := tx.WorkspacePage("", 0, LabelFilter{}); err == nil {
			t.Error("WorkspacePage with limit 0 succeeded")
		}
		return nil
	})
}

// TestMigrateVersion4 opens a file of schema version 4 (no label index): the migration indexes
// every workspace's labels, skipping a damaged record.
func TestMigrateVersion4(t *testing.T) {
	path := newFile(t)
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, w := range []Workspace{ws("ws_x", "xray"), ws("ws_y", "yankee")} {
			w.Labels = map[string]string{"team": "a"}
			if err := tx.CreateWorkspace(w); err != nil {
				return err
			}
		}
		return nil
	})
	_ = s.Close()
	damage(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte(bucketWorkspaceLabels)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketWorkspaces)).Put([]byte("ws_bad"), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketSchema)).Put([]byte(keySchemaVersion), []byte("4"))
	})
	s = openAt(t, path)
	// newFile's alpha has team=a too (ws gives every workspace that label).
	if got, want := pages(t, s, 10, LabelFilter{Key: "team", Value: "a", HasValue: true}), [][]string{{"alpha", "xray", "yankee"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("after migration, team=a: %v, want %v", got, want)
	}
	_ = s.Close()
	if v := rawVersion(t, path); v != cur {
		t.Fatalf("version after migration = %q, want %s", v, cur)
	}
}
