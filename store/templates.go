package store

import (
	"errors"
	"fmt"
	"sort"
)

// TemplateKey is the key a template snapshot is stored under: the provider's name and the
// fingerprint of the template's definition. A snapshot belongs to one provider, and a changed
// definition has a new fingerprint, hence a new key.
func TemplateKey(provider, fingerprint string) string { return provider + "/" + fingerprint }

// TemplateSnapshot returns the template snapshot stored under key (see TemplateKey).
func (t *Tx) TemplateSnapshot(key string) (TemplateSnapshot, error) {
	b, err := t.bucket(bucketTemplates)
	if err != nil {
		return TemplateSnapshot{}, err
	}
	raw := b.Get([]byte(key))
	if raw == nil && b.Bucket([]byte(key)) == nil {
		return TemplateSnapshot{}, fmt.Errorf("store: template snapshot %q %w", key, ErrNotFound)
	}
	return decode[TemplateSnapshot](bucketTemplates, key, raw)
}

// PutTemplateSnapshot creates or replaces the template snapshot stored under ts.Key, which must
// be TemplateKey(ts.Provider, ts.Fingerprint). The snapshot a replaced record named is no longer
// referenced by it (see SnapshotRefs); the caller collects it.
func (t *Tx) PutTemplateSnapshot(ts TemplateSnapshot) error {
	if err := ts.valid(ts.Key); err != nil {
		return fmt.Errorf("store: put template snapshot %q: %w", ts.Key, err)
	}
	b, err := t.bucket(bucketTemplates)
	if err != nil {
		return err
	}
	return put(b, bucketTemplates, ts.Key, ts)
}

// DeleteTemplateSnapshot removes the record stored under key; a missing one is fine. The snapshot
// it named is left to the caller (it may still be the first commit of workspaces).
func (t *Tx) DeleteTemplateSnapshot(key string) error {
	b, err := t.bucket(bucketTemplates)
	if err != nil {
		return err
	}
	return del(b, bucketTemplates, key)
}

// TemplateSnapshots returns every template snapshot record, sorted by key. A damaged record fails
// the whole listing.
func (t *Tx) TemplateSnapshots() ([]TemplateSnapshot, error) {
	b, err := t.bucket(bucketTemplates)
	if err != nil {
		return nil, err
	}
	var out []TemplateSnapshot
	for _, k := range keys(b) {
		ts, err := decode[TemplateSnapshot](bucketTemplates, k, b.Get([]byte(k)))
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (ts TemplateSnapshot) valid(key string) error {
	if ts.Key != key {
		return fmt.Errorf("record key %q does not match its key", ts.Key)
	}
	switch {
	case ts.Provider == "" || ts.Fingerprint == "":
		return errors.New("template snapshot has no provider or fingerprint")
	case ts.Key != TemplateKey(ts.Provider, ts.Fingerprint):
		return fmt.Errorf("key %q is not %q", ts.Key, TemplateKey(ts.Provider, ts.Fingerprint))
	case ts.Snapshot == "":
		return errors.New("template snapshot names no snapshot")
	}
	return nil
}
