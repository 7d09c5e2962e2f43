//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// tree lists /workspace and the home directory as "path:content" lines (dirs as "path/").
const treeScript = `cd /workspace && find . -mindepth 1 | sort | while read f; do
  if [ -d "$f" ] && [ ! -L "$f" ]; then echo "$f/"; elif [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f:$(cat "$f")"; fi
done; echo ---; cat /home/sandbox/.state 2>/dev/null`

func chainOf(p *Provider, ref sandbox.SnapshotRef) []string {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.index[ref]
}

func layerDirs(t *testing.T, p *Provider) []string {
	t.Helper()
	ents, err := os.ReadDir(p.store.layers)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// TestWhiteoutsAndOpaqueDirsSurviveCommit deletes a file, replaces a directory, renames a file
// and deletes inside a kept directory, then checks the state after a snapshot and a restart —
// and that the older snapshot still shows the old state.
func TestWhiteoutsAndOpaqueDirsSurviveCommit(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, `set -e
echo a > a.txt; mkdir -p d/sub keep; echo x > d/x; echo y > d/sub/y; echo k > keep/k; echo k2 > keep/k2
echo m > mv-src; ln -s a.txt link; echo 1 > /home/sandbox/.state; echo tmp > /tmp/gone`)
	base := snapshot(t, sb)
	if base.ChangedFiles < 8 || base.ChangedBytes < 10 {
		t.Fatalf("base snapshot stats %+v", base)
	}
	wantBase := "./a.txt:a\n./d/\n./d/sub/\n./d/sub/y:y\n./d/x:x\n./keep/\n./keep/k:k\n./keep/k2:k2\n./link -> a.txt\n./mv-src:m\n---\n1"

	sb2 := startSandbox(t, p, sandbox.StartOptions{Snapshot: base.Ref})
	if got := shOK(t, sb2, treeScript); got != wantBase {
		t.Fatalf("restored base:\n%s\nwant:\n%s", got, wantBase)
	}
	if shOK(t, sb2, "ls /tmp") != "" {
		t.Fatal("/tmp survived a snapshot")
	}
	shOK(t, sb2, `set -e
rm a.txt; rm -rf d; mkdir d; echo new > d/z; mv mv-src mv-dst; rm keep/k; echo 2 > /home/sandbox/.state; rm link`)
	second := snapshot(t, sb2)
	want := "./d/\n./d/z:new\n./keep/\n./keep/k2:k2\n./mv-dst:m\n---\n2"

	sb3 := startSandbox(t, p, sandbox.StartOptions{Snapshot: second.Ref})
	if got := shOK(t, sb3, treeScript); got != want {
		t.Fatalf("after deletes:\n%s\nwant:\n%s", got, want)
	}
	if err := sb3.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The layer of the second snapshot holds the marks overlayfs made.
	chain := chainOf(p, second.Ref)
	if len(chain) != 2 {
		t.Fatalf("chain %v, want 2 layers", chain)
	}
	top := filepath.Join(p.store.layers, chain[1], "workspace")
	for _, name := range []string{"a.txt", "mv-src", "keep/k", "link"} {
		fi, err := os.Lstat(filepath.Join(top, name))
		if err != nil || !isWhiteout(fi) {
			t.Errorf("%s in the top layer: %v %v, want a whiteout", name, fi, err)
		}
	}
	if !isOpaque(filepath.Join(top, "d")) {
		t.Errorf("d in the top layer is not opaque")
	}
	// The older snapshot is unchanged.
	sb4 := startSandbox(t, p, sandbox.StartOptions{Snapshot: base.Ref})
	if got := shOK(t, sb4, treeScript); got != wantBase {
		t.Fatalf("base after later commits:\n%s", got)
	}
}

