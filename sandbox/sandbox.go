// Package sandbox is the provider contract: the small "driver" interface that every sandbox backend
// (the local bubblewrap provider, the Vercel provider, future ones) implements, and that the engine
// uses without knowing which backend it talks to.
//
// # What a provider is
//
// A provider starts sandboxes from snapshots and turns sandboxes back into snapshots. It knows
// nothing of workspaces, leases, runs or history: those live in the engine. The only durable thing a
// provider hands out is a SnapshotRef, an opaque string the engine stores in its commits.
//
// # The durable state of a sandbox
//
// A sandbox's durable state is the directory /workspace (the default working directory) and the
// sandbox user's home directory. Everything else (/tmp, processes, the network) is ephemeral.
//
// # Lifecycle
//
//		Start(snapshot S) ──► running sandbox ──► Snapshot() ──► new snapshot S' (sandbox has ended)
//		                          │
//		                          └──────────────► Stop()     ──► changes discarded (sandbox has ended)
//
//	  - Start boots a sandbox whose /workspace and home hold exactly the state of snapshot S (or are
//	    empty when S is ""). S itself is never modified: any number of sandboxes may start from the
//	    same snapshot at the same time, and none sees another's changes (fork isolation).
//	  - While running, a sandbox runs commands (Exec) and reads and writes files. Changes live only
//	    in that sandbox.
//	  - Snapshot captures the sandbox's current durable state — new, changed and deleted files — as a
//	    new immutable snapshot and ENDS the sandbox (some backends, like Vercel's, cannot snapshot a
//	    running VM; we make that the rule everywhere). Processes still running are killed first.
//	    It reports what changed relative to S (SnapshotInfo.Changes). A provider that can tell
//	    (Capabilities.Changes) and finds that nothing changed makes NO snapshot: it returns
//	    SnapshotInfo{Unchanged: true, Ref: ""}, the sandbox has ended all the same, and the state
//	    is still exactly that of S. A provider that cannot tell always makes a snapshot and reports
//	    Changes.Known false.
//	  - Stop ends the sandbox and discards its changes. Stop after Snapshot, or twice, is a no-op.
//	  - Once ended, every method except Stop returns ErrEnded.
//
// # Changes
//
// A Changes value says how one state differs from another: Snapshot's relative to the start
// snapshot, Provider.Diff's between two snapshots. Paths are in the agent's form: relative to
// /workspace ("src/main.go") for the workspace, "~/…" ("~/.bashrc") for the home directory. A
// path is listed once, as added, modified or deleted:
//
//   - a file, symlink or other non-directory is added when the old state has nothing there,
//     deleted when the new one has nothing there, and modified when its type, content, target,
//     permission bits, owner, modification time or extended attributes differ (so a touch or a
//     chmod is a change; a file opened for writing and closed unchanged is not);
//   - a deleted directory is one entry (its contents are not listed one by one); an added
//     directory is listed only when nothing under it is (an empty new directory: the entries
//     under a new directory imply it); a directory in both states is modified when its
//     permission bits, owner or extended attributes differ. A directory's modification time
//     alone is no change: it moves whenever an entry is created or removed inside, and those
//     entries are the changes. The roots (/workspace and home themselves) are never listed.
//
// Paths come in order: the workspace's, then the home directory's, each depth first with names
// in byte order; at most MaxChanges are listed, and Files and Bytes count them all.
//
// Providers may keep more than /workspace and home in a snapshot (Capabilities.WholeDisk: Vercel
// keeps the VM's whole disk); /workspace and home are what every provider keeps.
//
// # Live sandboxes (sessions)
//
// A sandbox started with StartOptions.Detached is a live sandbox: it does not depend on the
// process that started it. It keeps running when that process exits or crashes (and when the
// provider is closed) until it is stopped, snapshotted, or its lifetime runs out — it then ends
// itself. Another provider instance over the same storage finds it again with Reconnect(id), and
// lists the live ones with Sandboxes. A sandbox started without Detached ends with the process
// that started it, and with Provider.Close.
//
// Live sandboxes also run background processes (StartProcess, Process, Signal), whose output the
// sandbox buffers so a caller can read it later; and they expose TCP ports: DialPort connects to a
// port listening on 127.0.0.1 (or any address) inside the sandbox, for a host-side relay.
//
// Snapshots are immutable and independent: deleting one (DeleteSnapshot) never affects another,
// even if the provider shares storage between them internally (the local provider shares overlay
// layers). A provider must keep whatever a live snapshot needs and may free the rest.
//
// # Paths
//
// File operations (ReadFile, ListFiles, ChangeFiles, WriteFiles) reach the two durable roots:
// /workspace and the sandbox user's home directory, whose absolute path the provider declares in
// Capabilities.HomeDir ("/home/sandbox" locally, "/home/vercel-sandbox" on Vercel). A path is one
// of
//
//   - relative ("src/main.go"), resolved against /workspace;
//   - absolute under /workspace ("/workspace/src/main.go", or "/workspace" itself);
//   - absolute under the home ("/home/sandbox/.bashrc", or the home itself).
//
// Paths are cleaned lexically first (SplitPath): "//workspace//x" is /workspace/x and "a/../b"
// is b. A path that still leaves its root — by "..", by being absolute elsewhere, or through a
// symbolic link whose target lies outside the root the path is in (a link in /workspace that
// points into the home escapes too) — fails with an error wrapping ErrPathEscape, and nothing is
// read, written or removed. The engine turns the agents' "~/..." form into the absolute home
// path before it calls a provider.
//
// # Errors
//
// Providers wrap the sentinel errors below so the engine can map them with errors.Is; the message
// around them says what happened in terms a user can act on.
package sandbox

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// Sentinel errors every provider wraps.
var (
	// ErrNotFound: the snapshot, file or sandbox does not exist.
	ErrNotFound = errors.New("not found")
	// ErrEnded: the sandbox has been snapshotted, stopped, or died.
	ErrEnded = errors.New("sandbox has ended")
	// ErrPathEscape: a path leaves its root, /workspace or the home directory (.., absolute
	// elsewhere, or a symlink pointing out).
	ErrPathEscape = errors.New("path escapes its root (/workspace or the home directory)")
	// ErrInvalid: a request the provider cannot accept as given (bad path syntax, a directory where
	// a file is expected, a file too large, ...).
	ErrInvalid = errors.New("invalid request")
	// ErrUnsupported: the provider does not offer this capability (see Capabilities).
	ErrUnsupported = errors.New("not supported by this provider")
	// ErrUnavailable: the backend itself is not usable (bwrap missing, credentials missing, ...).
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRefused: nothing accepts connections on the requested port inside the sandbox.
	ErrRefused = errors.New("connection refused")
)

