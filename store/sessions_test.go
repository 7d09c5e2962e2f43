package store

import (
	"testing"
)

func TestSessions(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
			return err
		}
		return tx.CreateWorkspace(ws("ws_b", "beta"))
	})
	mustUpdate(t, s, func(tx *Tx) error {
		for _, ses := range []Session{
			{ID: "ses_1", Workspace: "ws_a", State: SessionCommitted, Opened: at(1)},
			{ID: "ses_2", Workspace: "ws_a", State: SessionAttached, Opened: at(2)},
			{ID: "ses_3", Workspace: "ws_b", State: SessionDetached, Opened: at(0)},
		} {
			if err := tx.PutSession(ses); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Session("ses_2")
		if err != nil || got.State != SessionAttached || !got.Open() {
			t.Errorf("Session(ses_2) = %+v, %v", got, err)
		}
		_, err = tx.Session("ses_nope")
		wantErr(t, "Session(unknown)", err, ErrNotFound, "ses_nope")
		open, err := tx.Sessions(func(s Session) bool { return s.Open() })
		if err != nil || len(open) != 2 || open[0].ID != "ses_3" || open[1].ID != "ses_2" {
			t.Errorf("open sessions, by Opened: %+v %v", open, err)
		}
		return nil
	})
	err := s.Update(func(tx *Tx) error {
		return tx.PutSession(Session{ID: "ses_4", Workspace: "ws_nope"})
	})
	wantErr(t, "PutSession(unknown workspace)", err, ErrNotFound, "ws_nope")
	err = s.Update(func(tx *Tx) error { return tx.PutSession(Session{ID: "ses_5"}) })
	wantErr(t, "PutSession(no workspace)", err, errAny, "workspace")

	// Deleting a workspace deletes its sessions, not others'.
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") })
	mustView(t, s, func(tx *Tx) error {
		all, err := tx.Sessions(nil)
		if err != nil || len(all) != 1 || all[0].ID != "ses_3" {
			t.Errorf("after deleting ws_a: %+v %v", all, err)
		}
		return nil
	})
}

func TestSessionCorruption(t *testing.T) {
	path := newFile(t)
	damage(t, path, rawPut(bucketSessions, "ses_bad", []byte("{not json")))
	s := openAt(t, path)
	mustView(t, s, func(tx *Tx) error {
		_, err := tx.Session("ses_bad")
		wantErr(t, "Session(damaged)", err, ErrCorrupt, `bucket "sessions" key "ses_bad"`)
		_, err = tx.Sessions(nil)
		wantErr(t, "Sessions with a damaged record", err, ErrCorrupt, "ses_bad")
		return nil
	})
}
