package engine

import (
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// Stored records the engine hands out as they are.
type (
	Commit = store.Commit
	Run    = store.Run
	Output = store.Output
)

// Commit kinds and run statuses, re-exported for callers of the engine.
const (
	CommitEmpty   = store.CommitEmpty
	CommitRun     = store.CommitRun
	CommitSession = store.CommitSession
	CommitWrite   = store.CommitWrite
	CommitRestore = store.CommitRestore
	CommitFork    = store.CommitFork
	CommitSetup   = store.CommitSetup
	CommitImport  = store.CommitImport

	RunQueued    = store.RunQueued
	RunRunning   = store.RunRunning
	RunExited    = store.RunExited
	RunFailed    = store.RunFailed
	RunCancelled = store.RunCancelled
	RunLost      = store.RunLost
)

// Workspace is the agent-facing view of a workspace: the stored record plus what the agent should
// know right now.
type Workspace struct {
	store.Workspace
	// Warnings tell the agent about things it should know (e.g. a policy the provider does not
	// enforce yet).
	Warnings []string `json:"warnings,omitempty"`
	// Lease is the open session holding the workspace, if any (it shadows the stored session id).
	Lease *Lease `json:"session,omitempty"`
	// Credentials says where the policy's credentials come from ("github: env GITHUB_TOKEN"),
	// never their values.
	Credentials []string `json:"policy_credentials,omitempty"`
	// Imported reports what CreateWorkspace imported from a host directory (FromHostDir).
	Imported *ImportReport `json:"imported,omitempty"`
}

// Lease summarizes the open session of a workspace.
type Lease struct {
	SessionID string    `json:"session_id"`
	State     string    `json:"state"`
	Holder    string    `json:"holder"`
	Expires   time.Time `json:"expires_at"`
	// Policy describes the session's effective egress policy (its own override, redacted, or
	// the workspace's default when it started).
	Policy string `json:"policy,omitempty"`

	holderConn string
}

// HeldBy reports whether h is the session's holder, attached now.
func (l Lease) HeldBy(h Holder) bool {
	return h.Conn != "" && l.holderConn == h.Conn && l.State == store.SessionAttached
}

// FileEntry is one entry of ListFiles.
type FileEntry struct {
	Path    string    `json:"path"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Mode    string    `json:"mode"`
	ModTime time.Time `json:"modified_at"`
	Target  string    `json:"target,omitempty"`
}

// FileContent is what ReadFile returns.
type FileContent struct {
	Path   string `json:"path"`
	Data   []byte `json:"-"`
	Size   int64  `json:"size"`
	Offset int64  `json:"offset"`
	// Commit is the commit read (the head, or the one asked for).
	Commit string `json:"commit,omitempty"`
}

// WriteRequest is one write_files call: files to write and paths to delete, applied together —
// durably as one commit (WriteFiles), or in a live session (SessionWriteFiles). Paths take the
// forms of read_file and list_files (relative, /workspace/..., ~/..., the home's absolute path).
// Every path, written or deleted, is checked before anything changes, so a call with one bad path
// changes nothing. A call with neither files nor deletes is invalid.
type WriteRequest struct {
	// Files are created or replaced, parent directories as needed.
	Files []WriteFile
	// Delete lists paths to remove; each must exist. A symlink is removed, not its target; a
	// directory only with Recursive. Neither /workspace nor the home itself can be deleted, and
	// a path cannot be both written and deleted (nor a file written inside a deleted directory).
	Delete []string
	// Recursive allows Delete to remove directories with everything in them.
	Recursive bool
}

// WriteFile is one file for WriteFiles.
type WriteFile struct {
	Path    string
	Content []byte
	// Mode is the permission bits; zero means 0644.
	Mode uint32
}
