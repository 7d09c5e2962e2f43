package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// opTimeout bounds every single provider call, so a broken provider fails a scenario instead of
// hanging the test binary.
const opTimeout = 2 * time.Minute

// opCtx returns a context for one provider call, bounded by opTimeout.
func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// shortCtx returns a context bounded by d, for calls that must come back quickly.
func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// start starts a sandbox from ref with the deny-all policy and stops it when the test ends.
func start(t *testing.T, p sandbox.Provider, ref sandbox.SnapshotRef) sandbox.Sandbox {
	t.Helper()
	return startWith(t, p, sandbox.StartOptions{Snapshot: ref})
}

// startWith starts a sandbox with opts (deny-all and a label when unset) and stops it when the
// test ends. Stop must succeed even when the sandbox has already ended.
func startWith(t *testing.T, p sandbox.Provider, opts sandbox.StartOptions) sandbox.Sandbox {
	t.Helper()
	if opts.Policy.Mode == "" {
		opts.Policy = policies.Deny()
	}
	if opts.Label == "" {
		opts.Label = t.Name()
	}
	sb, err := p.Start(opCtx(t), opts)
	if err != nil {
		t.Fatalf("Start(snapshot %q): %v", opts.Snapshot, err)
	}
	if sb == nil {
		t.Fatalf("Start(snapshot %q) returned a nil sandbox and no error", opts.Snapshot)
	}
	stopOnCleanup(t, sb)
	return sb
}

// stopOnCleanup stops sb when the test ends and reports an error from Stop: Stop of an ended
// sandbox is a no-op, so it never fails.
func stopOnCleanup(t *testing.T, sb sandbox.Sandbox) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("cleanup: Stop of sandbox %s: %v (Stop must succeed, and is a no-op once the sandbox has ended)", sb.ID(), err)
		}
	})
}

// snapshot snapshots sb, which has changed something, and returns the new ref.
func snapshot(t *testing.T, sb sandbox.Sandbox) sandbox.SnapshotRef {
	t.Helper()
	return snapshotInfo(t, sb).Ref
}

// snapshotInfo snapshots sb, which has changed something, and returns what Snapshot reported.
func snapshotInfo(t *testing.T, sb sandbox.Sandbox) sandbox.SnapshotInfo {
	t.Helper()
	info := snapshotAny(t, sb)
	if info.Unchanged {
		t.Fatalf("Snapshot of sandbox %s reports Unchanged after changes were made: %+v", sb.ID(), info)
	}
	return info
}

// snapshotAny snapshots sb and checks that what Snapshot reported is consistent: a ref unless
// Unchanged, Unchanged only from a provider that reports changes, Changes.Known as declared in
// Capabilities.Changes, and totals that match.
func snapshotAny(t *testing.T, sb sandbox.Sandbox) sandbox.SnapshotInfo {
	t.Helper()
	info, err := sb.Snapshot(opCtx(t))
	if err != nil {
		t.Fatalf("Snapshot of sandbox %s: %v", sb.ID(), err)
	}
	switch {
	case info.Unchanged && info.Ref != "":
		t.Errorf("Snapshot of sandbox %s: Unchanged with ref %q; an unchanged sandbox makes no snapshot (Ref \"\")", sb.ID(), info.Ref)
	case info.Unchanged && !info.Changes.None():
		t.Errorf("Snapshot of sandbox %s: Unchanged, but Changes %+v", sb.ID(), info.Changes)
	case !info.Unchanged && info.Ref == "":
		t.Fatalf("Snapshot of sandbox %s returned an empty ref (the empty ref means the empty state) without Unchanged", sb.ID())
	case !info.Unchanged && info.Changes.None():
		t.Errorf("Snapshot of sandbox %s made snapshot %s although it knows nothing changed; it must report Unchanged instead", sb.ID(), info.Ref)
	}
	checkChanges(t, "Snapshot", info.Changes)
	if info.ChangedBytes != info.Changes.Bytes || info.ChangedFiles != info.Changes.Files {
		t.Errorf("Snapshot: ChangedBytes %d, ChangedFiles %d differ from Changes.Bytes %d, Changes.Files %d", info.ChangedBytes, info.ChangedFiles, info.Changes.Bytes, info.Changes.Files)
	}
	return info
}

// checkChanges checks the shape of a Changes: nothing but Known when unknown; a bounded list of
// valid entries, no more than the total, no path twice.
func checkChanges(t *testing.T, what string, c sandbox.Changes) {
	t.Helper()
	if !c.Known {
		if c.Paths != nil || c.Files != 0 || c.Bytes != 0 {
			t.Errorf("%s: Changes not known, yet %+v", what, c)
		}
		return
	}
	if len(c.Paths) > sandbox.MaxChanges || int64(len(c.Paths)) > c.Files || c.Bytes < 0 {
		t.Errorf("%s: %d paths listed, Files %d, Bytes %d; want at most %d paths and no more than Files", what, len(c.Paths), c.Files, c.Bytes, sandbox.MaxChanges)
	}
	seen := map[string]bool{}
	for _, ch := range c.Paths {
		if seen[ch.Path] || ch.Path == "" || ch.Path == "~/" {
			t.Errorf("%s: bad or repeated path %q in %v", what, ch.Path, c.Paths)
		}
		seen[ch.Path] = true
		if !slices.Contains([]string{sandbox.Added, sandbox.Modified, sandbox.Deleted}, ch.Op) ||
			!slices.Contains([]string{"file", "dir", "symlink", "other"}, ch.Type) {
			t.Errorf("%s: bad change %+v", what, ch)
		}
	}
}

