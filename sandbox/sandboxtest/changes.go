package sandboxtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// changeList renders changes as "op type path" lines, for comparing with a want list.
func changeList(c sandbox.Changes) []string {
	out := make([]string, 0, len(c.Paths))
	for _, ch := range c.Paths {
		out = append(out, ch.Op+" "+ch.Type+" "+ch.Path)
	}
	return out
}

func wantChanges(t *testing.T, what string, c sandbox.Changes, want ...string) {
	t.Helper()
	checkChanges(t, what, c)
	if !c.Known {
		t.Errorf("%s: changes not known, want %d changes", what, len(want))
		return
	}
	if got := changeList(c); !slices.Equal(got, want) || c.Files != int64(len(want)) {
		t.Errorf("%s: %d change(s) (Files %d):\n  %s\nwant %d:\n  %s", what, len(got), c.Files, strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

// diff calls Provider.Diff and checks the shape of its answer.
func diff(t *testing.T, p sandbox.Provider, from, to sandbox.SnapshotRef) sandbox.Changes {
	t.Helper()
	c, err := p.Diff(opCtx(t), from, to)
	if err != nil {
		t.Fatalf("Diff(%q, %q): %v", from, to, err)
	}
	checkChanges(t, fmt.Sprintf("Diff(%q, %q)", from, to), c)
	return c
}

// testChanges: Snapshot reports what changed since the start snapshot — adds, touches, chmods,
// appends, deletes of files and directories, a file replaced by a directory, a directory
// replaced with new content, home paths as ~/… — each with the right op, in order, with
// totals; a sandbox that changed nothing (also one that created and removed files again) makes
// no snapshot. A provider that cannot tell says so and snapshots as always.
func (s *suite) testChanges(t *testing.T) {
	p := s.provider(t)
	caps := p.Capabilities()
	sb := start(t, p, "")
	mustRun(t, sb, `set -e
echo keep > keep.txt; echo mod > mod.txt; echo chm > chm.txt; echo touch > touch.txt; echo del > del.txt
mkdir -p dir/sub deldir rep/x; echo x > dir/sub/x; echo y > deldir/y; echo old > rep/x/old.txt; echo f > f2d
echo home > "$HOME/home.txt"`)
	info := snapshotInfo(t, sb)
	if !caps.Changes {
		if info.Changes.Known {
			t.Errorf("Snapshot reports known changes %+v, but Capabilities.Changes is false", info.Changes)
		}
		// It cannot tell, so an unchanged sandbox still makes a snapshot.
		sb := start(t, p, info.Ref)
		again := snapshotAny(t, sb)
		if again.Unchanged || again.Ref == "" || again.Changes.Known {
			t.Errorf("Snapshot of an unchanged sandbox on a provider without Capabilities.Changes: %+v; want a new snapshot and unknown changes", again)
		}
		return
	}
	s0 := info.Ref
	wantChanges(t, "first snapshot", info.Changes,
		"added file chm.txt", "added file del.txt", "added file deldir/y", "added file dir/sub/x", "added file f2d",
		"added file keep.txt", "added file mod.txt", "added file rep/x/old.txt", "added file touch.txt", "added file ~/home.txt")
	if want := int64(len("keep\nmod\nchm\ntouch\ndel\nx\ny\nold\nf\nhome\n")); info.Changes.Bytes != want {
		t.Errorf("first snapshot: Bytes %d, want %d", info.Changes.Bytes, want)
	}

	t.Run("nothing changed", func(t *testing.T) {
		before, _ := p.Snapshots(opCtx(t))
		for _, script := range []string{"true", "cat keep.txt dir/sub/x >/dev/null; ls -la . \"$HOME\" >/dev/null",
			`touch tmp "$HOME/tmp"; rm tmp "$HOME/tmp"; mkdir -p t/u; rmdir t/u t; echo scratch > /tmp/scratch`} {
			sb := start(t, p, s0)
			mustRun(t, sb, script)
			info := snapshotAny(t, sb)
			if !info.Unchanged || info.Ref != "" {
				t.Errorf("Snapshot after %q: %+v; want Unchanged and no ref", script, info)
			}
			if _, err := sb.Exec(opCtx(t), shReq("true")); !errors.Is(err, sandbox.ErrEnded) {
				t.Errorf("Exec after an unchanged Snapshot: %v, want ErrEnded (the sandbox has ended)", err)
			}
		}
		after, err := p.Snapshots(opCtx(t))
		if err == nil && len(after) != len(before) {
			t.Errorf("Snapshots went from %d to %d although no sandbox changed anything", len(before), len(after))
		}
		// The state is still that of s0.
		if got := mustRun(t, start(t, p, s0), "cat keep.txt"); got != "keep\n" {
			t.Errorf("keep.txt = %q after unchanged snapshots", got)
		}
	})

	sb = start(t, p, s0)
	mustRun(t, sb, `set -e
touch -d '2001-02-03 04:05:06' touch.txt; chmod 600 chm.txt; echo more >> mod.txt; rm del.txt; rm -r deldir
echo new > new.txt; mkdir emptydir; rm f2d; mkdir f2d; echo c > f2d/c
rm -r rep; mkdir -p rep/x; echo new > rep/x/new.txt
echo more >> "$HOME/home.txt"; echo n > "$HOME/new-home"`)
	info = snapshotInfo(t, sb)
	s1 := info.Ref
	want1 := []string{
		"modified file chm.txt", "deleted file del.txt", "deleted dir deldir", "added dir emptydir", "modified dir f2d", "added file f2d/c",
		"modified file mod.txt", "added file new.txt", "added file rep/x/new.txt", "deleted file rep/x/old.txt", "modified file touch.txt",
		"modified file ~/home.txt", "added file ~/new-home",
	}
	wantChanges(t, "second snapshot", info.Changes, want1...)
	if want := int64(len("chm\nmod\nmore\nnew\nc\nnew\ntouch\nhome\nmore\nn\n")); info.Changes.Bytes != want {
		t.Errorf("second snapshot: Bytes %d, want %d", info.Changes.Bytes, want)
	}

	t.Run("bounded", func(t *testing.T) {
		sb := start(t, p, s1)
		mustRun(t, sb, `mkdir many; for i in $(seq 1000 1149); do echo $i > many/f$i; done`)
		info := snapshotInfo(t, sb)
		if len(info.Changes.Paths) != sandbox.MaxChanges || info.Changes.Files != 150 || !info.Changes.Truncated() ||
			info.Changes.Paths[0].Path != "many/f1000" || info.Changes.Bytes != 150*5 {
			t.Errorf("150 new files: %d paths listed (first %v), Files %d, Bytes %d, truncated %v; want %d listed from many/f1000, 150 in all, 750 bytes",
				len(info.Changes.Paths), info.Changes.Paths[:min(1, len(info.Changes.Paths))], info.Changes.Files, info.Changes.Bytes, info.Changes.Truncated(), sandbox.MaxChanges)
		}
	})

	if !caps.Diff {
		_, err := p.Diff(opCtx(t), s0, s1)
		wantErr(t, "Diff without Capabilities.Diff", err, sandbox.ErrUnsupported)
		return
	}
	t.Run("diff", func(t *testing.T) {
		wantChanges(t, "Diff(s0, s1)", diff(t, p, s0, s1), want1...)
		wantChanges(t, "Diff(s0, s0)", diff(t, p, s0, s0))
		wantChanges(t, "Diff(\"\", \"\")", diff(t, p, "", ""))
		wantChanges(t, "Diff(\"\", s0)", diff(t, p, "", s0),
			"added file chm.txt", "added file del.txt", "added file deldir/y", "added file dir/sub/x", "added file f2d",
			"added file keep.txt", "added file mod.txt", "added file rep/x/old.txt", "added file touch.txt", "added file ~/home.txt")
		wantChanges(t, "Diff(s1, s0)", diff(t, p, s1, s0),
			"modified file chm.txt", "added file del.txt", "added file deldir/y", "deleted dir emptydir", "modified file f2d",
			"modified file mod.txt", "deleted file new.txt", "deleted file rep/x/new.txt", "added file rep/x/old.txt", "modified file touch.txt",
			"modified file ~/home.txt", "deleted file ~/new-home")
		_, err := p.Diff(opCtx(t), s0, "no-such-snapshot")
		wantErr(t, "Diff with an unknown snapshot", err, sandbox.ErrNotFound)
	})

	t.Run("diff between forks", func(t *testing.T) {
		a := start(t, p, s0)
		b := start(t, p, s0)
		mustRun(t, a, `echo a > a.txt; echo a >> mod.txt; echo a > "$HOME/fork"`)
		mustRun(t, b, `echo b > b.txt; rm keep.txt; echo b > "$HOME/fork"`)
		sa, sbRef := snapshot(t, a), snapshot(t, b)
		wantChanges(t, "Diff(a, b)", diff(t, p, sa, sbRef),
			"deleted file a.txt", "added file b.txt", "deleted file keep.txt", "modified file mod.txt", "modified file ~/fork")
		wantChanges(t, "Diff(b, a)", diff(t, p, sbRef, sa),
			"added file a.txt", "deleted file b.txt", "added file keep.txt", "modified file mod.txt", "modified file ~/fork")
		// A fork and the branch beside it: s1 against a.
		wantChanges(t, "Diff(a, s1)", diff(t, p, sa, s1),
			"deleted file a.txt", "modified file chm.txt", "deleted file del.txt", "deleted dir deldir", "added dir emptydir", "modified dir f2d", "added file f2d/c",
			"modified file mod.txt", "added file new.txt", "added file rep/x/new.txt", "deleted file rep/x/old.txt", "modified file touch.txt",
			"deleted file ~/fork", "modified file ~/home.txt", "added file ~/new-home")
	})
}
