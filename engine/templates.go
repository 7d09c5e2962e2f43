package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Shared setup templates. An operator defines templates (Options.Templates): a command with its
// arguments and a durable egress policy. A workspace created with create_workspace's template
// starts from the template's snapshot: its first commit is of kind "setup" and shares that
// snapshot (no copy). The rules, enforced here:
//
//  1. A template's snapshot is built once per provider and definition. The definition's
//     fingerprint is the SHA-256 of the canonical JSON of {command, args, policy} (the policy
//     normalized); the template's name, description and timeout are not part of it. The store
//     keeps one record per (provider, fingerprint) (store.TemplateSnapshot).
//  2. It is built lazily, by the first create_workspace that needs it, or eagerly by Bootstrap
//     (`sandkit-mcp bootstrap`). Builds of one definition are serialized: callers arriving while
//     a build runs wait for it, and a build first checks whether another one finished meanwhile.
//     So concurrent create_workspace calls on a cold template run the setup once. A caller that
//     gives up waiting does not stop the build: its snapshot is ready for the next caller.
//  3. The setup runs in a fresh, empty sandbox started with the template's policy (credentials
//     from the server's environment), as the sandbox user in /workspace, bounded by the
//     template's timeout. Only an exit status of 0 is saved. A non-zero exit, a timeout or a
//     sandbox failure saves nothing, stops the sandbox, and fails with ErrSetup naming the
//     template, the exit code and the end of stderr; the next use runs the setup again.
//  4. A template snapshot is referenced by its record (and by the setup commits of workspaces
//     made from it), so garbage collection keeps it while it is current. When a definition
//     changes, its fingerprint changes: the next use builds a new snapshot, and at start-up the
//     record of the old definition is dropped; its snapshot is deleted as soon as no commit
//     references it (at once if no workspace was made from it).
//  5. A stale record — its snapshot no longer exists at the provider (deleted behind the
//     engine's back, or expired at a remote provider) — is dropped at start-up and whenever a
//     create_workspace or Bootstrap finds it, and the snapshot is rebuilt.

// Template limits.
const (
	// DefaultSetupTimeout bounds a setup command whose template gives no timeout.
	DefaultSetupTimeout = 30 * time.Minute
	// MaxSetupTimeout is the longest timeout a template may give.
	MaxSetupTimeout = 6 * time.Hour
	// setupTail is how much of the end of a failed setup's stderr its error quotes.
	setupTail = 2 << 10
)

// Template is a shared setup an operator defines.
type Template struct {
	// Description says what the template holds, for agents choosing one.
	Description string
	// Command and Args are the setup command, run in /workspace of an empty sandbox. Unlike
	// run_command's, a setup command is always a program run directly with Args (nil means no
	// arguments; CheckTemplate stores it as empty), never a shell command line: for one, give
	// "sh" with args ["-lc", "the line"].
	Command string
	Args    []string
	// Policy is the setup sandbox's egress policy: required, durable (no literal secrets).
	Policy policies.Policy
	// Timeout bounds the setup command; 0 means DefaultSetupTimeout.
	Timeout time.Duration
}

// CheckTemplate validates a template definition and returns it normalized (policy normalized,
// default timeout filled in). Its errors say what is wrong in the definition's own terms
// ("command is empty", "policy: …"), for the caller to prefix with where the definition is;
// policy errors wrap the policies package's errors.
func CheckTemplate(name string, t Template) (Template, error) {
	if err := validTemplateName(name); err != nil {
		return t, err
	}
	if strings.TrimSpace(t.Command) == "" {
		return t, errors.New(`command is empty; give the program to run, e.g. "sh" with args ["-c", "npm ci"]`)
	}
	if strings.ContainsRune(t.Command, 0) || slices.ContainsFunc(t.Args, func(a string) bool { return strings.ContainsRune(a, 0) }) {
		return t, errors.New("command and args must not contain NUL bytes")
	}
	if t.Policy.Mode == "" && len(t.Policy.Domains) == 0 && len(t.Policy.Services) == 0 {
		return t, errors.New(`policy is required: the setup's egress policy, e.g. {"mode": "deny-all"} or {"mode": "allow", "services": [{"id": "npm"}]}`)
	}
	p, err := policies.Normalize(t.Policy)
	if err != nil {
		return t, fmt.Errorf("policy: %w", err)
	}
	if err := policies.Durable(p); err != nil {
		return t, fmt.Errorf("policy: %w", err)
	}
	t.Policy = p
	switch {
	case t.Timeout == 0:
		t.Timeout = DefaultSetupTimeout
	case t.Timeout < time.Second || t.Timeout > MaxSetupTimeout:
		return t, fmt.Errorf("timeout %v is outside 1s–%v", t.Timeout, MaxSetupTimeout)
	}
	if t.Args == nil {
		t.Args = []string{}
	}
	return t, nil
}

