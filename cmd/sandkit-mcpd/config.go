package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lmittmann/tint"
)

// config holds the flags shared by every subcommand.
type config struct {
	dataDir  string
	bwrap    string
	logLevel string
	// memoryLimit (bytes) and pidsLimit bound each sandbox where cgroups allow; 0 = no limit.
	memoryLimit int64
	pidsLimit   int64
	// memoryFlag is --memory-limit as given, passed on to a daemon the stdio door starts.
	memoryFlag string
	// diskReserve (bytes) is the free space under the data dir below which runs are refused
	// and stopped (engine.Options.DiskReserve); 0 = off. reserveFlag is --disk-reserve as given.
	diskReserve int64
	reserveFlag string
	// configFile is --config as an absolute path ("" when not given: then
	// <data-dir>/config.json is read if it exists; see opconfig.go).
	configFile string
	// provider is --provider, else $SANDKIT_PROVIDER ("" when neither: the config file's
	// "provider", else local).
	provider string
}

// parseConfig parses the flags every subcommand shares, plus those extra registers (a
// subcommand's own flags). name is the subcommand ("" for the stdio door).
func parseConfig(name string, args []string, extra ...func(*flag.FlagSet)) (config, *flag.FlagSet, error) {
	var c config
	fs := flag.NewFlagSet("sandkit-mcp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.dataDir, "data-dir", "", "state directory")
	fs.StringVar(&c.bwrap, "bwrap", "", "bubblewrap binary")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level")
	fs.StringVar(&c.configFile, "config", "", "operator config file (JSON)")
	fs.StringVar(&c.provider, "provider", "", "sandbox provider: local or vercel")
	var mem string
	fs.StringVar(&mem, "memory-limit", "auto", "memory limit per sandbox")
	var reserve string
	fs.StringVar(&reserve, "disk-reserve", "1G", "free space kept under the data dir")
	fs.Int64Var(&c.pidsLimit, "pids-limit", 4096, "process limit per sandbox")
	for _, f := range extra {
		f(fs)
	}
	// Errors name the subcommand (none for the stdio door); main adds "sandkit-mcp: ".
	where, help := "", "sandkit-mcp --help"
	if name != "" {
		where, help = name+": ", "sandkit-mcp "+name+" --help"
	}
	if err := fs.Parse(args); err != nil {
		return c, fs, usageError{fmt.Errorf("%s%v (see %s)", where, err, help)}
	}
	var err error
	c.memoryFlag, c.reserveFlag = mem, reserve
	if mem == "auto" {
		c.memoryLimit = defaultMemoryLimit()
	} else if c.memoryLimit, err = parseSize(mem); err != nil {
		return c, fs, usageError{fmt.Errorf("--memory-limit %q: %v (use e.g. 2G, 512M, auto, or 0 for none)", mem, err)}
	}
	if c.diskReserve, err = parseSize(reserve); err != nil {
		return c, fs, usageError{fmt.Errorf("--disk-reserve %q: %v (use e.g. 1G, 500M, or 0 for none)", reserve, err)}
	}
	if c.pidsLimit < 0 {
		return c, fs, usageError{fmt.Errorf("--pids-limit must be 0 (none) or more")}
	}
	if fs.NArg() > 0 {
		return c, fs, usageError{fmt.Errorf("%sunexpected argument %q (see %s)", where, fs.Arg(0), help)}
	}
	if c.provider == "" {
		c.provider = os.Getenv("SANDKIT_PROVIDER")
	}
	if c.provider != "" {
		if err := checkProviderName(c.provider); err != nil {
			return c, fs, usageError{fmt.Errorf("--provider: %v", err)}
		}
	}
	if c.dataDir == "" {
		c.dataDir = os.Getenv("SANDKIT_DATA_DIR")
	}
	if c.dataDir == "" {
		d, err := defaultDataDir()
		if err != nil {
			return c, fs, err
		}
		c.dataDir = d
	}
	abs, err := filepath.Abs(c.dataDir)
	if err != nil {
		return c, fs, fmt.Errorf("data dir %q: %w", c.dataDir, err)
	}
	c.dataDir = abs
	if c.configFile != "" {
		if c.configFile, err = filepath.Abs(c.configFile); err != nil {
			return c, fs, fmt.Errorf("--config %q: %w", c.configFile, err)
		}
	}
	return c, fs, nil
}

// defaultDataDir is $XDG_DATA_HOME/sandkit, i.e. ~/.local/share/sandkit.
func defaultDataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sandkit"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home directory for the default data dir (%v); pass --data-dir or set SANDKIT_DATA_DIR", err)
	}
	return filepath.Join(home, ".local", "share", "sandkit"), nil
}

// newLogger logs to stderr: tint for a terminal, JSON otherwise. Never stdout: on the stdio door
// stdout carries the MCP stream.
func newLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", level)}
	}
	if isTerminal(os.Stderr) {
		return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: lv})), nil
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

// parseSize reads a byte size such as "512M", "2G", "1048576" or "0".
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}

// maxDefaultMemory caps the default memory limit of a sandbox.
const maxDefaultMemory = 8 << 30

// defaultMemoryLimit is --memory-limit auto: half the machine's memory, at most 8 GiB, so that
// one sandbox cannot make the kernel kill the daemon or the user's programs; 0 (none) where the
// machine's memory cannot be read.
func defaultMemoryLimit() int64 {
	total := totalMemory()
	if total <= 0 {
		return 0
	}
	return min(total/2, maxDefaultMemory)
}
