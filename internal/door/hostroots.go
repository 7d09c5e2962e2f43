package door

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
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

// Hello is the first line a stdio door sends on each connection to the daemon, before it
// relays anything of its client's stream. The daemon takes a hello only as a connection's first
// line; the door always sends one, so a client cannot pose as a door by sending its own first.
// (A daemon of an earlier version ignores the line: it has no JSON-RPC method.)
type Hello struct {
	Door      int      `json:"sandkit_door"`
	HostRoots []string `json:"host_roots,omitempty"`
}

// HelloVersion is Hello.Door.
const HelloVersion = 1

// HelloLine encodes the hello of a door with roots.
func HelloLine(roots []string) []byte {
	b, _ := json.Marshal(Hello{Door: HelloVersion, HostRoots: roots})
	return append(b, '\n')
}

// ParseHello reads a connection's first line as a door's hello; ok is false when it is none
// (a client that speaks MCP right away, like the CLI).
func ParseHello(line []byte) (Hello, bool) {
	var h Hello
	if err := json.Unmarshal(line, &h); err != nil || h.Door == 0 {
		return Hello{}, false
	}
	return h, true
}

// sendHello writes the door's hello on a new connection.
func sendHello(c *Conn, roots []string) error {
	_, err := c.Write(HelloLine(roots))
	return err
}

// HostRootFlag registers --host-root on fs.
func HostRootFlag(fs *flag.FlagSet, roots *StringList) {
	fs.Var(roots, "host-root", "host directory agents may import from and export to (repeatable)")
}

// ResolveHostRoots makes roots absolute and checks that they are directories; a failure is a
// UsageError naming the flag (what).
func ResolveHostRoots(roots []string, what string) ([]string, error) {
	out, err := CleanHostRoots(roots)
	if err != nil {
		return nil, UsageError{fmt.Errorf("%s: %v", what, err)}
	}
	return out, nil
}

// CleanHostRoots makes roots absolute and clean (relative ones against the working directory),
// checks that each is an existing directory and drops repeats, keeping the order: the roots of a
// door's --host-root, of serve's and of the config's host_roots alike.
func CleanHostRoots(roots []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("host root %q: %w", r, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("host root %q: %w", r, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("host root %q is not a directory", r)
		}
		if !seen[abs] {
			seen[abs] = true
			out = append(out, abs)
		}
	}
	return out, nil
}
