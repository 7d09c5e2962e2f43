package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the file layout this binary writes. Bump it, and register a
// migration from the previous version in builtinSchema, whenever the layout or a record's meaning
// changes in a way an older binary would misread.
//
// Version 1 was the first layout; version 2 adds the sessions bucket; version 3 adds the
// templates bucket; version 4 adds the per-workspace run order index; version 5 adds the label
// index; version 6 adds the tombstones of pruned commits, and with them history that may end at a
// parent retention removed (buckets.go describes the current layout).
const SchemaVersion = 6

// A migration rewrites a file from one schema version to the next. It runs inside the opening
// transaction, with raw bbolt access, and must not commit or roll back itself.
type migration func(tx *bolt.Tx) error

// schema is what Open checks a file against: the version it brings files to, the migrations that
// get older files there (keyed by the version they start from: migrations[v] turns v into v+1),
// and the buckets every file of this version holds.
type schema struct {
	version    uint64
	migrations map[uint64]migration
	buckets    []string
}

// builtinSchema is the schema of this binary.
func builtinSchema() *schema {
	return &schema{
		version: SchemaVersion,
		migrations: map[uint64]migration{
			1: addSessions,
			2: addTemplates,
			3: addRunOrder,
			4: addLabelIndex,
			5: addPrunedCommits,
		},
		buckets: dataBuckets(),
	}
}

// addSessions migrates version 1 to 2: live sessions get their own bucket. Workspaces of version
// 1 have no session field, which reads as "no open session": nothing else changes.
func addSessions(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists([]byte(bucketSessions))
	return err
}

// addTemplates migrates version 2 to 3: shared setup templates record their snapshots in their
// own bucket. A version 2 file has built no template, so the bucket starts empty and nothing
// else changes (sessions gain an optional policy_override field, absent in older records).
func addTemplates(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists([]byte(bucketTemplates))
	return err
}

// addPrunedCommits migrates version 5 to 6: commits removed by retention leave tombstones in
// their own bucket. A version 5 file has pruned nothing, so it starts empty. The version changes
// because an older binary would not know the bucket (its DeleteWorkspace would leave the
// tombstones behind) nor that a commit may now be gone while its workspace lives.
func addPrunedCommits(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists([]byte(bucketPrunedCommits))
	return err
}

// addRunOrder migrates version 3 to 4: the runs of each workspace get an index ordered by
// creation time (workspace_run_order), built here from the run records. A record that does not
// decode is left out of the index; reading it reports the damage as before.
func addRunOrder(tx *bolt.Tx) error {
	order, err := tx.CreateBucketIfNotExists([]byte(bucketRunOrder))
	if err != nil {
		return err
	}
	runs := tx.Bucket([]byte(bucketRuns))
	if runs == nil {
		return nil // finish creates it; there is nothing to index
	}
	return runs.ForEach(func(k, v []byte) error {
		var r struct {
			ID        string    `json:"run_id"`
			Workspace string    `json:"workspace_id"`
			Created   time.Time `json:"created_at"`
		}
		if v == nil || json.Unmarshal(v, &r) != nil || r.ID != string(k) || r.Workspace == "" {
			return nil
		}
		b, err := order.CreateBucketIfNotExists([]byte(r.Workspace))
		if err != nil {
			return err
		}
		return b.Put(runOrderKey(r.Created, r.ID), []byte(r.ID))
	})
}

// prepare runs in Open's transaction: it initialises a new file, refuses a file from a newer
// binary, migrates an older one, and makes sure every bucket exists.
func (sc *schema) prepare(tx *bolt.Tx, path string) error {
	sb := tx.Bucket([]byte(bucketSchema))
	if sb == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return fmt.Errorf("store: %s has buckets but no schema version: %w; it is not a sandkit-mcp "+
				"state file (move it away or choose another data dir)", path, ErrSchema)
		}
		return sc.finish(tx, path)
	}
	raw := sb.Get([]byte(keySchemaVersion))
	v, err := strconv.ParseUint(string(raw), 10, 64)
	if err == nil && v == 0 {
		err = fmt.Errorf("version 0 does not exist")
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", path, corrupt(bucketSchema, keySchemaVersion, err))
	}
	if v > sc.version {
		return fmt.Errorf("store: %s: %w %d: this sandkit-mcp knows schema versions up to %d; "+
			"upgrade sandkit-mcp to open this data dir", path, ErrSchema, v, sc.version)
	}
	for ; v < sc.version; v++ {
		m := sc.migrations[v]
		if m == nil {
			return fmt.Errorf("store: %s: %w %d: no migration from version %d to %d is known",
				path, ErrSchema, v, v, v+1)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("store: %s: migrate schema version %d to %d: %w", path, v, v+1, err)
		}
	}
	return sc.finish(tx, path)
}

// finish creates any missing bucket and records the schema version.
func (sc *schema) finish(tx *bolt.Tx, path string) error {
	for _, name := range append([]string{bucketSchema}, sc.buckets...) {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("store: %s: create bucket %q: %w", path, name, err)
		}
	}
	v := []byte(strconv.FormatUint(sc.version, 10))
	if err := tx.Bucket([]byte(bucketSchema)).Put([]byte(keySchemaVersion), v); err != nil {
		return fmt.Errorf("store: %s: write schema version: %w", path, err)
	}
	return nil
}