// validTemplateName: 1–64 letters, digits, '.', '_' and '-', starting with a letter or digit.
func validTemplateName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("template name %q must be 1–64 characters", name)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '.' || r == '_' || r == '-'))) {
			return fmt.Errorf("template name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// TemplateFingerprint is the fingerprint of a checked template (see CheckTemplate): the hex
// SHA-256 of the canonical JSON of its command, args and policy.
func TemplateFingerprint(t Template) string {
	b, err := json.Marshal(struct {
		Command string          `json:"command"`
		Args    []string        `json:"args"`
		Policy  policies.Policy `json:"policy"`
	}{t.Command, t.Args, policies.Redact(t.Policy)})
	if err != nil {
		panic(fmt.Sprintf("engine: template fingerprint: %v", err)) // plain strings and a policy always encode
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// templateDef is a checked template with its identity.
type templateDef struct {
	Template
	name        string
	fingerprint string
	key         string // store.TemplateKey(provider, fingerprint)
}

// templates is the engine's set of templates and the builds in flight.
type templates struct {
	defs  map[string]*templateDef // by name
	names []string                // sorted

	mu     sync.Mutex
	builds map[string]*tplBuild // by key
}

// tplBuild is one build in flight; waiters read its result once done is closed.
type tplBuild struct {
	done  chan struct{}
	force bool
	ts    store.TemplateSnapshot
	built bool
	err   error

	mu        sync.Mutex
	listeners map[int]func(string)
	next      int
}

func (b *tplBuild) listen(fn func(string)) int {
	if fn == nil {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	b.listeners[b.next] = fn
	return b.next
}

func (b *tplBuild) unlisten(id int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.listeners, id)
}

func (b *tplBuild) notify(line string) {
	b.mu.Lock()
	fns := make([]func(string), 0, len(b.listeners))
	for _, fn := range b.listeners {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(line)
	}
}

func (t *templates) init(provider string, defs map[string]Template) error {
	t.defs = map[string]*templateDef{}
	t.builds = map[string]*tplBuild{}
	for name, def := range defs {
		c, err := CheckTemplate(name, def)
		if err != nil {
			return fmt.Errorf("engine: template %q: %w", name, err)
		}
		fp := TemplateFingerprint(c)
		t.defs[name] = &templateDef{Template: c, name: name, fingerprint: fp, key: store.TemplateKey(provider, fp)}
		t.names = append(t.names, name)
	}
	sort.Strings(t.names)
	return nil
}

// lookup returns the template called name, or an error listing the ones there are.
func (t *templates) lookup(name string) (*templateDef, error) {
	if d := t.defs[name]; d != nil {
		return d, nil
	}
	if len(t.names) == 0 {
		return nil, errorf(ErrNotFound, "template %q is not defined: this server has no setup templates (its operator defines them in the server's config); omit template to start from an empty workspace", name)
	}
	return nil, errorf(ErrNotFound, "template %q is not defined; this server's templates are: %s (the server's instructions describe them); omit template to start from an empty workspace", name, strings.Join(t.names, ", "))
}

// errTemplateMoved: the template record changed between reading it and using it; read it again.
var errTemplateMoved = errors.New("template snapshot replaced meanwhile")

// ensureTemplate returns the current snapshot record of def, building it when there is none (or
// always, with force). built reports whether this call's build ran the setup. progress receives
// setup output lines while this caller waits.
func (e *Engine) ensureTemplate(ctx context.Context, def *templateDef, force bool, progress func(string)) (store.TemplateSnapshot, bool, error) {
	if !force {
		if ts, ok, err := e.readyTemplate(ctx, def); err != nil || ok {
			return ts, false, err
		}
	}
	e.tpl.mu.Lock()
	b := e.tpl.builds[def.key]
	if b == nil {
		if e.isClosed() {
			e.tpl.mu.Unlock()
			return store.TemplateSnapshot{}, false, ErrClosed
		}
		b = &tplBuild{done: make(chan struct{}), force: force, listeners: map[int]func(string){}}
		e.tpl.builds[def.key] = b
		e.workers.Add(1)
		go e.runBuild(def, b)
	}
	id := b.listen(progress)
	e.tpl.mu.Unlock()
	defer b.unlisten(id)
	select {
	case <-b.done:
		return b.ts, b.built, b.err
	case <-ctx.Done():
		return store.TemplateSnapshot{}, false, errorf(ErrCancelled, "stopped waiting for the setup of template %q (%v); the setup goes on, and its snapshot will be ready for the next create_workspace with this template", def.name, ctx.Err())
	}
}

// runBuild runs one build in the background (bounded by the engine's life, not by a caller's).
func (e *Engine) runBuild(def *templateDef, b *tplBuild) {
	defer e.workers.Done()
	ts, built, err := e.buildTemplate(e.ctx, def, b.force, b.notify)
	e.tpl.mu.Lock()
	delete(e.tpl.builds, def.key)
	b.ts, b.built, b.err = ts, built, err
	close(b.done)
	e.tpl.mu.Unlock()
}

// readyTemplate reads def's record and checks that its snapshot still exists; a stale record is
// dropped (and ok is false).
func (e *Engine) readyTemplate(ctx context.Context, def *templateDef) (store.TemplateSnapshot, bool, error) {
	var ts store.TemplateSnapshot
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		ts, err = tx.TemplateSnapshot(def.key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ts, false, nil
	}
	if err != nil {
		return ts, false, fmt.Errorf("read the snapshot record of template %q: %w", def.name, err)
	}
	if ts.Snapshot == "" {
		return ts, true, nil // the empty state (a setup that changed nothing makes no snapshot)
	}
	held, err := e.prov.Snapshots(ctx)
	if errors.Is(err, sandbox.ErrUnsupported) {
		return ts, true, nil
	}
	if err != nil {
		return ts, false, e.provErr(err, "list snapshots to check template "+def.name)
	}
	if slices.Contains(held, sandbox.SnapshotRef(ts.Snapshot)) {
		return ts, true, nil
	}
	e.log.Warn("template snapshot is gone; it will be rebuilt", "template", def.name, "snapshot", ts.Snapshot)
	if err := e.dropTemplateRecord(ts); err != nil {
		return ts, false, err
	}
	return ts, false, nil
}

// dropTemplateRecord deletes a template snapshot record if it still names the same snapshot.
func (e *Engine) dropTemplateRecord(ts store.TemplateSnapshot) error {
	return e.st.Update(func(tx *store.Tx) error {
		cur, err := tx.TemplateSnapshot(ts.Key)
		if errors.Is(err, store.ErrNotFound) || (err == nil && cur.Snapshot != ts.Snapshot) {
			return nil
		}
		if err != nil {
			return err
		}
		return tx.DeleteTemplateSnapshot(ts.Key)
	})
}

// buildTemplate runs def's setup in a fresh sandbox and records its snapshot (rule 3). Without
// force, a record that became ready meanwhile is returned as it is.
func (e *Engine) buildTemplate(ctx context.Context, def *templateDef, force bool, notify func(string)) (store.TemplateSnapshot, bool, error) {
	if !force {
		if ts, ok, err := e.readyTemplate(ctx, def); err != nil || ok {
			return ts, false, err
		}
	}
	fail := func(format string, a ...any) error {
		return errorf(ErrSetup, "template %q (%s): %s; nothing was saved, and the next create_workspace with this template (or `sandkit-mcp bootstrap`) runs the setup again", def.name, cmdline(def.Command, def.Args), fmt.Sprintf(format, a...))
	}
	e.log.Info("template setup started", "template", def.name, "fingerprint", def.fingerprint[:12], "command", cmdline(def.Command, def.Args))
	start := time.Now()
	sb, err := e.prov.Start(ctx, sandbox.StartOptions{
		Policy: def.Policy, Label: "template " + def.name, Lifetime: def.Timeout + runMargin,
	})
	if err != nil {
		if ctx.Err() != nil {
			return store.TemplateSnapshot{}, false, ErrClosed
		}
		return store.TemplateSnapshot{}, false, fail("its sandbox could not start: %v", err)
	}
	lines := &lineWatch{notify: notify}
	stdout, stderr := newCapture(setupTail, lines), newCapture(setupTail, lines)
	res, err := sb.Exec(ctx, sandbox.ExecRequest{
		Command: def.Command, Args: def.Args, Timeout: def.Timeout, Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		_ = sb.Stop(context.Background())
		if ctx.Err() != nil {
			return store.TemplateSnapshot{}, false, ErrClosed
		}
		return store.TemplateSnapshot{}, false, fail("its sandbox failed while running it: %v", err)
	}
	if res.TimedOut || res.ExitCode != 0 {
		_ = sb.Stop(context.Background())
		how := fmt.Sprintf("the setup command failed with exit code %d", res.ExitCode)
		if res.TimedOut {
			how = fmt.Sprintf("the setup command timed out after %v (exit code %d) and was killed", def.Timeout, res.ExitCode)
		}
		tail, from := outputTail(stderr.output()), "stderr"
		if tail == "" {
			tail, from = outputTail(stdout.output()), "stdout (stderr was empty)"
		}
		if tail == "" {
			return store.TemplateSnapshot{}, false, fail("%s and printed nothing", how)
		}
		return store.TemplateSnapshot{}, false, fail("%s; end of its %s:\n%s\n(end of output)", how, from, tail)
	}
	info, err := save(ctx, sb)
	if err != nil {
		return store.TemplateSnapshot{}, false, fail("the setup command succeeded but its result could not be saved: %v", err)
	}
	ts := store.TemplateSnapshot{
		Key: def.key, Provider: e.prov.Name(), Fingerprint: def.fingerprint, Template: def.name,
		Snapshot: string(info.Ref), Command: def.Command, Args: def.Args, Policy: describePolicy(def.Policy),
		DurationMS: time.Since(start).Milliseconds(), ChangedBytes: info.ChangedBytes, ChangedFiles: info.ChangedFiles,
		Built: time.Now().UTC(),
	}
	var old string
	err = e.st.Update(func(tx *store.Tx) error {
		if prev, err := tx.TemplateSnapshot(def.key); err == nil {
			old = prev.Snapshot
		}
		return tx.PutTemplateSnapshot(ts)
	})
	if err != nil {
		_ = e.prov.DeleteSnapshot(context.Background(), info.Ref)
		return store.TemplateSnapshot{}, false, errorf(ErrSetup, "template %q: record its snapshot: %w", def.name, err)
	}
	e.gcSnapshots(old)
	e.log.Info("template snapshot built", "template", def.name, "snapshot", ts.Snapshot, "ms", ts.DurationMS)
	return ts, true, nil
}

// outputTail is the last setupTail bytes of a captured stream, as trimmed text, with "…" in
// front when more came before.
func outputTail(o store.Output) string {
	b := append(append([]byte{}, o.Head...), o.Tail...)
	cut := o.Omitted > 0
	if len(b) > setupTail {
		b, cut = b[len(b)-setupTail:], true
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if cut && s != "" {
		s = "…" + s
	}
	return s
}

// reconcileTemplates drops, at start-up, the records of this provider's template snapshots that
// belong to no current definition, or whose snapshot no longer exists (rules 4 and 5); the
// snapshot collection that follows deletes what nothing references any more.
func (e *Engine) reconcileTemplates(ctx context.Context) error {
	var all []store.TemplateSnapshot
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		all, err = tx.TemplateSnapshots()
		return err
	}); err != nil {
		return fmt.Errorf("engine: reconcile templates: %w", err)
	}
	current := map[string]bool{}
	for _, d := range e.tpl.defs {
		current[d.key] = true
	}
	held, err := e.prov.Snapshots(ctx)
	listed := err == nil
	if err != nil && !errors.Is(err, sandbox.ErrUnsupported) {
		return fmt.Errorf("engine: list provider snapshots: %w", err)
	}
	for _, ts := range all {
		if ts.Provider != e.prov.Name() {
			continue
		}
		why := ""
		switch {
		case !current[ts.Key]:
			why = "its template was removed or changed"
		case listed && !slices.Contains(held, sandbox.SnapshotRef(ts.Snapshot)):
			why = "its snapshot no longer exists; it is rebuilt on next use"
		default:
			continue
		}
		if err := e.dropTemplateRecord(ts); err != nil {
			return fmt.Errorf("engine: reconcile templates: %w", err)
		}
		e.log.Info("dropped a template snapshot record", "template", ts.Template, "snapshot", ts.Snapshot, "why", why)
	}
	return nil
}

// SetupsInFlight counts the template setups running now (also those whose callers stopped
// waiting): work that keeps the engine busy without any client.
func (e *Engine) SetupsInFlight() int {
	e.tpl.mu.Lock()
	defer e.tpl.mu.Unlock()
	return len(e.tpl.builds)
}

// TemplateStatus describes a template and the state of its snapshot.
type TemplateStatus struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Command     string   `json:"command"`
	Args        []string `json:"args,omitempty"`
	Policy      string   `json:"policy"`
	Fingerprint string   `json:"fingerprint"`
	// Ready is true when the snapshot of the current definition is built.
	Ready    bool      `json:"ready"`
	Snapshot string    `json:"snapshot,omitempty"`
	Built    time.Time `json:"built_at,omitzero"`
	// BuiltNow is true when this call ran the setup.
	BuiltNow   bool  `json:"built_now,omitempty"`
	DurationMS int64 `json:"duration_ms,omitempty"`
}

func (d *templateDef) status(ts store.TemplateSnapshot, ready, builtNow bool) TemplateStatus {
	s := TemplateStatus{
		Name: d.name, Description: d.Description, Command: d.Command, Args: d.Args,
		Policy: describePolicy(d.Policy), Fingerprint: d.fingerprint, Ready: ready, BuiltNow: builtNow,
	}
	if ready {
		s.Snapshot, s.Built, s.DurationMS = ts.Snapshot, ts.Built, ts.DurationMS
	}
	return s
}

// Templates lists the templates, sorted by name, with whether their snapshot is built (as the
// store records it; Bootstrap also checks the provider).
func (e *Engine) Templates(ctx context.Context) ([]TemplateStatus, error) {
	out := []TemplateStatus{}
	err := e.st.View(func(tx *store.Tx) error {
		for _, name := range e.tpl.names {
			d := e.tpl.defs[name]
			ts, err := tx.TemplateSnapshot(d.key)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			out = append(out, d.status(ts, err == nil, false))
		}
		return nil
	})
	return out, err
}

// Bootstrap builds the snapshots of the named templates (none named: all of them) that are not
// built yet, or whose snapshot is gone; with rebuild it runs every setup again (the snapshot it
// replaces is deleted once no workspace's commit references it). Templates are built one after
// another; a failure does not stop the others. It returns the status of each, and the failures
// joined.
func (e *Engine) Bootstrap(ctx context.Context, names []string, rebuild bool) ([]TemplateStatus, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	if len(e.tpl.names) == 0 {
		return nil, errorf(ErrNotFound, "no setup templates are defined (the server's config defines them under \"templates\")")
	}
	if len(names) == 0 {
		names = e.tpl.names
	}
	var defs []*templateDef
	for _, n := range names {
		d, err := e.tpl.lookup(n)
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	var out []TemplateStatus
	var errs []error
	for _, d := range defs {
		ts, built, err := e.ensureTemplate(ctx, d, rebuild, nil)
		if err != nil {
			errs = append(errs, err)
			out = append(out, d.status(ts, false, false))
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				break
			}
			continue
		}
		out = append(out, d.status(ts, true, built))
	}
	return out, errors.Join(errs...)
}
