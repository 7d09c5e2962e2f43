package buildinfo

import (
	"runtime/debug"
	"testing"
)

// TestBuildVersion: the module version, with the revision and a modified tree added when it
// does not say them, as one word.
func TestBuildVersion(t *testing.T) {
	const rev = "11245bcabcde0123456789abcdef0123456789ab"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		name     string
		main     string
		settings []debug.BuildSetting
		want     string
	}{
		{"go install @version", "v1.2.3", nil, "v1.2.3"},
		{"checkout, pseudo-version", "v0.0.0-20261204185203-11245bcabcde", vcs("false"), "v0.0.0-20261204185203-11245bcabcde"},
		{"checkout, pseudo-version, modified", "v0.0.0-20261204185203-11245bcabcde+dirty", vcs("true"), "v0.0.0-20261204185203-11245bcabcde+dirty"},
		{"tagged checkout", "v1.2.3", vcs("false"), "v1.2.3+11245bcabcde"},
		{"tagged checkout, modified", "v1.2.3+dirty", vcs("true"), "v1.2.3+11245bcabcde.dirty"},
		{"no module version, a revision", "(devel)", vcs("true"), "devel+11245bcabcde.dirty"},
		{"nothing recorded", "(devel)", nil, "devel"},
	} {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/sandkit/sandkit-mcp", Version: c.main}, Settings: c.settings}
		if got := buildVersion(info, true); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if got := buildVersion(nil, false); got != "devel" {
		t.Errorf("without build info: %q", got)
	}
}

// TestInstallVersion: a module version is installable as it is; a checkout's is not.
func TestInstallVersion(t *testing.T) {
	for v, want := range map[string]string{
		"v1.2.3": "v1.2.3", "v0.0.0-20261204185203-11245bcabcde": "v0.0.0-20261204185203-11245bcabcde",
		"v0.0.0-20261204185203-11245bcabcde+dirty": "latest", "(devel)": "latest", "": "latest",
	} {
		if got := installVersion(v); got != want {
			t.Errorf("installVersion(%q) = %q, want %q", v, got, want)
		}
	}
}