// TestUnchangedMakesNoLayer: a sandbox that changes nothing (only reads, or creates and removes
// again) ends without a snapshot or a layer; what a plain `true` leaves in the upper directory
// (nothing) is no change, while a touch, a chmod and an empty new directory each are.
func TestUnchangedMakesNoLayer(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, "echo a > a; mkdir d")
	s1 := snapshot(t, sb)
	// A file opened for writing and closed, or chmodded and back, is copied up but unchanged.
	for _, script := range []string{"true", "cat a", "touch d/tmp; rm d/tmp; mkdir e; rmdir e",
		`python3 -c "open('a', 'r+').close()"`, "chmod 600 a; chmod 644 a"} {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: s1.Ref})
		shOK(t, sb, script)
		s2 := snapshotAllowUnchanged(t, sb)
		if !s2.Unchanged || s2.Ref != "" || s2.ChangedFiles != 0 {
			t.Fatalf("%q: snapshot %+v, want unchanged", script, s2)
		}
	}
	if n := len(layerDirs(t, p)); n != 1 {
		t.Fatalf("%d layers on disk, want 1", n)
	}
	if refs, _ := p.Snapshots(context.Background()); len(refs) != 1 {
		t.Fatalf("snapshots %v, want only %s", refs, s1.Ref)
	}
	// An empty sandbox with no changes makes no snapshot either.
	s3 := snapshotAllowUnchanged(t, startSandbox(t, p, sandbox.StartOptions{}))
	if !s3.Unchanged {
		t.Fatalf("empty sandbox: %+v", s3)
	}
	// A touch, a chmod, an empty directory: each is a change, and survives.
	for _, c := range []struct{ script, want, check string }{
		{"touch -d 2001-01-01 a", "modified file a", "stat -c %Y a"},
		{"chmod 600 a", "modified file a", "stat -c %a a"},
		{"chmod 700 d", "modified dir d", "stat -c %a d"},
		{"mkdir d/empty", "added dir d/empty", "ls d"},
		{"ln -s a lnk", "added symlink lnk", "readlink lnk"},
		{"echo b > a", "modified file a", "cat a"},
		{`python3 -c "import os; os.setxattr('a', 'user.k', b'v')"`, "modified file a", `python3 -c "import os; print(os.getxattr('a', 'user.k'))"`},
		{"rm a; ln -s d a", "modified symlink a", "readlink a"},
		{"rm -r d", "deleted dir d", "ls"},
	} {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: s1.Ref})
		want := shOK(t, sb, c.script+" && "+c.check)
		info := snapshot(t, sb)
		if ps := info.Changes.Paths; len(ps) != 1 || ps[0].Op+" "+ps[0].Type+" "+ps[0].Path != c.want || info.ChangedFiles != 1 {
			t.Errorf("%q: changes %+v, want %s", c.script, info.Changes.Paths, c.want)
		}
		if got := shOK(t, startSandbox(t, p, sandbox.StartOptions{Snapshot: info.Ref}), c.check); got != want {
			t.Errorf("%q: after the snapshot %q, want %q", c.script, got, want)
		}
	}
}

