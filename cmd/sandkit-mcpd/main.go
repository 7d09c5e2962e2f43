// Command sandkit-mcpd is the full sandkit-mcp server: an MCP server that gives AI agents durable
// sandboxed workspaces, with every subcommand. Users run the thin front, sandkit-mcp
// (cmd/sandkit-mcp): its stdio door is this program's (internal/door) without linking the server,
// so it starts in a few milliseconds, and it hands every other subcommand to this binary, found
// next to it or on PATH. This binary's usage and messages therefore name sandkit-mcp, except
// where the daemon binary itself is meant.
//
// One daemon owns a data dir (its engine, sandboxes and state); agents reach it through doors:
//
//	sandkit-mcp [flags]            the stdio door: relay MCP on stdin/stdout to the daemon of the
//	                               data dir, starting it if none runs (what an agent launches)
//	sandkit-mcp serve [flags]      run the daemon in the foreground: Unix-socket door, previews
//	                               and, with --http, Streamable HTTP (/mcp) and SSE (/sse)
//	sandkit-mcp stop [flags]       stop the daemon of the data dir
//	sandkit-mcp doctor [flags]     check this machine and say how to fix what is missing
//	sandkit-mcp demo [flags]       drive a real MCP client through the whole story and print it
//	sandkit-mcp bootstrap [flags]  build the operator's setup templates now (no daemon may run)
//	sandkit-mcp ls | log WS | runs WS | show RUN | diff WS [FROM [TO]]   for the humans: tables (or --json)
//	sandkit-mcp version            print which build this is (internal/buildinfo)
//
// Flags (every subcommand): --data-dir DIR (or SANDKIT_DATA_DIR; default
// $XDG_DATA_HOME/sandkit, i.e. ~/.local/share/sandkit), --config FILE (the operator config;
// default <data-dir>/config.json if present, see opconfig.go), --bwrap PATH, --log-level
// debug|info|warn|error. Logs go to stderr (a door's daemon: <data-dir>/daemon.log), never to
// stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sandkit/sandkit-mcp/internal/buildinfo"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

// version names this build (buildinfo.Version, the same in sandkit-mcp and sandkit-mcpd).
var version = buildinfo.Version

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	do, ok := command(cmd)
	if !ok {
		fmt.Fprintf(os.Stderr, "sandkit-mcp: unknown command %q\n\n", cmd)
		usage(os.Stderr)
		return 2
	}
	if cmd == "help" || slices.ContainsFunc(args, door.IsHelpFlag) {
		usage(os.Stdout)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := do(ctx, args); err != nil {
		// Messages never start with "sandkit-mcp:" themselves: it is added here, once.
		fmt.Fprintf(os.Stderr, "sandkit-mcp: %v\n", err)
		var ue usageError
		var due door.UsageError // the shared flags' and the door's
		if errors.As(err, &ue) || errors.As(err, &due) {
			return 2
		}
		return 1
	}
	return 0
}

// command returns what runs subcommand name ("" is the stdio door) and whether there is one.
func command(name string) (func(context.Context, []string) error, bool) {
	switch name {
	case "", "stdio":
		return stdioDoor, true
	case "serve":
		return serve, true
	case "stop":
		return stopCmd, true
	case "doctor":
		return doctor, true
	case "demo":
		return demo, true
	case "bootstrap":
		return bootstrapCmd, true
	case "version":
		return versionCmd, true
	case "help":
		return nil, true
	}
	if _, ok := humanCommands[name]; ok {
		return func(ctx context.Context, args []string) error { return human(ctx, name, args, os.Stdout) }, true
	}
	return nil, false
}

// stdioDoor is this binary's own stdio door: the front's (internal/door), starting this
// executable as the daemon after refusing a provider this system cannot run (providerHere).
func stdioDoor(ctx context.Context, args []string) error {
	return door.Run(ctx, args, door.Options{
		Daemon: func() (string, error) {
			self, err := os.Executable()
			if err != nil {
				return "", fmt.Errorf("cannot find this executable to start the daemon: %w", err)
			}
			return self, nil
		},
		Preflight: func(c door.Config) error { return providerHere(configOf(c)) },
	})
}

// versionCmd prints which build this is (internal/buildinfo).
func versionCmd(_ context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("version takes no arguments (see sandkit-mcp --help)")}
	}
	fmt.Println("sandkit-mcp", version)
	return nil
}

// usageError is a mistake on the command line: exit 2.
type usageError struct{ error }

