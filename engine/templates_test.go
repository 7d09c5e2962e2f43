package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// tpl is a template whose setup writes a marker with the time it ran (so two workspaces show
// whether they share one setup) and prints a line.
func tpl(script string) engine.Template {
	return engine.Template{
		Description: "test setup", Command: "sh",
		Args:   []string{"-c", "date +%s%N > /workspace/built; mkdir -p /workspace/deps && echo lib > /workspace/deps/lib.txt; " + script},
		Policy: policies.Deny(),
	}
}

func withTemplates(tpls map[string]engine.Template) func(*engine.Options) {
	return func(o *engine.Options) { o.Templates = tpls }
}

func (v *cenv) fromTemplate(t *testing.T, name, template string) engine.Workspace {
	t.Helper()
	w, err := v.e.CreateWorkspace(ctxT(t), engine.CreateWorkspaceRequest{Name: name, Template: template})
	if err != nil {
		t.Fatalf("create %s from template %s: %v", name, template, err)
	}
	return w
}

func (v *cenv) read(t *testing.T, ws, path string) string {
	t.Helper()
	fc, err := v.e.ReadFile(ctxT(t), ws, path, 0, 0)
	if err != nil {
		t.Fatalf("read %s in %s: %v", path, ws, err)
	}
	return string(fc.Data)
}

// setupCommit returns a workspace's first commit, checking it is the template's setup commit.
func (v *cenv) setupCommit(t *testing.T, ws string) engine.Commit {
	t.Helper()
	h, err := v.e.History(ctxT(t), ws, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := h[len(h)-1]
	if first.Kind != engine.CommitSetup || first.Snapshot == "" {
		t.Fatalf("first commit of %s: %+v, want kind setup with a snapshot", ws, first)
	}
	return first
}

func TestTemplateSharedSetup(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, withTemplates(map[string]engine.Template{"node": tpl("echo ready")}))
	ctx := ctxT(t)
	var lines []string
	var mu sync.Mutex
	a, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "a", Template: "node", Progress: func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := v.fromTemplate(t, "b", "node")
	if n := v.pv.setups.Load(); n != 1 {
		t.Fatalf("two workspaces from one template ran the setup %d times, want once", n)
	}
	if a.Template != "node" || b.Template != "node" {
		t.Errorf("workspaces do not name their template: %q %q", a.Template, b.Template)
	}
	ca, cb := v.setupCommit(t, "a"), v.setupCommit(t, "b")
	if ca.Snapshot != cb.Snapshot || ca.ID == cb.ID || !strings.Contains(ca.Message, "template node") {
		t.Errorf("setup commits: %+v and %+v; want distinct commits sharing one snapshot", ca, cb)
	}
	if ma, mb := v.read(t, "a", "built"), v.read(t, "b", "built"); ma != mb || ma == "" {
		t.Errorf("markers %q and %q: both workspaces must hold the one setup's result", ma, mb)
	}
	mu.Lock()
	if !slices.Contains(lines, "ready") {
		t.Errorf("progress lines %q should include the setup's output", lines)
	}
	mu.Unlock()

	// Workspaces go their own ways from there.
	v.sh(t, "a", "echo changed > deps/lib.txt")
	if got := v.read(t, "b", "deps/lib.txt"); got != "lib\n" {
		t.Errorf("b sees a's change: %q", got)
	}

	// Unknown templates are named, with the list.
	_, err = v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "c", Template: "python"})
	wantErr(t, "unknown template", err, engine.ErrNotFound, `"python"`, "node")

	// The template snapshot survives garbage collection at restart, even with no workspace.
	for _, ws := range []string{"a", "b"} {
		if err := v.e.DeleteWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(v.snapshots(t), sandbox.SnapshotRef(ca.Snapshot)) {
		t.Fatalf("deleting the workspaces deleted the current template snapshot")
	}
	v.e.Close()
	e2, err := engine.Open(ctx, engine.Options{Store: v.st, Provider: v.pv, Templates: map[string]engine.Template{"node": tpl("echo ready")}})
	if err != nil {
		t.Fatal(err)
	}
	v.e = e2
	if !slices.Contains(v.snapshots(t), sandbox.SnapshotRef(ca.Snapshot)) {
		t.Fatalf("restart collected the current template snapshot")
	}
	v.fromTemplate(t, "d", "node")
	if n := v.pv.setups.Load(); n != 1 {
		t.Fatalf("after a restart the setup ran again (%d setups)", n)
	}
}