// result is what one Exec produced.
type result struct {
	sandbox.ExecResult
	Stdout, Stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d (timed out %v), stdout %q, stderr %q", r.ExitCode, r.TimedOut, clip(r.Stdout), clip(r.Stderr))
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 600 {
		return s[:300] + fmt.Sprintf("…[%d bytes]…", len(s)-600) + s[len(s)-300:]
	}
	return s
}

// execute runs req with a bounded context, capturing stdout and stderr unless req has its own
// writers, and fails the test when Exec returns an error.
func execute(t *testing.T, sb sandbox.Sandbox, req sandbox.ExecRequest) result {
	t.Helper()
	var stdout, stderr lockedBuffer
	if req.Stdout == nil {
		req.Stdout = &stdout
	}
	if req.Stderr == nil {
		req.Stderr = &stderr
	}
	res, err := sb.Exec(opCtx(t), req)
	if err != nil {
		t.Fatalf("Exec(%s %q): %v", req.Command, req.Args, err)
	}
	return result{ExecResult: res, Stdout: stdout.String(), Stderr: stderr.String()}
}

// shReq is an ExecRequest running script with sh -c.
func shReq(script string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}}
}

// run runs script with sh -c in /workspace.
func run(t *testing.T, sb sandbox.Sandbox, script string) result {
	t.Helper()
	return execute(t, sb, shReq(script))
}

// mustRun runs script with sh -c, fails the test unless it exits 0, and returns its stdout.
func mustRun(t *testing.T, sb sandbox.Sandbox, script string) string {
	t.Helper()
	r := run(t, sb, script)
	if r.ExitCode != 0 || r.TimedOut {
		t.Fatalf("sh -c %q: %v", script, r)
	}
	return r.Stdout
}

// write writes files and fails the test on error.
func write(t *testing.T, sb sandbox.Sandbox, files ...sandbox.File) {
	t.Helper()
	if err := sb.WriteFiles(opCtx(t), files); err != nil {
		var names []string
		for _, f := range files {
			names = append(names, f.Path)
		}
		t.Fatalf("WriteFiles(%q): %v", names, err)
	}
}

// file is a File with default mode.
func file(path, content string) sandbox.File {
	return sandbox.File{Path: path, Content: []byte(content)}
}

// readAll reads path whole (max 0) and checks that Size matches what was read.
func readAll(t *testing.T, sb sandbox.Sandbox, path string) []byte {
	t.Helper()
	fc, err := sb.ReadFile(opCtx(t), path, 0, 0)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", path, err)
	}
	if fc.Size != int64(len(fc.Data)) {
		t.Errorf("ReadFile(%q): Size %d, but read %d bytes of a small file", path, fc.Size, len(fc.Data))
	}
	return fc.Data
}

// list lists dir down to depth and returns the entries by path; duplicates fail the test.
func list(t *testing.T, sb sandbox.Sandbox, dir string, depth int) map[string]sandbox.FileEntry {
	t.Helper()
	entries, err := sb.ListFiles(opCtx(t), dir, depth)
	if err != nil {
		t.Fatalf("ListFiles(%q, %d): %v", dir, depth, err)
	}
	m := make(map[string]sandbox.FileEntry, len(entries))
	for _, e := range entries {
		if _, dup := m[e.Path]; dup {
			t.Errorf("ListFiles(%q, %d) lists %q twice", dir, depth, e.Path)
		}
		m[e.Path] = e
	}
	return m
}

// wantPaths checks that got holds exactly the paths in want.
func wantPaths(t *testing.T, what string, got map[string]sandbox.FileEntry, want ...string) {
	t.Helper()
	var have []string
	for p := range got {
		have = append(have, p)
	}
	sort.Strings(have)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(have, want) {
		t.Errorf("%s: got paths %q, want exactly %q", what, have, want)
	}
}

// wantErr checks that err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want an error wrapping %q", what, err, target)
	}
}

// homeFile reads a file under $HOME with cat, returning "" when it does not exist.
func homeFile(t *testing.T, sb sandbox.Sandbox, name string) string {
	t.Helper()
	return mustRun(t, sb, `cat "$HOME/`+name+`" 2>/dev/null || true`)
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// allBytes returns the 256 byte values in order.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// leftoverSleeps returns the lines describing processes inside the sandbox whose command line starts
// with "sleep <arg>", giving a killed tree up to two seconds to disappear. It scans /proc with sh
// so it needs no ps.
func leftoverSleeps(t *testing.T, sb sandbox.Sandbox, arg string) string {
	t.Helper()
	script := sleepScan(arg)
	var out string
	for deadline := time.Now().Add(2 * time.Second); ; {
		out = mustRun(t, sb, script)
		if out == "" || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sleepScan is a script printing "<pid>: <command line>" for every process inside the sandbox
// whose command line starts with "sleep <arg>".
func sleepScan(arg string) string {
	return `for d in /proc/[0-9]*; do
  c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  case "$c" in "sleep ` + arg + ` "*) echo "${d#/proc/}: $c";; esac
done`
}

// itoa is strconv.Itoa for int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
