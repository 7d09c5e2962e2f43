package store

import (
	"errors"
	"reflect"
	"testing"
)

func TestWorkspaceCreateGetList(t *testing.T) {
	s := openStore(t)
	created := []Workspace{ws("ws_3", "charlie"), ws("ws_1", "bravo"), ws("ws_2", "alpha")}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, w := range created {
			w.Version = 42 // ignored: a new workspace is version 1
			if err := tx.CreateWorkspace(w); err != nil {
				return err
			}
		}
		return nil
	})

	for _, w := range created {
		want := w
		want.Version = 1
		mustView(t, s, func(tx *Tx) error {
			got, err := tx.Workspace(w.ID)
			wantErr(t, "Workspace", err, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Workspace(%q) = %+v, want %+v", w.ID, got, want)
			}
			got, err = tx.WorkspaceByName(w.Name)
			wantErr(t, "WorkspaceByName", err, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("WorkspaceByName(%q) = %+v, want %+v", w.Name, got, want)
			}
			return nil
		})
	}
	mustView(t, s, func(tx *Tx) error {
		all, err := tx.Workspaces()
		wantErr(t, "Workspaces", err, nil)
		if got, want := workspaceIDs(all), "ws_2,ws_1,ws_3"; got != want {
			t.Errorf("Workspaces() order = %s, want %s (by name)", got, want)
		}
		_, err = tx.Workspace("ws_nope")
		wantErr(t, "Workspace(missing)", err, ErrNotFound, `workspace "ws_nope" not found`)
		_, err = tx.WorkspaceByName("nope")
		wantErr(t, "WorkspaceByName(missing)", err, ErrNotFound, `"nope"`)
		return nil
	})

	t.Run("empty store lists nothing", func(t *testing.T) {
		mustView(t, openStore(t), func(tx *Tx) error {
			all, err := tx.Workspaces()
			if err != nil || len(all) != 0 {
				t.Errorf("Workspaces() = %v, %v; want empty, nil", all, err)
			}
			return nil
		})
	})
}

func TestWorkspaceNameUniqueness(t *testing.T) {
	cases := []struct {
		name string
		op   func(tx *Tx) error
		want error
		msg  []string
		// byName maps each name to the id it must resolve to afterwards ("" = must not resolve).
		byName map[string]string
	}{
		{
			name: "create with taken id",
			op:   func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_a", "other")) },
			want: ErrExists, msg: []string{`workspace "ws_a" already exists`},
			byName: map[string]string{"alpha": "ws_a", "other": ""},
		},
		{
			name: "create with taken name",
			op:   func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_c", "alpha")) },
			want: ErrExists, msg: []string{`name "alpha"`, `"ws_a"`},
			byName: map[string]string{"alpha": "ws_a"},
		},
		{
			name: "create without name",
			op:   func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_c", "")) },
			want: errAny, msg: []string{"ws_c"},
			byName: map[string]string{"alpha": "ws_a", "beta": "ws_b"},
		},
		{
			name: "rename to a taken name",
			op: func(tx *Tx) error {
				w, _ := tx.Workspace("ws_b")
				w.Name = "alpha"
				_, err := tx.PutWorkspace(w)
				return err
			},
			want: ErrExists, msg: []string{`name "alpha"`, `"ws_a"`},
			byName: map[string]string{"alpha": "ws_a", "beta": "ws_b"},
		},
		{
			name: "rename to a free name moves the index",
			op: func(tx *Tx) error {
				w, _ := tx.Workspace("ws_b")
				w.Name = "gamma"
				_, err := tx.PutWorkspace(w)
				return err
			},
			byName: map[string]string{"alpha": "ws_a", "beta": "", "gamma": "ws_b"},
		},
		{
			name: "keeping the name is not a conflict",
			op: func(tx *Tx) error {
				w, _ := tx.Workspace("ws_a")
				w.Head = "c_new"
				_, err := tx.PutWorkspace(w)
				return err
			},
			byName: map[string]string{"alpha": "ws_a", "beta": "ws_b"},
		},
		{
			name: "a freed name can be taken",
			op: func(tx *Tx) error {
				w, _ := tx.Workspace("ws_b")
				w.Name = "delta"
				if _, err := tx.PutWorkspace(w); err != nil {
					return err
				}
				return tx.CreateWorkspace(ws("ws_c", "beta"))
			},
			byName: map[string]string{"beta": "ws_c", "delta": "ws_b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			mustUpdate(t, s, func(tx *Tx) error {
				if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
					return err
				}
				return tx.CreateWorkspace(ws("ws_b", "beta"))
			})
			err := s.Update(tc.op)
			wantErr(t, tc.name, err, tc.want, tc.msg...)
			mustView(t, s, func(tx *Tx) error {
				for name, id := range tc.byName {
					w, err := tx.WorkspaceByName(name)
					switch {
					case id == "" && !isNotFound(err):
						t.Errorf("WorkspaceByName(%q) = %v, %v; want not found", name, w.ID, err)
					case id != "" && (err != nil || w.ID != id):
						t.Errorf("WorkspaceByName(%q) = %v, %v; want %s", name, w.ID, err, id)
					}
				}
				return nil
			})
		})
	}
}

// TestPutWorkspaceVersions: every PutWorkspace stores the stored Version plus one; an Update that
// fails after a put changes nothing in the file (no name moved, no version counted); a missing
// workspace is not found.
func TestPutWorkspaceVersions(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_a", "alpha")) })
	mustUpdate(t, s, func(tx *Tx) error {
		cur, err := tx.Workspace("ws_a")
		if err != nil {
			return err
		}
		cur.Head = "c_first"
		stored, err := tx.PutWorkspace(cur)
		if err != nil {
			return err
		}
		if stored.Version != 2 || stored.Head != "c_first" {
			t.Errorf("PutWorkspace returned %+v, want version 2 and head c_first", stored)
		}
		return nil
	})
	before := bucketKeys(t, s)

	failed := errors.New("the caller gives up")
	err := s.Update(func(tx *Tx) error {
		cur, err := tx.Workspace("ws_a")
		if err != nil {
			return err
		}
		cur.Head, cur.Name = "c_second", "renamed"
		if _, err := tx.PutWorkspace(cur); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("Update: %v, want the caller's error", err)
	}
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Workspace("ws_a")
		wantErr(t, "Workspace", err, nil)
		if got.Version != 2 || got.Head != "c_first" || got.Name != "alpha" {
			t.Errorf("after a failed Update: %+v, want version 2, head c_first, name alpha", got)
		}
		if _, err := tx.WorkspaceByName("renamed"); !isNotFound(err) {
			t.Errorf("a failed Update left the new name indexed: %v", err)
		}
		return nil
	})
	if after := bucketKeys(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed Update changed the file:\nbefore %v\nafter  %v", before, after)
	}

	mustUpdate(t, s, func(tx *Tx) error {
		cur, err := tx.Workspace("ws_a")
		if err != nil {
			return err
		}
		cur.Name = "renamed"
		for i := 0; i < 3; i++ {
			if cur, err = tx.PutWorkspace(cur); err != nil {
				return err
			}
		}
		if cur.Version != 5 {
			t.Errorf("after 3 more puts version = %d, want 5", cur.Version)
		}
		return nil
	})

	err = s.Update(func(tx *Tx) error {
		_, err := tx.PutWorkspace(ws("ws_missing", "m"))
		return err
	})
	wantErr(t, "PutWorkspace(missing)", err, ErrNotFound, `"ws_missing"`)
}