// WorkspaceDir is the path of the durable workspace directory inside every sandbox.
const WorkspaceDir = "/workspace"

// SnapshotRef names a snapshot. It is opaque to everyone but the provider that made it; the empty
// ref means "the empty state".
type SnapshotRef string

// Provider is a sandbox backend. Implementations are safe for concurrent use.
type Provider interface {
	// Name is the provider's stable identifier ("local", "vercel"), stored with every workspace.
	Name() string

	// Capabilities says which optional features this provider offers.
	Capabilities() Capabilities

	// Start boots a sandbox from opts.Snapshot (see the lifecycle in the package doc). It returns
	// once the sandbox can accept Exec and file calls. A snapshot that no longer exists yields an
	// error wrapping ErrNotFound.
	Start(ctx context.Context, opts StartOptions) (Sandbox, error)

	// DeleteSnapshot frees a snapshot. Sandboxes already started from it are unaffected. Deleting
	// a snapshot that does not exist is not an error (garbage collection may race a crash).
	DeleteSnapshot(ctx context.Context, ref SnapshotRef) error

	// Snapshots lists every snapshot the provider currently holds, for garbage collection after a
	// crash: the engine deletes those no commit references. Providers that cannot list return
	// ErrUnsupported.
	Snapshots(ctx context.Context) ([]SnapshotRef, error)

	// Diff reports what differs from snapshot from to snapshot to (added: in to, not in from), in
	// the shape of Changes; "" is the empty state on either side. Unknown refs yield ErrNotFound.
	// Providers without Capabilities.Diff return ErrUnsupported.
	Diff(ctx context.Context, from, to SnapshotRef) (Changes, error)

	// Import builds a new snapshot whose /workspace holds exactly src's entries (the home is
	// empty), without running the caller's code: the provider copies the host files itself
	// (locally straight into a new layer, reflinked or with copy_file_range where the file system
	// allows). The files, directories and symlinks belong to the sandbox user, with the
	// permission bits of the entries. It reports the entries as added in Changes when the provider
	// can tell (Capabilities.Changes). An empty src yields the empty state (Ref "", Unchanged). A
	// path that is not valid (CheckImportPath), or a parent that is not a directory, fails with
	// ErrInvalid and leaves nothing behind. Providers without a faster way use ImportByWrites.
	Import(ctx context.Context, src ImportSource) (SnapshotInfo, error)

	// Tree opens a read-only view of snapshot ref's /workspace ("" is the empty state), for
	// reading a whole tree out: locally straight from the layers, without a sandbox. Unknown refs
	// yield ErrNotFound. Providers without a direct way use TreeBySandbox.
	Tree(ctx context.Context, ref SnapshotRef) (Tree, error)

	// Reconnect returns a handle to a live (Detached) sandbox by its ID, also one started by an
	// earlier process. A sandbox that has ended, or never existed, yields ErrNotFound (wrapped).
	Reconnect(ctx context.Context, id string) (Sandbox, error)

	// Sandboxes lists the IDs of live (Detached) sandboxes still running, for reconciliation after
	// a restart: the engine stops those no session references.
	Sandboxes(ctx context.Context) ([]string, error)

	// Close releases the provider's resources. Sandboxes started without Detached are stopped;
	// live ones keep running.
	Close() error
}

