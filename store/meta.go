package store

import (
	"bytes"
	"fmt"
)

// GetMeta returns a copy of the value stored under key in the engine's meta bucket, or ErrNotFound.
// An empty stored value reads as an empty, non-nil slice.
func (t *Tx) GetMeta(key string) ([]byte, error) {
	b, err := t.bucket(bucketMeta)
	if err != nil {
		return nil, err
	}
	k, v := b.Cursor().Seek([]byte(key))
	if k == nil || !bytes.Equal(k, []byte(key)) || v == nil {
		return nil, fmt.Errorf("store: meta key %q %w", key, ErrNotFound)
	}
	return append([]byte{}, v...), nil
}

// PutMeta stores a copy of value under key in the engine's meta bucket, replacing any value. The
// store does not interpret meta values; keep them small (they are read whole).
func (t *Tx) PutMeta(key string, value []byte) error {
	b, err := t.bucket(bucketMeta)
	if err != nil {
		return err
	}
	return putRaw(b, bucketMeta, key, append([]byte{}, value...))
}
