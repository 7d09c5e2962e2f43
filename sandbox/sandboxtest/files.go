package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testFileOperations: WriteFiles/ReadFile/ListFiles with relative and absolute paths, the errors
// for missing files and wrong types, depth limits and the fields of a listed entry.
func (s *suite) testFileOperations(t *testing.T) {
	p := s.provider(t)

	t.Run("relative and absolute paths", func(t *testing.T) {
		sb := start(t, p, "")
		write(t, sb, file("rel/a.txt", "a\n"), file("/workspace/abs/b.txt", "b\n"))
		for path, want := range map[string]string{
			"rel/a.txt": "a\n", "/workspace/rel/a.txt": "a\n", "./rel/a.txt": "a\n",
			"abs/b.txt": "b\n", "/workspace/abs/b.txt": "b\n",
		} {
			if got := readAll(t, sb, path); string(got) != want {
				t.Errorf("ReadFile(%q) = %q, want %q", path, got, want)
			}
		}
		if got := mustRun(t, sb, "cat /workspace/rel/a.txt abs/b.txt"); got != "a\nb\n" {
			t.Errorf("cat of the written files = %q, want \"a\\nb\\n\"", got)
		}
		for _, dir := range []string{"rel", "/workspace/rel", "./rel", "rel/"} {
			wantPaths(t, "ListFiles("+dir+", 1)", list(t, sb, dir, 1), "rel/a.txt")
		}
		for _, dir := range []string{".", "/workspace", "/workspace/", ""} {
			wantPaths(t, "ListFiles("+dir+", 1)", list(t, sb, dir, 1), "rel", "abs")
		}
	})

	t.Run("missing files and wrong types", func(t *testing.T) {
		sb := start(t, p, "")
		write(t, sb, file("dir/f.txt", "f\n"), file("file.txt", "file\n"))
		mustRun(t, sb, "mkfifo fifo")

		_, err := sb.ReadFile(opCtx(t), "missing.txt", 0, 0)
		wantErr(t, "ReadFile(missing.txt)", err, sandbox.ErrNotFound)
		_, err = sb.ReadFile(opCtx(t), "nodir/missing.txt", 0, 0)
		wantErr(t, "ReadFile(nodir/missing.txt)", err, sandbox.ErrNotFound)
		_, err = sb.ListFiles(opCtx(t), "nodir", 1)
		wantErr(t, "ListFiles(nodir)", err, sandbox.ErrNotFound)

		for _, dir := range []string{"dir", "/workspace/dir", ".", "/workspace", ""} {
			_, err := sb.ReadFile(opCtx(t), dir, 0, 0)
			wantErr(t, "ReadFile of directory "+dir, err, sandbox.ErrInvalid)
		}
		for _, path := range []string{"dir", "/workspace", ""} {
			err := sb.WriteFiles(opCtx(t), []sandbox.File{file(path, "x")})
			wantErr(t, "WriteFiles to directory "+path, err, sandbox.ErrInvalid)
		}
		_, err = sb.ListFiles(opCtx(t), "file.txt", 1)
		wantErr(t, "ListFiles of a file", err, sandbox.ErrInvalid)
		_, err = sb.ReadFile(opCtx(t), "bad\x00name", 0, 0)
		wantErr(t, "ReadFile of a path with a NUL byte", err, sandbox.ErrInvalid)
		err = sb.WriteFiles(opCtx(t), []sandbox.File{file("bad\x00name", "x")})
		wantErr(t, "WriteFiles to a path with a NUL byte", err, sandbox.ErrInvalid)

		// A parent that is a file cannot hold a file; the file stays as it was.
		if err := sb.WriteFiles(opCtx(t), []sandbox.File{file("file.txt/x", "x")}); err == nil {
			t.Errorf("WriteFiles(file.txt/x) where file.txt is a file: no error")
		}

		// A FIFO is listed as "other" and reading it fails rather than blocking for a writer.
		if e := list(t, sb, ".", 1)["fifo"]; e.Type != "other" {
			t.Errorf("ListFiles: fifo has type %q, want \"other\"", e.Type)
		}
		_, err = sb.ReadFile(shortCtx(t, 20*time.Second), "fifo", 0, 0)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReadFile(fifo) blocked for 20s; want ErrInvalid at once")
		} else {
			wantErr(t, "ReadFile of a FIFO", err, sandbox.ErrInvalid)
		}

		checkTree(t, sb, tree{"dir": "dir", "dir/f.txt": "file:f\n", "file.txt": "file:file\n", "fifo": "other"})
	})

	t.Run("paths are validated before anything is written", func(t *testing.T) {
		sb := start(t, p, "")
		err := sb.WriteFiles(opCtx(t), []sandbox.File{file("ok1.txt", "1"), file("../sbt-escape", "x"), file("sub/ok2.txt", "2")})
		wantErr(t, "WriteFiles with one escaping path among good ones", err, sandbox.ErrPathEscape)
		checkTree(t, sb, tree{})
	})

	t.Run("list depth", func(t *testing.T) {
		sb := start(t, p, "")
		write(t, sb, file("depth/top.txt", "t"), file("depth/a/a.txt", "a"), file("depth/a/b/c/d.txt", "d"))
		levels := [][]string{
			{"depth/top.txt", "depth/a"},
			{"depth/a/a.txt", "depth/a/b"},
			{"depth/a/b/c"},
			{"depth/a/b/c/d.txt"},
		}
		var want []string
		for i, level := range levels {
			want = append(want, level...)
			wantPaths(t, "ListFiles(depth, "+itoa(int64(i+1))+")", list(t, sb, "depth", i+1), want...)
		}
		wantPaths(t, "ListFiles(depth, 10)", list(t, sb, "depth", 10), want...)
		wantPaths(t, "ListFiles(., 1)", list(t, sb, ".", 1), "depth")
		wantPaths(t, "ListFiles(depth/a/b, 1)", list(t, sb, "depth/a/b", 1), "depth/a/b/c")
		wantPaths(t, "ListFiles(/workspace/depth/a, 2)", list(t, sb, "/workspace/depth/a", 2), "depth/a/a.txt", "depth/a/b", "depth/a/b/c")
	})

	t.Run("entry fields", func(t *testing.T) {
		sb := start(t, p, "")
		before := time.Now()
		write(t, sb, sandbox.File{Path: "f.txt", Content: []byte("hello"), Mode: 0o640})
		mustRun(t, sb, `mkdir -p dir && chmod 750 dir && printf old > old.txt && touch -d '2001-02-03 04:05:06 UTC' old.txt && ln -s f.txt link`)
		entries := list(t, sb, ".", 1)
		wantPaths(t, "ListFiles(., 1)", entries, "f.txt", "dir", "old.txt", "link")
		f := entries["f.txt"]
		if f.Type != "file" || f.Size != 5 || f.Mode.Perm() != 0o640 {
			t.Errorf("entry f.txt: type %q size %d mode %v; want file, 5, -rw-r-----", f.Type, f.Size, f.Mode.Perm())
		}
		if f.ModTime.Before(before.Add(-time.Hour)) || f.ModTime.After(time.Now().Add(time.Hour)) {
			t.Errorf("entry f.txt: ModTime %v, want about %v", f.ModTime, before)
		}
		if d := entries["dir"]; d.Type != "dir" || d.Mode.Perm() != 0o750 {
			t.Errorf("entry dir: type %q mode %v; want dir, -rwxr-x---", d.Type, d.Mode.Perm())
		}
		want := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		if o := entries["old.txt"]; !o.ModTime.Equal(want) {
			t.Errorf("entry old.txt: ModTime %v, want %v (set by touch -d)", o.ModTime.UTC(), want)
		}
		if l := entries["link"]; l.Type != "symlink" || l.Target != "f.txt" {
			t.Errorf("entry link: type %q target %q; want symlink to f.txt", l.Type, l.Target)
		}
	})
}

