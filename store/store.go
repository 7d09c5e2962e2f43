// Package store is the bbolt persistence of the engine's records: workspaces, commits, runs and
// their output, sessions, the snapshots of shared setup templates, plus a small key/value bucket
// for engine settings.
//
// The API is bbolt's, narrowed: Open a file, then read in View and write in Update, calling the
// typed methods of Tx inside. The invariants, stated once here and kept by every method:
//
//   - One process per state file. Open takes bbolt's exclusive file lock and gives up after
//     Options.Timeout (1s by default) with ErrLocked; it never hangs behind another process.
//   - Every mutation is one transaction. Whatever a caller does inside one Update commits together
//     or not at all: an error returned by fn, or a panic in it, rolls everything back. The store
//     keeps no cache, so what a View reads is what the file holds.
//   - Write transactions are serializable: what an Update reads cannot change under it, so a caller
//     reads, decides and writes in one Update and needs no version to compare. CreateWorkspace
//     stores Version 1 and every PutWorkspace the stored Version plus one (a change counter).
//   - Names are unique. A name→id index names each workspace; creating or renaming to a taken name
//     fails with ErrExists.
//   - Commits are immutable. PutCommit refuses an id that exists (ErrExists); commits are removed
//     with their workspace, or one by one by retention (PruneCommits, never the head), which
//     leaves a tombstone (PrunedCommit) so a later reference can say what became of it.
//   - A workspace owns its commits, runs, run output and idempotency keys, and DeleteWorkspace
//     removes them all. PutRun and PutRunOutput fail with ErrNotFound when their workspace (or run)
//     is gone, so a run finishing late cannot leave orphans behind. PutCommit does not check (a new
//     workspace's first commit is stored before the workspace, in the same Update).
//   - A snapshot is referenced while a commit or a template snapshot record names it
//     (SnapshotRefs); the engine collects the others. Template snapshot records are keyed by
//     provider and definition fingerprint (TemplateKey) and replaced, never versioned.
//   - Damage is reported, never skipped. A record that does not decode or lacks its identity fails
//     with ErrCorrupt naming the bucket and key; listings fail rather than return a partial list.
//   - The file carries a schema version. Open refuses a file written by a newer schema (ErrSchema:
//     upgrade sandkit-mcp) and migrates an older one forward inside a single transaction, so a
//     failed migration leaves the file as it was.
//
// Records are stored as JSON (see records.go). Timestamps are the caller's: the store sets only
// Workspace.Version.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors returned by the store. They are wrapped with a message naming the record, the bucket and
// key, or the file concerned; match them with errors.Is.
var (
	// ErrNotFound: the workspace, commit, run, idempotency key or meta key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the id or name is taken (or, for a commit, the commit is already stored).
	ErrExists = errors.New("already exists")
	// ErrLocked: another process holds the state file.
	ErrLocked = errors.New("locked")
	// ErrSchema: the file's schema version is one this binary cannot open.
	ErrSchema = errors.New("unsupported schema version")
	// ErrCorrupt: a stored record or the file itself is damaged.
	ErrCorrupt = errors.New("corrupt record")
)

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options configure Open. The zero value is right for production.
type Options struct {
	// Timeout is how long Open waits for another process to release the file lock before it fails
	// with ErrLocked. Zero means DefaultTimeout; the store never waits forever.
	Timeout time.Duration
	// NoSync skips fsync on commit. It trades durability for speed and is meant for tests and
	// benchmarks only: a crash may lose or corrupt recent transactions.
	NoSync bool

	// schema replaces the built-in schema definition; tests use it to exercise migrations.
	schema *schema
}

// Store is an open state file. It is safe for concurrent use: Views run in parallel, Updates one
// at a time. Do not call Update or View from inside another Update or View (bbolt would deadlock).
type Store struct {
	db     *bolt.DB
	path   string
	groups groups
}

// Open opens the state file at path, creating it (and its directory) if needed, and brings its
// schema up to date. See the package documentation for what it refuses.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	sc := opts.schema
	if sc == nil {
		sc = builtinSchema()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, NoSync: opts.NoSync})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("store: %s is %w: another sandkit-mcp process is using this data dir "+
			"(gave up after %s); stop that process or use a different data dir", path, ErrLocked, timeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum):
		return nil, fmt.Errorf("store: %s is not a usable state file: %w: %w", path, ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return sc.prepare(tx, path) }); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db, path: path}, nil
}

// Close releases the file and its lock. Transactions in progress finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Update runs fn in one read-write transaction and commits it (with fsync unless Options.NoSync)
// when fn returns nil. An error from fn, or a panic in it, rolls back every change fn made; the
// error is returned as is and the panic continues after the rollback. tx is valid only inside fn.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// View runs fn in one read-only transaction, which sees a consistent snapshot of the file. The
// write methods of Tx fail inside View. tx is valid only inside fn.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is a transaction handed to the functions given to Update and View. Its methods read and
// write JSON-encoded records; values returned are copies that stay valid after the transaction.
type Tx struct {
	tx *bolt.Tx
}
