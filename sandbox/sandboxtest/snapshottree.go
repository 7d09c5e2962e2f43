package sandboxtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testSnapshotTree: Provider.Tree shows a snapshot's /workspace as commands in a sandbox started
// from it see it, over several generations of changes (files changed, deleted, a directory
// replaced, a FIFO, permissions, a binary file): the same entries with the same types,
// permission bits, sizes and link targets, a directory before its entries, names in byte order;
// Open reads each file's exact content; fs.SkipDir skips a directory; a view opened before the
// snapshot is deleted stays readable; "" is empty; unknown refs and bad paths are refused.
func (s *suite) testSnapshotTree(t *testing.T) {
	p := s.provider(t)
	bin := randomBytes(1<<20+17, 11)
	sb := start(t, p, "")
	write(t, sb, file("a.txt", "one\n"), file("del.txt", "gone\n"), file("old/f.txt", "old\n"), file("old/sub/g.txt", "g\n"),
		file("dir/sub/x", "x\n"), sandbox.File{Path: "bin.dat", Content: bin, Mode: 0o600})
	mustRun(t, sb, "ln -s a.txt link && chmod 750 dir")
	gen1 := snapshot(t, sb)

	sb = start(t, p, gen1)
	write(t, sb, file("a.txt", "two, longer\n"), file("new/deep/n.txt", "n\n"))
	mustRun(t, sb, "rm del.txt && rm -r old && mkdir old && echo fresh > old/h.txt && mkfifo fifo && chmod 700 new/deep && ln -sfn dir link2 && touch .hidden")
	gen2 := snapshot(t, sb)

	view := start(t, p, gen2)
	listed := list(t, view, ".", 1000)
	want := map[string]sandbox.FileEntry{}
	for k, v := range listed {
		want[k] = v
	}

	tr, err := p.Tree(opCtx(t), gen2)
	if err != nil {
		t.Fatalf("Tree(%s): %v", gen2, err)
	}
	defer tr.Close()
	var order []string
	got := map[string]sandbox.TreeEntry{}
	if err := tr.Walk(opCtx(t), func(e sandbox.TreeEntry) error {
		order = append(order, e.Path)
		if _, dup := got[e.Path]; dup {
			t.Errorf("Walk visits %q twice", e.Path)
		}
		got[e.Path] = e
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	// A directory comes before its entries; siblings come in byte order.
	seenDir := map[string]bool{".": true}
	lastIn := map[string]string{}
	for _, q := range order {
		dir := path.Dir(q)
		if !seenDir[dir] {
			t.Errorf("Walk visits %q before its directory %q", q, dir)
		}
		if prev := lastIn[dir]; prev != "" && prev >= q {
			t.Errorf("Walk visits %q after %q: names of a directory come in byte order", q, prev)
		}
		lastIn[dir] = q
		if got[q].Mode.IsDir() {
			seenDir[q] = true
		}
	}
	var problems []string
	for _, q := range slices.Sorted(maps.Keys(want)) {
		w := want[q]
		g, ok := got[q]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (%s)", q, w.Type))
			continue
		}
		if kind := treeKind(g.Mode); kind != w.Type {
			problems = append(problems, fmt.Sprintf("%q: type %s, ListFiles says %s", q, kind, w.Type))
			continue
		}
		if g.Mode.Perm() != w.Mode.Perm() {
			problems = append(problems, fmt.Sprintf("%q: mode %v, ListFiles says %v", q, g.Mode.Perm(), w.Mode.Perm()))
		}
		switch w.Type {
		case "file":
			if g.Size != w.Size {
				problems = append(problems, fmt.Sprintf("%q: size %d, ListFiles says %d", q, g.Size, w.Size))
			}
			rc, err := tr.Open(opCtx(t), q)
			if err != nil {
				problems = append(problems, fmt.Sprintf("Open(%q): %v", q, err))
				continue
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				problems = append(problems, fmt.Sprintf("reading %q: %v", q, err))
			} else if want := readAll(t, view, q); !bytes.Equal(data, want) {
				problems = append(problems, fmt.Sprintf("%q: Open reads %d bytes %q, ReadFile %d bytes %q", q, len(data), clip(string(data)), len(want), clip(string(want))))
			}
		case "symlink":
			if g.Target != w.Target {
				problems = append(problems, fmt.Sprintf("%q: target %q, ListFiles says %q", q, g.Target, w.Target))
			}
		}
	}
	for _, q := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[q]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %q (%s)", q, treeKind(got[q].Mode)))
		}
	}
	for _, q := range []string{"del.txt", "old/f.txt", "old/sub", "a.txt", "bin.dat", "fifo", "new/deep/n.txt", "old/h.txt", ".hidden"} {
		_, inList := want[q]
		_, inTree := got[q]
		if inList != inTree {
			problems = append(problems, fmt.Sprintf("%q: in ListFiles %v, in Walk %v", q, inList, inTree))
		}
	}
	if _, ok := want["del.txt"]; ok {
		t.Fatalf("the sandbox still shows del.txt: the scenario's premise is wrong")
	}
	if len(problems) > 0 {
		t.Errorf("Tree(%s) differs from the sandbox's view:\n  %s", gen2, strings.Join(problems, "\n  "))
	}

	t.Run("SkipDir", func(t *testing.T) {
		var seen []string
		err := tr.Walk(opCtx(t), func(e sandbox.TreeEntry) error {
			seen = append(seen, e.Path)
			if e.Path == "dir" || e.Path == "new" {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		for _, q := range seen {
			if strings.HasPrefix(q, "dir/") || strings.HasPrefix(q, "new/") {
				t.Errorf("Walk visited %q below a directory skipped with fs.SkipDir", q)
			}
		}
		if !strings.Contains(strings.Join(seen, " "), "old/h.txt") {
			t.Errorf("Walk with SkipDir missed old/h.txt: %q", seen)
		}
	})

	t.Run("errors from fn stop the walk", func(t *testing.T) {
		stop := errors.New("stop here")
		n := 0
		err := tr.Walk(opCtx(t), func(sandbox.TreeEntry) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("Walk returned %v after %d calls, want the callback's error after 1", err, n)
		}
	})

	t.Run("bad paths", func(t *testing.T) {
		for _, q := range []string{"del.txt", "nope", "old/f.txt", "dir", "fifo", "link/../a.txt", "../a.txt", "/workspace/a.txt", "", "dir/sub/x/y"} {
			if rc, err := tr.Open(opCtx(t), q); err == nil {
				rc.Close()
				t.Errorf("Open(%q) succeeded; want an error", q)
			} else if !errors.Is(err, sandbox.ErrNotFound) && !errors.Is(err, sandbox.ErrInvalid) {
				t.Errorf("Open(%q): %v, want ErrNotFound or ErrInvalid", q, err)
			}
		}
	})

	t.Run("a view outlives the snapshot's deletion", func(t *testing.T) {
		sb := start(t, p, gen2)
		write(t, sb, file("only-here.txt", "kept\n"))
		ref := snapshot(t, sb)
		tr2, err := p.Tree(opCtx(t), ref)
		if err != nil {
			t.Fatalf("Tree: %v", err)
		}
		defer tr2.Close()
		if err := p.DeleteSnapshot(opCtx(t), ref); err != nil {
			t.Fatalf("DeleteSnapshot: %v", err)
		}
		rc, err := tr2.Open(opCtx(t), "only-here.txt")
		if err != nil {
			t.Fatalf("Open after DeleteSnapshot: %v", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(data) != "kept\n" {
			t.Errorf("after DeleteSnapshot the view reads %q, %v; want \"kept\\n\"", data, err)
		}
		if _, err := p.Tree(opCtx(t), ref); !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Tree of a deleted snapshot: %v, want ErrNotFound", err)
		}
	})

	t.Run("the empty state", func(t *testing.T) {
		tr, err := p.Tree(opCtx(t), "")
		if err != nil {
			t.Fatalf("Tree(\"\"): %v", err)
		}
		defer tr.Close()
		if err := tr.Walk(opCtx(t), func(e sandbox.TreeEntry) error { return fmt.Errorf("visited %q", e.Path) }); err != nil {
			t.Errorf("Walk of the empty state: %v", err)
		}
	})
}

// treeKind is a TreeEntry's type as FileEntry.Type names it.
func treeKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	}
	return "other"
}
