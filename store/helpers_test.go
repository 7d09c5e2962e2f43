package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
)

// t0 is a fixed instant so that records compare equal after a JSON round trip.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

// openStore opens a fresh state file in a temporary directory, with fsync on as in production,
// and closes it when the test ends.
func openStore(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state.db"))
}

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// createWorkspaces creates the workspaces wss in tx, in order.
func createWorkspaces(tx *Tx, wss ...Workspace) error {
	for _, w := range wss {
		if err := tx.CreateWorkspace(w); err != nil {
			return err
		}
	}
	return nil
}

func mustUpdate(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func ws(id, name string) Workspace {
	return Workspace{
		ID: id, Name: name, Provider: "local", Policy: policies.Deny(),
		Labels: map[string]string{"team": "a"}, ExposedPorts: []int{3000},
		Head: "c_" + id, Created: t0, Updated: t0,
	}
}

func commit(id, workspace, parent, snapshot string, minute int) Commit {
	return Commit{ID: id, Workspace: workspace, Parent: parent, Snapshot: snapshot, Kind: CommitRun,
		Message: "run: " + id, Created: at(minute)}
}

func run(id, workspace, key string, minute int) Run {
	code := 0
	return Run{ID: id, Workspace: workspace, Command: "echo", Args: []string{id}, Status: RunExited,
		ExitCode: &code, IdempotencyKey: key, Created: at(minute)}
}

// errAny as a wantErr target accepts any non-nil error.
var errAny = errors.New("any error")

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// wantErr fails unless err matches target (nil target: no error; errAny: any error) and, for a
// non-nil target, its message contains every part.
func wantErr(t testing.TB, what string, err, target error, parts ...string) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error: %v", what, err)
		}
		return
	}
	if err == nil || (target != errAny && !errors.Is(err, target)) {
		t.Fatalf("%s: error %v, want one wrapping %q", what, err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: error %q does not mention %q", what, err, p)
		}
	}
}

func ids[T any](items []T, id func(T) string) string {
	var out []string
	for _, it := range items {
		out = append(out, id(it))
	}
	return strings.Join(out, ",")
}

func workspaceIDs(ws []Workspace) string { return ids(ws, func(w Workspace) string { return w.ID }) }
func commitIDs(cs []Commit) string       { return ids(cs, func(c Commit) string { return c.ID }) }
func runIDs(rs []Run) string             { return ids(rs, func(r Run) string { return r.ID }) }

// bucketKeys lists every key of every bucket, nested ones as "parent/child", for leak checks.
func bucketKeys(t testing.TB, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	mustView(t, s, func(tx *Tx) error {
		for _, name := range dataBuckets() {
			b := tx.tx.Bucket([]byte(name))
			_ = b.ForEach(func(k, v []byte) error {
				if v == nil {
					out[name] = append(out[name], string(k)+"/")
					_ = b.Bucket(k).ForEach(func(kk, _ []byte) error {
						out[name] = append(out[name], fmt.Sprintf("%s/%s", k, kk))
						return nil
					})
					return nil
				}
				out[name] = append(out[name], string(k))
				return nil
			})
		}
		return nil
	})
	return out
}