// testPathEscapes: a path that leaves /workspace by "..", or by being absolute elsewhere, fails
// with ErrPathEscape for every file operation, and nothing is written.
func (s *suite) testPathEscapes(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	passwd := mustRun(t, sb, "sha256sum /etc/passwd")

	reads := []string{"../sbt-escape", "..", "/etc/passwd", "/", "a/../../sbt-escape",
		"/workspace/../etc/passwd", "/workspacex/sbt-escape", "/tmp/sbt-escape", "../workspace/../etc/passwd"}
	for _, path := range reads {
		_, err := sb.ReadFile(opCtx(t), path, 0, 0)
		wantErr(t, "ReadFile("+path+")", err, sandbox.ErrPathEscape)
	}
	writes := []string{"../sbt-escape", "a/../../sbt-escape", "/workspace/../sbt-escape", "/etc/sbt-escape",
		"/workspacex/sbt-escape", "/tmp/sbt-escape", "/sbt-escape", "a/b/../../../tmp/sbt-escape2"}
	for _, path := range writes {
		err := sb.WriteFiles(opCtx(t), []sandbox.File{file(path, "escaped\n")})
		wantErr(t, "WriteFiles("+path+")", err, sandbox.ErrPathEscape)
	}
	lists := []string{"..", "/", "/etc", "../..", "a/../..", "/workspace/..", "/workspacex", "/tmp"}
	for _, dir := range lists {
		_, err := sb.ListFiles(opCtx(t), dir, 1)
		wantErr(t, "ListFiles("+dir+")", err, sandbox.ErrPathEscape)
	}

	// Nothing was written anywhere the sandbox can see.
	out := mustRun(t, sb, `for f in /sbt-escape /etc/sbt-escape /workspacex /tmp/sbt-escape /tmp/sbt-escape2 /workspace/a; do
  if [ -e "$f" ]; then echo "$f exists"; fi
done; sha256sum /etc/passwd`)
	if want := passwd; out != want {
		t.Errorf("after the escape attempts, inside the sandbox:\n%s\nwant only:\n%s", out, want)
	}
	checkTree(t, sb, tree{})
}

