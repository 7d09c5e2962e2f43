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
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
	"github.com/sandkit/sandkit-mcp/tools"
)

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
		Retention: oc.retention,
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
// the connections. hostRoots are the host roots of every connection (internal/door/hostroots.go).
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
	opts := append([]server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(instructions),
		server.WithHooks(hooks),
		server.WithToolHandlerMiddleware(calls.middleware),
	}, tools.ServerOptions(eng)...)
	s := server.NewMCPServer("sandkit-mcp", version, opts...)
	tools.Register(s, eng, tools.Options{Logger: logger, HostRoots: hostRoots})
	prompts.Register(s)
	return s
}