// usage writes the help text to w: stdout when asked for, stderr after a mistake.
func usage(w io.Writer) {
	fmt.Fprint(w, `sandkit-mcp: durable sandboxed workspaces for AI agents, over MCP.

Usage:
  sandkit-mcp [flags]          the stdio door: register this with your agent. It connects to the
                               daemon of the data dir (starting one if none runs, which exits after
                               15 minutes with nothing to do) and relays MCP on stdin/stdout
  sandkit-mcp serve [flags]    run the daemon in the foreground (Unix socket <data-dir>/sandkit.sock,
                               previews, and with --http the HTTP door)
  sandkit-mcp stop [flags]     stop the daemon of the data dir (SIGTERM, then wait)
  sandkit-mcp doctor [flags]   check bubblewrap, namespaces, overlay, data dir, daemon; say how to fix
  sandkit-mcp demo [flags]     run the whole story through a real MCP client and print each step
  sandkit-mcp bootstrap [flags] build the setup templates of the operator config now instead of on
                               first use (refused while a daemon serves the data dir: stop it first)
  sandkit-mcp ls [--json]      list the workspaces (through the daemon, started if none runs)
  sandkit-mcp log WS [--json]  a workspace's history, newest first
  sandkit-mcp runs WS [--json] a workspace's runs, newest first
  sandkit-mcp show RUN [--json] a run: status, exit code, output
  sandkit-mcp diff WS [FROM [TO]] [--json]  what changed between two commits (default: the head's)
  sandkit-mcp export WS DIR [--git-branch NAME] [--json]  write the head's files into DIR (new or
                               empty), or a branch of the repository DIR it was imported from
  sandkit-mcp version          print which build this is (module version, git revision)
  sandkit-mcp help             this text, on stdout (so does --help or -h, after any subcommand too)
  (sandkit-mcp runs the stdio door and version itself, and hands every other subcommand to
  sandkit-mcpd, the full server, installed next to it or on PATH)

Flags (every subcommand):
  --data-dir DIR      state directory (env SANDKIT_DATA_DIR; default ~/.local/share/sandkit)
  --config FILE       operator config (JSON: default_policy, max_policy, templates; default
                      <data-dir>/config.json if it exists); read when the daemon starts
  --provider NAME     sandbox provider: local (bubblewrap, the default) or vercel (Vercel Sandbox;
                      env SANDKIT_PROVIDER; or "provider" in the config). Vercel credentials come
                      from VERCEL_OIDC_TOKEN (renewed from the file SANDKIT_VERCEL_OIDC_TOKEN_FILE
                      names, or with the Vercel CLI login), or VERCEL_ACCESS_TOKEN + VERCEL_TEAM_ID +
                      VERCEL_PROJECT_ID. One data dir serves one provider
  --bwrap PATH        bubblewrap binary (default: bwrap from PATH)
  --log-level LEVEL   debug, info, warn or error (default info)
  --memory-limit SIZE memory limit per sandbox, e.g. 2G; auto (the default) is half the machine's
                      memory, at most 8G; 0: none. Needs cgroups
  --disk-reserve SIZE free space kept under the data dir (default 1G; 0: none): below it runs,
                      writes, imports and new sessions are refused and running runs stopped
  --pids-limit N      process limit per sandbox (default 4096; 0: none; needs cgroups)
  --warm-sandboxes N  local provider: sandboxes kept started ahead, each from the state a run
                      ended in, so the workspace's next run starts at once (default 2; 0: none)
  A daemon started by the stdio door gets that door's --provider, --bwrap, --log-level and limits
  (and its environment, where the Vercel credentials are).

Flags of serve:
  --http ADDR             also serve MCP over HTTP: Streamable HTTP at /mcp, legacy SSE at /sse and
                          /message, health at /healthz. A bare port means 127.0.0.1:PORT; an address
                          beyond loopback (e.g. :8765, 0.0.0.0:8765) requires a bearer token
  --token TOKEN           bearer token every HTTP request must carry (env SANDKIT_TOKEN; prefer the env)
  --allowed-origin ORIGIN browser origin allowed to call the HTTP door besides loopback ones (repeatable)
  --idle-ttl D            end HTTP MCP sessions idle this long; their live sessions become attachable
                          (default 10m)
  --idle-exit D           exit after D with no connection, call, run or open session (default 0: never)
  --preview-addr ADDR     loopback address each preview gets a free port on; URLs look like
                          http://127.0.0.1:PORT/, served to this user only (default 127.0.0.1;
                          "" turns previews off)
  --public-url BASE       serve previews on the HTTP door under BASE instead: https://*.example.com
                          puts the token in place of '*' (wildcard DNS); otherwise BASE/p/<token>/

Flags of stop:
  --timeout D             wait this long for a graceful stop before killing (default 30s)

Flags of bootstrap:
  --template NAME         build only this template (repeatable; default: all)
  --rebuild               run the setups again even when their snapshot is already built
`)
}
