package door

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sandkit/sandkit-mcp/internal/buildinfo"
)

// FullBinaryName is the executable of the full server (cmd/sandkit-mcpd): the daemon, and every
// subcommand besides the stdio door and version.
const FullBinaryName = "sandkit-mcpd"

// FullBinary finds the full server for the front (cmd/sandkit-mcp): sandkit-mcpd next to this
// executable, symlinks resolved (where `go install` puts both), else on PATH. A candidate that is
// this very executable (a front copied under the server's name) is passed over: handing over to
// it would exec itself forever. The error says what to install, or where to put it.
func FullBinary() (string, error) {
	dir := "the directory of this executable"
	var self os.FileInfo
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		self, _ = os.Stat(exe)
		dir = filepath.Dir(exe)
		next := filepath.Join(dir, FullBinaryName)
		if fi, err := os.Stat(next); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 && !sameFile(fi, self) {
			return next, nil
		}
	}
	if p, err := exec.LookPath(FullBinaryName); err == nil {
		if fi, err := os.Stat(p); err == nil && !sameFile(fi, self) {
			return p, nil
		}
	}
	v := buildinfo.InstallVersion()
	return "", fmt.Errorf("%s, the full sandkit-mcp server, is neither in %s (next to this sandkit-mcp) nor on PATH. "+
		"Install both of one version: `go install github.com/sandkit/sandkit-mcp/cmd/sandkit-mcp@%s github.com/sandkit/sandkit-mcp/cmd/sandkit-mcpd@%s` "+
		"(in a checkout: `go generate ./sandbox/local && go install ./cmd/sandkit-mcp ./cmd/sandkit-mcpd`), or put %s in %s",
		FullBinaryName, dir, v, v, FullBinaryName, dir)
}

func sameFile(a, b os.FileInfo) bool { return a != nil && b != nil && os.SameFile(a, b) }