// Capabilities declares optional features, so callers never have to guess.
type Capabilities struct {
	// Egress is true when the provider enforces policies other than deny-all. When false, a
	// sandbox started with such a policy still has no network, and Sandbox.Warnings says so.
	Egress bool
	// MaxFileSize is the largest file WriteFiles accepts and ReadFile returns in one call, in bytes.
	MaxFileSize int64
	// HomeDir is the absolute, clean path of the sandbox user's home directory inside every
	// sandbox of this provider ($HOME of its commands). It is durable like /workspace, and file
	// operations accept paths under it (see Paths in the package doc). Never "" nor "/".
	HomeDir string

	// PortURLs is true when the provider serves exposed ports itself, at URLs Sandbox.PortURL
	// returns (Vercel's public routes). Such a provider needs the ports up front
	// (StartOptions.Ports) and cannot relay raw connections: DialPort fails with ErrUnsupported.
	// When false, PortURL fails with ErrUnsupported and DialPort relays connections, so the caller
	// serves the URLs.
	PortURLs bool
	// MaxPorts bounds len(StartOptions.Ports) and MinPort is the lowest port that can be exposed;
	// zero means no limit (1 for MinPort).
	MaxPorts, MinPort int

	// MaxLifetime is the longest a sandbox may live, extensions included (a plan limit); zero
	// means no limit. Start and Extend refuse longer with an error wrapping ErrInvalid.
	MaxLifetime time.Duration
	// FixedDeadline is true when a deadline can only move later: Extend to an earlier time fails
	// with ErrUnsupported and leaves the deadline as it was. The caller then ends the sandbox
	// itself when it wants to (the engine's session expiry does).
	FixedDeadline bool

	// TextOutput is true when command output travels as UTF-8 text (Vercel's log streams are
	// JSON): bytes that are not valid UTF-8 arrive replaced by U+FFFD. When false, output is
	// passed through byte for byte. Stdin and files are byte-exact either way.
	TextOutput bool

	// Changes is true when Snapshot can tell what changed (SnapshotInfo.Changes.Known), and so
	// makes no snapshot of a sandbox that changed nothing. When false, every Snapshot makes a
	// snapshot and reports Changes.Known false.
	Changes bool
	// Diff is true when Provider.Diff compares two snapshots; when false it fails with
	// ErrUnsupported.
	Diff bool

	// WholeDisk is true when a snapshot keeps the sandbox's whole disk (system packages installed
	// with sudo, /tmp, ...), not only /workspace and home. When false, everything outside those two
	// is ephemeral.
	WholeDisk bool
}

