package local

import (
	"log/slog"
	"time"
)

// Defaults for Options fields left zero.
const (
	// DefaultHostUID and DefaultHostGID are the host uid/gid sandboxes run as when the provider
	// runs as root. They belong to no account: choose another with Options.HostUID if your
	// host uses this range (e.g. for subordinate ids).
	DefaultHostUID = 1_000_000_000
	DefaultHostGID = 1_000_000_000
	// DefaultMaxFileSize is the largest file WriteFiles accepts and ReadFile returns at once.
	DefaultMaxFileSize = 64 << 20
	// DefaultMaxLayers is the longest layer chain a snapshot keeps before it is squashed.
	DefaultMaxLayers = 32
	// DefaultLifetime ends a sandbox nobody stopped.
	DefaultLifetime = 24 * time.Hour
	// DefaultTmpSize bounds each of the sandbox's tmpfs mounts (/tmp, /dev/shm).
	DefaultTmpSize = 1 << 30
	// DefaultWarmSandboxes is how many sandboxes the provider keeps started ahead (warm.go).
	DefaultWarmSandboxes = 2
	// DefaultHomeDir is the sandbox user's home directory.
	DefaultHomeDir = "/home/sandbox"
)

// Options configures the local provider.
type Options struct {
	// Dir is the provider's data directory (e.g. <data-dir>/local); it is created if needed.
	// Only one provider may use a directory at a time. Live (Detached) sandboxes outlive the
	// provider that started them; the next provider on the same directory adopts them.
	Dir string
	// Bwrap is the bubblewrap binary; "" looks "bwrap" up in PATH.
	Bwrap string
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger

	// HostUID and HostGID are the unprivileged host ids sandboxes run as when the provider runs
	// as root (zero: DefaultHostUID/DefaultHostGID). Ignored when the provider is not root: then
	// sandboxes run as the provider's own uid.
	HostUID, HostGID int

	// MemoryLimit (bytes) and PidsLimit bound each sandbox through cgroups where the host offers
	// them (see Diagnose); zero means no limit.
	MemoryLimit int64
	PidsLimit   int64
	// CgroupParent is a delegated cgroup v2 directory for per-sandbox leaves; on cgroup v1 hosts
	// the provider's own cgroups are used instead (root only).
	CgroupParent string

	// DefaultLifetime applies when StartOptions.Lifetime is zero (zero: DefaultLifetime).
	DefaultLifetime time.Duration
	// MaxFileSize is Capabilities.MaxFileSize (zero: DefaultMaxFileSize).
	MaxFileSize int64
	// MaxLayers is the longest layer chain before a squash (zero: DefaultMaxLayers, at most 64).
	MaxLayers int
	// TmpSize bounds /tmp and /dev/shm in each sandbox (zero: DefaultTmpSize).
	TmpSize int64
	// HomeDir is where the sandbox user's durable home is mounted, "/home/<name>" ($HOME,
	// Capabilities.HomeDir; zero: DefaultHomeDir). The Vercel fake's backend mounts it where
	// Vercel has it. Keep it for a data directory while live sandboxes run.
	HomeDir string

	// WarmSandboxes is how many sandboxes the provider keeps started ahead, each from a snapshot
	// a sandbox ended in, for the next Start from it (zero: DefaultWarmSandboxes; negative:
	// none). See warm.go.
	WarmSandboxes int

	// Egress configures the egress proxy: destinations the operator allows beyond the public
	// internet, static name resolution, upstream TLS roots, where credentials come from.
	Egress EgressOptions

	// agent picks the in-sandbox agent (tests: force the re-exec fallback, or supply a binary).
	agent agentChoice
	// coldOnly turns the warm pool of helpers and the warm sandboxes off (tests and benchmarks:
	// the cold start).
	coldOnly bool
	// warmIdle replaces warmIdle (tests).
	warmIdle time.Duration
}

// agentChoice is how a provider was told to pick its agent (unexported fields of Options, for
// tests): the zero value picks the embedded binary when it is usable.
type agentChoice struct {
	// binary replaces the embedded agent binary.
	binary []byte
	// reexec forces the re-exec fallback.
	reexec bool
}