// testSymlinks: symlinks made by commands are listed, not followed; a path through a symlink
// whose target lies outside /workspace fails with ErrPathEscape for every file operation and
// writes nothing; symlinks that stay inside work.
func (s *suite) testSymlinks(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	mustRun(t, sb, `set -e
mkdir real; echo inside > real/f.txt
ln -s /etc link; ln -s ../.. up; ln -s link chain; ln -s /etc/passwd pw
ln -s /tmp/sbt-dangling dangling; ln -s /tmp tmplink; ln -s /etc/sbt-new etcnew
ln -s real rel_in; ln -s /workspace/real abs_in; ln -s real/f.txt file_in; ln -s ../workspace/real/f.txt updown_in`)
	links := tree{
		"link": "link:/etc", "up": "link:../..", "chain": "link:link", "pw": "link:/etc/passwd",
		"dangling": "link:/tmp/sbt-dangling", "tmplink": "link:/tmp", "etcnew": "link:/etc/sbt-new",
		"rel_in": "link:real", "abs_in": "link:/workspace/real", "file_in": "link:real/f.txt",
		"updown_in": "link:../workspace/real/f.txt",
	}
	want := tree{"real": "dir", "real/f.txt": "file:inside\n"}
	for k, v := range links {
		want[k] = v
	}

	t.Run("listed, not followed", func(t *testing.T) {
		entries := list(t, sb, ".", 5)
		for path, spec := range links {
			target := strings.TrimPrefix(spec, "link:")
			if e := entries[path]; e.Type != "symlink" || e.Target != target {
				t.Errorf("ListFiles entry %q: type %q target %q, want symlink to %q", path, e.Type, e.Target, target)
			}
		}
		checkTree(t, sb, want)
	})

	t.Run("escapes fail", func(t *testing.T) {
		for _, path := range []string{"link/passwd", "up/etc/passwd", "chain/passwd", "pw", "/workspace/link/passwd"} {
			_, err := sb.ReadFile(opCtx(t), path, 0, 0)
			wantErr(t, "ReadFile("+path+")", err, sandbox.ErrPathEscape)
		}
		for _, path := range []string{"link/sbt-x", "up/tmp/sbt-up", "tmplink/sbt-tmplink", "dangling", "etcnew", "chain/sbt-chain", "tmplink/sub/dir/sbt-deep"} {
			err := sb.WriteFiles(opCtx(t), []sandbox.File{file(path, "escaped\n")})
			wantErr(t, "WriteFiles("+path+")", err, sandbox.ErrPathEscape)
		}
		for _, dir := range []string{"link", "up", "chain", "tmplink", "up/etc", "/workspace/link"} {
			_, err := sb.ListFiles(opCtx(t), dir, 1)
			wantErr(t, "ListFiles("+dir+")", err, sandbox.ErrPathEscape)
		}
		out := mustRun(t, sb, `for f in /etc/sbt-x /tmp/sbt-up /tmp/sbt-tmplink /tmp/sbt-dangling /etc/sbt-new /etc/sbt-chain /tmp/sub; do
  if [ -e "$f" ]; then echo "$f exists"; fi
done`)
		if out != "" {
			t.Errorf("writes through symlinks reached outside /workspace:\n%s", out)
		}
		checkTree(t, sb, want) // the links themselves are untouched
	})

	t.Run("links inside work", func(t *testing.T) {
		for _, path := range []string{"rel_in/f.txt", "abs_in/f.txt", "file_in", "updown_in", "/workspace/rel_in/f.txt"} {
			fc, err := sb.ReadFile(opCtx(t), path, 0, 0)
			if err != nil || string(fc.Data) != "inside\n" {
				t.Errorf("ReadFile(%q) through a symlink inside /workspace = %q, %v; want \"inside\\n\"", path, fc.Data, err)
			}
		}
		write(t, sb, file("rel_in/new.txt", "via link\n"))
		if got := mustRun(t, sb, "cat real/new.txt"); got != "via link\n" {
			t.Errorf("cat real/new.txt after WriteFiles(rel_in/new.txt) = %q, want \"via link\\n\"", got)
		}
	})
}

