package main

import (
	"runtime/debug"
	"strings"
)

// version says which build runs, everywhere it is shown: `sandkit-mcp version`, the MCP
// serverInfo, /healthz, the daemon's pidfile (a door compares it with its own), doctor, the
// Vercel User-Agent. It is one token, read from the build info the go command records:
//
//	go install …/cmd/sandkit-mcp@v1.2.3          v1.2.3
//	go build in a git checkout (Go ≥ 1.24)       v0.0.0-20261204185203-11245bcabcde, +dirty when modified
//	a tagged checkout                            v1.2.3+11245bcabcde (.dirty when modified)
//	no module version, a git revision            devel+11245bcabcde
//	neither (-buildvcs=false, outside git)       devel
var version = buildVersion(debug.ReadBuildInfo())

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
