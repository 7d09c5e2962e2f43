package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damage opens the closed state file with a raw bbolt handle and runs fn on it, the way a bad disk,
// a buggy older binary or a hand edit would leave it.
func damage(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw damage: %v", err)
	}
}

// rawPut stores value under key in the bucket at path ("parent" or "parent/child", created if
// needed); a nil value makes a nested bucket there instead.
func rawPut(bucketPath, key string, value []byte) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		parts := strings.Split(bucketPath, "/")
		b := tx.Bucket([]byte(parts[0]))
		for _, p := range parts[1:] {
			var err error
			if b, err = b.CreateBucketIfNotExists([]byte(p)); err != nil {
				return err
			}
		}
		if value == nil {
			_, err := b.CreateBucket([]byte(key))
			return err
		}
		return b.Put([]byte(key), value)
	}
}

func both(fns ...func(tx *bolt.Tx) error) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for _, fn := range fns {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return nil
	}
}

// fillHealthy stores one of everything: workspace ws_ok (alpha) with commits c_ok ← c_child, run
// run_ok with idempotency key k_ok and its output.
func fillHealthy(t *testing.T, s *Store) {
	t.Helper()
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_ok", "alpha")); err != nil {
			return err
		}
		if err := tx.PutCommit(commit("c_ok", "ws_ok", "", "snap", 1)); err != nil {
			return err
		}
		if err := tx.PutCommit(commit("c_child", "ws_ok", "c_ok", "snap2", 2)); err != nil {
			return err
		}
		if err := tx.PutRun(run("run_ok", "ws_ok", "k_ok", 1)); err != nil {
			return err
		}
		return tx.PutRunOutput("run_ok", Output{Head: []byte("hi")}, Output{})
	})
}

