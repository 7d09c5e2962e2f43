package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/prompts"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
	"github.com/sandkit/sandkit-mcp/tools"
)

// instructions are sent to the client at initialize; they orient a model that has never seen
// this server.
const instructions = `sandkit-mcp gives you durable sandboxed workspaces (Linux, no network unless a policy allows it).
A workspace is a directory (/workspace, plus the sandbox user's home) with a history of commits.
- create_workspace, then run_command: every command runs in a fresh sandbox started from the workspace head,
  and its result (whatever the exit code) is committed as a new head. Commands on one workspace run one at a
  time, in order. Use background=true and get_run for long commands.
- write_files / read_file / list_files work on the head; write_files makes one commit.
- workspace_history lists commits; restore_workspace moves head back to an earlier state (history is kept);
  fork_workspace copies a workspace at any commit, instantly.
- For interactive work (dev servers, previews, many quick steps) open_session gives you a live sandbox that
  only your connection drives: session_exec (background=true for servers), session_url for a browser URL of an
  exposed port, then commit_session (one commit) or discard_session. While it is open, durable tools on that
  workspace are refused; after a reconnect, attach_session takes your session back.
- Network: each workspace has a default egress policy (create_workspace policy, changed with set_policy):
  {"mode": "deny-all"}, {"mode": "allow-all"}, or {"mode": "allow", "services": [{"id": "npm"}], "domains": ["example.com"]}.
  Presets (services by id) bring their hosts and inject their credential from the server's environment, so
  secrets never enter the sandbox. run_command and open_session take a policy for that run or session only;
  only those may carry a literal secret ({"value": …}), which is never stored.`

// serverInstructions are the instructions with what this server's operator configured: the
// default policy, the limit, the presets and the templates.
func serverInstructions(oc operatorConfig, tpls []engine.TemplateStatus) string {
	var b strings.Builder
	b.WriteString(instructions)
	fmt.Fprintf(&b, "\n- On this server: new workspaces default to policy %s", oc.defaultPolicy.String())
	if oc.maxPolicy != nil {
		fmt.Fprintf(&b, "; no policy may go beyond %s (the operator's limit)", oc.maxPolicy.String())
	}
	ids := []string{}
	for _, p := range policies.Presets() {
		ids = append(ids, p.ID)
	}
	fmt.Fprintf(&b, ". Presets: %s.", strings.Join(ids, ", "))
	if len(tpls) == 0 {
		b.WriteString("\n- This server defines no setup templates: workspaces start empty.")
		return b.String()
	}
	b.WriteString("\n- Setup templates (create_workspace template=NAME starts the workspace from the template's prepared state;\n" +
		"  the first use of a template runs its setup, which may take minutes, later ones are instant):")
	for _, t := range tpls {
		fmt.Fprintf(&b, "\n  - %s", t.Name)
		if t.Description != "" {
			fmt.Fprintf(&b, ": %s", t.Description)
		}
		fmt.Fprintf(&b, " (setup: %s)", strings.Join(append([]string{t.Command}, t.Args...), " "))
	}
	return b.String()
}

// runtime is the engine with everything it owns, for one data dir.
type runtime struct {
	store  *store.Store
	prov   sandbox.Provider
	engine *engine.Engine
	log    *slog.Logger
	// opcfg is the operator config the engine was opened with.
	opcfg operatorConfig
}

// runtimeOptions are what openRuntime needs beyond the shared flags.
type runtimeOptions struct {
	// lockWait is how long to wait for another process to release the state file.
	lockWait time.Duration
	// previews is engine.Options.Previews.
	previews engine.PreviewServer
}

// openRuntime opens the data dir: its state file, the local provider and the engine. The state
// file's lock makes this process the data dir's only owner.
func openRuntime(ctx context.Context, cfg config, opts runtimeOptions, logger *slog.Logger) (*runtime, error) {
	oc, err := loadOperatorConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w (pass --data-dir or set SANDKIT_DATA_DIR to a writable directory)", cfg.dataDir, err)
	}
	st, err := store.Open(filepath.Join(cfg.dataDir, "state.db"), store.Options{Timeout: opts.lockWait})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w\nanother sandkit-mcp process holds data dir %s (%s); agents share it through `sandkit-mcp` (the stdio door), or stop it with `sandkit-mcp stop --data-dir %s`",
			err, cfg.dataDir, describeDaemon(cfg.dataDir), cfg.dataDir)
	}
	if err != nil {
		return nil, err
	}
	prov, err := openProvider(cfg, oc, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	eng, err := engine.Open(ctx, engine.Options{
		Store: st, Provider: prov, Logger: logger, Previews: opts.previews,
		DefaultPolicy: oc.defaultPolicy, MaxPolicy: oc.maxPolicy, Templates: oc.templates,
		FreeSpace: engine.FreeSpaceOf(cfg.dataDir), DiskReserve: cfg.diskReserve, DataDir: cfg.dataDir,
	})
	if err != nil {
		prov.Close()
		st.Close()
		return nil, err
	}
	logger.Info("operator config", "summary", oc.describe(), "provider", prov.Name())
	return &runtime{store: st, prov: prov, engine: eng, log: logger, opcfg: oc}, nil
}

// Close stops the engine (in-flight work ends), then the provider, then the store.
func (r *runtime) Close() error {
	err := r.engine.Close()
	err = errors.Join(err, r.prov.Close())
	return errors.Join(err, r.store.Close())
}

// newMCPServer builds the MCP server with every tool and prompt registered. calls tracks the
// tool calls in flight per connection; it cancels them when their connection goes, before the
// engine is told (tools.Hooks) that the connection no longer holds its sessions. conns counts
// the connections. hostRoots are the host roots of every connection (hostroots.go).
func newMCPServer(eng *engine.Engine, instructions string, calls *callTracker, conns *connCounter, hostRoots []string, logger *slog.Logger) *server.MCPServer {
	hooks := tools.Hooks(eng)
	first := func(_ context.Context, s server.ClientSession) {
		if s != nil {
			calls.cancelSession(s.SessionID(), callDrainTimeout)
		}
	}
	hooks.OnUnregisterSession = append([]server.OnUnregisterSessionHookFunc{first}, hooks.OnUnregisterSession...)
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) { conns.remove(s) })
	hooks.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) { conns.add(s) })
	prompts.Hooks(hooks)
	s := server.NewMCPServer("sandkit-mcp", version,
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(instructions),
		server.WithHooks(hooks),
		server.WithToolHandlerMiddleware(calls.middleware),
	)
	tools.Register(s, eng, tools.Options{Logger: logger, HostRoots: hostRoots})
	prompts.Register(s)
	return s
}
