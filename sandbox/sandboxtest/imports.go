package sandboxtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testImport: Import makes a snapshot whose /workspace holds exactly the entries (files with
// their content and permission bits, directories, symlinks, missing parents created), owned by
// the sandbox user (it can change them), with an empty home; the entries are reported as added
// when the provider tells changes; an empty source is the empty state; an invalid path or a
// file below a symlink is refused.
func (s *suite) testImport(t *testing.T) {
	p := s.provider(t)
	host := t.TempDir()
	big := randomBytes(300<<10, 7)
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "src/deep/main.go": []byte("package main\n"), "bin/run": []byte("#!/bin/sh\necho ran\n"), "big.bin": big}
	for name, data := range files {
		full := filepath.Join(host, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open := func(p string) (*os.File, error) { return os.Open(filepath.Join(host, filepath.FromSlash(p))) }
	src := sandbox.ImportSource{Open: open, Entries: []sandbox.ImportEntry{
		{Path: "a.txt", Mode: 0o644, Size: 6},
		{Path: "bin", Mode: fs.ModeDir | 0o755},
		{Path: "bin/run", Mode: 0o755, Size: int64(len(files["bin/run"]))},
		{Path: "big.bin", Mode: 0o600, Size: int64(len(big))},
		{Path: "empty", Mode: fs.ModeDir | 0o750},
		{Path: "link", Mode: fs.ModeSymlink | 0o777, Target: "a.txt"},
		{Path: "src/deep/main.go", Mode: 0o644, Size: 13},
	}}
	info, err := p.Import(opCtx(t), src)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if info.Ref == "" {
		t.Fatalf("Import made no snapshot: %+v", info)
	}
	if p.Capabilities().Changes {
		checkChanges(t, "Import", info.Changes)
		got := strings.Join(changeList(info.Changes), "\n")
		for _, want := range []string{"added file a.txt", "added file big.bin", "added file bin/run", "added dir empty", "added symlink link", "added file src/deep/main.go"} {
			if !strings.Contains(got, want) {
				t.Errorf("Import changes lack %q:\n%s", want, got)
			}
		}
	}
	sb := start(t, p, info.Ref)
	out := mustRun(t, sb, `set -e
cat a.txt; cat link; ./bin/run; cat src/deep/main.go; stat -c '%a %n' bin/run big.bin empty; readlink link
echo more >> a.txt; rm big.bin; ls -A "$HOME" | wc -l`)
	want := "alpha\nalpha\nran\npackage main\n755 bin/run\n600 big.bin\n750 empty\na.txt\n0\n"
	if out != want {
		t.Errorf("the imported workspace reads\n%s\nwant\n%s", out, want)
	}
	if got := readAll(t, start(t, p, info.Ref), "big.bin"); string(got) != string(big) {
		t.Errorf("big.bin: %d bytes differ from the %d imported", len(got), len(big))
	}
	_ = sb.Stop(opCtx(t))

	empty, err := p.Import(opCtx(t), sandbox.ImportSource{Open: open})
	if err != nil || empty.Ref != "" {
		t.Errorf("Import of nothing = %+v, %v; want the empty state", empty, err)
	}
	for _, bad := range []sandbox.ImportEntry{{Path: "../x", Mode: 0o644}, {Path: "/etc/x", Mode: 0o644}, {Path: "a/./b", Mode: 0o644}} {
		_, err := p.Import(opCtx(t), sandbox.ImportSource{Open: open, Entries: []sandbox.ImportEntry{bad}})
		wantErr(t, "Import "+bad.Path, err, sandbox.ErrInvalid)
	}
	_, err = p.Import(opCtx(t), sandbox.ImportSource{Open: open, Entries: []sandbox.ImportEntry{
		{Path: "l", Mode: fs.ModeSymlink | 0o777, Target: "/tmp"},
		{Path: "l/a.txt", Mode: 0o644, Size: 6},
	}})
	if err == nil {
		t.Errorf("Import of a file below a symlink succeeded")
	}
}
