package store

import (
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// Workspace is the stored record of a workspace.
type Workspace struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels,omitempty"`
	Provider     string            `json:"provider"`
	Policy       policies.Policy   `json:"policy"`
	ExposedPorts []int             `json:"exposed_ports,omitempty"`
	// Head is the commit the workspace's durable state is at; it always names a commit.
	Head string `json:"head"`
	// Version increases by one with every stored change; PutWorkspace compares it (CAS).
	Version  uint64 `json:"version"`
	Template string `json:"template,omitempty"`
	// Session is the id of the open session holding the workspace, or "".
	Session string    `json:"session,omitempty"`
	Created time.Time `json:"created_at"`
	Updated time.Time `json:"updated_at"`
}

// Commit kinds.
const (
	CommitEmpty   = "empty"
	CommitRun     = "run"
	CommitSession = "session"
	CommitWrite   = "write"
	CommitRestore = "restore"
	CommitFork    = "fork"
	CommitSetup   = "setup"
	CommitImport  = "import"
)

// Commit is an immutable point in a workspace's history.
type Commit struct {
	ID        string `json:"id"`
	Workspace string `json:"workspace_id"`
	Parent    string `json:"parent,omitempty"`
	// Snapshot is the provider's opaque snapshot ref holding this commit's state.
	Snapshot string `json:"snapshot"`
	Kind     string `json:"kind"`
	// Message says what made the commit ("run: npm test (exit 0)", "write 2 files", ...).
	Message string `json:"message"`
	// RunID is set for kind "run".
	RunID string `json:"run_id,omitempty"`
	// ExitCode is set for kind "run".
	ExitCode *int `json:"exit_code,omitempty"`
	// Source is the commit a restore or fork copied its state from.
	Source string `json:"source_commit,omitempty"`
	// ChangedFiles and ChangedBytes count what the commit changed relative to its parent (for a
	// restore: the head it replaced): changed paths, and the bytes of the files added or
	// modified. Zero when not known.
	ChangedBytes int64 `json:"changed_bytes"`
	ChangedFiles int64 `json:"changed_files"`
	// ChangesKnown is true when the provider told what changed: then Changes lists the changed
	// paths (the first MaxChanges of ChangedFiles) and the figures above are exact. It is false
	// when the provider could not tell (Vercel keeps whole disks), for first commits (empty,
	// fork, setup), and for commits recorded before changes were (their records lack the field).
	ChangesKnown bool         `json:"changes_known,omitempty"`
	Changes      []PathChange `json:"changes,omitempty"`
	// Import says where a commit of kind "import" came from.
	Import  *ImportSource `json:"import,omitempty"`
	Created time.Time     `json:"created_at"`
}

// PrunedCommit is the tombstone of a commit removed by retention (Tx.PruneCommits): enough to
// tell a caller naming it that it existed, when it went and under which policy.
type PrunedCommit struct {
	ID        string `json:"commit_id"`
	Workspace string `json:"workspace_id"`
	// Reason names the retention policy that pruned it ("keep_commits=3").
	Reason string    `json:"reason"`
	Pruned time.Time `json:"pruned_at"`
}

// ImportSource is the host directory an import commit was made from.
type ImportSource struct {
	// HostDir is the absolute host path imported.
	HostDir string `json:"host_dir"`
	// Git is true when it was a git work tree; then GitHead is its HEAD commit ("" before the
	// first commit), Dirty whether it had uncommitted changes or untracked files, and WithGit
	// whether .git was imported too.
	Git     bool   `json:"git,omitempty"`
	GitHead string `json:"git_head,omitempty"`
	Dirty   bool   `json:"dirty,omitempty"`
	WithGit bool   `json:"with_git,omitempty"`
}

// MaxChanges is the most changed paths a commit lists (the provider contract's bound).
const MaxChanges = 100

// Change operations of a PathChange.
const (
	ChangeAdded    = "added"
	ChangeModified = "modified"
	ChangeDeleted  = "deleted"
)

// PathChange is one changed path of a commit.
type PathChange struct {
	// Path is relative to /workspace ("src/main.go"), or "~/…" in the home directory.
	Path string `json:"path"`
	// Op is added, modified or deleted.
	Op string `json:"op"`
	// Type is "file", "dir", "symlink" or "other": what is there now, or what was deleted.
	Type string `json:"type"`
}

// Run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunExited    = "exited"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
	RunLost      = "lost"
)

