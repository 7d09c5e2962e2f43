//go:build !linux

package agent

import (
	"fmt"
	"runtime"
)

// errNotHere is why the agent refuses to run: it is PID 1 of a Linux sandbox (bubblewrap
// namespaces), and nowhere else could it keep the commands it runs from reaching it.
var errNotHere = fmt.Errorf("the sandbox agent runs only inside a Linux sandbox, not on %s", runtime.GOOS)

func protectSelf() {}

func closeInherited() {}
