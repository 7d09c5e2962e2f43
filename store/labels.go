package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The label index (workspace_labels, since schema version 5) lets a listing filtered by label
// read only the workspaces that have it, in name order, a page at a time. For every label k=v
// of a workspace named n with id i it holds two entries, each → i:
//
//	"k" len(k) k n              a workspace with key k (any value)
//	"v" len(k) k len(v) v n     a workspace with k=v
//
// where each len is a uvarint, so keys and values of any bytes never run into each other.

// labelPrefix is the index prefix of the workspaces with key (and value, when hasValue).
func labelPrefix(key, value string, hasValue bool) []byte {
	var b []byte
	if hasValue {
		b = append(b, 'v')
	} else {
		b = append(b, 'k')
	}
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if hasValue {
		b = binary.AppendUvarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	return b
}

// labelEntries are the index keys of w.
func labelEntries(w Workspace) [][]byte {
	var out [][]byte
	for k, v := range w.Labels {
		out = append(out, append(labelPrefix(k, "", false), w.Name...), append(labelPrefix(k, v, true), w.Name...))
	}
	return out
}

// indexLabels replaces old's index entries (nil: none) with w's (nil: none).
func (t *Tx) indexLabels(old, w *Workspace) error {
	b, err := t.bucket(bucketWorkspaceLabels)
	if err != nil {
		return err
	}
	if old != nil {
		for _, k := range labelEntries(*old) {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("store: delete from %q: %w", bucketWorkspaceLabels, err)
			}
		}
	}
	if w != nil {
		for _, k := range labelEntries(*w) {
			if err := b.Put(k, []byte(w.ID)); err != nil {
				return fmt.Errorf("store: put into %q: %w", bucketWorkspaceLabels, err)
			}
		}
	}
	return nil
}

// unindexID removes every index entry naming id (for a workspace whose record is damaged).
func (t *Tx) unindexID(id string) error {
	b, err := t.bucket(bucketWorkspaceLabels)
	if err != nil {
		return err
	}
	var stale [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		if string(v) == id {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// LabelFilter selects workspaces by label for WorkspacePage: those with Key, and with that
// Value too when HasValue. The zero filter selects all.
type LabelFilter struct {
	Key, Value string
	HasValue   bool
}

// WorkspacePage lists up to limit workspaces in name order, starting after the name after (""
// from the first), those the filter selects; more reports whether any follow. It reads only the
// workspaces it returns (and one more), through the name index or the label index.
func (t *Tx) WorkspacePage(after string, limit int, f LabelFilter) (page []Workspace, more bool, err error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("store: workspace page: limit %d must be positive", limit)
	}
	var idx *bolt.Bucket
	var prefix []byte
	if f.Key == "" {
		if idx, err = t.bucket(bucketWorkspaceNames); err != nil {
			return nil, false, err
		}
	} else {
		if idx, err = t.bucket(bucketWorkspaceLabels); err != nil {
			return nil, false, err
		}
		prefix = labelPrefix(f.Key, f.Value, f.HasValue)
	}
	start := append(bytes.Clone(prefix), after...)
	c := idx.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if after != "" && bytes.Equal(k, start) {
			continue
		}
		if len(page) == limit {
			return page, true, nil
		}
		w, err := t.Workspace(string(v))
		if err != nil {
			return nil, false, err
		}
		page = append(page, w)
	}
	return page, false, nil
}

// addLabelIndex migrates version 4 to 5: the label index, built from the workspace records. A
// record that does not decode is left out; reading it reports the damage as before.
func addLabelIndex(tx *bolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists([]byte(bucketWorkspaceLabels))
	if err != nil {
		return err
	}
	ws := tx.Bucket([]byte(bucketWorkspaces))
	if ws == nil {
		return nil
	}
	return ws.ForEach(func(k, v []byte) error {
		w, err := decode[Workspace](bucketWorkspaces, string(k), v)
		if err != nil {
			return nil
		}
		for _, e := range labelEntries(w) {
			if err := idx.Put(e, []byte(w.ID)); err != nil {
				return err
			}
		}
		return nil
	})
}
