package store

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
)

// TestCommitChangesRoundTrip: a commit's changed paths survive the store; a commit, run and
// session record written before the change fields existed (raw JSON without them) decodes as
// "changes unknown", not as "nothing changed".
func TestCommitChangesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	c := commit("c_new", "ws_1", "", "snap", 1)
	c.ChangesKnown, c.ChangedFiles, c.ChangedBytes = true, 2, 5
	c.Changes = []PathChange{{Path: "a.txt", Op: ChangeAdded, Type: "file"}, {Path: "~/.bashrc", Op: ChangeDeleted, Type: "file"}}
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutCommit(c) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// As an older binary wrote them: no changes_known, no changes, no unchanged.
	old := `{"id":"c_old","workspace_id":"ws_1","parent":"c_new","snapshot":"snap2","kind":"run","message":"run: make (exit 0)",` +
		`"run_id":"run_1","changed_bytes":10,"changed_files":3,"created_at":"2026-01-02T03:04:05Z"}`
	damage(t, path, both(rawPut(bucketCommits, "c_old", []byte(old)), rawPut(bucketWorkspaceCommits+"/ws_1", "c_old", []byte{})))
	s = openAt(t, path)
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Commit("c_new")
		if err != nil {
			return err
		}
		if !got.ChangesKnown || got.ChangedFiles != 2 || !slices.Equal(got.Changes, c.Changes) {
			t.Errorf("commit with changes read back as %+v", got)
		}
		o, err := tx.Commit("c_old")
		if err != nil {
			return err
		}
		if o.ChangesKnown || o.Changes != nil || o.ChangedFiles != 3 || o.ChangedBytes != 10 || o.Message != "run: make (exit 0)" {
			t.Errorf("old commit read as %+v; want changes unknown, its figures kept", o)
		}
		return nil
	})
	var r Run
	if err := json.Unmarshal([]byte(`{"run_id":"run_1","workspace_id":"ws_1","command":"make","status":"exited","commit_id":"c_old","created_at":"2026-01-02T03:04:05Z","duration_ms":1}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Unchanged || r.ChangesUnknown || r.CommitID != "c_old" {
		t.Errorf("old run record: %+v", r)
	}
	var ses Session
	if err := json.Unmarshal([]byte(`{"session_id":"ses_1","workspace_id":"ws_1","state":"committed","sandbox_id":"x","base_commit":"c_new","commit_id":"c_old"}`), &ses); err != nil {
		t.Fatal(err)
	}
	if ses.Unchanged {
		t.Errorf("old session record: %+v", ses)
	}
	// New records without changes omit the fields, so they look like old ones to older binaries.
	b, _ := json.Marshal(Commit{ID: "c_x", Workspace: "ws_1"})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["changes_known"]; ok {
		t.Errorf("a commit without known changes encodes changes_known: %s", b)
	}
}
