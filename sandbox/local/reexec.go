//go:build linux

package local

import (
	"fmt"
	"os"

	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// The provider needs code of its own running in places where it cannot call functions: a helper
// that mounts the overlays in a private mount namespace and then becomes bwrap, and — when no
// static agent binary is embedded (agentbin.go) — the agent inside the sandbox. Both are this
// very executable, started again (from /proc/self/exe, or bind mounted into the sandbox) with
// reexecEnv naming the role. The switch happens in a package init, before main or the testing
// framework run, so it works the same in the sandkit-mcp binary and in any test binary that
// links this package (the same trick as docker's pkg/reexec).
const reexecEnv = "SANDKIT_LOCAL_REEXEC"

// Roles.
const (
	roleHelper = "helper"
	roleSpare  = "spare" // a helper of the warm pool (spare.go)
	roleAgent  = "agent"
	roleProbe  = "probe-overlay"
)

func init() {
	role := os.Getenv(reexecEnv)
	if role == "" {
		return
	}
	var err error
	switch role {
	case roleHelper:
		err = helperMain()
	case roleSpare:
		err = spareMain(os.Args[1:])
	case roleAgent:
		err = agent.Main(os.Args[1:])
	case roleProbe:
		err = probeMain()
	default:
		err = fmt.Errorf("unknown %s role %q", reexecEnv, role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandkit-local %s: %v\n", role, err)
		os.Exit(125)
	}
	os.Exit(0)
}
