package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// fileLines renders a diff's files as "op type path" lines.
func fileLines(d engine.Diff) []string {
	var out []string
	for _, f := range d.Files {
		out = append(out, f.Op+" "+f.Type+" "+f.Path)
	}
	return out
}

func (v *env) diff(t *testing.T, req engine.DiffRequest) engine.Diff {
	t.Helper()
	d, err := v.e.Diff(ctxT(t), req)
	if err != nil {
		t.Fatalf("diff %+v: %v", req, err)
	}
	return d
}

func wantFiles(t *testing.T, what string, d engine.Diff, want ...string) {
	t.Helper()
	if got := fileLines(d); !slices.Equal(got, want) {
		t.Fatalf("%s: files\n%s\nwant\n%s\ndiff:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"), d.Text)
	}
}

func wantText(t *testing.T, what string, d engine.Diff, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(d.Text, p) {
			t.Errorf("%s: the diff lacks %q:\n%s", what, p, d.Text)
		}
	}
}

func fileOf(d engine.Diff, path string) engine.DiffFile {
	for _, f := range d.Files {
		if f.Path == path {
			return f
		}
	}
	return engine.DiffFile{}
}

// TestWorkspaceDiff: what a run changed, file by file, with a unified diff of the text files;
// binary files named; a deleted directory as its files; paths narrow it; from and to default to
// the head and its parent and are checked; old commits stay readable.
func TestWorkspaceDiff(t *testing.T) {
	t.Parallel()
	v, ctx := newEnvWorkspace(t, "d")
	first := head(t, v, "d")
	v.sh(t, "d", `seq 1 40 > nums.txt; printf 'a\000b' > bin.dat; mkdir -p dir/sub; echo keep > dir/keep.txt; echo deep > dir/sub/deep.txt
		echo old > old.txt; mkdir many; for i in $(seq 1 300); do echo $i > many/f$i; done; echo hi > ~/.profile-note`)
	base := head(t, v, "d")
	v.sh(t, "d", `sed -i 's/^20$/TWENTY/' nums.txt; printf 'a\000c' > bin.dat; rm -r dir old.txt; printf 'new\n' > new.txt; echo bye >> ~/.profile-note`)
	top := head(t, v, "d")

	d := v.diff(t, engine.DiffRequest{Workspace: "d"})
	if d.From != base || d.To != top {
		t.Fatalf("default from/to: %s → %s, want %s → %s", d.From, d.To, base, top)
	}
	wantFiles(t, "the last run", d,
		"modified file bin.dat", "deleted file dir/keep.txt", "deleted file dir/sub/deep.txt", "added file new.txt",
		"modified file nums.txt", "deleted file old.txt", "modified file ~/.profile-note")
	wantText(t, "the last run", d,
		"--- a/nums.txt\n+++ b/nums.txt\n@@ -17,7 +17,7 @@\n 17\n 18\n 19\n-20\n+TWENTY\n 21\n",
		"Binary files a/bin.dat and b/bin.dat differ",
		"--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+new\n",
		"--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n",
		"--- a/dir/sub/deep.txt\n+++ /dev/null\n",
		"--- a/~/.profile-note\n+++ b/~/.profile-note\n@@ -1 +1,2 @@\n hi\n+bye\n")
	if d.Changed != 7 || d.Added != 1 || d.Modified != 3 || d.Deleted != 3 || d.LinesAdded != 3 || d.LinesRemoved != 4 || d.Incomplete || d.Omitted != 0 {
		t.Errorf("totals: changed %d, +%d ~%d -%d, lines +%d -%d, incomplete %v, omitted %d", d.Changed, d.Added, d.Modified, d.Deleted, d.LinesAdded, d.LinesRemoved, d.Incomplete, d.Omitted)
	}
	if b := fileOf(d, "bin.dat"); !b.Binary || b.SizeBefore == nil || *b.SizeBefore != 3 || *b.SizeAfter != 3 || strings.Contains(d.Text, "a\x00") {
		t.Errorf("bin.dat: %+v (binary content must not be dumped)", b)
	}
	if n := fileOf(d, "new.txt"); n.SizeBefore != nil || n.SizeAfter == nil || *n.SizeAfter != 4 {
		t.Errorf("new.txt sizes: %+v", n)
	}
	if o := fileOf(d, "old.txt"); o.SizeBefore == nil || *o.SizeBefore != 4 || o.SizeAfter != nil {
		t.Errorf("old.txt sizes: %+v", o)
	}

	t.Run("paths", func(t *testing.T) {
		p := v.diff(t, engine.DiffRequest{Workspace: "d", Paths: []string{"nums.txt", "/workspace/dir/sub"}})
		wantFiles(t, "paths", p, "deleted file dir/sub/deep.txt", "modified file nums.txt")
		if p.Changed != 2 || strings.Contains(p.Text, "bin.dat") {
			t.Errorf("paths: changed %d, text:\n%s", p.Changed, p.Text)
		}
		h := v.diff(t, engine.DiffRequest{Workspace: "d", Paths: []string{"~"}})
		wantFiles(t, "the home", h, "modified file ~/.profile-note")
		_, err := v.e.Diff(ctx, engine.DiffRequest{Workspace: "d", Paths: []string{"../etc"}})
		wantKindArg(t, "a path outside the roots", err, engine.ErrInvalid, "paths[0]")
	})

	t.Run("one change in a big tree lists just it", func(t *testing.T) {
		v.sh(t, "d", `echo changed > many/f150`)
		one := v.diff(t, engine.DiffRequest{Workspace: "d"})
		wantFiles(t, "one change", one, "modified file many/f150")
		wantText(t, "one change", one, "-150\n+changed\n")
	})

	t.Run("from and to", func(t *testing.T) {
		all := v.diff(t, engine.DiffRequest{Workspace: "d", From: first, To: base})
		if all.Changed != 306 || len(all.Files) != engine.MaxDiffFiles || !all.Incomplete || !strings.Contains(all.Text, "306 changed path(s) in all") {
			t.Errorf("the first run from the empty commit: changed %d, %d listed, incomplete %v", all.Changed, len(all.Files), all.Incomplete)
		}
		if f := fileOf(all, "dir/keep.txt"); f.Op != "added" || f.SizeAfter == nil || *f.SizeAfter != 5 {
			t.Errorf("dir/keep.txt from the empty commit: %+v", f)
		}
		back := v.diff(t, engine.DiffRequest{Workspace: "d", From: top, To: base, Paths: []string{"old.txt", "new.txt"}})
		wantFiles(t, "backwards", back, "deleted file new.txt", "added file old.txt")
		empty := v.diff(t, engine.DiffRequest{Workspace: "d", To: first})
		if empty.From != "" || empty.To != first || len(empty.Files) != 0 || empty.Text != "" {
			t.Errorf("the first commit against the empty state: %+v", empty)
		}
		same := v.diff(t, engine.DiffRequest{Workspace: "d", From: top, To: top})
		if len(same.Files) != 0 || same.Changed != 0 {
			t.Errorf("a commit against itself: %+v", same)
		}

		_, err := v.e.Diff(ctx, engine.DiffRequest{Workspace: "d", To: "c_doesnotexist"})
		wantKindArg(t, "an unknown to", err, engine.ErrNotFound, "to")
		_, err = v.e.Diff(ctx, engine.DiffRequest{Workspace: "d", From: "HEAD~1"})
		wantKindArg(t, "a from that is no commit id", err, engine.ErrInvalid, "from")
		v.mkws(t, "other")
		_, err = v.e.Diff(ctx, engine.DiffRequest{Workspace: "d", From: head(t, v, "other")})
		wantKindArg(t, "another workspace's commit", err, engine.ErrNotFound, "from")
		_, err = v.e.Diff(ctx, engine.DiffRequest{Workspace: "nope"})
		wantErr(t, "an unknown workspace", err, engine.ErrNotFound, "nope")
	})

	t.Run("read and list at a commit", func(t *testing.T) {
		fc, err := v.e.ReadFileAt(ctx, "d", base, "nums.txt", 0, 0)
		if err != nil || !strings.Contains(string(fc.Data), "\n20\n") || fc.Commit != base {
			t.Fatalf("read nums.txt at %s: %q %v", base, fc.Data, err)
		}
		now, err := v.e.ReadFile(ctx, "d", "nums.txt", 0, 0)
		if err != nil || !strings.Contains(string(now.Data), "TWENTY") || now.Commit == base {
			t.Fatalf("read nums.txt at the head: %q (commit %s) %v", now.Data, now.Commit, err)
		}
		ls, err := v.e.ListFilesAt(ctx, "d", base, "dir", 2)
		if err != nil || len(ls) != 3 {
			t.Fatalf("list dir at %s: %+v %v", base, ls, err)
		}
		_, err = v.e.ReadFileAt(ctx, "d", "c_gone", "nums.txt", 0, 0)
		wantKindArg(t, "read at an unknown commit", err, engine.ErrNotFound, "commit")
		_, err = v.e.ListFilesAt(ctx, "d", "main", "", 1)
		wantKindArg(t, "list at a bad commit id", err, engine.ErrInvalid, "commit")
		_, err = v.e.ReadFileAt(ctx, "d", top, "old.txt", 0, 0)
		wantErr(t, "a file deleted at that commit", err, engine.ErrNotFound)
	})
}

