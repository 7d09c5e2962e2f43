package engine_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// TestWatchHeads: every head move (a run's commit, a write, a restore) is heard once, a run that
// changes nothing is not, and stop ends the calls.
func TestWatchHeads(t *testing.T) {
	v, ctx := newEnvWorkspace(t, "w")
	var mu sync.Mutex
	var got []string
	stop := v.e.WatchHeads(func(ws string) { mu.Lock(); got = append(got, ws); mu.Unlock() })
	heard := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	w0, err := v.e.GetWorkspace(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "echo a > a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "true"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "b", Content: []byte("b")}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.e.Restore(ctx, "w", w0.Head); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	want := []string{w0.ID, w0.ID, w0.ID}
	if !slices.Equal(got, want) {
		t.Errorf("heard %v, want %v (run, write, restore; not the changeless run)", got, want)
	}
	mu.Unlock()
	stop()
	if _, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "echo c > c"}); err != nil {
		t.Fatal(err)
	}
	if n := heard(); n != 3 {
		t.Errorf("heard %d moves after stop, want 3", n)
	}
}