// Run is the record of one durable command.
type Run struct {
	ID        string `json:"run_id"`
	Workspace string `json:"workspace_id"`
	// Command is the command as given: a shell command line when Shell is set, else the program
	// that ran with Args.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	Shell   bool     `json:"shell,omitempty"`
	Cwd     string   `json:"cwd,omitempty"`
	// EnvNames lists the names of the variables the caller set; values are never stored, since
	// they may be secrets.
	EnvNames []string `json:"env_names,omitempty"`
	// Policy describes the effective egress policy of the run, redacted: a literal secret of a
	// per-run override is never stored (see policies.Redact).
	Policy string `json:"policy,omitempty"`
	// Status is queued, running, exited (the command ran to an exit status or timed out),
	// failed (the sandbox could not run it), cancelled, or lost (the server died meanwhile).
	Status   string `json:"status"`
	ExitCode *int   `json:"exit_code,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Error explains a failed, cancelled or lost run.
	Error string `json:"error,omitempty"`
	// BaseCommit is the head the run started from; CommitID the commit it produced.
	BaseCommit     string     `json:"base_commit,omitempty"`
	CommitID       string     `json:"commit_id,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Background     bool       `json:"background,omitempty"`
	Created        time.Time  `json:"created_at"`
	Started        *time.Time `json:"started_at,omitempty"`
	Finished       *time.Time `json:"finished_at,omitempty"`
	DurationMS     int64      `json:"duration_ms"`
	Warnings       []string   `json:"warnings,omitempty"`
	// Unchanged is true when the command ran to an end but changed nothing: no commit was made
	// (CommitID is "") and the workspace stayed at BaseCommit.
	Unchanged bool `json:"unchanged,omitempty"`
	// ChangesUnknown is true when the provider could not tell whether the command changed
	// anything, so its commit was made anyway.
	ChangesUnknown bool `json:"changes_unknown,omitempty"`
}

// Done reports whether the run has reached a final status.
func (r Run) Done() bool {
	switch r.Status {
	case RunExited, RunFailed, RunCancelled, RunLost:
		return true
	}
	return false
}

// Output is a bounded capture of one output stream: the first and last bytes, and how many bytes
// in the middle were left out.
type Output struct {
	Head []byte
	Tail []byte
	// Omitted counts the bytes between Head and Tail that were not kept.
	Omitted int64
	// Total is the stream's full length.
	Total int64
}

// Session states.
const (
	SessionAttached  = "attached"  // open; its holder's connection is live
	SessionDetached  = "detached"  // open; its holder's connection is gone: another may attach
	SessionCommitted = "committed" // ended by commit_session: its changes are a commit
	SessionDiscarded = "discarded" // ended by discard_session, a lost sandbox, or reconciliation
	SessionExpired   = "expired"   // ended because its lifetime ran out; changes discarded
)

// Session is the record of a live session (a lease on a workspace).
type Session struct {
	ID        string `json:"session_id"`
	Workspace string `json:"workspace_id"`
	// State is attached, detached (both open), committed, discarded or expired.
	State string `json:"state"`
	// HolderConn identifies the MCP connection holding the lease; HolderClient names its client.
	HolderConn   string `json:"holder_conn,omitempty"`
	HolderClient string `json:"holder_client,omitempty"`
	// SandboxID is the provider's live sandbox.
	SandboxID string `json:"sandbox_id"`
	// Base is the commit the session started from; CommitID the commit it ended in (committed).
	Base     string `json:"base_commit"`
	CommitID string `json:"commit_id,omitempty"`
	// Unchanged is true when the session was committed but had changed nothing: no commit was
	// made (CommitID is "") and the workspace stayed at Base.
	Unchanged bool `json:"unchanged,omitempty"`
	// Policy describes the session's effective egress policy (redacted, like Run.Policy).
	Policy string `json:"policy,omitempty"`
	// Override is the session's own policy (open_session's policy), redacted: literal secrets
	// read {"redacted": true}. Nil when the session follows the workspace's policy.
	Override *policies.Policy `json:"policy_override,omitempty"`
	// Ports are the TCP ports the session's sandbox exposes, fixed when it opens: its
	// workspace's exposed ports plus open_session's own. Nil in records from before the field
	// (and when there are none): the workspace's exposed ports then, which cannot change while
	// the session is open.
	Ports []int `json:"ports,omitempty"`
	// Processes lists the ids of the background processes started in the session, oldest first
	// (the engine keeps the newest few), so session_url can report them after a restart too.
	Processes []string  `json:"processes,omitempty"`
	Opened    time.Time `json:"opened_at"`
	Expires   time.Time `json:"expires_at"`
	Ended     time.Time `json:"ended_at,omitzero"`
	// EndReason says why a session ended other than by commit.
	EndReason string `json:"end_reason,omitempty"`
}

// Open reports whether the session still holds its workspace.
func (s Session) Open() bool { return s.State == SessionAttached || s.State == SessionDetached }

// TemplateSnapshot records the snapshot a shared setup template was built into: one per provider
// and template definition (the fingerprint of its command, args and policy). While the record
// exists its snapshot counts as referenced (SnapshotRefs), so garbage collection keeps it;
// workspaces created from the template reference it from their first commit (kind "setup").
type TemplateSnapshot struct {
	// Key is TemplateKey(Provider, Fingerprint).
	Key         string `json:"key"`
	Provider    string `json:"provider"`
	Fingerprint string `json:"fingerprint"`
	// Template is the name the template had when it was built (names are not part of the key).
	Template string   `json:"template"`
	Snapshot string   `json:"snapshot"`
	Command  string   `json:"command"`
	Args     []string `json:"args,omitempty"`
	// Policy describes the setup's egress policy (durable: it holds no secret).
	Policy       string    `json:"policy"`
	DurationMS   int64     `json:"duration_ms"`
	ChangedBytes int64     `json:"changed_bytes"`
	ChangedFiles int64     `json:"changed_files"`
	Built        time.Time `json:"built_at"`
}
