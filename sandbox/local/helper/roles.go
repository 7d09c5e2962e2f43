// Package helper is the code the local sandbox provider (package sandbox/local) runs in a process
// of its own just before bwrap: the helper, which mounts a sandbox's overlays in a private mount
// namespace and then becomes bwrap, and the spare, a helper of the provider's warm pool started
// ahead of time.
//
// It is small on purpose: it imports the standard library and golang.org/x/sys/unix only, so
// that the static agent binary (cmd/sandkit-agent) carries it too. The provider starts that
// binary for the helper and spare roles when it is embedded (a process that starts in about a
// millisecond of CPU), and re-executes itself only as the fallback; a spare started for the pool
// then costs the run it overlaps almost nothing. Either way the role comes from the environment
// variable Env, read before anything else (Run).
package helper

// Env names the role a process started by the provider plays; its values are the roles below
// and those of the provider itself (the re-exec agent, the overlay probe).
const Env = "SANDKIT_LOCAL_REEXEC"

// Roles.
const (
	RoleHelper = "helper"
	RoleSpare  = "spare" // a helper of the warm pool (SpareMain)
)

// Protocol names this version of Spec and of the spare's hand-over. The provider starts the
// embedded agent binary as its helper only when that binary contains this exact string (it is
// built from the same source), otherwise it re-executes itself; and it puts Protocol in every
// Spec, which Main checks.
const Protocol = "sandkit-helper/1"
