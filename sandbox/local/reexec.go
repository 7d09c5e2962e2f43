//go:build linux

package local

import (
	"fmt"
	"os"

	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
)

// The provider needs code of its own running in places where it cannot call functions: a helper
// that mounts the overlays in a private mount namespace and then becomes bwrap (package helper),
// and the agent inside the sandbox (package agent). Both normally run from the static agent
// binary (agentbin.go), which carries both packages. When no usable agent binary is embedded,
// they are this very executable, started again (from /proc/self/exe, or bind mounted into the
// sandbox) with helper.Env naming the role. The switch happens in a package init, before main or
// the testing framework run, so it works the same in the server binary and in any test binary
// that links this package (the same trick as docker's pkg/reexec).

// Roles of the provider's own executable beyond the helper's (helper.RoleHelper,
// helper.RoleSpare).
const (
	roleAgent = "agent"
	roleProbe = "probe-overlay"
)

func init() {
	role := os.Getenv(helper.Env)
	if role == "" {
		return
	}
	var err error
	if ok, herr := helper.Run(role, os.Args[1:]); ok {
		err = herr
	} else {
		switch role {
		case roleAgent:
			err = agent.Main(os.Args[1:])
		case roleProbe:
			err = probeMain()
		default:
			err = fmt.Errorf("unknown %s role %q", helper.Env, role)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandkit-local %s: %v\n", role, err)
		os.Exit(125)
	}
	os.Exit(0)
}
