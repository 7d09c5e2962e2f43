package main

import (
	"testing"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// TestProviderNamesAsDoor: the config file's "provider" (checkProviderName) and the shared
// --provider flag (door.CheckProviderName) accept the same names, with the same message.
func TestProviderNamesAsDoor(t *testing.T) {
	for _, name := range []string{"local", "vercel", "", "Local", "docker", "vercel "} {
		a, b := checkProviderName(name), door.CheckProviderName(name)
		if (a == nil) != (b == nil) || a != nil && a.Error() != b.Error() {
			t.Errorf("provider %q: the config says %v, --provider says %v", name, a, b)
		}
	}
}