// StartOptions configures a new sandbox.
type StartOptions struct {
	// Snapshot is the state to start from; "" starts empty.
	Snapshot SnapshotRef
	// Policy is the effective egress policy for this sandbox (already normalized).
	Policy policies.Policy
	// Env is added to the environment of every command (Exec may add more).
	Env map[string]string
	// Lifetime bounds how long the sandbox may live; the provider ends it afterwards. Zero means
	// the provider's default.
	Lifetime time.Duration
	// Label is a human-readable tag for logs and diagnostics (e.g. the workspace id).
	Label string
	// Detached makes a live sandbox that outlives the process that started it (see the package
	// doc); used for sessions.
	Detached bool
	// Ports are the TCP ports to expose. Providers with Capabilities.PortURLs route exactly these
	// (PortURL refuses others); the others ignore the list, as DialPort reaches any port.
	Ports []int
}

// Sandbox is one running sandbox. Its methods are safe for concurrent use, but a provider may
// serialize them.
type Sandbox interface {
	// ID identifies the sandbox for logs and diagnostics.
	ID() string

	// Warnings lists things the caller should tell the user about this sandbox, e.g. that the
	// requested egress policy is not enforced and the sandbox has no network instead.
	Warnings() []string

	// Exec runs one command in the foreground and waits for it. Output is streamed, in order, to
	// req.Stdout and req.Stderr as it is produced; the provider never buffers it unboundedly.
	//
	// A command that exits with any status is a success of Exec (see ExecResult.ExitCode). When
	// req.Timeout elapses the whole process tree of the command is killed and the result has
	// TimedOut set. When ctx is cancelled the process tree is killed and Exec returns ctx.Err().
	// A command that cannot be started (not found, not executable) returns an ExecResult with
	// exit code 127 and a message on Stderr, like a shell.
	Exec(ctx context.Context, req ExecRequest) (ExecResult, error)

	// WriteFiles creates or replaces files, creating parent directories as needed. All paths are
	// validated before anything is written. It is ChangeFiles with only writes.
	WriteFiles(ctx context.Context, files []File) error

	// ChangeFiles removes c.Remove and writes c.Write in one step. Every path of both lists is
	// validated first (syntax, containment also through symlinks, a removed path exists, a
	// directory is removed only with c.Recursive, neither root itself is removed, no written path
	// equals, contains or lies inside a removed one); when one fails, nothing has changed and the
	// error names the path. Removing a symlink removes the link, never its target. A failure of
	// the file system once changes have begun (a full disk, say) may leave part of them applied;
	// the caller then discards the sandbox (the engine does).
	ChangeFiles(ctx context.Context, c FileChanges) error

	// ReadFile reads up to max bytes (max <= 0: up to Capabilities.MaxFileSize) starting at
	// offset. Reading a directory fails with ErrInvalid.
	ReadFile(ctx context.Context, path string, offset, max int64) (FileContent, error)

	// ListFiles lists the entries under dir (a directory inside /workspace or the home) down to
	// depth levels (1 = only the directory's own entries). Symlinks are listed, not followed.
	ListFiles(ctx context.Context, dir string, depth int) ([]FileEntry, error)

	// Snapshot captures the durable state as a new snapshot and ends the sandbox; when the
	// provider can tell that nothing changed, it ends the sandbox without making one
	// (SnapshotInfo.Unchanged, see the lifecycle in the package doc).
	Snapshot(ctx context.Context) (SnapshotInfo, error)

	// Stop ends the sandbox and discards its uncommitted changes.
	Stop(ctx context.Context) error

	// Deadline is when the sandbox ends itself (its lifetime).
	Deadline() time.Time

	// Extend moves the deadline to until (later or earlier, but not in the past).
	Extend(ctx context.Context, until time.Time) error

	// StartProcess starts a background process and returns its ID at once. Its stdout and stderr
	// are buffered in the sandbox, interleaved as produced, keeping at least the last
	// MaxProcessLog bytes; req.Stdout, req.Stderr and req.Timeout are ignored. It runs until it
	// exits, is signalled, or the sandbox ends.
	StartProcess(ctx context.Context, req ExecRequest) (string, error)

	// Process reports a background process and its output from byte offset since (0: from the
	// start of what is kept). When wait > 0 and there is no output past since and the process
	// still runs, it waits up to wait for either. Unknown IDs yield ErrNotFound.
	Process(ctx context.Context, id string, since int64, wait time.Duration) (ProcessStatus, error)

	// Signal sends sig to the background process's whole process group. Signalling a process that
	// has exited is not an error.
	Signal(ctx context.Context, id string, sig syscall.Signal) error

	// DialPort opens a TCP connection to port inside the sandbox (127.0.0.1 there). Nothing
	// listening yields ErrRefused (wrapped), with a message naming the port. Providers with
	// Capabilities.PortURLs fail with ErrUnsupported.
	DialPort(ctx context.Context, port int) (net.Conn, error)

	// PortURL returns the URL at which the provider itself serves port, one of StartOptions.Ports
	// (only providers with Capabilities.PortURLs; the others fail with ErrUnsupported). A port
	// that was not exposed at Start fails with ErrInvalid. The URL does not depend on anything
	// listening yet.
	PortURL(ctx context.Context, port int) (string, error)

	// SetPolicy replaces the sandbox's egress policy without restarting it. It applies to
	// connections opened afterwards; existing ones are not cut. p is compiled (its credentials
	// resolved) as at Start: a policy that cannot be applied (e.g. a credential that is not
	// available) fails with an error wrapping ErrInvalid and leaves the current policy in force.
	// A provider without egress (Capabilities.Egress false) accepts any valid policy and keeps
	// the sandbox without network, saying so in Warnings.
	SetPolicy(ctx context.Context, p policies.Policy) error
}