// TestWorkspaceDiffBounds: a file's diff is cut at MaxDiffFileBytes and the whole text stays
// within MaxDiffBytes; what is left out is flagged and named.
func TestWorkspaceDiffBounds(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "b")
	v.sh(t, "b", `seq 1 20000 > big.txt; for i in $(seq 1 40); do seq 1 300 > f$i.txt; done`)
	v.sh(t, "b", `seq 1 20000 | sed 's/$/ changed/' > big.txt; for i in $(seq 1 40); do seq 1 300 | sed 's/$/ x/' > f$i.txt; done`)
	d := v.diff(t, engine.DiffRequest{Workspace: "b"})
	if len(d.Files) != 41 || d.Omitted == 0 || d.Incomplete {
		t.Fatalf("files %d, omitted %d, incomplete %v", len(d.Files), d.Omitted, d.Incomplete)
	}
	marker := strings.LastIndex(d.Text, "\n[the diff of ")
	if marker < 0 || marker > engine.MaxDiffBytes || !strings.Contains(d.Text[marker:], "read_file with commit") {
		t.Fatalf("the text (%d bytes) lacks the closing marker within the bound (at %d)", len(d.Text), marker)
	}
	big := fileOf(d, "big.txt")
	if !big.DiffOmitted || !strings.Contains(big.Note, "cut") || !strings.Contains(d.Text, "more bytes") {
		t.Errorf("big.txt: %+v", big)
	}
	last := fileOf(d, "f9.txt")
	if !last.DiffOmitted || last.SizeAfter == nil || *last.SizeAfter == 0 {
		t.Errorf("a file past the bound is listed with its sizes, its diff left out: %+v", last)
	}
	one := v.diff(t, engine.DiffRequest{Workspace: "b", Paths: []string{"f9.txt"}})
	if f := fileOf(one, "f9.txt"); f.DiffOmitted || f.LinesAdded != 300 || !strings.Contains(one.Text, "+300 x\n") {
		t.Errorf("f9.txt alone: %+v", f)
	}
}

