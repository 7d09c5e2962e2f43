package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkCommitUpdate measures what a durable command costs the store when it finishes: one
// Update that stores the new commit and moves the workspace head by compare-and-swap. The raw
// baseline is the cheapest durable bbolt write there is, one key in one Update, so the difference
// is the store's own cost (JSON, CAS read, indexes). Both fsync unless the name says nosync.
func BenchmarkCommitUpdate(b *testing.B) {
	for _, sync := range []bool{true, false} {
		mode := "sync"
		if !sync {
			mode = "nosync"
		}
		b.Run("store-PutCommit+PutWorkspace/"+mode, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			w := ws("ws_bench", "bench")
			w.Version = 1
			mustUpdate(b, s, func(tx *Tx) error { return tx.CreateWorkspace(w) })
			i := 0
			for b.Loop() {
				i++
				err := s.Update(func(tx *Tx) error {
					c := commit(fmt.Sprintf("c_%08d", i), w.ID, w.Head, fmt.Sprintf("snap_%08d", i), 0)
					c.Created = time.Now()
					if err := tx.PutCommit(c); err != nil {
						return err
					}
					next := w
					next.Head = c.ID
					stored, err := tx.PutWorkspace(next)
					if err != nil {
						return err
					}
					w = stored
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("bbolt-raw-Put-one-key/"+mode, func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("k")); return err }); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 256) // about the size of a workspace record
			i := 0
			for b.Loop() {
				i++
				err := db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket([]byte("k")).Put([]byte(fmt.Sprintf("key_%08d", i)), value)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
