// Package engine is the domain of sandkit-mcp: workspaces, their history of commits, durable runs
// and (later) live sessions. Every lifecycle rule lives here; the tools layer only translates.
//
// # Rules
//
//  1. A workspace's head always names a commit. The first commit is empty (or a template's).
//  2. Durable operations on one workspace — run_command, write_files, restore, fork's read of its
//     source — run one at a time, in arrival order. Each starts from the current head and, on
//     completion, records a new commit and moves head by compare-and-swap in one store
//     transaction, together with the run's final record — if it changed something. A commit is a
//     change (this refines DESIGN §2 rule 1): a run, a write or a commit_session whose sandbox
//     the provider finds unchanged, and a restore to a state identical to the head, record their
//     outcome (Run.Unchanged, Session.Unchanged, a returned Commit with an empty ID) but make no
//     commit, and head stays. Every commit records what it changed against its parent (for a
//     restore, the head it replaced): Commit.ChangesKnown, Changes, ChangedFiles, ChangedBytes.
//     A provider that cannot tell commits as before, and the records say the changes are
//     unknown (Run.ChangesUnknown, Commit.ChangesKnown false). See changes.go.
//  3. A durable command commits whatever its exit code, and also when it times out (unless it
//     changed nothing, rule 2). It does not commit when the caller cancels it, when the sandbox
//     fails, or when the server dies: then head stays where it was, and the run reads
//     cancelled, failed or lost.
//  4. Run records outlive the server. A run that was queued or running when the server stopped
//     reads lost after the next start, and its workspace is at its previous head.
//  5. An idempotency key makes a retried run_command return the run already recorded under that
//     key; the command never runs twice.
//  6. Nothing leaks: a sandbox is stopped on every path, and snapshots that no commit (or current
//     template) references are deleted (at once when the engine makes them obsolete, and at
//     start-up after a crash).
//  7. The operator may bound the history a workspace keeps (Options.Retention); pruned commits
//     leave gaps that history and every reader of commits tolerate (retention.go).
//
// Egress policies follow the rules in policy.go; shared setup templates those in templates.go.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Options configures an Engine.
type Options struct {
	// Store holds the engine's records; the engine does not close it.
	Store *store.Store
	// Provider runs sandboxes; the engine does not close it.
	Provider sandbox.Provider
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// DefaultPolicy applies to new workspaces created without a policy; zero means deny-all. It
	// must be durable and within MaxPolicy.
	DefaultPolicy policies.Policy
	// MaxPolicy is the widest egress policy agents may use, for workspace defaults and for
	// per-run and per-session overrides alike (policies.Within); nil means no limit.
	MaxPolicy *policies.Policy
	// Templates are the shared setup templates create_workspace's template names, by name.
	Templates map[string]Template
	// Getenv reads the server's environment, to warn about credentials whose variable is not set;
	// nil means os.LookupEnv.
	Getenv policies.Getenv
	// Previews serves the preview URLs session_url hands out (see PreviewServer). Nil: this
	// server serves no previews and session_url says so.
	Previews PreviewServer
	// ImportLimits bound create_workspace from_host_dir; zero fields mean MaxImportFiles and
	// MaxImportBytes.
	ImportLimits ImportLimits
	// FreeSpace reports the free bytes of the file system that holds the data directory (the
	// store and the provider's layers); nil disables the disk reserve. FreeSpaceOf makes one.
	FreeSpace func() (int64, error)
	// DiskReserve is the free space (bytes) below which runs, durable writes, imports and new
	// sessions are refused and running runs are stopped (space.go); 0 or less disables it.
	DiskReserve int64
	// DataDir names the data directory in messages about its space.
	DataDir string
	// Retention bounds the history each workspace keeps (retention.go); the zero value keeps
	// everything.
	Retention Retention
	// RetentionInterval is how often Retention.KeepDays is applied to every workspace besides at
	// start; 0 means DefaultRetentionInterval.
	RetentionInterval time.Duration
	// Now is the clock retention judges the age of commits by; nil means time.Now. Nothing else
	// reads it.
	Now func() time.Time
}

// Engine owns workspaces, commits and runs. It is safe for concurrent use.
type Engine struct {
	st     *store.Store
	prov   sandbox.Provider
	log    *slog.Logger
	defPol policies.Policy
	ctx    context.Context // cancelled by Close: background work ends
	cancel context.CancelFunc
	queues queues
	// watchers hear of head moves (watch.go).
	watchers headWatchers
	mu       sync.Mutex
	active   map[string]*activeRun // run id → in-flight run
	// unrecorded are runs whose end could not be stored, until the next start (runs.go finish).
	unrecorded map[string]unrecordedRun
	workers    sync.WaitGroup
	closed     bool
	closeErr   error

	sess     sessions
	previews PreviewServer

	maxPol *policies.Policy
	getenv policies.Getenv
	tpl    templates
	imp    ImportLimits
	space  space
	ret    retention
}

