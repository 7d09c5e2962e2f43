package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox"
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
				if got := v.snapshots(t); !slices.Equal(got, wantSnaps) {
					t.Errorf("provider snapshots after pruning %v, want the kept commits' %v", got, wantSnaps)
				}
			}

			// The kept commits work: the head has every file, an older kept commit reads, the
			// first commit restores.
			if out := stdout(v.sh(t, "w", "cat f1 f10")); out != "1\n10\n" {
				t.Errorf("head after pruning: %q", out)
			}
			if fc, err := v.e.ReadFileAt(ctx, "w", cs[7], "f8", 0, 0); err != nil || string(fc.Data) != "8\n" {
				t.Errorf("read f8 at a kept commit: %q, %v", fc.Data, err)
			}
			if _, rc, err := v.e.Restore(ctx, "w", root); err != nil || rc.Source != root {
				t.Fatalf("restore the first commit: %+v, %v", rc, err)
			} else {
				// The restore is a commit too: the oldest of the three newest goes.
				v.waitStored(t, "w", []string{root, cs[8], cs[9], rc.ID})
			}
		})
	}
}
