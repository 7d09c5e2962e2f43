// Package buildinfo names the build that runs, the same in both binaries of one build: the thin
// front (cmd/sandkit-mcp) and the full server (cmd/sandkit-mcpd). It imports nothing but the
// standard library's runtime/debug, so the front's start stays fast.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version says which build runs, everywhere it is shown: `sandkit-mcp version`, the MCP
// serverInfo, /healthz, the daemon's pidfile (a door compares it with its own), doctor, the
// Vercel User-Agent. It is one token, read from the build info the go command records for the
// module, so sandkit-mcp and sandkit-mcpd of one build say the same:
//
//	go install …/cmd/sandkit-mcp@v1.2.3          v1.2.3
//	go build in a git checkout (Go ≥ 1.24)       v0.0.0-20261204185203-11245bcabcde, +dirty when modified
//	a tagged checkout                            v1.2.3+11245bcabcde (.dirty when modified)
//	no module version, a git revision            devel+11245bcabcde
//	neither (-buildvcs=false, outside git)       devel
var Version = buildVersion(debug.ReadBuildInfo())

// buildVersion is the module version, with the VCS revision (12 digits) and whether the tree
// was modified added as semver build metadata when the module version does not say them.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	rev = rev[:min(12, len(rev))]
	if strings.Contains(v, rev) {
		return v // a pseudo-version: the revision, and +dirty when modified, are in it
	}
	meta := rev
	if modified && !strings.HasSuffix(v, "+dirty") {
		meta += ".dirty"
	}
	if i := strings.IndexByte(v, '+'); i >= 0 {
		return v[:i+1] + meta + "." + v[i+1:]
	}
	return v + "+" + meta
}

// InstallVersion is the version to name in `go install …@V` for another binary of this build:
// the module version when this binary was installed at one, else "latest" (a build from a
// checkout, whose version no module proxy has).
func InstallVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "latest"
	}
	return installVersion(info.Main.Version)
}

func installVersion(v string) string {
	if v == "" || v == "(devel)" || strings.Contains(v, "+") {
		return "latest"
	}
	return v
}
