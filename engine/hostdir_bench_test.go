package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/benchutil"
)

// BenchmarkImportExport measures, interleaved on the same host tree of 20,000 files and 200 MB
// (10 KiB each, in 100 directories): `cp -a` of the tree (the baseline), create_workspace
// from_host_dir (import, the first commit) and export_workspace as files into a new directory.
// It reports each as ms/op and the ratios import/cp and export/cp (targets ≤ 2).
//
//	go test ./engine/ -run '^$' -bench ImportExport -benchtime 3x
func BenchmarkImportExport(b *testing.B) {
	v := newEnvB(b)
	root := b.TempDir()
	src := filepath.Join(root, "tree")
	chunk := make([]byte, 10<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	for d := 0; d < 100; d++ {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 200; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), chunk, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := engine.WithHostRoots(b.Context(), []string{root})
	var cp, imp, exp time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		if out, err := exec.Command("cp", "-a", src, filepath.Join(root, fmt.Sprintf("cp%d", i))).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v %s", err, out)
		}
		cp += time.Since(t)
		t = time.Now()
		name := fmt.Sprintf("imp%d", i)
		if _, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: name, FromHostDir: src}); err != nil {
			b.Fatal(err)
		}
		imp += time.Since(t)
		t = time.Now()
		if _, err := v.e.ExportWorkspace(ctx, engine.ExportRequest{Workspace: name, HostDir: filepath.Join(root, fmt.Sprintf("exp%d", i))}); err != nil {
			b.Fatal(err)
		}
		exp += time.Since(t)
	}
	benchutil.Report(b, benchutil.Ms{"cp-ms/op": cp, "import-ms/op": imp, "export-ms/op": exp},
		benchutil.Ratios{"import/cp": {imp, cp}, "export/cp": {exp, cp}})
}
