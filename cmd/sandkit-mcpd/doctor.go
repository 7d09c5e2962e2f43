package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/door"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/store"
)

// doctor checks what the provider (local: bubblewrap, namespaces, overlay; vercel: credentials
// and API access) and the data dir need and says how to fix what is missing. It exits non-zero when something required fails.
func doctor(ctx context.Context, args []string) error {
	cfg, _, err := parseConfig("doctor", args)
	if err != nil {
		return err
	}
	var checks []local.Check
	oc, ocErr := loadOperatorConfig(cfg)
	if ocErr == nil && providerName(cfg, oc) == "vercel" {
		checks = append(checks, local.Check{Name: "provider", OK: true, Detail: "vercel (Vercel Sandbox over its REST API; bubblewrap is not needed)"})
		checks = append(checks, vercelChecks(ctx, cfg, oc)...)
	} else {
		checks = append(checks, local.Check{Name: "provider", OK: true, Detail: "local (bubblewrap on this machine)"})
		checks = append(checks, local.Diagnose(cfg.bwrap)...)
	}
	checks = append(checks, dataDirCheck(cfg.dataDir), spaceCheck(cfg), configCheck(cfg), daemonCheck(cfg.dataDir))
	failed := 0
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Printf("[%s] %s: %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Printf("       fix: %s\n", c.Fix)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	fmt.Println("\nall checks passed: `sandkit-mcp demo` runs the whole story")
	return nil
}

func dataDirCheck(dir string) local.Check {
	c := local.Check{Name: "data dir"}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		c.Detail = fmt.Sprintf("%s cannot be created: %v", dir, err)
		c.Fix = "pass --data-dir or set SANDKIT_DATA_DIR to a writable directory"
		return c
	}
	if _, ok := door.Running(dir); ok {
		c.OK = true
		c.Detail = dir + " is served by a running daemon (its state file is in use, as it should be)"
		return c
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Timeout: 500 * time.Millisecond})
	switch {
	case errors.Is(err, store.ErrLocked):
		c.OK = true
		c.Detail = fmt.Sprintf("%s is in use by another sandkit-mcp process that does not answer on its socket (starting or stopping?)", dir)
	case err != nil:
		c.Detail = fmt.Sprintf("%s: %v", dir, err)
		c.Fix = "move the damaged state.db aside, or use another --data-dir"
	default:
		st.Close()
		c.OK = true
		c.Detail = dir + " is writable and its state file opens"
	}
	return c
}

// spaceCheck reports the free space under the data dir against --disk-reserve, and the memory
// limit sandboxes get.
func spaceCheck(cfg config) local.Check {
	c := local.Check{Name: "disk and memory"}
	mem := "no memory limit per sandbox (--memory-limit 0)"
	if cfg.memoryLimit > 0 {
		mem = fmt.Sprintf("memory limit per sandbox %s (--memory-limit %s)", engine.HumanBytes(cfg.memoryLimit), cfg.memoryFlag)
	}
	free, err := engine.FreeSpaceOf(cfg.dataDir)()
	switch {
	case err != nil:
		c.Detail = fmt.Sprintf("cannot read the free space under %s: %v; %s", cfg.dataDir, err, mem)
		c.Fix = "check that the data dir exists and is readable"
	case cfg.diskReserve > 0 && free < cfg.diskReserve:
		c.Detail = fmt.Sprintf("%s free under %s, below the reserve of %s: runs, writes, imports and new sessions are refused; %s",
			engine.HumanBytes(free), cfg.dataDir, engine.HumanBytes(cfg.diskReserve), mem)
		c.Fix = "free disk space there (sandkit-mcp ls, then delete workspaces you no longer need), or lower --disk-reserve"
	default:
		c.OK = true
		reserve := "no disk reserve (--disk-reserve 0)"
		if cfg.diskReserve > 0 {
			reserve = "reserve " + engine.HumanBytes(cfg.diskReserve)
		}
		c.Detail = fmt.Sprintf("%s free under %s (%s); %s", engine.HumanBytes(free), cfg.dataDir, reserve, mem)
	}
	return c
}

// configCheck reads the operator config as the daemon would.
func configCheck(cfg config) local.Check {
	c := local.Check{Name: "operator config"}
	oc, err := loadOperatorConfig(cfg)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "correct the field the message names (the README's configuration section shows the format), or pass another --config"
		return c
	}
	c.OK = true
	c.Detail = oc.describe()
	if oc.path != "" {
		c.Detail += "; a running daemon read it when it started (`sandkit-mcp stop` to apply changes)"
	}
	return c
}

// daemonCheck says whether a daemon serves the data dir. Either answer is fine: the stdio door
// starts one on demand.
func daemonCheck(dir string) local.Check {
	c := local.Check{Name: "daemon", OK: true}
	info, ok := door.Running(dir)
	switch {
	case !ok:
		c.Detail = "not running for " + dir + " (the stdio door `sandkit-mcp` starts one on demand; `sandkit-mcp serve` runs one in the foreground)"
	case info.PID == 0:
		c.Detail = "a daemon answers on " + info.Socket + ", but its pidfile is missing"
	default:
		c.Detail = fmt.Sprintf("running: pid %d, version %s, up %s, socket %s",
			info.PID, info.Version, time.Since(info.Started).Round(time.Second), info.Socket)
		if info.HTTP != "" {
			c.Detail += ", http " + info.HTTP
		}
		if info.Preview != "" {
			c.Detail += ", previews on " + info.Preview
		}
		if info.IdleExit != "" {
			c.Detail += ", exits after " + info.IdleExit + " idle"
		}
		if info.Version != version {
			c.Detail += fmt.Sprintf(" (this binary is %s: `sandkit-mcp stop` and the next door starts this version)", version)
		}
	}
	return c
}
