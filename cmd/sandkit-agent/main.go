// Command sandkit-agent is the in-sandbox agent of the local sandbox provider: PID 1 of every
// local sandbox, serving exec, files, background processes, signals and port relays to the
// provider over an inherited Unix socket (see package sandbox/local/agent). The same small binary
// is also the provider's helper, outside the sandbox: started with SANDKIT_LOCAL_REEXEC=helper or
// =spare, it mounts a sandbox's overlays and becomes bwrap (package sandbox/local/helper).
//
// It is not meant to be run by hand. The provider embeds it: build it with
//
//	go generate ./sandbox/local
//
// which runs CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' into sandbox/local/agentbin/.
package main

import (
	"fmt"
	"os"

	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
)

func main() {
	role := os.Getenv(helper.Env)
	if ok, err := helper.Run(role, os.Args[1:]); ok {
		// Run returns only on failure.
		fmt.Fprintf(os.Stderr, "sandkit-local %s: %v\n", role, err)
		os.Exit(125)
	}
	if err := agent.Main(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sandkit-agent: %v\n", err)
		os.Exit(125)
	}
}
