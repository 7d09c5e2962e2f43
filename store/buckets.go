package store

import (
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The file layout (schema version 6). Every record is JSON; every index value is an id as bytes.
//
//	schema                          "version" → decimal schema version
//	workspaces                      workspace id → Workspace
//	workspace_names                 workspace name → workspace id
//	workspace_labels                label index entry → workspace id (labels.go; since version 5)
//	commits                         commit id → Commit
//	workspace_commits/<workspace>   commit id → "" (the commits of one workspace)
//	pruned_commits/<workspace>      commit id → PrunedCommit (the tombstone a commit removed by
//	                                retention leaves; since version 6)
//	runs                            run id → Run
//	workspace_runs/<workspace>      run id → "" (the runs of one workspace)
//	workspace_run_order/<workspace> run order key → run id (the runs of one workspace by creation:
//	                                8-byte big-endian Created in Unix nanoseconds, then the run
//	                                id; since version 4)
//	run_idempotency/<workspace>     idempotency key → run id
//	run_outputs                     run id → {"stdout": output, "stderr": output}, where output is
//	                                {"head", "tail": base64 bytes, kept exactly; "omitted", "total"}
//	meta                            engine key → engine bytes, as given
//	sessions                        session id → Session (since schema version 2)
//	templates                       provider "/" fingerprint → TemplateSnapshot (since version 3)
//
// Names with a "/<workspace>" part are a bucket holding one nested bucket per workspace, so that
// deleting a workspace drops its indexes whole. Run output lives apart from runs so that listing
// runs never reads logs.
const (
	bucketSchema           = "schema"
	keySchemaVersion       = "version"
	bucketWorkspaces       = "workspaces"
	bucketWorkspaceNames   = "workspace_names"
	bucketWorkspaceLabels  = "workspace_labels"
	bucketCommits          = "commits"
	bucketWorkspaceCommits = "workspace_commits"
	bucketPrunedCommits    = "pruned_commits"
	bucketRuns             = "runs"
	bucketWorkspaceRuns    = "workspace_runs"
	bucketRunOrder         = "workspace_run_order"
	bucketIdempotency      = "run_idempotency"
	bucketRunOutputs       = "run_outputs"
	bucketMeta             = "meta"
	bucketSessions         = "sessions"
	bucketTemplates        = "templates"
)

// dataBuckets are the top-level buckets of the current schema version besides the schema bucket.
func dataBuckets() []string {
	return []string{
		bucketWorkspaces, bucketWorkspaceNames, bucketWorkspaceLabels,
		bucketCommits, bucketWorkspaceCommits, bucketPrunedCommits,
		bucketRuns, bucketWorkspaceRuns, bucketRunOrder, bucketIdempotency, bucketRunOutputs,
		bucketMeta, bucketSessions, bucketTemplates,
	}
}

// corrupt reports a damaged entry, naming where it is.
func corrupt(bucket, key string, err error) error {
	return fmt.Errorf("store: %w in bucket %q key %q: %w", ErrCorrupt, bucket, key, err)
}

// bucket returns a top-level bucket. Open creates them all, so a missing one is damage.
func (t *Tx) bucket(name string) (*bolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("store: %w: bucket %q is missing", ErrCorrupt, name)
	}
	return b, nil
}

// nested returns the bucket parent/key, creating it when create is set; without create a missing
// bucket is (nil, nil). A plain value where the bucket should be is damage.
func (t *Tx) nested(parent, key string, create bool) (*bolt.Bucket, error) {
	p, err := t.bucket(parent)
	if err != nil {
		return nil, err
	}
	if b := p.Bucket([]byte(key)); b != nil {
		return b, nil
	}
	if p.Get([]byte(key)) != nil {
		return nil, corrupt(parent, key, errors.New("expected a nested bucket, found a value"))
	}
	if !create {
		return nil, nil
	}
	b, err := p.CreateBucket([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("store: create bucket %q in %q: %w", key, parent, err)
	}
	return b, nil
}

// dropNested deletes the bucket parent/key and everything in it, if it exists.
func (t *Tx) dropNested(parent, key string) error {
	p, err := t.bucket(parent)
	if err != nil {
		return err
	}
	if p.Bucket([]byte(key)) == nil {
		return nil
	}
	if err := p.DeleteBucket([]byte(key)); err != nil {
		return fmt.Errorf("store: delete bucket %q in %q: %w", key, parent, err)
	}
	return nil
}

// keys lists the keys of b (nil b: none). It collects them first so callers may delete while
// walking the result.
func keys(b *bolt.Bucket) []string {
	if b == nil {
		return nil
	}
	var out []string
	_ = b.ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
	return out
}

// A record is a stored type that can tell whether a decoded value is whole.
type record interface {
	Workspace | Commit | PrunedCommit | Run | Session | TemplateSnapshot | outputRecord
	valid(key string) error
}

// decode reads the record stored under key in bucket, reporting damage as ErrCorrupt.
func decode[T record](bucket, key string, raw []byte) (T, error) {
	var v T
	if raw == nil {
		return v, corrupt(bucket, key, errors.New("expected a record, found a nested bucket"))
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, corrupt(bucket, key, err)
	}
	if err := v.valid(key); err != nil {
		return v, corrupt(bucket, key, err)
	}
	return v, nil
}

// put encodes v as JSON and stores it under key.
func put(b *bolt.Bucket, bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %q for bucket %q: %w", key, bucket, err)
	}
	return putRaw(b, bucket, key, raw)
}

// putRaw stores raw under key. raw must not change until the transaction ends.
func putRaw(b *bolt.Bucket, bucket, key string, raw []byte) error {
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("store: write bucket %q key %q: %w", bucket, key, err)
	}
	return nil
}

// del removes key from b; a missing key is fine.
func del(b *bolt.Bucket, bucket, key string) error {
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("store: delete bucket %q key %q: %w", bucket, key, err)
	}
	return nil
}

// identity checks the fields every record needs: its id, equal to the key it is stored under.
func identity(id, key string) error {
	switch {
	case id == "":
		return errors.New("record has no id")
	case id != key:
		return fmt.Errorf("record id %q does not match its key", id)
	}
	return nil
}

func (w Workspace) valid(key string) error {
	if err := identity(w.ID, key); err != nil {
		return err
	}
	if w.Name == "" {
		return errors.New("workspace has no name")
	}
	return nil
}

func (c Commit) valid(key string) error {
	if err := identity(c.ID, key); err != nil {
		return err
	}
	if c.Workspace == "" {
		return errors.New("commit has no workspace")
	}
	return nil
}

func (p PrunedCommit) valid(key string) error {
	if err := identity(p.ID, key); err != nil {
		return err
	}
	if p.Workspace == "" {
		return errors.New("pruned commit has no workspace")
	}
	return nil
}

func (r Run) valid(key string) error {
	if err := identity(r.ID, key); err != nil {
		return err
	}
	if r.Workspace == "" {
		return errors.New("run has no workspace")
	}
	return nil
}