// TestWorkspaceDiffManyChanges: beyond the paths Provider.Diff lists, paths still find a change.
func TestWorkspaceDiffManyChanges(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	v.mkws(t, "m")
	v.sh(t, "m", `mkdir a z; for i in $(seq 100 250); do echo $i > a/$i; done; echo target > z/target.txt`)
	d := v.diff(t, engine.DiffRequest{Workspace: "m"})
	if d.Changed != 152 || len(d.Files) != engine.MaxDiffFiles || !d.Incomplete {
		t.Fatalf("changed %d, listed %d, incomplete %v", d.Changed, len(d.Files), d.Incomplete)
	}
	z := v.diff(t, engine.DiffRequest{Workspace: "m", Paths: []string{"z"}})
	wantFiles(t, "paths past the provider's list", z, "added file z/target.txt")
	wantText(t, "paths past the provider's list", z, "+target\n")
}

// wantKindArg checks an error's kind and the argument it names.
func wantKindArg(t *testing.T, what string, err, kind error, arg string) {
	t.Helper()
	var e *engine.Error
	if !errors.As(err, &e) || !errors.Is(err, kind) || e.Fields.Argument != arg {
		t.Fatalf("%s: got %v (%s), want %v naming argument %q", what, err, fmt.Sprint(fieldsOf(err)), kind, arg)
	}
}
