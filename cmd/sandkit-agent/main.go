// Command sandkit-agent is the in-sandbox agent of the local sandbox provider: PID 1 of every
// local sandbox, serving exec, files, background processes, signals and port relays to the
// provider over an inherited Unix socket (see package sandbox/local/agent).
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
)

func main() {
	if err := agent.Main(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sandkit-agent: %v\n", err)
		os.Exit(125)
	}
}
