package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/store"
)

// doctor checks what the embedded local provider and the data dir need and says how to fix what
// is missing. It exits non-zero when something required fails.
func doctor(ctx context.Context, args []string) error {
	cfg, _, err := parseConfig("doctor", args)
	if err != nil {
		return err
	}
	checks := local.Diagnose(cfg.bwrap)
	checks = append(checks, dataDirCheck(cfg.dataDir))
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
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Timeout: 500 * time.Millisecond})
	switch {
	case errors.Is(err, store.ErrLocked):
		c.OK = true
		c.Detail = fmt.Sprintf("%s is in use by a running sandkit-mcp server (fine; a second server on it would be refused)", dir)
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
