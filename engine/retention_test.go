package engine_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
	"github.com/sandkit/sandkit-mcp/store"
)

// retentionEnv is an engine over a real bbolt file and the test provider with retention r
// (set, when given, sets more options).
func retentionEnv(t *testing.T, r engine.Retention, set func(*engine.Options)) *env {
	t.Helper()
	v := openEnv(t, t.TempDir(), func(o *engine.Options) {
		o.Retention = r
		if set != nil {
			set(o)
		}
	})
	t.Cleanup(v.close)
	return v
}

// commitIDs is the ids of cs, in order.
func commitIDsOf(cs []engine.Commit) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// storedCommits is every commit of workspace ws the store holds, oldest first.
func (v *env) storedCommits(t *testing.T, ws string) []string {
	t.Helper()
	id := v.getws(t, ws).ID
	var out []string
	if err := v.st.View(func(tx *store.Tx) error {
		cs, err := tx.Commits(id)
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshots is the provider's snapshots, sorted.
func (v *env) snapshots(t *testing.T) []string {
	t.Helper()
	refs, err := v.pv.Snapshots(ctxT(t))
	if errors.Is(err, sandbox.ErrUnsupported) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, string(r))
	}
	slices.Sort(out)
	return out
}

// waitStored waits (the engine prunes after commits in the background) until workspace ws holds
// want commits, and fails with what it holds when that does not happen within 20 seconds.
func (v *env) waitStored(t *testing.T, ws string, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := v.storedCommits(t, ws)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workspace %s holds commits %v, want %v", ws, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually reports whether ok holds within 20 seconds, polling.
func eventually(ok func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// wantPruned fails unless err is ErrNotFound saying that commit was pruned by policy, and naming
// workspace_history.
func wantPruned(t *testing.T, what string, err error, commit, policy string) {
	t.Helper()
	if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("%s: %v, want ErrNotFound", what, err)
	}
	var ee *engine.Error
	for _, part := range []string{commit, "was pruned by the retention policy (" + policy + ")", "workspace_history"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%s: error %q does not say %q", what, err, part)
		}
	}
	if errors.As(err, &ee) && (ee.Fields.Commit != commit || len(ee.Next) == 0 || ee.Next[0].Tool != "workspace_history") {
		t.Errorf("%s: fields %+v next %+v, want the commit and a workspace_history call", what, ee.Fields, ee.Next)
	}
}

// TestRetentionKeepCommits makes ten commits under keep_commits=3 and checks what is left: the
// newest three and the first commit, history ending with a note, clear errors for the pruned
// commits, run records intact, and the pruned commits' snapshots deleted. With retention off
// (the first case) everything stays, which shows the checks can fail.
func TestRetentionKeepCommits(t *testing.T) {
	t.Parallel()
	for _, keep := range []int{0, 3} {
		t.Run(fmt.Sprintf("keep_commits=%d", keep), func(t *testing.T) {
			t.Parallel()
			v := retentionEnv(t, engine.Retention{KeepCommits: keep}, nil)
			ctx := ctxT(t)
			root := v.mkws(t, "w").Head
			var cs []string
			var runs []engine.RunResult
			for i := 1; i <= 10; i++ {
				r := v.sh(t, "w", fmt.Sprintf("echo %d > f%d", i, i))
				if r.Run.CommitID == "" {
					t.Fatalf("run %d made no commit", i)
				}
				cs = append(cs, r.Run.CommitID)
				runs = append(runs, r)
			}
			want := append([]string{root}, cs...)
			if keep > 0 {
				want = append([]string{root}, cs[len(cs)-keep:]...)
			}
			// Oldest first by creation; the first commit is the oldest.
			v.waitStored(t, "w", want)

			page, err := v.e.HistoryOf(ctx, "w", 0)
			if err != nil {
				t.Fatal(err)
			}
			hist := commitIDsOf(page.Commits)
			if keep == 0 {
				if len(hist) != 11 || page.PrunedBy != "" {
					t.Fatalf("history without retention: %v, pruned by %q; want all 11 commits", hist, page.PrunedBy)
				}
				if got := v.snapshots(t); v.pv.Name() == "local" && len(got) != 10 {
					t.Errorf("snapshots without retention: %d, want 10", len(got))
				}
				return
			}
			wantHist := []string{cs[9], cs[8], cs[7]}
			if !slices.Equal(hist, wantHist) || page.PrunedBy != "keep_commits=3" || page.More {
				t.Fatalf("history = %v (more %v, pruned by %q); want %v, pruned by keep_commits=3", hist, page.More, page.PrunedBy, wantHist)
			}
			// A limit that ends on a kept commit says there is more; one that reaches the gap does not.
			if p, _ := v.e.HistoryOf(ctx, "w", 2); !p.More || p.PrunedBy != "" {
				t.Errorf("history limit 2: more %v, pruned by %q; want more", p.More, p.PrunedBy)
			}
			if p, _ := v.e.HistoryOf(ctx, "w", 3); p.More || p.PrunedBy != "keep_commits=3" {
				t.Errorf("history limit 3: more %v, pruned by %q; want the gap", p.More, p.PrunedBy)
			}

			pruned := cs[4]
			_, _, err = v.e.Restore(ctx, "w", pruned)
			wantPruned(t, "restore a pruned commit", err, pruned, "keep_commits=3")
			_, err = v.e.Fork(ctx, "w", pruned, "from-pruned")
			wantPruned(t, "fork a pruned commit", err, pruned, "keep_commits=3")
			_, err = v.e.ReadFileAt(ctx, "w", pruned, "f5", 0, 0)
			wantPruned(t, "read_file at a pruned commit", err, pruned, "keep_commits=3")
			_, err = v.e.Diff(ctx, engine.DiffRequest{Workspace: "w", From: pruned})
			wantPruned(t, "diff from a pruned commit", err, pruned, "keep_commits=3")
			// The default from of the oldest kept commit is its pruned parent.
			_, err = v.e.Diff(ctx, engine.DiffRequest{Workspace: "w", To: cs[7]})
			wantPruned(t, "diff to a commit whose parent is pruned", err, cs[6], "keep_commits=3")
			if err != nil && !strings.Contains(err.Error(), "the parent of "+cs[7]) {
				t.Errorf("diff's default from: %q does not say whose parent it is", err)
			}
			// A commit that never was is still just unknown.
			if _, _, err := v.e.Restore(ctx, "w", "c_aaaaaaaaaaaaaaaa"); !errors.Is(err, engine.ErrNotFound) || strings.Contains(err.Error(), "pruned") {
				t.Errorf("restore an unknown commit: %v, want not found without pruned", err)
			}

			// Run records stay readable, naming the commit they made.
			got, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: runs[4].Run.ID})
			if err != nil || got.Run.CommitID != pruned || stdout(got) != stdout(runs[4]) {
				t.Errorf("get_run of a run whose commit is pruned: %+v, %v", got.Run, err)
			}

			// The snapshots left are exactly the kept commits' (the first one, empty, has none).
			if v.pv.Name() == "local" {
				var wantSnaps []string
				for _, c := range page.Commits {
					wantSnaps = append(wantSnaps, c.Snapshot)
				}
				slices.Sort(wantSnaps)
				// The snapshots go after the commits, in the background.
				if !eventually(func() bool { return slices.Equal(v.snapshots(t), wantSnaps) }) {
					t.Errorf("provider snapshots after pruning %v, want the kept commits' %v", v.snapshots(t), wantSnaps)
				}
			}

			// The kept commits work: the head has every file, an older kept commit reads, the
			// first commit restores.
			kept := slices.Clone(cs)
			cat := v.sh(t, "w", "cat f1 f10")
			if out := stdout(cat); out != "1\n10\n" {
				t.Errorf("head after pruning: %q", out)
			}
			if cat.Run.CommitID != "" { // a provider that cannot tell commits anyway
				kept = append(kept, cat.Run.CommitID)
			}
			if fc, err := v.e.ReadFileAt(ctx, "w", cs[7], "f8", 0, 0); err != nil || string(fc.Data) != "8\n" {
				t.Errorf("read f8 at a kept commit: %q, %v", fc.Data, err)
			}
			if _, rc, err := v.e.Restore(ctx, "w", root); err != nil || rc.Source != root {
				t.Fatalf("restore the first commit: %+v, %v", rc, err)
			} else {
				// The restore is a commit too: the oldest of the three newest goes.
				kept = append(kept, rc.ID)
				v.waitStored(t, "w", append([]string{root}, kept[len(kept)-3:]...))
			}
		})
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// TestRetentionKeepDays: under keep_days=2 nothing goes while the commits are young; two days
// on the periodic sweep (not a new commit) prunes those older than two days; much later only
// the head and the first commit are left.
func TestRetentionKeepDays(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	v := retentionEnv(t, engine.Retention{KeepDays: 2}, func(o *engine.Options) {
		o.Now = clk.Now
		o.RetentionInterval = 20 * time.Millisecond
	})
	ctx := ctxT(t)
	root := v.mkws(t, "w").Head
	var cs []string
	for i := range 5 {
		if i == 3 {
			time.Sleep(5 * time.Millisecond)
			clk.set(time.Now().Add(48 * time.Hour)) // two days after a moment between the third and the fourth
			time.Sleep(5 * time.Millisecond)
		}
		cs = append(cs, v.sh(t, "w", fmt.Sprintf("echo %d > f%d", i, i)).Run.CommitID)
	}
	v.waitStored(t, "w", []string{root, cs[3], cs[4]})
	page, err := v.e.HistoryOf(ctx, "w", 0)
	if err != nil || !slices.Equal(commitIDsOf(page.Commits), []string{cs[4], cs[3]}) || page.PrunedBy != "keep_days=2" {
		t.Fatalf("history %v, pruned by %q, %v; want the two young commits, pruned by keep_days=2", commitIDsOf(page.Commits), page.PrunedBy, err)
	}
	_, _, err = v.e.Restore(ctx, "w", cs[1])
	wantPruned(t, "restore a commit older than two days", err, cs[1], "keep_days=2")

	clk.set(time.Now().Add(100 * 24 * time.Hour))
	if _, err := v.e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := v.storedCommits(t, "w"); !slices.Equal(got, []string{root, cs[4]}) {
		t.Errorf("long after: commits %v, want the first and the head only", got)
	}
}

// TestRetentionBothBounds: with keep_commits=2 and keep_days=1 a commit goes only when it is
// outside both: young commits all stay, old ones beyond the newest two go.
func TestRetentionBothBounds(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	v := retentionEnv(t, engine.Retention{KeepCommits: 2, KeepDays: 1}, func(o *engine.Options) { o.Now = clk.Now })
	ctx := ctxT(t)
	root := v.mkws(t, "w").Head
	want := []string{root}
	for i := range 5 {
		want = append(want, v.sh(t, "w", fmt.Sprintf("echo %d > f", i)).Run.CommitID)
	}
	if _, err := v.e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := v.storedCommits(t, "w"); !slices.Equal(got, want) {
		t.Fatalf("young commits: %v, want all of them %v (keep_days keeps them)", got, want)
	}
	clk.set(time.Now().Add(25 * time.Hour))
	n, err := v.e.Prune(ctx)
	if err != nil || n != 3 {
		t.Fatalf("prune a day later: %d, %v; want 3", n, err)
	}
	if got := v.storedCommits(t, "w"); !slices.Equal(got, []string{root, want[4], want[5]}) {
		t.Errorf("a day later: %v, want the first and the newest two", got)
	}
}

// TestRetentionForks: a commit another workspace was forked from stays while the fork exists;
// the fork works whatever its source prunes, and once the fork is deleted the source prunes the
// commit too.
func TestRetentionForks(t *testing.T) {
	t.Parallel()
	v := retentionEnv(t, engine.Retention{KeepCommits: 1}, nil)
	ctx := ctxT(t)
	root := v.mkws(t, "w").Head
	c1 := v.sh(t, "w", "echo v1 > f").Run.CommitID
	fork, err := v.e.Fork(ctx, "w", "", "w-fork")
	if err != nil {
		t.Fatal(err)
	}
	c2 := v.sh(t, "w", "echo v2 > f").Run.CommitID
	c3 := v.sh(t, "w", "echo v3 > f").Run.CommitID
	v.waitStored(t, "w", []string{root, c1, c3})
	_, _, err = v.e.Restore(ctx, "w", c2)
	wantPruned(t, "restore c2", err, c2, "keep_commits=1")
	if got := stdout(v.sh(t, "w-fork", "cat f")); got != "v1\n" {
		t.Fatalf("the fork after its source pruned: %q", got)
	}
	f1 := v.sh(t, "w-fork", "echo f1 > f").Run.CommitID
	f2 := v.sh(t, "w-fork", "echo f2 > f").Run.CommitID
	v.waitStored(t, "w-fork", []string{fork.Head, f2})
	_, _, err = v.e.Restore(ctx, "w-fork", f1)
	wantPruned(t, "restore the fork's pruned commit", err, f1, "keep_commits=1")
	if _, _, err := v.e.Restore(ctx, "w-fork", fork.Head); err != nil {
		t.Fatalf("restore the fork's first commit: %v", err)
	}
	if got := stdout(v.sh(t, "w-fork", "cat f")); got != "v1\n" {
		t.Fatalf("the fork's first commit after its source pruned: %q", got)
	}
	if err := v.e.DeleteWorkspace(ctx, "w-fork"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := v.storedCommits(t, "w"); !slices.Equal(got, []string{root, c3}) {
		t.Errorf("after deleting the fork: %v, want the first commit and the head", got)
	}
}

// TestRetentionOpenSession: pruning while a session is open leaves its base (the head) alone;
// the session commits, and the base goes afterwards.
func TestRetentionOpenSession(t *testing.T) {
	t.Parallel()
	v := retentionEnv(t, engine.Retention{KeepCommits: 1}, nil)
	ctx := ctxT(t)
	root := v.mkws(t, "w").Head
	v.sh(t, "w", "echo 1 > f")
	base := v.sh(t, "w", "echo 2 > f").Run.CommitID
	v.waitStored(t, "w", []string{root, base})
	s := v.open(t, alice, "w", time.Minute)
	if s.Base != base {
		t.Fatalf("session base %s, want the head %s", s.Base, base)
	}
	v.sexec(t, alice, s.ID, "echo 3 > f")
	if _, err := v.e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := v.storedCommits(t, "w"); !slices.Equal(got, []string{root, base}) {
		t.Fatalf("while the session is open: %v, want %v", got, []string{root, base})
	}
	c, err := v.e.CommitSession(ctx, alice, s.ID, "three")
	if err != nil {
		t.Fatalf("commit_session after pruning: %v", err)
	}
	v.waitStored(t, "w", []string{root, c.ID})
	if got := stdout(v.sh(t, "w", "cat f")); got != "3\n" {
		t.Errorf("after the session: %q", got)
	}
}

// dirUsage is the number of entries directly in dir and the bytes of the regular files under it.
func dirUsage(t *testing.T, dir string) (entries int, bytes int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The squasher and the snapshot GC may remove layers meanwhile: what is gone is not counted.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			bytes += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(ents), bytes
}

// TestRetentionFreesLayers: on the local provider, pruning a commit whose layer no kept
// snapshot shares deletes the layer: a big file written, then abandoned by a restore, leaves the
// disk once its commit is pruned.
func TestRetentionFreesLayers(t *testing.T) {
	t.Parallel()
	if testProvider() != "local" {
		t.Skip("layers are the local provider's")
	}
	v := retentionEnv(t, engine.Retention{KeepCommits: 2}, nil)
	ctx := ctxT(t)
	layers := filepath.Join(v.dir, "local", "layers")
	root := v.mkws(t, "w").Head
	c1 := v.sh(t, "w", "echo small > f").Run.CommitID
	v.sh(t, "w", "head -c 4194304 /dev/urandom > big")
	n0, b0 := dirUsage(t, layers)
	if b0 < 4<<20 {
		t.Fatalf("layers hold %d bytes after writing 4 MiB", b0)
	}
	_, rc, err := v.e.Restore(ctx, "w", c1)
	if err != nil {
		t.Fatal(err)
	}
	cb := v.sh(t, "w", "echo b > g").Run.CommitID
	cc := v.sh(t, "w", "echo c > h").Run.CommitID
	v.waitStored(t, "w", []string{root, cb, cc})
	_, _, err = v.e.Restore(ctx, "w", rc.ID)
	wantPruned(t, "restore the restore commit", err, rc.ID, "keep_commits=2")
	// Kept: c1's layer (under cb and cc), cb's and cc's; the big file's layer is gone (in the
	// background, after the commits).
	var n1 int
	var b1 int64
	if !eventually(func() bool { n1, b1 = dirUsage(t, layers); return b1 < 1<<20 && n1 == n0+1 }) {
		t.Errorf("layers after pruning: %d entries, %d bytes; want %d entries (the big layer gone, cb's and cc's added) and well under 1 MiB",
			n1, b1, n0+1)
	}
	if got := stdout(v.sh(t, "w", "cat f g h; ls")); got != "small\nb\nc\nf\ng\nh\n" {
		t.Errorf("head after pruning: %q", got)
	}
}

// TestRetentionCrashBeforeSnapshots: the store's deletion comes first, the snapshots' after; a
// crash between the two leaves unreferenced snapshots, which the next start deletes.
func TestRetentionCrashBeforeSnapshots(t *testing.T) {
	t.Parallel()
	if testProvider() != "local" {
		t.Skip("counts the local provider's snapshots")
	}
	dir := t.TempDir()
	pv := localProvider(t, dir)
	v, err := openOver(t, dir, pv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	ctx := ctxT(t)
	w := v.mkws(t, "w")
	var cs []engine.Commit
	for i := range 4 {
		r := v.sh(t, "w", fmt.Sprintf("echo %d > f", i))
		cs = append(cs, engine.Commit{ID: r.Run.CommitID})
	}
	page, err := v.e.HistoryOf(ctx, "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	snapOf := map[string]string{}
	for _, c := range page.Commits {
		snapOf[c.ID] = c.Snapshot
	}
	if got := v.snapshots(t); len(got) != 4 {
		t.Fatalf("snapshots before: %v", got)
	}
	// What a prune that crashed after its transaction leaves: the commits gone, their snapshots not.
	if err := v.st.Update(func(tx *store.Tx) error {
		return tx.PruneCommits(w.ID, []string{cs[0].ID, cs[1].ID}, "keep_commits=2", time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	if got := v.snapshots(t); len(got) != 4 {
		t.Fatalf("snapshots after the store's part: %v", got)
	}
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(ctx, engine.Options{Store: v.st, Provider: v.pv})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e
	want := []string{snapOf[cs[2].ID], snapOf[cs[3].ID]}
	slices.Sort(want)
	if got := v.snapshots(t); !slices.Equal(got, want) {
		t.Errorf("snapshots after restart: %v, want the kept commits' %v", got, want)
	}
	if got := stdout(v.sh(t, "w", "cat f")); got != "3\n" {
		t.Errorf("head after restart: %q", got)
	}
}

// TestRetentionExportOrigin: export as git-branch needs the import the workspace (or the one it
// was forked from) began with; retention keeps it, and the export finds it across the gaps.
func TestRetentionExportOrigin(t *testing.T) {
	t.Parallel()
	v := retentionEnv(t, engine.Retention{KeepCommits: 1}, nil)
	root := ownerRoot(t)
	repo := filepath.Join(root, "proj")
	base := makeRepo(t, repo)
	ctx := rootCtx(t, root)
	imp, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "gb", FromHostDir: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v.sh(t, "gb", fmt.Sprintf("echo '// %d' >> src/main.go", i))
	}
	if _, err := v.e.Fork(ctx, "gb", "", "gbf"); err != nil {
		t.Fatal(err)
	}
	last := v.sh(t, "gb", "echo '// 3' >> src/main.go").Run.CommitID
	v.sh(t, "gbf", "echo forked > forked.txt")
	v.sh(t, "gbf", "echo again >> forked.txt")
	if _, err := v.e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := v.storedCommits(t, "gb"); len(got) != 3 || got[0] != imp.Head || got[2] != last {
		t.Fatalf("gb holds %v, want the import, the fork's source and the head", got)
	}
	for _, ws := range []string{"gb", "gbf"} {
		rep, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: ws, HostDir: repo, As: engine.ExportGitBranch})
		if err != nil {
			t.Fatalf("export %s: %v", ws, err)
		}
		if rep.GitBase != base {
			t.Errorf("export %s: base %s, want the import's HEAD %s", ws, rep.GitBase, base)
		}
		if got := gitT(t, repo, "rev-parse", "sandkit/"+ws+"~2"); got != base {
			t.Errorf("export %s: the branch starts at %s, want the import's HEAD %s", ws, got, base)
		}
	}
	if got := gitT(t, repo, "show", "sandkit/gbf:forked.txt"); got != "forked\nagain" {
		t.Errorf("forked.txt on the fork's branch: %q", got)
	}
	if got := gitT(t, repo, "show", "sandkit/gb:src/main.go"); got != "package main\n// 0\n// 1\n// 2\n// 3" {
		t.Errorf("src/main.go on gb's branch: %q", got)
	}
}

// TestRetentionFreesSquashedHistory: in a linear history every snapshot's chain holds the older
// layers, so pruning frees them only once the squasher has merged a kept chain's prefix; then
// the pruned snapshots' old layers go. Ten commits each overwrite a 512 KiB file: kept are the
// newest two (and the empty first commit), so the layers end near three copies, where retention
// off keeps all ten (the keep_commits=0 case, which shows the check can fail).
func TestRetentionFreesSquashedHistory(t *testing.T) {
	t.Parallel()
	if testProvider() != "local" {
		t.Skip("layers are the local provider's")
	}
	for _, keep := range []int{0, 2} {
		t.Run(fmt.Sprintf("keep_commits=%d", keep), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local"), MaxLayers: 2})
			if err != nil {
				t.Fatal(err)
			}
			localtest.StopLiveAtCleanup(t, pv)
			v, err := openOver(t, dir, pv, func(o *engine.Options) { o.Retention = engine.Retention{KeepCommits: keep} })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.close)
			v.mkws(t, "w")
			for range 10 {
				v.sh(t, "w", "head -c 524288 /dev/urandom > big")
			}
			layers := filepath.Join(dir, "local", "layers")
			// A bound on the wait, not a speed check: the squasher runs at low priority, and a
			// loaded machine gives it little.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				// Prune again as the squasher goes: each squash lets more old layers go.
				if _, err := v.e.Prune(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				_, b := dirUsage(t, layers)
				if keep == 0 {
					if b < 10*524288 {
						t.Fatalf("retention off: layers hold %d bytes, want all ten copies", b)
					}
					return
				}
				if b <= 4*524288 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("layers still hold %d bytes (%d copies of the file), want at most 4", b, b/524288)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if got := stdout(v.sh(t, "w", "wc -c < big")); got != "524288\n" {
				t.Errorf("head after pruning: %q", got)
			}
		})
	}
}

// TestRetentionAtStart: a policy configured for a data dir that already has history applies at
// start, without waiting for a commit.
func TestRetentionAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v := open(t, dir)
	root := v.mkws(t, "w").Head
	var cs []string
	for i := range 4 {
		cs = append(cs, v.sh(t, "w", fmt.Sprintf("echo %d > f", i)).Run.CommitID)
	}
	v.close()
	v = openEnv(t, dir, func(o *engine.Options) { o.Retention = engine.Retention{KeepCommits: 2} })
	t.Cleanup(v.close)
	v.waitStored(t, "w", []string{root, cs[2], cs[3]})
}
