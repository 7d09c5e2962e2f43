package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenBeneath: both ways of opening beneath a root refuse ".." and symlinks out of it; the
// kernel's (openat2) follows links that stay inside, the portable walk refuses every link.
func TestOpenBeneath(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "in", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "in", "sub", "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"out": outside, "inside": "in", "abs-out": "/etc"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := openRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	type opener func(*os.File, string, int, uint32) (*os.File, error)
	for _, o := range []struct {
		name         string
		open         opener
		insideLinkOK bool
	}{{"openBeneath", openBeneath, true}, {"walkBeneath", walkBeneath, false}} {
		for _, c := range []struct {
			path string
			ok   bool
		}{
			{"in/sub/f", true}, {".", true}, {"in/../in/sub/f", true},
			{"../x", false}, {"in/../../x", false}, {"out/x", false}, {"out", false}, {"abs-out/passwd", false},
			{"inside/sub/f", o.insideLinkOK},
		} {
			f, err := o.open(dir, c.path, os.O_RDONLY, 0)
			if f != nil {
				f.Close()
			}
			if (err == nil) != c.ok {
				t.Errorf("%s(%q): %v, want ok=%v", o.name, c.path, err, c.ok)
			}
			if err != nil && !c.ok && c.path != "inside/sub/f" && !errors.Is(err, errHostEscape) {
				t.Errorf("%s(%q): %v, want an escape", o.name, c.path, err)
			}
		}
	}
}
