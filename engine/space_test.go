//go:build linux

package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/testutil"
)

// smallFS mounts a small tmpfs (testutil.SmallFS) for a data directory.
func smallFS(t *testing.T, size string) string { return testutil.SmallFS(t, size, "0755") }

// fill leaves about leave bytes free on dir's file system, with one file it returns.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	free, err := engine.FreeSpaceOf(dir)()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := free - leave; n > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
			t.Fatalf("fallocate %d bytes: %v", n, err)
		}
	}
	return p
}

// TestFullDiskRecordFailure: with the data directory's file system full, a run whose end (its
// commit and output) cannot be stored is never reported running: the caller gets a storage error
// or a failed run that says what could not be stored, head stays, GetRun says the same, and once
// space is freed the next run commits; after a restart the run is failed or lost, never running.
func TestFullDiskRecordFailure(t *testing.T) {
	if testProvider() != "local" {
		t.Skip("the file system that fills up is the local provider's")
	}
	dir := smallFS(t, "96m")
	v := openEnv(t, dir, nil)
	closed := false
	defer func() {
		if !closed {
			v.close()
		}
	}()
	v.mkws(t, "w")
	ctx := ctxT(t)
	first := v.sh(t, "w", "echo ok > a")
	if first.Run.CommitID == "" {
		t.Fatalf("the first run made no commit: %+v", first.Run)
	}
	filler := fill(t, dir, 0)

	res, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "seq 1 400000; echo more > b 2>/dev/null; true"})
	var runID string
	switch ee, ok := engine.AsError(err); {
	case err == nil:
		runID = res.Run.ID
		if res.Run.Status != engine.RunFailed || !strings.Contains(res.Run.Error, "could not") {
			t.Fatalf("on a full disk the run reads %s: %q; want failed, saying what could not be stored", res.Run.Status, res.Run.Error)
		}
	case ok && errors.Is(err, engine.ErrStorage):
		runID = ee.Fields.Run
		if !strings.Contains(ee.Msg, "could not record") || !strings.Contains(ee.Msg, "head is unchanged") {
			t.Fatalf("storage error: %v", err)
		}
	default:
		t.Fatalf("on a full disk: %v, want a failed run or a storage error", err)
	}
	g, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: runID})
	t.Logf("the full-disk run: %s: %s", g.Run.Status, g.Run.Error)
	if err != nil || !g.Run.Done() {
		t.Fatalf("get_run after the full-disk run: %+v, %v; want it ended", g.Run, err)
	}
	w, err := v.e.GetWorkspace(ctx, "w")
	if err != nil || w.Head != first.Run.CommitID {
		t.Fatalf("head %q (%v) after the full-disk run, want it unchanged at %s", w.Head, err, first.Run.CommitID)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	again := v.sh(t, "w", "echo again > c")
	if again.Run.Status != engine.RunExited || again.Run.CommitID == "" {
		t.Fatalf("once space was freed the run reads %s (commit %q, error %q)", again.Run.Status, again.Run.CommitID, again.Run.Error)
	}

	v.close()
	closed = true
	v2 := openEnv(t, dir, nil)
	defer v2.close()
	g, err = v2.e.GetRun(ctx, engine.GetRunRequest{ID: runID})
	if err != nil || (g.Run.Status != engine.RunFailed && g.Run.Status != engine.RunLost) {
		t.Fatalf("after a restart the full-disk run reads %+v, %v; want failed or lost", g.Run, err)
	}
	if w, err := v2.e.GetWorkspace(ctx, "w"); err != nil || w.Head != again.Run.CommitID {
		t.Fatalf("after a restart head is %q (%v), want %s", w.Head, err, again.Run.CommitID)
	}
}

// TestDiskReserve: below the reserve, a run in flight is stopped with the reason, and runs,
// writes, edits, imports and sessions are refused with a storage error naming the reserve;
// once space is freed, runs work again.
func TestDiskReserve(t *testing.T) {
	if testProvider() != "local" {
		t.Skip("the file system that fills up is the local provider's")
	}
	dir := smallFS(t, "96m")
	v := openEnv(t, dir, func(o *engine.Options) {
		o.FreeSpace, o.DiskReserve, o.DataDir = engine.FreeSpaceOf(dir), 32<<20, dir
	})
	t.Cleanup(v.close)
	v.mkws(t, "w")
	ctx := ctxT(t)
	bg := v.background(t, "w", "sleep 60")
	time.Sleep(300 * time.Millisecond)
	filler := fill(t, dir, 16<<20)
	g, err := v.e.GetRun(ctx, engine.GetRunRequest{ID: bg.Run.ID, Wait: 30 * time.Second})
	if err != nil || g.Run.Status != engine.RunCancelled || !strings.Contains(g.Run.Error, "below its reserve") {
		t.Fatalf("the run in flight below the reserve: %+v, %v; want cancelled, naming the reserve", g.Run, err)
	}
	if g.Run.CommitID != "" {
		t.Errorf("the stopped run committed %s", g.Run.CommitID)
	}
	wantStorage := func(what string, err error) {
		t.Helper()
		ee, ok := engine.AsError(err)
		if !ok || !errors.Is(err, engine.ErrStorage) || !strings.Contains(ee.Msg, "below its reserve") || !strings.Contains(ee.Msg, dir) {
			t.Errorf("%s below the reserve: %v, want a storage error naming the reserve and %s", what, err, dir)
		}
	}
	_, err = v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "true"})
	wantStorage("run_command", err)
	_, err = v.e.WriteFiles(ctx, "w", engine.WriteRequest{Files: []engine.WriteFile{{Path: "x", Content: []byte("x")}}})
	wantStorage("write_files", err)
	_, err = v.e.OpenSession(ctx, alice, engine.OpenSessionRequest{Workspace: "w"})
	wantStorage("open_session", err)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := v.sh(t, "w", "echo ok > f"); r.Run.Status != engine.RunExited || r.Run.CommitID == "" {
		t.Fatalf("once space was freed: %+v", r.Run)
	}
}
