package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// page reads one page in its own transaction.
func page(t *testing.T, s *Store, wsID string, after *RunPosition, limit, maxScan int, filter func(Run) bool) ([]string, *RunPosition) {
	t.Helper()
	var got []Run
	var next *RunPosition
	mustView(t, s, func(tx *Tx) error {
		var err error
		got, next, err = tx.RunsPage(wsID, after, limit, maxScan, filter)
		return err
	})
	out := []string{}
	for _, r := range got {
		out = append(out, r.ID)
	}
	return out, next
}

func TestRunsPageNewestFirst(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_b", "beta")); err != nil {
			return err
		}
		// Stored out of order; run_c and run_d share a creation instant (ordered by id).
		for _, r := range []Run{run("run_b", "ws_a", "", 2), run("run_a", "ws_a", "", 1), run("run_d", "ws_a", "", 3),
			run("run_c", "ws_a", "", 3), run("run_e", "ws_a", "", 4), run("run_x", "ws_b", "", 5)} {
			if err := tx.PutRun(r); err != nil {
				return err
			}
		}
		return nil
	})
	got, next := page(t, s, "ws_a", nil, 2, 0, nil)
	if want := []string{"run_e", "run_d"}; !reflect.DeepEqual(got, want) || next == nil {
		t.Fatalf("page 1 = %v next %v, want %v and a next position", got, next, want)
	}
	// Newer runs arriving meanwhile do not shift the next page.
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutRun(run("run_f", "ws_a", "", 9)) })
	got, next = page(t, s, "ws_a", next, 2, 0, nil)
	if want := []string{"run_c", "run_b"}; !reflect.DeepEqual(got, want) || next == nil {
		t.Fatalf("page 2 = %v next %v, want %v and a next position", got, next, want)
	}
	got, next = page(t, s, "ws_a", next, 2, 0, nil)
	if want := []string{"run_a"}; !reflect.DeepEqual(got, want) || next != nil {
		t.Fatalf("page 3 = %v next %v, want %v and the end", got, next, want)
	}
	// A page that ends exactly at the first run says so (no empty page after it).
	if got, next = page(t, s, "ws_a", nil, 6, 0, nil); len(got) != 6 || next != nil {
		t.Fatalf("whole listing = %v next %v, want 6 runs and the end", got, next)
	}
	// A filter skips runs; the scan bound ends a page early with a position to go on from.
	odd := func(r Run) bool { return r.ID == "run_f" || r.ID == "run_a" }
	if got, next = page(t, s, "ws_a", nil, 5, 0, odd); !reflect.DeepEqual(got, []string{"run_f", "run_a"}) || next != nil {
		t.Fatalf("filtered = %v next %v", got, next)
	}
	got, next = page(t, s, "ws_a", nil, 5, 3, odd)
	if !reflect.DeepEqual(got, []string{"run_f"}) || next == nil || next.ID != "run_d" {
		t.Fatalf("bounded scan = %v next %+v, want [run_f] and next at run_d", got, next)
	}
	if got, next = page(t, s, "ws_a", next, 5, 3, odd); !reflect.DeepEqual(got, []string{"run_a"}) || next != nil {
		t.Fatalf("bounded scan, page 2 = %v next %v", got, next)
	}
	// Other workspaces are separate; unknown ones are empty.
	if got, _ = page(t, s, "ws_b", nil, 5, 0, nil); !reflect.DeepEqual(got, []string{"run_x"}) {
		t.Fatalf("ws_b = %v", got)
	}
	if got, next = page(t, s, "ws_nope", nil, 5, 0, nil); len(got) != 0 || next != nil {
		t.Fatalf("unknown workspace = %v %v", got, next)
	}
}

