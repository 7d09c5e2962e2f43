package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/store"
)

// BenchmarkWorkspaceDiff: the diff of a commit that changed one file, in a workspace of 1 file
// and in one of 20,000. Where the provider compares snapshots (local), the cost follows the
// change, so the two should cost about the same; on a provider that lists trees (Vercel) the
// big one costs its listings.
//
//	go test ./engine/ -run '^$' -bench BenchmarkWorkspaceDiff
func BenchmarkWorkspaceDiff(b *testing.B) {
	for _, files := range []int{1, 20000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			v := newEnvB(b)
			name := fmt.Sprintf("bench%d", files)
			if _, err := v.e.CreateWorkspace(b.Context(), engine.CreateWorkspaceRequest{Name: name}); err != nil {
				b.Fatal(err)
			}
			setup := "seq 1 40 > one.txt"
			if files > 1 {
				setup += fmt.Sprintf("; mkdir t && cd t && seq 1 %d | split -l 1 -a 5 - f", files-1)
			}
			for _, script := range []string{setup, "sed -i 's/^20$/twenty/' one.txt"} {
				if _, err := v.e.RunCommand(b.Context(), engine.RunCommandRequest{Workspace: name, Command: "sh", Args: []string{"-c", script}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				d, err := v.e.Diff(b.Context(), engine.DiffRequest{Workspace: name})
				if err != nil {
					b.Fatal(err)
				}
				if len(d.Files) != 1 || d.Files[0].Path != "one.txt" || d.LinesAdded != 1 {
					b.Fatalf("diff: %+v", d.Files)
				}
			}
		})
	}
}

// newEnvB is an engine over a bbolt file and the local provider, for a benchmark.
func newEnvB(b *testing.B) *env {
	b.Helper()
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local")})
	if err != nil {
		b.Fatalf("local provider: %v", err)
	}
	e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv})
	if err != nil {
		b.Fatal(err)
	}
	v := &env{dir: dir, st: st, pv: pv, e: e}
	b.Cleanup(v.close)
	return v
}