func TestCorruptRecordsAreReported(t *testing.T) {
	workspaceReaders := map[string]func(tx *Tx) error{
		"Workspace":       func(tx *Tx) error { _, err := tx.Workspace("ws_ok"); return err },
		"WorkspaceByName": func(tx *Tx) error { _, err := tx.WorkspaceByName("alpha"); return err },
		"Workspaces":      func(tx *Tx) error { _, err := tx.Workspaces(); return err },
		"PutWorkspace":    func(tx *Tx) error { _, err := tx.PutWorkspace(ws("ws_ok", "alpha")); return err },
	}
	commitReaders := map[string]func(tx *Tx) error{
		"Commit":         func(tx *Tx) error { _, err := tx.Commit("c_ok"); return err },
		"Commits":        func(tx *Tx) error { _, err := tx.Commits("ws_ok"); return err },
		"History(self)":  func(tx *Tx) error { _, err := tx.History("c_ok", 0); return err },
		"History(child)": func(tx *Tx) error { _, err := tx.History("c_child", 0); return err },
		"SnapshotRefs":   func(tx *Tx) error { _, err := tx.SnapshotRefs(); return err },
	}
	runReaders := map[string]func(tx *Tx) error{
		"Run":                 func(tx *Tx) error { _, err := tx.Run("run_ok"); return err },
		"Runs":                func(tx *Tx) error { _, err := tx.Runs(nil); return err },
		"RunByIdempotencyKey": func(tx *Tx) error { _, err := tx.RunByIdempotencyKey("ws_ok", "k_ok"); return err },
		"PutRun":              func(tx *Tx) error { return tx.PutRun(run("run_ok", "ws_ok", "k_ok", 1)) },
	}
	cases := []struct {
		name        string
		damage      func(tx *bolt.Tx) error
		bucket, key string
		cause       string
		readers     map[string]func(tx *Tx) error
	}{
		{"truncated workspace", rawPut(bucketWorkspaces, "ws_ok", []byte(`{"id":"ws_ok","name":"al`)),
			"workspaces", "ws_ok", "unexpected end of JSON input", workspaceReaders},
		{"binary garbage workspace", rawPut(bucketWorkspaces, "ws_ok", []byte("\x00\xff\xfe\x01garbage")),
			"workspaces", "ws_ok", "invalid character", workspaceReaders},
		{"workspace without id", rawPut(bucketWorkspaces, "ws_ok", []byte(`{"name":"alpha","version":1}`)),
			"workspaces", "ws_ok", "record has no id", workspaceReaders},
		{"workspace JSON null", rawPut(bucketWorkspaces, "ws_ok", []byte(`null`)),
			"workspaces", "ws_ok", "record has no id", workspaceReaders},
		{"workspace stored under another key", rawPut(bucketWorkspaces, "ws_ok", []byte(`{"id":"ws_x","name":"alpha","version":1}`)),
			"workspaces", "ws_ok", `record id "ws_x" does not match its key`, workspaceReaders},
		{"workspace without name", rawPut(bucketWorkspaces, "ws_ok", []byte(`{"id":"ws_ok","version":1}`)),
			"workspaces", "ws_ok", "workspace has no name", workspaceReaders},
		{"workspace field of the wrong type", rawPut(bucketWorkspaces, "ws_ok", []byte(`{"id":"ws_ok","name":"alpha","version":"one"}`)),
			"workspaces", "ws_ok", "cannot unmarshal", workspaceReaders},
		{"nested bucket among workspaces", rawPut(bucketWorkspaces, "ws_nest", nil),
			"workspaces", "ws_nest", "found a nested bucket",
			map[string]func(tx *Tx) error{"Workspaces": workspaceReaders["Workspaces"]}},
		{"name index naming a missing workspace", rawPut(bucketWorkspaceNames, "ghost", []byte("ws_ghost")),
			"workspace_names", "ghost", `"ws_ghost", which does not exist`,
			map[string]func(tx *Tx) error{"WorkspaceByName": func(tx *Tx) error { _, err := tx.WorkspaceByName("ghost"); return err }}},
		{"name index naming the wrong workspace", rawPut(bucketWorkspaceNames, "beta", []byte("ws_ok")),
			"workspace_names", "beta", `which is named "alpha"`,
			map[string]func(tx *Tx) error{"WorkspaceByName": func(tx *Tx) error { _, err := tx.WorkspaceByName("beta"); return err }}},
		{"garbage commit", rawPut(bucketCommits, "c_ok", []byte("}{")),
			"commits", "c_ok", "invalid character", commitReaders},
		{"commit without workspace", rawPut(bucketCommits, "c_ok", []byte(`{"id":"c_ok","snapshot":"snap"}`)),
			"commits", "c_ok", "commit has no workspace", commitReaders},
		{"commit index naming a missing commit", rawPut(bucketWorkspaceCommits+"/ws_ok", "c_ghost", []byte{}),
			"workspace_commits/ws_ok", "c_ghost", "does not exist",
			map[string]func(tx *Tx) error{"Commits": commitReaders["Commits"]}},
		{"commit index replaced by a value", both(
			func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(bucketWorkspaceCommits)).DeleteBucket([]byte("ws_ok"))
			},
			rawPut(bucketWorkspaceCommits, "ws_ok", []byte("oops"))),
			"workspace_commits", "ws_ok", "expected a nested bucket",
			map[string]func(tx *Tx) error{
				"Commits":         commitReaders["Commits"],
				"PutCommit":       func(tx *Tx) error { return tx.PutCommit(commit("c_new", "ws_ok", "c_ok", "s", 3)) },
				"DeleteWorkspace": func(tx *Tx) error { return tx.DeleteWorkspace("ws_ok") },
			}},
		{"garbage run", rawPut(bucketRuns, "run_ok", []byte{0xff}),
			"runs", "run_ok", "invalid character", runReaders},
		{"run without workspace", rawPut(bucketRuns, "run_ok", []byte(`{"run_id":"run_ok","status":"exited"}`)),
			"runs", "run_ok", "run has no workspace", runReaders},
		{"idempotency index naming a missing run", rawPut(bucketIdempotency+"/ws_ok", "k_ghost", []byte("run_ghost")),
			"run_idempotency/ws_ok", "k_ghost", `"run_ghost", which does not exist`,
			map[string]func(tx *Tx) error{"RunByIdempotencyKey": func(tx *Tx) error { _, err := tx.RunByIdempotencyKey("ws_ok", "k_ghost"); return err }}},
		{"garbage output", rawPut(bucketRunOutputs, "run_ok", []byte("not json")),
			"run_outputs", "run_ok", "invalid character",
			map[string]func(tx *Tx) error{"RunOutput": func(tx *Tx) error { _, _, err := tx.RunOutput("run_ok"); return err }}},
		{"output with bad base64", rawPut(bucketRunOutputs, "run_ok", []byte(`{"stdout":{"head":"!!!"}}`)),
			"run_outputs", "run_ok", "illegal base64",
			map[string]func(tx *Tx) error{"RunOutput": func(tx *Tx) error { _, _, err := tx.RunOutput("run_ok"); return err }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fillHealthy(t, s)
			_ = s.Close()
			damage(t, path, tc.damage)
			s = openAt(t, path)

			where := fmt.Sprintf("bucket %q key %q", tc.bucket, tc.key)
			for name, read := range tc.readers {
				err := func() (err error) {
					defer func() {
						if p := recover(); p != nil {
							err = fmt.Errorf("panic: %v", p)
						}
					}()
					return s.Update(read)
				}()
				wantErr(t, name, err, ErrCorrupt, where, tc.cause)
			}
		})
	}
}

func TestCorruptMessageFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	damage(t, path, rawPut(bucketWorkspaces, "ws_123", []byte(`{"id":"ws_123",`)))
	s = openAt(t, path)
	err = s.View(func(tx *Tx) error { _, err := tx.Workspaces(); return err })
	want := `store: corrupt record in bucket "workspaces" key "ws_123": unexpected end of JSON input`
	if err == nil || err.Error() != want {
		t.Errorf("Workspaces() error = %v\nwant %s", err, want)
	}
}
