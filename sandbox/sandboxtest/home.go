package sandboxtest

import (
	"path"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testHomeFiles: Capabilities.HomeDir is the commands' $HOME; files written there by absolute
// path are read, listed (by absolute path), seen by commands, kept by a snapshot and isolated
// between forks; they never land in /workspace; a symlink in the home that points out of it
// (elsewhere or into /workspace), or one in /workspace that points into the home, fails with
// ErrPathEscape; neither root can be removed.
func (s *suite) testHomeFiles(t *testing.T) {
	p := s.provider(t)
	home := p.Capabilities().HomeDir
	if home == "" || home == "/" || !path.IsAbs(home) || path.Clean(home) != home {
		t.Fatalf("Capabilities().HomeDir = %q, want a clean absolute directory", home)
	}
	sb := start(t, p, "")
	if got := mustRun(t, sb, `printf %s "$HOME"`); got != home {
		t.Errorf("$HOME of commands = %q, but Capabilities().HomeDir = %q", got, home)
	}
	// A directory of our own: a real VM's home holds dot files of its image.
	dir := home + "/.sbt-home"
	write(t, sb, file(dir+"/a.txt", "a\n"), file(dir+"/d/b.txt", "b\n"), file("ws.txt", "w\n"))
	for _, name := range []string{dir + "/a.txt", home + "//.sbt-home/./a.txt", dir + "/d/../a.txt"} {
		if got := readAll(t, sb, name); string(got) != "a\n" {
			t.Errorf("ReadFile(%q) = %q, want \"a\\n\"", name, got)
		}
	}
	if got := mustRun(t, sb, `cat ~/.sbt-home/a.txt ~/.sbt-home/d/b.txt`); got != "a\nb\n" {
		t.Errorf("cat of the home files written by WriteFiles = %q, want \"a\\nb\\n\"", got)
	}
	wantPaths(t, "ListFiles("+dir+", 2)", list(t, sb, dir, 2), dir+"/a.txt", dir+"/d", dir+"/d/b.txt")
	if e, ok := list(t, sb, home, 1)[dir]; !ok || e.Type != "dir" {
		t.Errorf("ListFiles(%q, 1) lists %q as %+v (present: %v), want a dir", home, dir, e, ok)
	}
	checkTree(t, sb, tree{"ws.txt": "file:w\n"}) // nothing of the home in /workspace

	t.Run("symlinks never leave the root", func(t *testing.T) {
		sb := start(t, p, "")
		mustRun(t, sb, `set -e; mkdir -p ~/.sbt-home; echo in > ~/.sbt-home/f.txt
ln -s /etc ~/.sbt-home/etclink; ln -s /workspace ~/.sbt-home/wslink; ln -s ../.. ~/.sbt-home/up
ln -s f.txt ~/.sbt-home/inlink; ln -s "$HOME" /workspace/homelink`)
		for _, name := range []string{dir + "/etclink/passwd", dir + "/up/etc/passwd", dir + "/wslink/x", "homelink/.sbt-home/f.txt", home + "/../../etc/passwd"} {
			_, err := sb.ReadFile(opCtx(t), name, 0, 0)
			wantErr(t, "ReadFile("+name+")", err, sandbox.ErrPathEscape)
		}
		for _, name := range []string{dir + "/etclink/sbt-x", dir + "/wslink/sbt-x", "homelink/sbt-x", home + "/../sbt-x"} {
			err := sb.WriteFiles(opCtx(t), []sandbox.File{file(name, "escaped\n")})
			wantErr(t, "WriteFiles("+name+")", err, sandbox.ErrPathEscape)
		}
		for _, name := range []string{dir + "/etclink", dir + "/wslink", "homelink"} {
			_, err := sb.ListFiles(opCtx(t), name, 1)
			wantErr(t, "ListFiles("+name+")", err, sandbox.ErrPathEscape)
		}
		for _, name := range []string{dir + "/etclink/passwd", dir + "/wslink/homelink", "homelink/.sbt-home/f.txt"} {
			err := sb.ChangeFiles(opCtx(t), sandbox.FileChanges{Remove: []string{name}, Recursive: true})
			wantErr(t, "ChangeFiles(remove "+name+")", err, sandbox.ErrPathEscape)
		}
		if got := readAll(t, sb, dir+"/inlink"); string(got) != "in\n" {
			t.Errorf("ReadFile through a symlink inside the home = %q, want \"in\\n\"", got)
		}
		if out := mustRun(t, sb, `for f in /etc/sbt-x /workspace/sbt-x /workspace/homelink/sbt-x; do if [ -e "$f" ]; then echo "$f exists"; fi; done; cat ~/.sbt-home/f.txt`); out != "in\n" {
			t.Errorf("after the escape attempts: %q, want only \"in\\n\" (nothing written or removed)", out)
		}
		for _, root := range []string{home, home + "/", sandbox.WorkspaceDir, ".", ""} {
			err := sb.ChangeFiles(opCtx(t), sandbox.FileChanges{Remove: []string{root}, Recursive: true})
			wantErr(t, "ChangeFiles(remove "+root+")", err, sandbox.ErrInvalid)
		}
	})

	s1 := snapshot(t, sb)
	a, b := start(t, p, s1), start(t, p, s1)
	write(t, a, file(dir+"/a.txt", "changed in a\n"), file(dir+"/new.txt", "new\n"))
	if got := readAll(t, a, dir+"/a.txt"); string(got) != "changed in a\n" {
		t.Errorf("ReadFile(%q) after rewriting it = %q", dir+"/a.txt", got)
	}
	if got := readAll(t, b, dir+"/a.txt"); string(got) != "a\n" {
		t.Errorf("ReadFile(%q) in a fork of the snapshot = %q, want \"a\\n\" (the other fork's write leaked)", dir+"/a.txt", got)
	}
	_, err := b.ReadFile(opCtx(t), dir+"/new.txt", 0, 0)
	wantErr(t, "ReadFile of a file only the other fork wrote", err, sandbox.ErrNotFound)
	wantPaths(t, "ListFiles("+dir+", 2) after Snapshot/Start", list(t, b, dir, 2), dir+"/a.txt", dir+"/d", dir+"/d/b.txt")
	if got := readAll(t, start(t, p, snapshot(t, a)), dir+"/new.txt"); string(got) != "new\n" {
		t.Errorf("ReadFile(%q) after the fork's snapshot = %q, want \"new\\n\"", dir+"/new.txt", got)
	}
}

// testRemoveFiles: ChangeFiles removes files, symlinks (not their targets) and, only with
// Recursive, directories, in /workspace and the home, together with writes; a missing path, a
// directory without Recursive, an escaping path or a write inside a removed directory fails and
// changes nothing; the removals survive a snapshot.
func (s *suite) testRemoveFiles(t *testing.T) {
	p := s.provider(t)
	home := p.Capabilities().HomeDir
	hdir := home + "/.sbt-rm"
	sb := start(t, p, "")
	write(t, sb, file("keep.txt", "keep\n"), file("del.txt", "del\n"), file("dir/x.txt", "x\n"),
		file("dir/sub/y.txt", "y\n"), file("tree2/z.txt", "z\n"), file(hdir+"/h.txt", "h\n"), file(hdir+"/k.txt", "k\n"))
	mustRun(t, sb, "ln -s keep.txt link && ln -s tree2 dlink")
	all := tree{
		"keep.txt": "file:keep\n", "del.txt": "file:del\n", "dir": "dir", "dir/x.txt": "file:x\n",
		"dir/sub": "dir", "dir/sub/y.txt": "file:y\n", "tree2": "dir", "tree2/z.txt": "file:z\n",
		"link": "link:keep.txt", "dlink": "link:tree2",
	}
	s0 := snapshot(t, sb)

	sb = start(t, p, s0)
	refused := []struct {
		what string
		c    sandbox.FileChanges
		want error
	}{
		{"a directory without Recursive", sandbox.FileChanges{Remove: []string{"del.txt", "dir"}}, sandbox.ErrInvalid},
		{"a missing path", sandbox.FileChanges{Remove: []string{"del.txt", "missing.txt"}, Recursive: true}, sandbox.ErrNotFound},
		{"a missing home path", sandbox.FileChanges{Remove: []string{hdir + "/h.txt", hdir + "/nope"}}, sandbox.ErrNotFound},
		{"an escaping path among good ones", sandbox.FileChanges{Write: []sandbox.File{file("new.txt", "n")}, Remove: []string{"del.txt", "../sbt-escape"}}, sandbox.ErrPathEscape},
		{"a bad write among removals", sandbox.FileChanges{Write: []sandbox.File{file("ok.txt", "n"), file("/etc/sbt-x", "n")}, Remove: []string{"del.txt"}}, sandbox.ErrPathEscape},
		{"a write inside a removed directory", sandbox.FileChanges{Write: []sandbox.File{file("dir/new.txt", "n")}, Remove: []string{"dir"}, Recursive: true}, sandbox.ErrInvalid},
		{"a write of a removed path", sandbox.FileChanges{Write: []sandbox.File{file("del.txt", "n")}, Remove: []string{"del.txt"}}, sandbox.ErrInvalid},
	}
	for _, r := range refused {
		err := sb.ChangeFiles(opCtx(t), r.c)
		wantErr(t, "ChangeFiles with "+r.what, err, r.want)
	}
	checkTree(t, sb, all) // nothing of the refused calls was applied
	if got := mustRun(t, sb, "cat ~/.sbt-rm/h.txt ~/.sbt-rm/k.txt"); got != "h\nk\n" {
		t.Errorf("home files after the refused calls = %q, want \"h\\nk\\n\"", got)
	}

	err := sb.ChangeFiles(opCtx(t), sandbox.FileChanges{
		Write:  []sandbox.File{file("new.txt", "new\n")},
		Remove: []string{"del.txt", "link", "dlink", "/workspace/dir", "dir/sub", hdir + "/h.txt"}, Recursive: true,
	})
	if err != nil {
		t.Fatalf("ChangeFiles(write new.txt, remove del.txt link dlink dir dir/sub ~/h.txt): %v", err)
	}
	after := tree{"keep.txt": "file:keep\n", "new.txt": "file:new\n", "tree2": "dir", "tree2/z.txt": "file:z\n"}
	checkTree(t, sb, after) // the links are gone, their targets are not
	// A symlink to a directory is a link: removed without Recursive.
	mustRun(t, sb, "ln -s tree2 dlink2")
	if err := sb.ChangeFiles(opCtx(t), sandbox.FileChanges{Remove: []string{"dlink2"}}); err != nil {
		t.Errorf("ChangeFiles(remove a symlink to a directory, not recursive): %v", err)
	}

	sb2 := start(t, p, snapshot(t, sb))
	checkTree(t, sb2, after)
	_, err = sb2.ReadFile(opCtx(t), hdir+"/h.txt", 0, 0)
	wantErr(t, "ReadFile of a removed home file after Snapshot/Start", err, sandbox.ErrNotFound)
	if got := readAll(t, sb2, hdir+"/k.txt"); string(got) != "k\n" {
		t.Errorf("ReadFile of the home file kept = %q, want \"k\\n\"", got)
	}
	checkTree(t, start(t, p, s0), all) // the older snapshot is unchanged
}
