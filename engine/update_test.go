package engine_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

// TestUpdateWorkspace: update_workspace renames (unique names), replaces labels and exposed
// ports, each as one compare-and-swap that changes all it was given or nothing; while a session
// holds the workspace, name and labels still change (by anyone), exposed ports do not.
func TestUpdateWorkspace(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := ctxT(t)
	a, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "alpha", Labels: map[string]string{"team": "a"}, ExposedPorts: []int{8780}})
	if err != nil {
		t.Fatal(err)
	}
	v.mkws(t, "beta")
	v.sh(t, "alpha", "echo kept > f.txt")
	update := func(req engine.UpdateWorkspaceRequest) (engine.Workspace, error) {
		t.Helper()
		return v.e.UpdateWorkspace(ctx, req)
	}
	mustUpdate := func(req engine.UpdateWorkspaceRequest) engine.Workspace {
		t.Helper()
		w, err := update(req)
		if err != nil {
			t.Fatalf("update_workspace %+v: %v", req, err)
		}
		return w
	}
	argOf := func(err error) string {
		ee, _ := engine.AsError(err)
		if ee == nil {
			return ""
		}
		return ee.Fields.Argument
	}
	get := func(ref string) engine.Workspace {
		t.Helper()
		w, err := v.e.GetWorkspace(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "alpha"})
	wantErr(t, "nothing to change", err, engine.ErrInvalid, "name, labels or exposed_ports")
	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "nope", Name: ptr("x")})
	wantErr(t, "an unknown workspace", err, engine.ErrNotFound, "nope")

	// Rename: the old name stops resolving, the id, head and files stay.
	before := get("alpha")
	w := mustUpdate(engine.UpdateWorkspaceRequest{Workspace: "alpha", Name: ptr("gamma")})
	if w.ID != a.ID || w.Name != "gamma" || w.Head != before.Head || w.Version != before.Version+1 {
		t.Fatalf("renamed: %+v (before %+v)", w, before)
	}
	if _, err := v.e.GetWorkspace(ctx, "alpha"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the old name still resolves: %v", err)
	}
	if h := v.history(t, "gamma"); len(h) != 2 {
		t.Fatalf("a rename made a commit: %d commits", len(h))
	}
	if r := v.sh(t, "gamma", "cat f.txt"); stdout(r) != "kept\n" {
		t.Fatalf("the renamed workspace's files: %q", stdout(r))
	}
	mustUpdate(engine.UpdateWorkspaceRequest{Workspace: a.ID, Name: ptr("gamma")}) // its own name: fine

	// A taken name, or a bad one, changes nothing, not even the labels given with it.
	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "gamma", Name: ptr("beta"), Labels: &map[string]string{"x": "y"}})
	wantErr(t, "a taken name", err, engine.ErrExists, `"beta"`)
	if argOf(err) != "name" {
		t.Fatalf("the error does not name the argument: %v", err)
	}
	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "gamma", Name: ptr("ws_sneaky")})
	wantErr(t, "an id-shaped name", err, engine.ErrInvalid, "reserved")
	if argOf(err) != "name" {
		t.Fatalf("the error does not name the argument: %v", err)
	}
	if g := get("gamma"); !maps.Equal(g.Labels, map[string]string{"team": "a"}) || get("beta").ID == a.ID {
		t.Fatalf("a refused update changed something: %+v", g)
	}

	// Labels are replaced as a whole; an empty map removes them.
	w = mustUpdate(engine.UpdateWorkspaceRequest{Workspace: "gamma", Labels: &map[string]string{"env": "prod"}})
	if !maps.Equal(w.Labels, map[string]string{"env": "prod"}) {
		t.Fatalf("labels: %v", w.Labels)
	}
	if l, _, _ := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Label: "env=prod"}); len(l) != 1 || l[0].ID != a.ID {
		t.Fatalf("list by the new label: %+v", l)
	}
	if l, _, _ := v.e.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Label: "team"}); len(l) != 0 {
		t.Fatalf("the old label still lists: %+v", l)
	}
	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "gamma", Labels: &map[string]string{"a=b": "c"}})
	wantErr(t, "a bad label", err, engine.ErrInvalid, "a=b")
	if argOf(err) != "labels" {
		t.Fatalf("the error does not name the argument: %v", err)
	}
	if w = mustUpdate(engine.UpdateWorkspaceRequest{Workspace: "gamma", Labels: &map[string]string{}}); len(w.Labels) != 0 {
		t.Fatalf("labels after removing them: %v", w.Labels)
	}

	// Exposed ports are replaced (deduplicated, checked like create_workspace's).
	if w = mustUpdate(engine.UpdateWorkspaceRequest{Workspace: "gamma", ExposedPorts: &[]int{8782, 8781, 8782}}); !slices.Equal(w.ExposedPorts, []int{8782, 8781}) {
		t.Fatalf("ports: %v", w.ExposedPorts)
	}
	_, err = update(engine.UpdateWorkspaceRequest{Workspace: "gamma", ExposedPorts: &[]int{0}})
	wantErr(t, "a bad port", err, engine.ErrInvalid, "0")
	if argOf(err) != "exposed_ports" {
		t.Fatalf("the error does not name the argument: %v", err)
	}

	// Leased: name and labels change, by anyone; exposed ports do not, not even for the holder.
	s := v.open(t, alice, "gamma", 0)
	if !slices.Equal(s.ExposedPorts, []int{8782, 8781}) {
		t.Fatalf("the session's ports: %v", s.ExposedPorts)
	}
	bobCtx := engine.WithCaller(ctx, bob)
	if _, err := v.e.UpdateWorkspace(bobCtx, engine.UpdateWorkspaceRequest{Workspace: "gamma", Name: ptr("delta"), Labels: &map[string]string{"busy": "yes"}}); err != nil {
		t.Fatalf("renaming a leased workspace: %v", err)
	}
	_, err = v.e.UpdateWorkspace(bobCtx, engine.UpdateWorkspaceRequest{Workspace: "delta", Name: ptr("epsilon"), ExposedPorts: &[]int{8783}})
	wantErr(t, "ports of a leased workspace", err, engine.ErrLeased, s.ID, "alice-agent", "open_session exposed_ports")
	aliceCtx := engine.WithCaller(ctx, alice)
	_, err = v.e.UpdateWorkspace(aliceCtx, engine.UpdateWorkspaceRequest{Workspace: "delta", ExposedPorts: &[]int{}})
	wantErr(t, "ports of a leased workspace by its holder", err, engine.ErrLeased, "(you)")
	if _, err := v.e.UpdateWorkspace(aliceCtx, engine.UpdateWorkspaceRequest{Workspace: "delta", ExposedPorts: &[]int{8782, 8781}}); err != nil {
		t.Fatalf("the same ports while leased (no change): %v", err)
	}
	if g := get(a.ID); g.Name != "delta" || !slices.Equal(g.ExposedPorts, []int{8782, 8781}) || !maps.Equal(g.Labels, map[string]string{"busy": "yes"}) {
		t.Fatalf("after the leased updates: %+v", g)
	}
	if r := v.sexec(t, alice, s.ID, "echo still here"); r.ExitCode != 0 {
		t.Fatalf("the session after a rename: %+v", r)
	}
	if got, _ := v.e.GetSession(ctx, s.ID); got.WorkspaceName != "delta" {
		t.Fatalf("the session names its workspace %q", got.WorkspaceName)
	}
	if _, err := v.e.DiscardSession(ctx, alice, s.ID); err != nil {
		t.Fatal(err)
	}
	if w = mustUpdate(engine.UpdateWorkspaceRequest{Workspace: "delta", ExposedPorts: &[]int{}}); len(w.ExposedPorts) != 0 {
		t.Fatalf("ports after the session: %v", w.ExposedPorts)
	}
}

func ptr[T any](v T) *T { return &v }
