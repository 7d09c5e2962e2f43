package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Host roots: host directories the operator shares with agents for import and export
// (engine/hostdir.go).
//
//   - `sandkit-mcp --host-root DIR` (the stdio door, repeatable): for that door's connection only.
//     The door resolves the roots when it starts (`--host-root .` is its working directory) and
//     announces them to the daemon in its hello, the first line of every connection it makes.
//   - `sandkit-mcp serve --host-root DIR` and "host_roots" in the operator config: for every
//     connection of the daemon.
//
// A daemon a door starts never inherits that door's roots: other doors must not get them.

// doorHello is the first line a stdio door sends on each connection to the daemon, before it
// relays anything of its client's stream. The daemon takes a hello only as a connection's first
// line; the door always sends one, so a client cannot pose as a door by sending its own first.
// (A daemon of an earlier version ignores the line: it has no JSON-RPC method.)
type doorHello struct {
	Door      int      `json:"sandkit_door"`
	HostRoots []string `json:"host_roots,omitempty"`
}

// doorHelloVersion is doorHello.Door.
const doorHelloVersion = 1

// helloLine encodes the hello of a door with roots.
func helloLine(roots []string) []byte {
	b, _ := json.Marshal(doorHello{Door: doorHelloVersion, HostRoots: roots})
	return append(b, '\n')
}

// parseHello reads a connection's first line as a door's hello; ok is false when it is none
// (a client that speaks MCP right away, like the CLI).
func parseHello(line []byte) (doorHello, bool) {
	var h doorHello
	if err := json.Unmarshal(line, &h); err != nil || h.Door == 0 {
		return doorHello{}, false
	}
	return h, true
}

// sendHello writes the door's hello on a new connection.
func sendHello(c *net.UnixConn, roots []string) error {
	_, err := c.Write(helloLine(roots))
	return err
}

// hostRootFlag registers --host-root on fs.
func hostRootFlag(fs *flag.FlagSet, roots *stringList) {
	fs.Var(roots, "host-root", "host directory agents may import from and export to (repeatable)")
}

// resolveHostRoots makes roots absolute and checks that they are directories.
func resolveHostRoots(roots []string, what string) ([]string, error) {
	out, err := engine.CleanHostRoots(roots)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %v", what, err)}
	}
	return out, nil
}

// announcedRoots checks the roots a door announced (absolute directories); the others are
// dropped with a warning.
func announcedRoots(roots []string, log *slog.Logger) []string {
	var out []string
	for _, r := range roots {
		clean, err := engine.CleanHostRoots([]string{r})
		if err != nil || len(clean) != 1 || clean[0] != r {
			log.Warn("a door announced a host root that is not an absolute directory; ignoring it", "root", r, "err", err)
			continue
		}
		out = append(out, r)
	}
	return out
}
