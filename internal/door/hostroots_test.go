package door_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

// TestCleanHostRootsAsEngine: the door resolves --host-root exactly as the engine resolves the
// daemon's roots (the door cannot import the engine): same roots, same errors.
func TestCleanHostRootsAsEngine(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	file := filepath.Join(dir, "file")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sub, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, roots := range [][]string{
		nil, {"."}, {"sub"}, {sub, sub + "/", "./sub"}, {"sub/.."}, {"link"}, {dir, "sub"},
		{"file"}, {"missing"}, {sub, "missing"}, {""},
	} {
		want, wantErr := engine.CleanHostRoots(roots)
		got, err := door.CleanHostRoots(roots)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !slices.Equal(got, want) {
			t.Errorf("%q: door %q, %v; engine %q, %v", roots, got, err, want, wantErr)
		}
	}
}
