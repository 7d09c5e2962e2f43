package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/store"
)

// TestListWorkspacesPages: list_workspaces pages in name order with an opaque cursor, with and
// without a label filter; a cursor that is not one is refused naming the argument.
func TestListWorkspacesPages(t *testing.T) {
	v := newEnv(t)
	ctx := ctxT(t)
	for i, name := range []string{"e", "a", "d", "b", "c"} {
		labels := map[string]string{"n": fmt.Sprint(i % 2)}
		if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	all := func(label string, limit int) [][]string {
		var out [][]string
		cursor := ""
		for {
			ws, next, err := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Label: label, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, w := range ws {
				names = append(names, w.Name)
			}
			out = append(out, names)
			if next == "" {
				return out
			}
			cursor = next
		}
	}
	if got := fmt.Sprint(all("", 2)); got != "[[a b] [c d] [e]]" {
		t.Errorf("pages of 2: %s", got)
	}
	if got := fmt.Sprint(all("n=0", 0)); got != "[[c d e]]" {
		t.Errorf("n=0: %s", got)
	}
	if got := fmt.Sprint(all("n", 4)); got != "[[a b c d] [e]]" {
		t.Errorf("n, pages of 4: %s", got)
	}
	_, _, err := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Cursor: "not-a-cursor"})
	wantArg(t, "a bad cursor", err, "cursor")
	_, _, err = v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Limit: engine.MaxListWorkspaces + 1})
	wantArg(t, "a limit too large", err, "limit")
}

// BenchmarkListWorkspaces: a page of 10 of list_workspaces with 10 and with 10,000 workspaces
// (the same work, so the ratio shows what the total costs; target ≤ 2), the default page (100)
// at 10,000, and a default page filtered by a label that 100 of the 10,000 have.
//
//	go test ./engine/ -run '^$' -bench ListWorkspaces
func BenchmarkListWorkspaces(b *testing.B) {
	open := func(b *testing.B, n int) *engine.Engine {
		dir := b.TempDir()
		st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		now := time.Now().UTC()
		if err := st.Update(func(tx *store.Tx) error {
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("ws_%08d", i)
				c := store.Commit{ID: "c_" + id, Workspace: id, Kind: "create", Message: "create", Created: now}
				if err := tx.PutCommit(c); err != nil {
					return err
				}
				w := store.Workspace{ID: id, Name: fmt.Sprintf("w%05d", i), Provider: "local", Policy: policies.Deny(), Head: c.ID,
					Labels: map[string]string{"team": fmt.Sprint(i % 100)}, Created: now, Updated: now}
				if err := tx.CreateWorkspace(w); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pv.Close() })
		e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		return e
	}
	small, big := open(b, 10), open(b, 10000)
	page := func(e *engine.Engine, label string, limit int) time.Duration {
		t := time.Now()
		ws, _, err := e.ListWorkspaces(context.Background(), engine.ListWorkspacesRequest{Label: label, Limit: limit})
		if err != nil || len(ws) == 0 {
			b.Fatal(len(ws), err)
		}
		return time.Since(t)
	}
	var s, l, d, f time.Duration
	for b.Loop() {
		s += page(small, "", 10)
		l += page(big, "", 10)
		d += page(big, "", 0)
		f += page(big, "team=7", 0)
	}
	n := float64(b.N)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	b.ReportMetric(us(s), "page10-at-10-µs")
	b.ReportMetric(us(l), "page10-at-10k-µs")
	b.ReportMetric(us(d), "page100-at-10k-µs")
	b.ReportMetric(us(f), "label-page-at-10k-µs")
	b.ReportMetric(float64(l)/float64(s), "10k/10")
	b.ReportMetric(0, "ns/op")
}
