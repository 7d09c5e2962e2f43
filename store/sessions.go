package store

import (
	"errors"
	"fmt"
	"sort"
)

// Session returns the session stored under id.
func (t *Tx) Session(id string) (Session, error) {
	b, err := t.bucket(bucketSessions)
	if err != nil {
		return Session{}, err
	}
	raw := b.Get([]byte(id))
	if raw == nil && b.Bucket([]byte(id)) == nil {
		return Session{}, fmt.Errorf("store: session %q %w", id, ErrNotFound)
	}
	return decode[Session](bucketSessions, id, raw)
}

// PutSession creates or replaces a session. Its workspace must exist.
func (t *Tx) PutSession(s Session) error {
	if s.ID == "" || s.Workspace == "" {
		return errors.New("store: a session needs an id and a workspace")
	}
	ok, err := t.workspaceExists(s.Workspace)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("store: workspace %q of session %q %w", s.Workspace, s.ID, ErrNotFound)
	}
	b, err := t.bucket(bucketSessions)
	if err != nil {
		return err
	}
	return put(b, bucketSessions, s.ID, s)
}

// Sessions returns the sessions filter accepts (nil: all), sorted by Opened then id. A damaged
// record fails the whole call.
func (t *Tx) Sessions(filter func(Session) bool) ([]Session, error) {
	b, err := t.bucket(bucketSessions)
	if err != nil {
		return nil, err
	}
	var out []Session
	for _, k := range keys(b) {
		s, err := decode[Session](bucketSessions, k, b.Get([]byte(k)))
		if err != nil {
			return nil, err
		}
		if filter == nil || filter(s) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Opened.Equal(out[j].Opened) {
			return out[i].Opened.Before(out[j].Opened)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// deleteSessionsOf removes every session of a workspace.
func (t *Tx) deleteSessionsOf(workspaceID string) error {
	b, err := t.bucket(bucketSessions)
	if err != nil {
		return err
	}
	for _, k := range keys(b) {
		s, err := decode[Session](bucketSessions, k, b.Get([]byte(k)))
		if err == nil && s.Workspace != workspaceID {
			continue
		}
		if err != nil {
			continue // damaged records of other workspaces are left for their readers to report
		}
		if err := del(b, bucketSessions, k); err != nil {
			return err
		}
	}
	return nil
}

func (s Session) valid(key string) error {
	if err := identity(s.ID, key); err != nil {
		return err
	}
	if s.Workspace == "" {
		return errors.New("session has no workspace")
	}
	return nil
}