func TestRunsPageFollowsChanges(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
			return err
		}
		for i := range 3 {
			if err := tx.PutRun(run(fmt.Sprintf("run_%d", i), "ws_a", "", i)); err != nil {
				return err
			}
		}
		return nil
	})
	// Updating a run (its status) keeps one entry; a changed creation time moves it.
	mustUpdate(t, s, func(tx *Tx) error {
		r, err := tx.Run("run_0")
		if err != nil {
			return err
		}
		r.Status = RunLost
		if err := tx.PutRun(r); err != nil {
			return err
		}
		r.Created = at(10)
		return tx.PutRun(r)
	})
	if got, _ := page(t, s, "ws_a", nil, 10, 0, nil); !reflect.DeepEqual(got, []string{"run_0", "run_2", "run_1"}) {
		t.Fatalf("after updates = %v", got)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })
	mustView(t, s, func(tx *Tx) error {
		if b, err := tx.nested(bucketRunOrder, "ws_a", false); err != nil || b != nil {
			t.Errorf("run order index of a deleted workspace: %v %v", b, err)
		}
		return nil
	})
}

func TestRunsPageDamagedIndex(t *testing.T) {
	path := newFile(t)
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutRun(run("run_1", "ws_a", "", 1)) })
	_ = s.Close()
	damage(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketRunOrder)).Bucket([]byte("ws_a")).Put(runOrderKey(at(2), "run_ghost"), []byte("run_ghost"))
	})
	s = openAt(t, path)
	err := s.View(func(tx *Tx) error { _, _, err := tx.RunsPage("ws_a", nil, 5, 0, nil); return err })
	wantErr(t, "page over a dangling entry", err, ErrCorrupt, "run_ghost", "does not exist")
}

// TestMigrateVersion3 opens a file written at schema version 3 (runs, no run order index): the
// migration indexes every run, and listing pages through them newest first.
func TestMigrateVersion3(t *testing.T) {
	path := newFile(t)
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_b", "beta")); err != nil {
			return err
		}
		for i := range 5 {
			if err := tx.PutRun(run(fmt.Sprintf("run_a%d", i), "ws_a", "", i)); err != nil {
				return err
			}
		}
		return tx.PutRun(run("run_b0", "ws_b", "", 7))
	})
	_ = s.Close()
	// A damaged record does not stop the migration.
	damage(t, path, rawPut(bucketRuns, "run_bad", []byte("{not json")))
	s = openAsVersion(t, path, "3", bucketRunOrder)
	got, next := page(t, s, "ws_a", nil, 3, 0, nil)
	if want := []string{"run_a4", "run_a3", "run_a2"}; !reflect.DeepEqual(got, want) || next == nil {
		t.Fatalf("after migration, page 1 = %v (next %v), want %v", got, next, want)
	}
	if got, next = page(t, s, "ws_a", next, 3, 0, nil); !reflect.DeepEqual(got, []string{"run_a1", "run_a0"}) || next != nil {
		t.Fatalf("after migration, page 2 = %v (next %v)", got, next)
	}
	if got, _ = page(t, s, "ws_b", nil, 3, 0, nil); !reflect.DeepEqual(got, []string{"run_b0"}) {
		t.Fatalf("after migration, ws_b = %v", got)
	}
	_ = s.Close()
	if v := rawVersion(t, path); v != cur {
		t.Fatalf("version after migration = %q, want %s", v, cur)
	}
}

func TestRunOrderKeySorts(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	keys := [][]byte{
		runOrderKey(time.Time{}, "run_z"), runOrderKey(base, "run_a"), runOrderKey(base, "run_b"),
		runOrderKey(base.Add(time.Nanosecond), "run_a"), runOrderKey(base.Add(100*365*24*time.Hour), "run_a"),
	}
	for i := 1; i < len(keys); i++ {
		if strings.Compare(string(keys[i-1]), string(keys[i])) >= 0 {
			t.Fatalf("key %d does not sort after key %d", i, i-1)
		}
	}
	if p := positionOf(runOrderKey(base, "run_a")); !p.Created.Equal(base) || p.ID != "run_a" {
		t.Fatalf("position round trip: %+v", p)
	}
}
