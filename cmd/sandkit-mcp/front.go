// Command sandkit-mcp is what users register with their agent and type: the front of the
// sandkit-mcp server, small so that an agent's MCP server starts at once.
//
//	sandkit-mcp [flags]        the stdio door (also `sandkit-mcp stdio`): relay MCP on stdin/stdout
//	                           to the daemon of the data dir, starting it if none runs
//	sandkit-mcp version        print which build this is
//	sandkit-mcp anything else  (serve, stop, doctor, demo, ls, help, --help, …) is run by the full
//	                           server, sandkit-mcpd, which replaces this process (same arguments,
//	                           same environment: its output, exit code and signals are the user's)
//
// The stdio door is internal/door, the same code as sandkit-mcpd's own door; this binary links
// nothing else of the server. Go runs the init of every linked package before main, and the
// server's (the MCP libraries, JSON Schema, the providers, net/http) take several milliseconds:
// a door that links them cannot start fast, and an agent starts one per session.
//
// sandkit-mcpd is found next to this executable (symlinks resolved), else on PATH; a daemon this
// door starts is `sandkit-mcpd serve`. `go install …/cmd/sandkit-mcp@V …/cmd/sandkit-mcpd@V`
// installs both side by side.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sandkit/sandkit-mcp/internal/buildinfo"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd = args[0]
	}
	var err error
	switch {
	case cmd == "help" || slices.ContainsFunc(args, door.IsHelpFlag):
		err = handOver("the help", args) // the usage is the full binary's
	case cmd == "" || cmd == "stdio":
		if cmd != "" {
			args = args[1:]
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = door.Run(ctx, args, door.Options{Daemon: door.FullBinary})
	case cmd == "version":
		if len(args) > 1 {
			err = door.UsageError{Err: fmt.Errorf("version takes no arguments (see sandkit-mcp --help)")}
			break
		}
		fmt.Println("sandkit-mcp", buildinfo.Version)
	default:
		err = handOver(fmt.Sprintf("`sandkit-mcp %s`", cmd), args)
	}
	if err == nil {
		return 0
	}
	// Messages never start with "sandkit-mcp:" themselves: it is added here, once.
	fmt.Fprintf(os.Stderr, "sandkit-mcp: %v\n", err)
	if errors.As(err, new(door.UsageError)) {
		return 2
	}
	return 1
}

// handOver replaces this process by sandkit-mcpd with the same arguments and environment; it
// returns only when that cannot be done. what names the command for the error.
func handOver(what string, args []string) error {
	full, err := door.FullBinary()
	if err != nil {
		return fmt.Errorf("%s needs the full server: %w", what, err)
	}
	err = syscall.Exec(full, append([]string{full}, args...), os.Environ())
	return fmt.Errorf("cannot run %s: %w", full, err)
}
