package local

import "github.com/sandkit/sandkit-mcp/sandbox"

// Check is one line of the doctor report (sandbox.Check).
type Check = sandbox.Check