// MaxProcessLog is the least output a provider keeps per background process.
const MaxProcessLog = 1 << 20

// ProcessStatus describes a background process and a window of its output.
type ProcessStatus struct {
	ID      string
	Command string
	Args    []string
	// Running is true until the process has exited or was killed.
	Running bool
	// ExitCode follows ExecResult.ExitCode's rules; nil while running.
	ExitCode *int
	Started  time.Time
	Ended    time.Time
	// Output holds the bytes from Offset on (stdout and stderr interleaved as produced).
	Output []byte
	// Offset is where Output starts; it is greater than the since asked for when older output
	// was dropped (Dropped counts the bytes lost between since and Offset).
	Offset  int64
	Dropped int64
	// Next is the offset to ask for next time (Offset + len(Output)).
	Next int64
}

// ExecRequest is one command to run.
type ExecRequest struct {
	// Command is the program (looked up in PATH when it has no slash); Args follow it.
	Command string
	Args    []string
	// Cwd is the working directory inside the sandbox; "" means /workspace. A relative Cwd is
	// resolved against /workspace.
	Cwd string
	// Env adds variables to the command's environment.
	Env map[string]string
	// Stdin is fed to the command; nil means an empty stdin.
	Stdin []byte
	// Timeout kills the command's whole process tree when it elapses; zero means no timeout.
	Timeout time.Duration
	// Stdout and Stderr receive the output as it is produced; nil discards it.
	Stdout, Stderr io.Writer
}