// TestTemplateChangedDefinition: a changed definition builds a new snapshot; the old one is
// deleted once no commit references it.
func TestTemplateChangedDefinition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1 := map[string]engine.Template{"node": tpl("echo v1")}
	v, err := openWith(t, dir, withTemplates(v1))
	if err != nil {
		t.Fatal(err)
	}
	v.fromTemplate(t, "old", "node")
	oldSnap := v.setupCommit(t, "old").Snapshot
	v.close()

	// The description and timeout are not part of the definition: nothing is rebuilt.
	same := tpl("echo v1")
	same.Description, same.Timeout = "reworded", time.Hour
	v, err = openWith(t, dir, withTemplates(map[string]engine.Template{"node": same}))
	if err != nil {
		t.Fatal(err)
	}
	if w := v.fromTemplate(t, "same", "node"); v.setupCommit(t, w.Name).Snapshot != oldSnap || v.pv.setups.Load() != 0 {
		t.Fatalf("a reworded description rebuilt the template")
	}
	v.close()

	v, err = openWith(t, dir, withTemplates(map[string]engine.Template{"node": tpl("echo v2")}))
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	v.fromTemplate(t, "new", "node")
	newSnap := v.setupCommit(t, "new").Snapshot
	if newSnap == oldSnap || v.pv.setups.Load() != 1 {
		t.Fatalf("changed args: snapshot %s (old %s), %d setups; want a new snapshot from one setup", newSnap, oldSnap, v.pv.setups.Load())
	}
	snaps := v.snapshots(t)
	if !slices.Contains(snaps, sandbox.SnapshotRef(oldSnap)) {
		t.Fatalf("the old template snapshot was deleted while workspaces still start from it")
	}
	if v.read(t, "old", "built") == v.read(t, "new", "built") {
		t.Errorf("the new workspace holds the old setup's result")
	}
	ctx := ctxT(t)
	for _, ws := range []string{"old", "same"} {
		if err := v.e.DeleteWorkspace(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(v.snapshots(t), sandbox.SnapshotRef(oldSnap)) {
		t.Errorf("the old template snapshot outlived the last workspace referencing it")
	}
	if !slices.Contains(v.snapshots(t), sandbox.SnapshotRef(newSnap)) {
		t.Errorf("the current template snapshot was deleted")
	}
}

// TestTemplateFailingSetup: a failing setup saves nothing, leaves no sandbox behind, says why,
// and runs again next time.
func TestTemplateFailingSetup(t *testing.T) {
	t.Parallel()
	timeout := tpl("sleep 30")
	timeout.Timeout = time.Second
	v := newCEnv(t, withTemplates(map[string]engine.Template{
		"broken": tpl("echo 'npm ERR! cannot resolve left-pad' >&2; exit 3"),
		"slow":   timeout,
	}))
	ctx := ctxT(t)
	before := v.snapshots(t)
	for i := 1; i <= 2; i++ {
		_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "w", Template: "broken"})
		wantErr(t, "failing setup", err, engine.ErrSetup, `template "broken"`, "exit code 3", "npm ERR! cannot resolve left-pad", "runs the setup again")
		if n := v.pv.setups.Load(); n != int64(i) {
			t.Fatalf("attempt %d: %d setups ran; a failed setup must run again on the next use", i, n)
		}
		if after := v.snapshots(t); !slices.Equal(after, before) {
			t.Fatalf("a failed setup left snapshots: %v (before %v)", after, before)
		}
		if dirs := v.sandboxDirs(t); len(dirs) != 0 {
			t.Fatalf("a failed setup left sandboxes: %v", dirs)
		}
		if _, err := v.e.GetWorkspace(ctx, "w"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("a failed setup left a workspace: %v", err)
		}
	}
	_, err := v.e.Bootstrap(ctx, []string{"slow"}, false)
	wantErr(t, "timed-out setup", err, engine.ErrSetup, `template "slow"`, "timed out after 1s")
	if dirs := v.sandboxDirs(t); len(dirs) != 0 {
		t.Fatalf("a timed-out setup left sandboxes: %v", dirs)
	}
	st, _ := v.e.Templates(ctx)
	for _, s := range st {
		if s.Ready {
			t.Errorf("template %s reads ready after failing", s.Name)
		}
	}
}

