package engine

import (
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Limits on agent input that the tools layer describes (it reads them from here, so schema texts
// and errors say the values in force).
const (
	// MinSessionTimeout is the shortest session lifetime.
	MinSessionTimeout = time.Second
	// MaxWait bounds how long get_run and session_logs may wait.
	MaxWait = 10 * time.Minute
	// DefaultHistoryLimit and MaxHistoryLimit bound workspace_history.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
	// MaxExposedPorts bounds a workspace's exposed_ports.
	MaxExposedPorts = 16
	// MaxLabels bounds a workspace's labels.
	MaxLabels = 32
	// MaxProcessLog is the least output a live session keeps per background process.
	MaxProcessLog = sandbox.MaxProcessLog
)