// ExecResult is how a command ended.
type ExecResult struct {
	// ExitCode is the command's exit status; 128+N when killed by signal N; -1 when it timed out.
	ExitCode int
	// TimedOut is true when the command was killed because Timeout elapsed.
	TimedOut bool
	// Duration is the wall time of the command inside the sandbox.
	Duration time.Duration
}

// File is one file to write.
type File struct {
	// Path inside /workspace or the home (see Paths in the package doc).
	Path string
	// Content is the complete new content.
	Content []byte
	// Mode is the permission bits; zero means 0644.
	Mode fs.FileMode
}

// FileChanges is one ChangeFiles call: files to write and paths to remove.
type FileChanges struct {
	// Write are the files to create or replace.
	Write []File
	// Remove are the paths to delete (see Paths in the package doc); each must exist.
	Remove []string
	// Recursive allows removing directories with everything in them; without it a directory in
	// Remove fails with ErrInvalid.
	Recursive bool
}

// FileContent is the result of ReadFile.
type FileContent struct {
	// Data holds the bytes read.
	Data []byte
	// Size is the file's total size, so a caller can tell whether it has read everything.
	Size int64
}

// FileEntry describes one entry of ListFiles.
type FileEntry struct {
	// Path with forward slashes: relative to /workspace for an entry in /workspace
	// ("src/main.go"); absolute for an entry in the home ("/home/sandbox/.config/x").
	Path string
	// Type is "file", "dir", "symlink" or "other".
	Type string
	// Size in bytes (files only).
	Size int64
	// Mode holds the permission bits.
	Mode fs.FileMode
	// ModTime is the last modification time.
	ModTime time.Time
	// Target is a symlink's target, as stored.
	Target string `json:",omitempty"`
}

// SnapshotInfo describes what Snapshot did.
type SnapshotInfo struct {
	// Ref names the new snapshot; "" when Unchanged (no snapshot was made).
	Ref SnapshotRef
	// Unchanged is true when the provider could tell that the sandbox changed nothing: no
	// snapshot was made, Ref is "", and the state is still that of the snapshot the sandbox
	// started from. Only providers with Capabilities.Changes report it.
	Unchanged bool
	// Changes is what the sandbox changed relative to the snapshot it started from; Known is
	// false when the provider cannot tell.
	Changes Changes
	// ChangedBytes and ChangedFiles are Changes.Bytes and Changes.Files; zero when unknown.
	ChangedBytes int64
	ChangedFiles int64
}

// MaxChanges is the most paths a Changes lists.
const MaxChanges = 100

// Changes says how one state differs from another (see "Changes" in the package doc).
type Changes struct {
	// Known is false when the provider cannot tell; then everything else is zero.
	Known bool
	// Paths lists the changes, in order, at most MaxChanges of them.
	Paths []Change
	// Files counts every change (also those beyond Paths); Bytes sums the sizes of the regular
	// files added or modified (their new size).
	Files, Bytes int64
}

// None reports whether the provider knows that nothing changed.
func (c Changes) None() bool { return c.Known && c.Files == 0 }

// Truncated reports whether there are more changes than Paths lists.
func (c Changes) Truncated() bool { return c.Files > int64(len(c.Paths)) }

// Change operations.
const (
	Added    = "added"
	Modified = "modified"
	Deleted  = "deleted"
)

// Change is one changed path.
type Change struct {
	// Path is relative to /workspace, or "~/…" in the home directory.
	Path string
	// Op is Added, Modified or Deleted.
	Op string
	// Type is what is there now ("file", "dir", "symlink", "other"); for Deleted, what was.
	Type string
}
