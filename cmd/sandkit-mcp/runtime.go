package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/prompts"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
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
  workspace are refused; after a reconnect, attach_session takes your session back.`

// runtime is the engine with everything it owns, for one data dir.
type runtime struct {
	store  *store.Store
	prov   *local.Provider
	engine *engine.Engine
	log    *slog.Logger
}

// runtimeOptions are what openRuntime needs beyond the shared flags.
type runtimeOptions struct {
	// lockWait is how long to wait for another process to release the state file.
	lockWait time.Duration
	// previewURL is engine.Options.PreviewURL.
	previewURL func(token string) string
}

// openRuntime opens the data dir: its state file, the local provider and the engine. The state
// file's lock makes this process the data dir's only owner.
func openRuntime(ctx context.Context, cfg config, opts runtimeOptions, logger *slog.Logger) (*runtime, error) {
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
	prov, err := local.New(local.Options{
		Dir: filepath.Join(cfg.dataDir, "local"), Bwrap: cfg.bwrap, Logger: logger,
		MemoryLimit: cfg.memoryLimit, PidsLimit: cfg.pidsLimit,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("%w\nrun `sandkit-mcp doctor` for a full check", err)
	}
	eng, err := engine.Open(ctx, engine.Options{Store: st, Provider: prov, Logger: logger, PreviewURL: opts.previewURL})
	if err != nil {
		prov.Close()
		st.Close()
		return nil, err
	}
	return &runtime{store: st, prov: prov, engine: eng, log: logger}, nil
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
// the connections.
func newMCPServer(eng *engine.Engine, calls *callTracker, conns *connCounter, logger *slog.Logger) *server.MCPServer {
	hooks := tools.Hooks(eng)
	first := func(_ context.Context, s server.ClientSession) {
		if s != nil {
			calls.cancelSession(s.SessionID(), callDrainTimeout)
		}
	}
	hooks.OnUnregisterSession = append([]server.OnUnregisterSessionHookFunc{first}, hooks.OnUnregisterSession...)
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) { conns.remove(s) })
	hooks.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) { conns.add(s) })
	s := server.NewMCPServer("sandkit-mcp", version,
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(instructions),
		server.WithHooks(hooks),
		server.WithToolHandlerMiddleware(calls.middleware),
	)
	tools.Register(s, eng, tools.Options{Logger: logger})
	prompts.Register(s)
	return s
}