// testSizeLimits: ReadFile returns at most Capabilities.MaxFileSize bytes per call, with Size
// telling the whole size so a caller can read on; WriteFiles refuses content over the limit.
func (s *suite) testSizeLimits(t *testing.T) {
	p := s.provider(t)
	limit := p.Capabilities().MaxFileSize
	if limit <= 0 {
		t.Fatalf("Capabilities().MaxFileSize = %d, want a positive limit", limit)
	}
	sb := start(t, p, "")
	n := limit + 4096
	mustRun(t, sb, "truncate -s "+itoa(n)+" sparse.bin")

	fc, err := sb.ReadFile(opCtx(t), "sparse.bin", n-10, 0)
	if err != nil || len(fc.Data) != 10 || fc.Size != n {
		t.Fatalf("ReadFile(sparse.bin of %d bytes, offset %d, max 0) = %d bytes, Size %d, err %v; want 10 bytes, Size %d", n, n-10, len(fc.Data), fc.Size, err, n)
	}

	const maxExercised = 256 << 20
	if limit > maxExercised {
		t.Logf("MaxFileSize is %d; reading and writing a whole file of that size is not exercised (limit %d)", limit, maxExercised)
		return
	}
	fc, err = sb.ReadFile(opCtx(t), "sparse.bin", 0, 0)
	if err != nil || int64(len(fc.Data)) != limit || fc.Size != n {
		t.Errorf("ReadFile(file larger than MaxFileSize %d, max 0) = %d bytes, Size %d, err %v; want %d bytes, Size %d", limit, len(fc.Data), fc.Size, err, limit, n)
	}
	fc, err = sb.ReadFile(opCtx(t), "sparse.bin", 0, limit+1)
	if err == nil && int64(len(fc.Data)) > limit {
		t.Errorf("ReadFile(max %d) returned %d bytes, more than MaxFileSize %d", limit+1, len(fc.Data), limit)
	} else if err != nil && !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("ReadFile(max %d > MaxFileSize): %v; want at most MaxFileSize bytes or ErrInvalid", limit+1, err)
	}

	err = sb.WriteFiles(opCtx(t), []sandbox.File{{Path: "big.bin", Content: make([]byte, limit+1)}})
	wantErr(t, "WriteFiles of MaxFileSize+1 bytes", err, sandbox.ErrInvalid)
	_, err = sb.ReadFile(opCtx(t), "big.bin", 0, 1)
	wantErr(t, "ReadFile(big.bin) after the refused write", err, sandbox.ErrNotFound)

	if limit <= 64<<20 {
		exact := bytes.Repeat([]byte{0x5a}, int(limit))
		write(t, sb, sandbox.File{Path: "exact.bin", Content: exact})
		if got := readAll(t, sb, "exact.bin"); !bytes.Equal(got, exact) {
			t.Errorf("ReadFile of a file of exactly MaxFileSize bytes returned %d bytes (equal: false)", len(got))
		}
	}
}
