// Command sandkit-mcp is an MCP server that gives AI agents durable sandboxed workspaces.
//
// Usage:
//
//	sandkit-mcp [flags]            serve MCP on stdio (what an agent launches)
//	sandkit-mcp doctor [flags]     check this machine and say how to fix what is missing
//	sandkit-mcp demo [flags]       drive a real MCP client through the whole story and print it
//	sandkit-mcp version            print the version
//
// Flags (every subcommand): --data-dir DIR (or SANDKIT_DATA_DIR; default
// $XDG_DATA_HOME/sandkit, i.e. ~/.local/share/sandkit), --bwrap PATH, --log-level
// debug|info|warn|error. Logs go to stderr, never to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "", "stdio":
		err = serveStdio(ctx, args)
	case "doctor":
		err = doctor(ctx, args)
	case "demo":
		err = demo(ctx, args)
	case "version":
		fmt.Println("sandkit-mcp", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "sandkit-mcp: unknown command %q\n\n", cmd)
		usage()
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "sandkit-mcp: %v\n", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "sandkit-mcp: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func usage() {
	fmt.Fprint(os.Stderr, `sandkit-mcp: durable sandboxed workspaces for AI agents, over MCP.

Usage:
  sandkit-mcp [flags]          serve MCP on stdio (register this with your agent)
  sandkit-mcp doctor [flags]   check bubblewrap, namespaces, overlay, data dir; say how to fix
  sandkit-mcp demo [flags]     run the whole story through a real MCP client and print each step
  sandkit-mcp version          print the version

Flags:
  --data-dir DIR      state directory (env SANDKIT_DATA_DIR; default ~/.local/share/sandkit)
  --bwrap PATH        bubblewrap binary (default: bwrap from PATH)
  --log-level LEVEL   debug, info, warn or error (default info)
  --memory-limit SIZE memory limit per sandbox, e.g. 2G (default 0: none; needs cgroups)
  --pids-limit N      process limit per sandbox (default 4096; 0: none; needs cgroups)
`)
}
