package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

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
  fork_workspace copies a workspace at any commit, instantly.`

// runtime is the engine with everything it owns, for one data dir.
type runtime struct {
	store  *store.Store
	prov   *local.Provider
	engine *engine.Engine
	log    *slog.Logger
}

// openRuntime opens the data dir: its state file, the local provider and the engine. A second
// process on the same data dir gets a clear error (the shared daemon comes with sessions).
func openRuntime(ctx context.Context, cfg config, logger *slog.Logger) (*runtime, error) {
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w (pass --data-dir or set SANDKIT_DATA_DIR to a writable directory)", cfg.dataDir, err)
	}
	st, err := store.Open(filepath.Join(cfg.dataDir, "state.db"), store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w\nanother sandkit-mcp process is serving data dir %s; stop it, or give this one its own --data-dir (one server per data dir until the shared daemon lands)", err, cfg.dataDir)
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
	eng, err := engine.Open(ctx, engine.Options{Store: st, Provider: prov, Logger: logger})
	if err != nil {
		prov.Close()
		st.Close()
		return nil, err
	}
	return &runtime{store: st, prov: prov, engine: eng, log: logger}, nil
}

func (r *runtime) Close() error {
	err := r.engine.Close()
	err = errors.Join(err, r.prov.Close())
	return errors.Join(err, r.store.Close())
}

// newMCPServer builds the MCP server with every tool registered.
func newMCPServer(eng *engine.Engine, logger *slog.Logger) *server.MCPServer {
	s := server.NewMCPServer("sandkit-mcp", version,
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(instructions),
	)
	tools.Register(s, eng, tools.Options{Logger: logger})
	prompts.Register(s)
	return s
}

// serveStdio serves MCP on stdin/stdout until the client closes stdin or a signal arrives.
func serveStdio(ctx context.Context, args []string) error {
	cfg, _, err := parseConfig("sandkit-mcp", args)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	logger.Info("serving MCP on stdio", "data_dir", cfg.dataDir, "version", version)
	srv := server.NewStdioServer(newMCPServer(rt.engine, logger))
	srv.SetErrorLogger(log.New(os.Stderr, "mcp: ", log.LstdFlags))
	server.WithWorkerPoolSize(32)(srv)
	err = srv.Listen(ctx, os.Stdin, os.Stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