// Open starts an engine over a store and a provider. It reconciles the store with reality first:
// runs that were in flight when a previous server stopped are marked lost, template snapshots of
// definitions that changed (or whose snapshot is gone) are dropped, and snapshots nothing
// references are deleted.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Provider == nil {
		return nil, errors.New("engine: Options.Store and Options.Provider are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := opts.DefaultPolicy
	if def.Mode == "" {
		def = policies.Deny()
	}
	def, err := policies.Normalize(def)
	if err != nil {
		return nil, fmt.Errorf("engine: default policy: %w", err)
	}
	if err := policies.Durable(def); err != nil {
		return nil, fmt.Errorf("engine: default policy: %w", err)
	}
	var maxPol *policies.Policy
	if opts.MaxPolicy != nil {
		m, err := policies.Normalize(*opts.MaxPolicy)
		if err != nil {
			return nil, fmt.Errorf("engine: max policy: %w", err)
		}
		maxPol = &m
		if err := policies.Within(def, m); err != nil {
			return nil, fmt.Errorf("engine: the default policy is wider than the max policy: %w", err)
		}
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	if err := opts.Retention.Check(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if err := checkProvider(opts.Store, opts.Provider.Name()); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	e := &Engine{
		st: opts.Store, prov: opts.Provider, log: log, defPol: def,
		ctx: bg, cancel: cancel,
		active:     map[string]*activeRun{},
		unrecorded: map[string]unrecordedRun{},
		previews:   opts.Previews,
		maxPol:     maxPol,
		getenv:     getenv,
		imp:        opts.ImportLimits.withDefaults(),
		space:      space{free: opts.FreeSpace, reserve: opts.DiskReserve, dir: opts.DataDir},
	}
	if err := e.tpl.init(opts.Provider.Name(), opts.Templates); err != nil {
		cancel()
		return nil, err
	}
	e.queues.init()
	e.sess.init()
	e.ret.init(opts)
	if err := e.reconcileSessions(ctx); err != nil {
		cancel()
		return nil, err
	}
	if err := e.reconcileTemplates(ctx); err != nil {
		cancel()
		return nil, err
	}
	if err := e.reconcile(ctx); err != nil {
		cancel()
		return nil, err
	}
	if e.space.free != nil && e.space.reserve > 0 {
		e.workers.Add(1)
		go e.watchSpace()
	}
	e.startRetention()
	return e, nil
}

// reconcile marks in-flight runs lost and collects garbage snapshots. It runs after
// reconcileSessions, so snapshots of commits that a crash left unrecorded are collected too.
func (e *Engine) reconcile(ctx context.Context) error {
	now := time.Now().UTC()
	var lost int
	err := e.st.Update(func(tx *store.Tx) error {
		runs, err := tx.Runs(func(r store.Run) bool { return !r.Done() })
		if err != nil {
			return err
		}
		for _, r := range runs {
			was := statusWord(r.Status)
			r.Status = store.RunLost
			r.Finished = &now
			r.Error = fmt.Sprintf("the server stopped while this run was %s; it did not commit, and workspace %s is still at the head it had before; run the command again if needed",
				was, r.Workspace)
			if err := tx.PutRun(r); err != nil {
				return err
			}
			lost++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: reconcile runs: %w", err)
	}
	if lost > 0 {
		e.log.Warn("marked runs lost after restart", "count", lost)
	}
	held, err := e.prov.Snapshots(ctx)
	if errors.Is(err, sandbox.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: list provider snapshots: %w", err)
	}
	var refs map[string]int
	if err := e.st.View(func(tx *store.Tx) error {
		refs, err = tx.SnapshotRefs()
		return err
	}); err != nil {
		return fmt.Errorf("engine: reconcile snapshots: %w", err)
	}
	for _, ref := range held {
		if refs[string(ref)] == 0 {
			if err := e.prov.DeleteSnapshot(ctx, ref); err != nil {
				e.log.Warn("could not delete orphan snapshot", "snapshot", ref, "err", err)
			} else {
				e.log.Info("deleted orphan snapshot", "snapshot", ref)
			}
		}
	}
	return nil
}

func statusWord(s string) string {
	if s == store.RunQueued {
		return "queued"
	}
	return "running"
}

// Close cancels in-flight work (those runs read lost) and waits for it to stop. It does not close
// the store or the provider.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return e.closeErr
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.workers.Wait()
	// Live sessions keep running (their sandboxes are detached); the next start re-adopts them.
	e.sess.mu.Lock()
	for _, ls := range e.sess.live {
		ls.mu.Lock()
		if ls.timer != nil {
			ls.timer.Stop()
		}
		ls.mu.Unlock()
	}
	e.sess.mu.Unlock()
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// gcSnapshots deletes the given snapshots when no commit references them any more.
func (e *Engine) gcSnapshots(candidates ...string) {
	if len(candidates) == 0 {
		return
	}
	var refs map[string]int
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		refs, err = tx.SnapshotRefs()
		return err
	}); err != nil {
		e.log.Warn("snapshot gc: read refs", "err", err)
		return
	}
	seen := map[string]bool{}
	for _, c := range candidates {
		if c == "" || seen[c] || refs[c] > 0 {
			continue
		}
		seen[c] = true
		if err := e.prov.DeleteSnapshot(context.Background(), sandbox.SnapshotRef(c)); err != nil {
			e.log.Warn("snapshot gc: delete", "snapshot", c, "err", err)
		}
	}
}

// checkProvider refuses a store whose workspaces live on another provider: their snapshot refs
// mean nothing to this one (and its garbage collector must never see them). One data dir serves
// one provider.
func checkProvider(st *store.Store, name string) error {
	var other map[string]int
	if err := st.View(func(tx *store.Tx) error {
		ws, err := tx.Workspaces()
		if err != nil {
			return err
		}
		for _, w := range ws {
			if w.Provider != name {
				if other == nil {
					other = map[string]int{}
				}
				other[w.Provider]++
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	for prov, n := range other {
		return errorf(ErrInvalid, "this data dir holds %d workspace(s) of the %q provider, but the server runs the %q provider; a data dir serves one provider: use another --data-dir for %q, or run with --provider %s", n, prov, name, name, prov)
	}
	return nil
}