func TestTemplateConcurrentCreates(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, withTemplates(map[string]engine.Template{"node": tpl("sleep 1")}))
	ctx := ctxT(t)
	const n = 4
	var wg sync.WaitGroup
	snaps := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			name := "w" + string(rune('a'+i))
			if _, errs[i] = v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: name, Template: "node"}); errs[i] == nil {
				snaps[i] = v.setupCommit(t, name).Snapshot
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	if got := v.pv.setups.Load(); got != 1 {
		t.Fatalf("%d concurrent creates on a cold template ran the setup %d times, want once", n, got)
	}
	for _, s := range snaps[1:] {
		if s != snaps[0] {
			t.Fatalf("concurrent creates got different snapshots: %v", snaps)
		}
	}
}

// TestTemplateCallerGivesUp: a caller that stops waiting does not stop the build.
func TestTemplateCallerGivesUp(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, withTemplates(map[string]engine.Template{"node": tpl("sleep 1")}))
	ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
	defer cancel()
	_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "w", Template: "node"})
	wantErr(t, "impatient create", err, engine.ErrCancelled, "setup goes on")
	v.fromTemplate(t, "w", "node")
	if n := v.pv.setups.Load(); n != 1 {
		t.Fatalf("%d setups; the abandoned build should have been reused", n)
	}
}

func TestTemplateBootstrap(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, withTemplates(map[string]engine.Template{"node": tpl("true"), "py": tpl("echo py")}))
	ctx := ctxT(t)
	st, err := v.e.Bootstrap(ctx, nil, false)
	if err != nil || len(st) != 2 || !st[0].BuiltNow || !st[1].BuiltNow || !st[0].Ready || st[0].Snapshot == "" {
		t.Fatalf("bootstrap: %+v %v", st, err)
	}
	if n := v.pv.setups.Load(); n != 2 {
		t.Fatalf("bootstrap of 2 templates ran %d setups", n)
	}
	w := v.fromTemplate(t, "w", "node")
	if n := v.pv.setups.Load(); n != 2 || v.setupCommit(t, w.Name).Snapshot != st[0].Snapshot {
		t.Fatalf("create after bootstrap ran a setup (%d) or used another snapshot", n)
	}
	again, err := v.e.Bootstrap(ctx, []string{"node"}, false)
	if err != nil || len(again) != 1 || again[0].BuiltNow || !again[0].Ready || again[0].Snapshot != st[0].Snapshot {
		t.Fatalf("second bootstrap: %+v %v; want already built", again, err)
	}
	re, err := v.e.Bootstrap(ctx, []string{"node"}, true)
	if err != nil || !re[0].BuiltNow || re[0].Snapshot == st[0].Snapshot {
		t.Fatalf("rebuild: %+v %v", re, err)
	}
	if !slices.Contains(v.snapshots(t), sandbox.SnapshotRef(st[0].Snapshot)) {
		t.Errorf("rebuild deleted the old snapshot, which workspace w still starts from")
	}
	if w2 := v.fromTemplate(t, "w2", "node"); v.setupCommit(t, w2.Name).Snapshot != re[0].Snapshot {
		t.Errorf("a create after the rebuild does not use the new snapshot")
	}
	_, err = v.e.Bootstrap(ctx, []string{"nope"}, false)
	wantErr(t, "bootstrap of an unknown template", err, engine.ErrNotFound, `"nope"`, "node, py")
}

