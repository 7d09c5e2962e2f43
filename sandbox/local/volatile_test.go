//go:build linux

package local

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// TestOverlayVolatile: the workspace and home overlays are mounted volatile (from Linux 5.10),
// so tearing a sandbox down never syncs the host file system (see helper.Main); on an older
// kernel they are mounted without it.
func TestOverlayVolatile(t *testing.T) {
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	lines := shOK(t, sb, `grep -E ' (/workspace|/home/[^ ]+) ' /proc/self/mountinfo`)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	major, rest, _ := strings.Cut(release, ".")
	minorS, _, _ := strings.Cut(rest, ".")
	maj, _ := strconv.Atoi(major)
	minor, _ := strconv.Atoi(minorS)
	supported := maj > 5 || maj == 5 && minor >= 10
	n := 0
	for _, l := range strings.Split(lines, "\n") {
		if !strings.Contains(l, " overlay ") {
			continue
		}
		n++
		if got := strings.Contains(l, "volatile"); got != supported {
			t.Errorf("kernel %s: overlay mounted with volatile=%v, want %v: %s", release, got, supported, l)
		}
	}
	if n != 2 {
		t.Fatalf("found %d overlay mounts for /workspace and the home directory, want 2:\n%s", n, lines)
	}
}
