package door

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

// Config holds the flags every subcommand of sandkit-mcp shares (the stdio door's are these and
// --host-root). A daemon the door starts gets them again (DaemonArgs).
type Config struct {
	DataDir  string
	Bwrap    string
	LogLevel string
	// MemoryLimit (bytes) and PidsLimit bound each sandbox where cgroups allow; 0 = no limit.
	MemoryLimit int64
	PidsLimit   int64
	// WarmSandboxes is how many sandboxes the local provider keeps started ahead for the next
	// run (--warm-sandboxes; 0 = none).
	WarmSandboxes int
	// MemoryFlag is --memory-limit as given, passed on to a daemon the stdio door starts.
	MemoryFlag string
	// DiskReserve (bytes) is the free space under the data dir below which runs are refused
	// and stopped (engine.Options.DiskReserve); 0 = off. ReserveFlag is --disk-reserve as given.
	DiskReserve int64
	ReserveFlag string
	// ConfigFile is --config as an absolute path ("" when not given: then
	// <data-dir>/config.json is read if it exists; see cmd/sandkit-mcpd/opconfig.go).
	ConfigFile string
	// Provider is --provider, else $SANDKIT_PROVIDER ("" when neither: the config file's
	// "provider", else local).
	Provider string
}

// UsageError is a mistake on the command line: the command exits 2 with its message.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ParseFlags parses the flags every subcommand shares, plus those extra registers (a
// subcommand's own flags). name is the subcommand ("" for the stdio door).
func ParseFlags(name string, args []string, extra ...func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	var c Config
	fs := flag.NewFlagSet("sandkit-mcp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.DataDir, "data-dir", "", "state directory")
	fs.StringVar(&c.Bwrap, "bwrap", "", "bubblewrap binary")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level")
	fs.StringVar(&c.ConfigFile, "config", "", "operator config file (JSON)")
	fs.StringVar(&c.Provider, "provider", "", "sandbox provider: local or vercel")
	var mem string
	fs.StringVar(&mem, "memory-limit", "auto", "memory limit per sandbox")
	var reserve string
	fs.StringVar(&reserve, "disk-reserve", "1G", "free space kept under the data dir")
	fs.Int64Var(&c.PidsLimit, "pids-limit", 4096, "process limit per sandbox")
	fs.IntVar(&c.WarmSandboxes, "warm-sandboxes", 2, "sandboxes kept started ahead")
	for _, f := range extra {
		f(fs)
	}
	// Errors name the subcommand (none for the stdio door); main adds "sandkit-mcp: ".
	where, help := "", "sandkit-mcp --help"
	if name != "" {
		where, help = name+": ", "sandkit-mcp "+name+" --help"
	}
	if err := fs.Parse(args); err != nil {
		return c, fs, UsageError{fmt.Errorf("%s%v (see %s)", where, err, help)}
	}
	var err error
	c.MemoryFlag, c.ReserveFlag = mem, reserve
	if mem == "auto" {
		c.MemoryLimit = DefaultMemoryLimit()
	} else if c.MemoryLimit, err = ParseSize(mem); err != nil {
		return c, fs, UsageError{fmt.Errorf("--memory-limit %q: %v (use e.g. 2G, 512M, auto, or 0 for none)", mem, err)}
	}
	if c.DiskReserve, err = ParseSize(reserve); err != nil {
		return c, fs, UsageError{fmt.Errorf("--disk-reserve %q: %v (use e.g. 1G, 500M, or 0 for none)", reserve, err)}
	}
	if c.PidsLimit < 0 {
		return c, fs, UsageError{fmt.Errorf("--pids-limit must be 0 (none) or more")}
	}
	if c.WarmSandboxes < 0 || c.WarmSandboxes > 64 {
		return c, fs, UsageError{fmt.Errorf("--warm-sandboxes must be 0 (none) to 64")}
	}
	if fs.NArg() > 0 {
		return c, fs, UsageError{fmt.Errorf("%sunexpected argument %q (see %s)", where, fs.Arg(0), help)}
	}
	if c.Provider == "" {
		c.Provider = os.Getenv("SANDKIT_PROVIDER")
	}
	if c.Provider != "" {
		if err := CheckProviderName(c.Provider); err != nil {
			return c, fs, UsageError{fmt.Errorf("--provider: %v", err)}
		}
	}
	if c.DataDir == "" {
		c.DataDir = os.Getenv("SANDKIT_DATA_DIR")
	}
	if c.DataDir == "" {
		d, err := DefaultDataDir()
		if err != nil {
			return c, fs, err
		}
		c.DataDir = d
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return c, fs, fmt.Errorf("data dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.ConfigFile != "" {
		if c.ConfigFile, err = filepath.Abs(c.ConfigFile); err != nil {
			return c, fs, fmt.Errorf("--config %q: %w", c.ConfigFile, err)
		}
	}
	return c, fs, nil
}

// DefaultDataDir is $XDG_DATA_HOME/sandkit, i.e. ~/.local/share/sandkit.
func DefaultDataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "sandkit"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home directory for the default data dir (%v); pass --data-dir or set SANDKIT_DATA_DIR", err)
	}
	return filepath.Join(home, ".local", "share", "sandkit"), nil
}

// NewLogger logs to stderr: tint for a terminal, JSON otherwise. Never stdout: on the stdio door
// stdout carries the MCP stream.
func NewLogger(level string) (*slog.Logger, error) {
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
		return nil, UsageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", level)}
	}
	if isTerminal(os.Stderr) {
		return slog.New(tint.NewTextHandler(os.Stderr, &tint.Options{Level: lv})), nil
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

// ParseSize reads a byte size such as "512M", "2G", "1048576" or "0".
func ParseSize(s string) (int64, error) {
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

// DefaultMemoryLimit is --memory-limit auto: half the machine's memory, at most 8 GiB, so that
// one sandbox cannot make the kernel kill the daemon or the user's programs; 0 (none) where the
// machine's memory cannot be read.
func DefaultMemoryLimit() int64 {
	total := totalMemory()
	if total <= 0 {
		return 0
	}
	return min(total/2, maxDefaultMemory)
}

// CheckProviderName accepts the providers sandkit-mcp has.
func CheckProviderName(name string) error {
	switch name {
	case "local", "vercel":
		return nil
	}
	return fmt.Errorf("unknown provider %q; use \"local\" (bubblewrap on this machine) or \"vercel\" (Vercel Sandbox)", name)
}

// StringList is a repeatable flag; each value may also hold several, comma-separated.
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

func (l *StringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// IsHelpFlag reports whether arg asks for the usage, as the flag package reads it: -h, -help,
// --h or --help, on any subcommand (a flag's value that is literally one of them asks too).
func IsHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}