// TestTemplateStaleSnapshot: a template snapshot deleted behind the engine's back is rebuilt,
// both when a create finds it gone and at start-up.
func TestTemplateStaleSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tpls := withTemplates(map[string]engine.Template{"node": tpl("true")})
	v, err := openWith(t, dir, tpls)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	st, err := v.e.Bootstrap(ctx, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.pv.DeleteSnapshot(ctx, sandbox.SnapshotRef(st[0].Snapshot)); err != nil {
		t.Fatal(err)
	}
	w := v.fromTemplate(t, "w", "node")
	fresh := v.setupCommit(t, w.Name).Snapshot
	if fresh == st[0].Snapshot || v.pv.setups.Load() != 2 {
		t.Fatalf("a stale snapshot was not rebuilt: %s (old %s), %d setups", fresh, st[0].Snapshot, v.pv.setups.Load())
	}
	if got := v.read(t, "w", "deps/lib.txt"); got != "lib\n" {
		t.Fatalf("the rebuilt workspace lacks the setup's files: %q", got)
	}
	if err := v.e.DeleteWorkspace(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if err := v.pv.DeleteSnapshot(ctx, sandbox.SnapshotRef(fresh)); err != nil {
		t.Fatal(err)
	}
	v.close()
	v, err = openWith(t, dir, tpls)
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	if st, _ := v.e.Templates(ctx); st[0].Ready {
		t.Fatalf("after a restart, a template whose snapshot is gone reads ready: %+v", st[0])
	}
	v.fromTemplate(t, "w2", "node")
	if v.pv.setups.Load() != 1 {
		t.Fatalf("the template was not rebuilt after a restart")
	}
}

func TestTemplateDefinitions(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		name string
		t    engine.Template
		want string
	}{
		"no command":     {"x", engine.Template{Policy: policies.Deny()}, "command is empty"},
		"no policy":      {"x", engine.Template{Command: "true"}, "policy is required"},
		"literal secret": {"x", engine.Template{Command: "true", Policy: github(&policies.Credential{Value: "s"})}, `service "github"`},
		"bad policy":     {"x", engine.Template{Command: "true", Policy: policies.Policy{Mode: policies.Allow, Domains: []string{"a.*.b"}}}, "wildcard"},
		"bad name":       {"no spaces", engine.Template{Command: "true", Policy: policies.Deny()}, "template name"},
		"long timeout":   {"x", engine.Template{Command: "true", Policy: policies.Deny(), Timeout: 7 * time.Hour}, "timeout"},
	} {
		_, err := engine.CheckTemplate(tc.name, tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: CheckTemplate = %v, want an error mentioning %q", name, err, tc.want)
		}
		_, err = openWith(t, t.TempDir(), withTemplates(map[string]engine.Template{tc.name: tc.t}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want an error mentioning %q", name, err, tc.want)
		}
	}
	a, _ := engine.CheckTemplate("a", tpl("x"))
	b, _ := engine.CheckTemplate("b", tpl("x"))
	c, _ := engine.CheckTemplate("a", tpl("y"))
	if engine.TemplateFingerprint(a) != engine.TemplateFingerprint(b) || engine.TemplateFingerprint(a) == engine.TemplateFingerprint(c) {
		t.Errorf("fingerprints must depend on the definition, not the name")
	}
	// A setup command without args is a program, not a shell line: its args read empty.
	if d, err := engine.CheckTemplate("p", engine.Template{Command: "make", Policy: policies.Deny()}); err != nil || d.Args == nil {
		t.Errorf("CheckTemplate without args: %+v %v, want empty (non-nil) args", d, err)
	}
}
