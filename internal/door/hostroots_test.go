package door_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/internal/door"
)

// TestCleanHostRoots: roots become absolute and clean, repeats go, the order stays; a file, a
// missing path or an empty one is refused, naming it.
func TestCleanHostRoots(t *testing.T) {
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
	for _, c := range []struct {
		roots []string
		want  []string
		err   string
	}{
		{nil, nil, ""},
		{[]string{"."}, []string{dir}, ""},
		{[]string{"sub"}, []string{sub}, ""},
		{[]string{sub, sub + "/", "./sub"}, []string{sub}, ""},
		{[]string{"sub/.."}, []string{dir}, ""},
		{[]string{"link"}, []string{filepath.Join(dir, "link")}, ""},
		{[]string{dir, "sub"}, []string{dir, sub}, ""},
		{[]string{"file"}, nil, `host root "file" is not a directory`},
		{[]string{"missing"}, nil, `host root "missing": stat ` + filepath.Join(dir, "missing") + ": no such file or directory"},
		{[]string{sub, "missing"}, nil, `host root "missing"`},
		{[]string{""}, []string{dir}, ""},
	} {
		got, err := door.CleanHostRoots(c.roots)
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: %q, %v; want an error starting %q", c.roots, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.roots, got, err, c.want)
		}
	}
}
