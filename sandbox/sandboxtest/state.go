package sandboxtest

import (
	"bytes"
	"io/fs"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// testDurableRoundTrip: Start("") is empty; what a command writes survives Snapshot → Start; a
// snapshot of an unchanged sandbox reports no changes and holds the same state.
func (s *suite) testDurableRoundTrip(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	checkTree(t, sb, tree{}) // Start("") means the empty state.

	mustRun(t, sb, `echo hi > a.txt; mkdir -p d/e; printf x > d/e/f; echo gone > /tmp/sbt-ephemeral`)
	ref := snapshot(t, sb)

	sb2 := start(t, p, ref)
	if r := run(t, sb2, "cat a.txt"); r.ExitCode != 0 || r.Stdout != "hi\n" || r.Stderr != "" {
		t.Errorf("cat a.txt after Snapshot/Start: %v, want exit 0 and stdout \"hi\\n\"", r)
	}
	if got := readAll(t, sb2, "a.txt"); string(got) != "hi\n" {
		t.Errorf("ReadFile(a.txt) = %q, want \"hi\\n\"", got)
	}
	entries := list(t, sb2, ".", 3)
	wantPaths(t, "ListFiles(., 3)", entries, "a.txt", "d", "d/e", "d/e/f")
	for path, want := range map[string]struct {
		typ  string
		size int64
	}{"a.txt": {"file", 3}, "d": {"dir", 0}, "d/e": {"dir", 0}, "d/e/f": {"file", 1}} {
		e := entries[path]
		if e.Type != want.typ || (want.typ == "file" && e.Size != want.size) {
			t.Errorf("ListFiles entry %q: type %q size %d, want %s of size %d", path, e.Type, e.Size, want.typ, want.size)
		}
	}
	state := tree{"a.txt": "file:hi\n", "d": "dir", "d/e": "dir", "d/e/f": "file:x"}
	checkTree(t, sb2, state)
	// Only /workspace and home are durable: what was written to /tmp is gone (unless the provider
	// keeps the whole disk).
	if r := run(t, sb2, "cat /tmp/sbt-ephemeral"); r.ExitCode == 0 && !p.Capabilities().WholeDisk {
		t.Errorf("/tmp/sbt-ephemeral survived Snapshot/Start (%v); /tmp is not durable state", r)
	}

	// Nothing changed in sb2: a provider that can tell makes no snapshot; one that cannot makes
	// one that holds the same state.
	info := snapshotAny(t, sb2)
	if p.Capabilities().Changes != info.Unchanged {
		t.Errorf("Snapshot of an unchanged sandbox: Unchanged %v, but Capabilities.Changes is %v", info.Unchanged, p.Capabilities().Changes)
	}
	if !info.Unchanged {
		checkTree(t, start(t, p, info.Ref), state)
	}
	// And the first snapshot is still there, unchanged.
	checkTree(t, start(t, p, ref), state)
}

// testFilesSurviveSnapshot: binary content, empty files, modes, nested directories made by
// WriteFiles and unusual names survive a snapshot; ReadFile windows and Size are exact.
func (s *suite) testFilesSurviveSnapshot(t *testing.T) {
	p := s.provider(t)
	if limit := p.Capabilities().MaxFileSize; limit < 1<<20 {
		t.Fatalf("Capabilities().MaxFileSize = %d; the suite needs at least 1 MiB", limit)
	}
	all := allBytes()
	rnd := randomBytes(1<<20, 1)
	script := "#!/bin/sh\necho \"ran $1 in $(pwd)\"\n"

	sb := start(t, p, "")
	write(t, sb,
		sandbox.File{Path: "bytes/all256.bin", Content: all},
		sandbox.File{Path: "bytes/random.bin", Content: rnd},
		sandbox.File{Path: "bytes/empty.bin", Content: nil},
		sandbox.File{Path: "tools/run.sh", Content: []byte(script), Mode: 0o755},
		sandbox.File{Path: "private.txt", Content: []byte("secret\n"), Mode: 0o600},
		sandbox.File{Path: "default.txt", Content: []byte("default\n")},
		sandbox.File{Path: "nested/a/b/c/d/e.txt", Content: []byte("deep\n")},
		sandbox.File{Path: "/workspace/names/with space.txt", Content: []byte("space\n")},
		sandbox.File{Path: "names/ünï-cödé.txt", Content: []byte("unicode\n")},
		sandbox.File{Path: "over.txt", Content: []byte("a much longer first version of the file\n")},
	)
	// Replacing a file truncates it.
	write(t, sb, file("over.txt", "short\n"))
	if got := readAll(t, sb, "over.txt"); string(got) != "short\n" {
		t.Errorf("ReadFile(over.txt) after replacing it = %q, want \"short\\n\"", got)
	}
	info := snapshotInfo(t, sb)
	if info.ChangedBytes != 0 && info.ChangedBytes < int64(len(rnd)+len(all)) {
		t.Errorf("Snapshot ChangedBytes = %d after writing more than %d bytes of new content (0 would mean unknown)", info.ChangedBytes, len(rnd)+len(all))
	}
	if info.ChangedFiles != 0 && info.ChangedFiles < 9 {
		t.Errorf("Snapshot ChangedFiles = %d after writing 9 non-empty new files (0 would mean unknown)", info.ChangedFiles)
	}

	sb2 := start(t, p, info.Ref)
	checkTree(t, sb2, tree{
		"bytes":                "dir",
		"bytes/all256.bin":     "file:" + string(all),
		"bytes/random.bin":     "file:" + string(rnd),
		"bytes/empty.bin":      "file:",
		"tools":                "dir",
		"tools/run.sh":         "file:" + script,
		"private.txt":          "file:secret\n",
		"default.txt":          "file:default\n",
		"nested":               "dir",
		"nested/a":             "dir",
		"nested/a/b":           "dir",
		"nested/a/b/c":         "dir",
		"nested/a/b/c/d":       "dir",
		"nested/a/b/c/d/e.txt": "file:deep\n",
		"names":                "dir",
		"names/with space.txt": "file:space\n",
		"names/ünï-cödé.txt":   "file:unicode\n",
		"over.txt":             "file:short\n",
	})

	t.Run("modes", func(t *testing.T) {
		entries := list(t, sb2, ".", 2)
		for path, want := range map[string]fs.FileMode{"tools/run.sh": 0o755, "private.txt": 0o600, "default.txt": 0o644} {
			if got := entries[path].Mode.Perm(); got != want {
				t.Errorf("ListFiles: %s has mode %v, want %v", path, got, want)
			}
		}
		want := "755 tools/run.sh\n600 private.txt\n644 default.txt\n"
		if got := mustRun(t, sb2, "stat -c '%a %n' tools/run.sh private.txt default.txt"); got != want {
			t.Errorf("stat inside the sandbox:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("executable file runs", func(t *testing.T) {
		for _, c := range []struct {
			cmd, cwd, arg, want string
		}{
			{"tools/run.sh", "", "a", "ran a in /workspace\n"},
			{"./tools/run.sh", "", "b", "ran b in /workspace\n"},
			{"/workspace/tools/run.sh", "", "c", "ran c in /workspace\n"},
			{"./run.sh", "tools", "d", "ran d in /workspace/tools\n"},
		} {
			r := execute(t, sb2, sandbox.ExecRequest{Command: c.cmd, Args: []string{c.arg}, Cwd: c.cwd})
			if r.ExitCode != 0 || r.Stdout != c.want {
				t.Errorf("Exec(%s %s) in cwd %q: %v, want exit 0 and stdout %q", c.cmd, c.arg, c.cwd, r, c.want)
			}
		}
	})

	t.Run("read windows", func(t *testing.T) {
		n := int64(len(rnd))
		for _, c := range []struct {
			path        string
			offset, max int64
			want        []byte
			size        int64
		}{
			{"bytes/random.bin", 0, 0, rnd, n},
			{"bytes/random.bin", 0, -1, rnd, n},
			{"bytes/random.bin", 0, 1, rnd[:1], n},
			{"bytes/random.bin", 1000, 100, rnd[1000:1100], n},
			{"bytes/random.bin", n - 6, 100, rnd[n-6:], n},
			{"bytes/random.bin", n, 10, nil, n},
			{"bytes/random.bin", 4096, 0, rnd[4096:], n},
			{"bytes/all256.bin", 255, 0, all[255:], 256},
			{"bytes/all256.bin", 10, 246, all[10:], 256},
			{"bytes/empty.bin", 0, 0, nil, 0},
		} {
			fc, err := sb2.ReadFile(opCtx(t), c.path, c.offset, c.max)
			if err != nil {
				t.Errorf("ReadFile(%s, offset %d, max %d): %v", c.path, c.offset, c.max, err)
				continue
			}
			if !bytes.Equal(fc.Data, c.want) || fc.Size != c.size {
				t.Errorf("ReadFile(%s, offset %d, max %d) = %d bytes (equal: %v), Size %d; want %d bytes, Size %d",
					c.path, c.offset, c.max, len(fc.Data), bytes.Equal(fc.Data, c.want), fc.Size, len(c.want), c.size)
			}
		}
	})
}

// testDeletesAndRenames: deleted files and trees, renamed files and directories, a directory
// replaced by a file and a file by a directory, and a directory deleted then re-created, are all
// exactly right after Snapshot/Start — across two layers of changes, with the older snapshots
// unchanged.
func (s *suite) testDeletesAndRenames(t *testing.T) {
	p := s.provider(t)
	sb0 := start(t, p, "")
	mustRun(t, sb0, `set -e
mkdir -p tree/x dir2file movedir opaque keepdir
echo keep > keep.txt; echo del > del.txt; echo y > tree/x/y.txt; echo z > tree/z.txt
echo src > ren-src.txt; echo inner > dir2file/inner.txt; echo f2d > file2dir
echo m > movedir/m.txt; echo old > opaque/old.txt; echo k > keepdir/k.txt; echo g > keepdir/gone.txt
ln -s keep.txt keeplink; ln -s del.txt dellink`)
	state0 := tree{
		"keep.txt": "file:keep\n", "del.txt": "file:del\n",
		"tree": "dir", "tree/x": "dir", "tree/x/y.txt": "file:y\n", "tree/z.txt": "file:z\n",
		"ren-src.txt": "file:src\n",
		"dir2file":    "dir", "dir2file/inner.txt": "file:inner\n",
		"file2dir": "file:f2d\n",
		"movedir":  "dir", "movedir/m.txt": "file:m\n",
		"opaque": "dir", "opaque/old.txt": "file:old\n",
		"keepdir": "dir", "keepdir/k.txt": "file:k\n", "keepdir/gone.txt": "file:g\n",
		"keeplink": "link:keep.txt", "dellink": "link:del.txt",
	}
	s0 := snapshot(t, sb0)

	sb1 := start(t, p, s0)
	checkTree(t, sb1, state0)
	mustRun(t, sb1, `set -e
rm del.txt; rm -r tree; mv ren-src.txt ren-dst.txt
rm -r dir2file; printf F > dir2file
rm file2dir; mkdir file2dir; printf G > file2dir/g.txt
mv movedir moved
rm -r opaque; mkdir opaque; echo new > opaque/new.txt
rm keepdir/gone.txt
rm dellink; ln -s keep.txt newlink`)
	write(t, sb1, file("keep.txt", "keep v2\n"))
	state1 := tree{
		"keep.txt":    "file:keep v2\n",
		"ren-dst.txt": "file:src\n",
		"dir2file":    "file:F",
		"file2dir":    "dir", "file2dir/g.txt": "file:G",
		"moved": "dir", "moved/m.txt": "file:m\n",
		"opaque": "dir", "opaque/new.txt": "file:new\n",
		"keepdir": "dir", "keepdir/k.txt": "file:k\n",
		"keeplink": "link:keep.txt", "newlink": "link:keep.txt",
	}
	checkTree(t, sb1, state1)
	s1 := snapshot(t, sb1)
	t.Run("first layer", func(t *testing.T) {
		checkTree(t, start(t, p, s1), state1)
	})

	// A second layer: delete what the first kept, re-create what the first deleted (tree/ must not
	// bring back the files s0 had in it), turn a directory back into nothing.
	sb2 := start(t, p, s1)
	mustRun(t, sb2, `set -e
rm keep.txt; echo reborn > del.txt; rm -r file2dir; mkdir tree; echo again > tree/z2.txt
mv moved/m.txt moved/m2.txt`)
	state2 := tree{
		"del.txt":     "file:reborn\n",
		"ren-dst.txt": "file:src\n",
		"dir2file":    "file:F",
		"tree":        "dir", "tree/z2.txt": "file:again\n",
		"moved": "dir", "moved/m2.txt": "file:m\n",
		"opaque": "dir", "opaque/new.txt": "file:new\n",
		"keepdir": "dir", "keepdir/k.txt": "file:k\n",
		"keeplink": "link:keep.txt", "newlink": "link:keep.txt",
	}
	s2 := snapshot(t, sb2)
	t.Run("second layer", func(t *testing.T) {
		checkTree(t, start(t, p, s2), state2)
	})
	t.Run("older snapshots unchanged", func(t *testing.T) {
		checkTree(t, start(t, p, s0), state0)
		checkTree(t, start(t, p, s1), state1)
	})
}

// testForkIsolation: sandboxes started from the same snapshot, running at the same time, never
// see one another's changes, in /workspace or in home; their snapshots hold only their own
// changes; the snapshot they started from is unchanged.
func (s *suite) testForkIsolation(t *testing.T) {
	p := s.provider(t)
	base := start(t, p, "")
	write(t, base, file("shared.txt", "base\n"), file("common/c1", "c1\n"), file("common/c2", "c2\n"))
	mustRun(t, base, `echo base > "$HOME/sbt-home.txt"`)
	s0 := snapshot(t, base)
	state0 := tree{"shared.txt": "file:base\n", "common": "dir", "common/c1": "file:c1\n", "common/c2": "file:c2\n"}

	a := start(t, p, s0)
	b := start(t, p, s0)
	write(t, a, file("a.txt", "from a\n"), file("shared.txt", "A\n"))
	mustRun(t, a, `rm common/c1; echo A > "$HOME/sbt-home.txt"`)
	mustRun(t, b, `echo "from b" > b.txt; echo B > shared.txt; echo more >> common/c2; echo B > "$HOME/sbt-home.txt"`)
	stateA := tree{"shared.txt": "file:A\n", "a.txt": "file:from a\n", "common": "dir", "common/c2": "file:c2\n"}
	stateB := tree{"shared.txt": "file:B\n", "b.txt": "file:from b\n", "common": "dir", "common/c1": "file:c1\n", "common/c2": "file:c2\nmore\n"}

	t.Run("while running", func(t *testing.T) {
		checkTree(t, a, stateA)
		checkTree(t, b, stateB)
		if got := homeFile(t, a, "sbt-home.txt"); got != "A\n" {
			t.Errorf("home file in sandbox a = %q, want \"A\\n\"", got)
		}
		if got := homeFile(t, b, "sbt-home.txt"); got != "B\n" {
			t.Errorf("home file in sandbox b = %q, want \"B\\n\"", got)
		}
		// A third sandbox started from the same snapshot while a and b run sees the original.
		c := start(t, p, s0)
		checkTree(t, c, state0)
		if got := homeFile(t, c, "sbt-home.txt"); got != "base\n" {
			t.Errorf("home file in a third sandbox = %q, want \"base\\n\"", got)
		}
	})

	sa := snapshot(t, a)
	sbRef := snapshot(t, b)
	for _, c := range []struct {
		name  string
		ref   sandbox.SnapshotRef
		state tree
		home  string
	}{
		{"snapshot of a", sa, stateA, "A\n"},
		{"snapshot of b", sbRef, stateB, "B\n"},
		{"original snapshot", s0, state0, "base\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb := start(t, p, c.ref)
			checkTree(t, sb, c.state)
			if got := homeFile(t, sb, "sbt-home.txt"); got != c.home {
				t.Errorf("home file = %q, want %q", got, c.home)
			}
		})
	}
}

// testRestore: in a chain S0 → S1 → S2 (and a branch S1 → S1b), starting any snapshot gives
// exactly its state.
func (s *suite) testRestore(t *testing.T) {
	p := s.provider(t)
	sb := start(t, p, "")
	write(t, sb, file("v.txt", "0\n"), file("f0.txt", "f0\n"))
	s0 := snapshot(t, sb)

	sb = start(t, p, s0)
	write(t, sb, file("v.txt", "1\n"), file("dir1/f1.txt", "f1\n"))
	s1 := snapshot(t, sb)

	sb = start(t, p, s1)
	mustRun(t, sb, `echo 2 > v.txt; echo f2 > f2.txt; rm f0.txt; rm -r dir1`)
	s2 := snapshot(t, sb)

	state0 := tree{"v.txt": "file:0\n", "f0.txt": "file:f0\n"}
	state1 := tree{"v.txt": "file:1\n", "f0.txt": "file:f0\n", "dir1": "dir", "dir1/f1.txt": "file:f1\n"}
	state2 := tree{"v.txt": "file:2\n", "f2.txt": "file:f2\n"}
	checkTree(t, start(t, p, s1), state1)
	checkTree(t, start(t, p, s0), state0)
	checkTree(t, start(t, p, s2), state2)

	// Branch off S1: S2 is unaffected.
	sb = start(t, p, s1)
	mustRun(t, sb, `echo 1b > v.txt; echo b > dir1/f1b.txt`)
	s1b := snapshot(t, sb)
	checkTree(t, start(t, p, s1b), tree{"v.txt": "file:1b\n", "f0.txt": "file:f0\n", "dir1": "dir", "dir1/f1.txt": "file:f1\n", "dir1/f1b.txt": "file:b\n"})
	checkTree(t, start(t, p, s2), state2)
	checkTree(t, start(t, p, s1), state1)
}
