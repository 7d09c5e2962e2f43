package main

import (
	"flag"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// config holds the flags shared by every subcommand: door.Config (internal/door parses them,
// for the stdio door of either binary too), under the names the daemon's code reads.
type config struct {
	dataDir  string
	bwrap    string
	logLevel string
	// memoryLimit (bytes) and pidsLimit bound each sandbox where cgroups allow; 0 = no limit.
	memoryLimit int64
	pidsLimit   int64
	// warmSandboxes is --warm-sandboxes (local.Options.WarmSandboxes; 0 = none).
	warmSandboxes int
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

// parseConfig parses the flags every subcommand shares (door.ParseFlags), plus those extra
// registers (a subcommand's own flags). name is the subcommand ("" for the stdio door).
func parseConfig(name string, args []string, extra ...func(*flag.FlagSet)) (config, *flag.FlagSet, error) {
	c, fs, err := door.ParseFlags(name, args, extra...)
	return configOf(c), fs, err
}

// configOf is c under the daemon's names.
func configOf(c door.Config) config {
	return config{
		dataDir: c.DataDir, bwrap: c.Bwrap, logLevel: c.LogLevel,
		memoryLimit: c.MemoryLimit, pidsLimit: c.PidsLimit, memoryFlag: c.MemoryFlag, warmSandboxes: c.WarmSandboxes,
		diskReserve: c.DiskReserve, reserveFlag: c.ReserveFlag,
		configFile: c.ConfigFile, provider: c.Provider,
	}
}

// door is c as internal/door has it.
func (c config) door() door.Config {
	return door.Config{
		DataDir: c.dataDir, Bwrap: c.bwrap, LogLevel: c.logLevel,
		MemoryLimit: c.memoryLimit, PidsLimit: c.pidsLimit, MemoryFlag: c.memoryFlag, WarmSandboxes: c.warmSandboxes,
		DiskReserve: c.diskReserve, ReserveFlag: c.reserveFlag,
		ConfigFile: c.configFile, Provider: c.provider,
	}
}

// daemonArgs are the arguments of a daemon a door starts for cfg (door.DaemonArgs).
func daemonArgs(cfg config) []string { return door.DaemonArgs(cfg.door()) }