// TestSquash commits 40 times, deleting and replacing files on the way, and checks that chains
// never exceed MaxLayers and that the squashed state is exactly the expected one.
func TestSquash(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{MaxLayers: 8})
	ref := sandbox.SnapshotRef("")
	var refs []sandbox.SnapshotRef
	for i := range 40 {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
		script := fmt.Sprintf(`set -e
echo %d > f%d
[ -e f%d ] && rm f%d || true
mkdir -p dir%d/sub && echo %d > dir%d/sub/v
if [ -d dir%d ]; then rm -rf dir%d; mkdir dir%d; echo replaced%d > dir%d/r; fi
echo %d > counter
chmod 700 dir%d`, i, i, i-2, i-2, i, i, i, i-3, i-3, i-3, i, i-3, i, i)
		shOK(t, sb, script)
		ref = snapshot(t, sb).Ref
		refs = append(refs, ref)
		if n := len(chainOf(p, ref)); n > p.store.sq.hard {
			t.Fatalf("commit %d: chain of %d layers, more than the inline limit %d", i, n, p.store.sq.hard)
		}
	}
	// The background squasher brings every chain back within MaxLayers.
	p.store.idleSquasher()
	for i, r := range refs {
		if n := len(chainOf(p, r)); n > 8 {
			t.Errorf("snapshot %d: chain of %d layers after the squasher ran, more than MaxLayers 8", i, n)
		}
	}
	sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
	got := shOK(t, sb, "cd /workspace && find . -mindepth 1 | sort | while read f; do if [ -d $f ]; then echo $f/ $(stat -c %a $f); else echo $f:$(cat $f); fi; done")
	var want []string
	want = append(want, "./counter:39")
	for i := 0; i < 40; i++ {
		if i >= 38 {
			want = append(want, fmt.Sprintf("./f%d:%d", i, i))
		}
		switch {
		case i <= 36: // replaced 3 commits later
			want = append(want, fmt.Sprintf("./dir%d/ 755", i), fmt.Sprintf("./dir%d/r:replaced%d", i, i+3))
		default:
			want = append(want, fmt.Sprintf("./dir%d/ 700", i), fmt.Sprintf("./dir%d/sub/ 755", i), fmt.Sprintf("./dir%d/sub/v:%d", i, i))
		}
	}
	sort.Strings(want)
	if got != strings.Join(want, "\n") {
		t.Fatalf("squashed state:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// Deleting every snapshot frees every layer, squashed ones included.
	if err := sb.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := p.DeleteSnapshot(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if left := layerDirs(t, p); len(left) != 0 {
		t.Fatalf("layers left after deleting every snapshot: %v", left)
	}
}

func TestGarbageCollection(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	ctx := context.Background()
	sb := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb, "echo base > base")
	base := snapshot(t, sb).Ref

	fork := func(content string) sandbox.SnapshotRef {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: base})
		shOK(t, sb, "echo "+content+" > "+content)
		return snapshot(t, sb).Ref
	}
	a, b := fork("a"), fork("b")
	if n := len(layerDirs(t, p)); n != 3 {
		t.Fatalf("%d layers, want 3 (base + two forks)", n)
	}
	// The base layer is shared by both forks: deleting the base snapshot keeps it.
	if err := p.DeleteSnapshot(ctx, base); err != nil {
		t.Fatal(err)
	}
	if n := len(layerDirs(t, p)); n != 3 {
		t.Fatalf("after deleting base: %d layers, want 3", n)
	}
	if _, err := p.Start(ctx, sandbox.StartOptions{Snapshot: base}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("start from deleted snapshot: %v", err)
	}
	sa := startSandbox(t, p, sandbox.StartOptions{Snapshot: a})
	if got := shOK(t, sa, "cat base a"); got != "base\na" {
		t.Fatalf("fork a: %q", got)
	}
	_ = sa.Stop(ctx)
	// Deleting a frees only a's own layer.
	if err := p.DeleteSnapshot(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := len(layerDirs(t, p)); n != 2 {
		t.Fatalf("after deleting a: %d layers, want 2", n)
	}
	// A running sandbox keeps its layers alive after its snapshot is deleted.
	sbB := startSandbox(t, p, sandbox.StartOptions{Snapshot: b})
	if err := p.DeleteSnapshot(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := shOK(t, sbB, "cat base b"); got != "base\nb" {
		t.Fatalf("running sandbox lost its layers: %q", got)
	}
	if n := len(layerDirs(t, p)); n != 2 {
		t.Fatalf("while running: %d layers, want 2", n)
	}
	// ... and can still commit on top of them.
	shOK(t, sbB, "echo c > c")
	c := snapshot(t, sbB).Ref
	if n := len(layerDirs(t, p)); n != 3 {
		t.Fatalf("after commit on a deleted parent: %d layers, want 3", n)
	}
	if err := p.DeleteSnapshot(ctx, c); err != nil {
		t.Fatal(err)
	}
	if left := layerDirs(t, p); len(left) != 0 {
		t.Fatalf("layers left: %v", left)
	}
	if refs, _ := p.Snapshots(ctx); len(refs) != 0 {
		t.Fatalf("snapshots left: %v", refs)
	}
	// Deleting twice, or something that never existed, is fine.
	if err := p.DeleteSnapshot(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteSnapshot(ctx, "../../etc"); err != nil {
		t.Fatal(err)
	}
	// A stopped sandbox releases its layers too.
	sb2 := startSandbox(t, p, sandbox.StartOptions{})
	shOK(t, sb2, "echo z > z")
	z := snapshot(t, sb2).Ref
	sb3 := startSandbox(t, p, sandbox.StartOptions{Snapshot: z})
	_ = p.DeleteSnapshot(ctx, z)
	_ = sb3.Stop(ctx)
	if left := layerDirs(t, p); len(left) != 0 {
		t.Fatalf("layers left after stop: %v", left)
	}
}

// TestRestartCleansLeftovers simulates a crash: a sandbox whose processes died without Stop,
// a half-written snapshot file and an orphan layer. A new provider on the directory removes
// them and keeps the real snapshots.
func TestRestartCleansLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p1, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sb := startSandbox(t, p1, sandbox.StartOptions{})
	shOK(t, sb, "echo keep > keep")
	ref := snapshot(t, sb).Ref
	crashed := startSandbox(t, p1, sandbox.StartOptions{Snapshot: ref})
	shOK(t, crashed, "echo lost > lost; mkdir -p d && chmod 000 d")
	// "Crash": the sandbox's processes die, nobody cleans up, the lock goes away.
	ls := crashed.(*localSandbox)
	ls.mu.Lock()
	ls.state = stateEnded
	ls.endReason = "crashed (test)"
	ls.mu.Unlock()
	ls.killAndWait()
	p1.lock.Close()
	_ = os.WriteFile(filepath.Join(dir, "snapshots", "0123456789abcdef.json.tmp"), []byte("{"), 0o600)
	_ = os.MkdirAll(filepath.Join(dir, "layers", "fedcba9876543210", "workspace"), 0o755)

	p2 := newTestProvider(t, Options{Dir: dir})
	if ents, _ := os.ReadDir(filepath.Join(dir, "sandboxes")); len(ents) != 0 {
		t.Fatalf("leftover sandbox directories: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "snapshots", "0123456789abcdef.json.tmp")); err == nil {
		t.Fatal("half-written snapshot file kept")
	}
	if got := layerDirs(t, p2); len(got) != 1 || got[0] != chainOf(p2, ref)[0] {
		t.Fatalf("layers after restart: %v", got)
	}
	refs, _ := p2.Snapshots(context.Background())
	if len(refs) != 1 || refs[0] != ref {
		t.Fatalf("snapshots after restart: %v, want [%s]", refs, ref)
	}
	sb2 := startSandbox(t, p2, sandbox.StartOptions{Snapshot: ref})
	if got := shOK(t, sb2, "ls"); got != "keep" {
		t.Fatalf("restored after restart: %q", got)
	}
	p1.mu.Lock()
	p1.closed = true
	p1.mu.Unlock()
}

// TestDiffAcrossSquash: Diff is exact between any two snapshots of a history whose chains were
// squashed on the way (a squashed chain shares no layer with its ancestors), in both directions.
func TestDiffAcrossSquash(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{MaxLayers: 4})
	ctx := context.Background()
	var refs []sandbox.SnapshotRef
	ref := sandbox.SnapshotRef("")
	squashed := 0
	for i := range 10 {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
		shOK(t, sb, fmt.Sprintf("echo %d > f%d; echo %d > counter; echo %d > $HOME/h", i, i, i, i))
		ref = snapshot(t, sb).Ref
		refs = append(refs, ref)
		p.store.idleSquasher()
		if i > 0 && len(chainOf(p, ref)) < i+1 {
			squashed++
		}
	}
	if squashed == 0 {
		t.Fatal("no chain was squashed; the test needs some")
	}
	for i := range refs {
		for j := range refs {
			c, err := p.Diff(ctx, refs[i], refs[j])
			if err != nil {
				t.Fatalf("Diff(%d, %d): %v", i, j, err)
			}
			var want []string
			if i != j {
				want = append(want, "modified file counter")
			}
			for k := min(i, j) + 1; k <= max(i, j); k++ {
				op := "added"
				if j < i {
					op = "deleted"
				}
				want = append(want, fmt.Sprintf("%s file f%d", op, k))
			}
			if i != j {
				want = append(want, "modified file ~/h")
			}
			var got []string
			for _, ch := range c.Paths {
				got = append(got, ch.Op+" "+ch.Type+" "+ch.Path)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") || c.Files != int64(len(want)) || !c.Known {
				t.Errorf("Diff(%d, %d) (chains %d and %d layers): %v (Files %d), want %v", i, j, len(chainOf(p, refs[i])), len(chainOf(p, refs[j])), got, c.Files, want)
			}
		}
	}
}

// TestChangesInABigDirectory: a directory visit that looks up many names lists its layer
// directories instead of probing each; the result is the same, for Snapshot and for Diff.
func TestChangesInABigDirectory(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, Options{})
	ctx := context.Background()
	ref := sandbox.SnapshotRef("")
	for i := range 3 { // d/ in three layers
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
		shOK(t, sb, fmt.Sprintf(`mkdir -p d; for n in $(seq %d %d); do echo $n > d/f$n; done`, 10+i*20, 29+i*20))
		ref = snapshot(t, sb).Ref
	}
	sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
	shOK(t, sb, `for n in $(seq 10 19); do echo m >> d/f$n; done; for n in $(seq 30 39); do rm d/f$n; done; for n in $(seq 70 89); do echo $n > d/g$n; done`)
	info := snapshot(t, sb)
	var want []string
	for n := 10; n <= 19; n++ {
		want = append(want, fmt.Sprintf("modified file d/f%d", n))
	}
	for n := 30; n <= 39; n++ {
		want = append(want, fmt.Sprintf("deleted file d/f%d", n))
	}
	for n := 70; n <= 89; n++ {
		want = append(want, fmt.Sprintf("added file d/g%d", n))
	}
	lines := func(c sandbox.Changes) string {
		var out []string
		for _, ch := range c.Paths {
			out = append(out, ch.Op+" "+ch.Type+" "+ch.Path)
		}
		return strings.Join(out, "\n")
	}
	if got := lines(info.Changes); got != strings.Join(want, "\n") || info.ChangedFiles != 40 {
		t.Fatalf("snapshot changes:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	d, err := p.Diff(ctx, ref, info.Ref)
	if err != nil || lines(d) != strings.Join(want, "\n") {
		t.Fatalf("Diff: %v\n%s\nwant:\n%s", err, lines(d), strings.Join(want, "\n"))
	}
}

// TestBackgroundSquash: commits only append layers; the squasher shortens every chain over
// MaxLayers (rewriting all snapshots that share the squashed prefix) without changing what any
// snapshot holds; a sandbox started before a squash commits onto the squashed prefix; a restart
// reads the squashed chains; deleting every snapshot leaves no layer behind.
func TestBackgroundSquash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newTestProvider(t, Options{Dir: dir, MaxLayers: 4})
	ref := sandbox.SnapshotRef("")
	var refs []sandbox.SnapshotRef
	var early sandbox.Sandbox
	for i := range 12 {
		sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: ref})
		shOK(t, sb, fmt.Sprintf("echo %d > f%d; echo %d > counter", i, i, i))
		if i == 6 {
			early = startSandbox(t, p, sandbox.StartOptions{Snapshot: ref}) // from snapshot 5, before its squash
		}
		ref = snapshot(t, sb).Ref
		refs = append(refs, ref)
		if n := len(chainOf(p, ref)); n > p.store.sq.hard {
			t.Fatalf("commit %d: chain of %d layers, over the inline limit %d", i, n, p.store.sq.hard)
		}
	}
	p.store.idleSquasher()
	check := func(p *Provider, what string) {
		t.Helper()
		for i, r := range refs {
			if n := len(chainOf(p, r)); n > 4 {
				t.Errorf("%s: snapshot %d has %d layers, more than MaxLayers 4", what, i, n)
			}
			sb := startSandbox(t, p, sandbox.StartOptions{Snapshot: r})
			var want []string
			for k := 0; k <= i; k++ {
				want = append(want, fmt.Sprintf("f%d:%d", k, k))
			}
			want = append(want, fmt.Sprintf("counter:%d", i))
			sort.Strings(want)
			got := shOK(t, sb, "cd /workspace && for f in *; do echo $f:$(cat $f); done | sort")
			if got != strings.Join(want, "\n") {
				t.Errorf("%s: snapshot %d holds\n%s\nwant\n%s", what, i, got, strings.Join(want, "\n"))
			}
			_ = sb.Stop(context.Background())
		}
	}
	check(p, "after the squasher")
	shOK(t, early, "echo late > late")
	late := snapshot(t, early).Ref
	if n, before := len(chainOf(p, late)), 6+1; n >= before {
		t.Errorf("a sandbox started before the squash committed a chain of %d layers; want its squashed prefix replaced (fewer than %d)", n, before)
	}
	lateSb := startSandbox(t, p, sandbox.StartOptions{Snapshot: late})
	if got := shOK(t, lateSb, "cat /workspace/late /workspace/counter"); got != "late\n5" {
		t.Errorf("the late commit holds %q, want late and counter 5", got)
	}
	_ = lateSb.Stop(context.Background())

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p2 := newTestProvider(t, Options{Dir: dir, MaxLayers: 4})
	check(p2, "after a restart")
	for _, r := range append(refs, late) {
		if err := p2.DeleteSnapshot(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "layers")); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("layers left after every snapshot was deleted: %v", names)
	}
}
