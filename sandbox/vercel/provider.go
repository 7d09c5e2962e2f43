package vercel

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Defaults and Vercel's limits (reference §12).
const (
	// DefaultLifetime is a sandbox's lifetime when StartOptions.Lifetime is zero (Vercel's default
	// session timeout).
	DefaultLifetime = 5 * time.Minute
	// DefaultMaxLifetime is the Hobby plan's limit on a session's run time, extensions included.
	// Pro and Enterprise allow 24 h: set Options.MaxLifetime.
	DefaultMaxLifetime = 45 * time.Minute
	// DefaultMaxFileSize bounds one file written or read in one call.
	DefaultMaxFileSize = 16 << 20
	// DefaultHomeDir is the home of vercel-sandbox, the user Vercel's runtimes run commands as.
	DefaultHomeDir = "/home/vercel-sandbox"
	// MaxPorts is how many ports one Vercel sandbox can expose; MinPort the lowest.
	MaxPorts = 15
	MinPort  = 1024
)

// Tags every sandbox the provider creates carries, with the provider's Owner as value: tagOwner
// on all, tagLive also on live (Detached) ones.
const (
	tagOwner = "sandkit"
	tagLive  = "sandkit-live"
)

// Options configures a Provider.
type Options struct {
	// Config is the API client's configuration (ConfigFromEnv reads it from the environment).
	Config Config
	// Owner names this installation (e.g. a random id kept in the server's data directory). Every
	// sandbox the provider creates is tagged and named with it, and the provider only ever lists,
	// adopts, stops or deletes sandboxes and snapshots of its own Owner, so several installations
	// can share a Vercel project. 1–24 characters of [a-z0-9].
	Owner string
	// Runtime is the legacy runtime to create fresh sandboxes with ("node24", "python3.13"); ""
	// uses Vercel's default image. Sandboxes started from a snapshot keep their snapshot's system.
	Runtime string
	// HomeDir is the VM user's home directory as sandkit names it (Capabilities.HomeDir; zero:
	// DefaultHomeDir). Inside the VM, file operations on it reach the user's $HOME, whatever
	// the image; set it to that path (an image running as "ubuntu": /home/ubuntu) so that the
	// absolute paths agents see match what commands see.
	HomeDir string
	// VCPUs per sandbox (1 or an even number); zero means Vercel's default (2).
	VCPUs int
	// DefaultLifetime applies when StartOptions.Lifetime is zero (zero: DefaultLifetime).
	DefaultLifetime time.Duration
	// MaxLifetime is the plan's limit on a sandbox's run time (zero: DefaultMaxLifetime).
	MaxLifetime time.Duration
	// SnapshotExpiration is how long Vercel keeps a snapshot after its last use; zero keeps
	// snapshots until sandkit deletes them (history must not vanish under a workspace).
	SnapshotExpiration time.Duration
	// MaxFileSize is Capabilities.MaxFileSize (zero: DefaultMaxFileSize).
	MaxFileSize int64
	// Getenv resolves the credentials policies name (nil: os.LookupEnv).
	Getenv policies.Getenv
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
}

var ownerRe = regexp.MustCompile(`^[a-z0-9]{1,24}$`)

// Provider is the Vercel Sandbox provider. It is safe for concurrent use.
type Provider struct {
	opts Options
	c    *Client
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	// mine holds the sandboxes this provider started and has not seen end, by session id; Close
	// stops the ones that are not Detached, and the orphan sweep leaves all of them alone.
	mine map[string]*vsandbox
	// swept is set once the orphan sweep has run.
	swept bool
}

// New makes a provider. It does not contact Vercel (doctor and the first Start do).
func New(opts Options) (*Provider, error) {
	if !ownerRe.MatchString(opts.Owner) {
		return nil, fmt.Errorf("%w: vercel provider: owner %q must be 1–24 characters of a-z and 0-9", sandbox.ErrInvalid, opts.Owner)
	}
	if opts.VCPUs < 0 || opts.VCPUs > 1 && opts.VCPUs%2 != 0 {
		return nil, fmt.Errorf("%w: vercel provider: vcpus %d must be 1 or an even number", sandbox.ErrInvalid, opts.VCPUs)
	}
	if opts.DefaultLifetime == 0 {
		opts.DefaultLifetime = DefaultLifetime
	}
	if opts.MaxLifetime == 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	if opts.DefaultLifetime > opts.MaxLifetime {
		opts.DefaultLifetime = opts.MaxLifetime
	}
	if opts.MaxFileSize == 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.HomeDir == "" {
		opts.HomeDir = DefaultHomeDir
	}
	if h := path.Clean(opts.HomeDir); h != opts.HomeDir || !path.IsAbs(h) || h == "/" || h == sandbox.WorkspaceDir || strings.HasPrefix(h, sandbox.WorkspaceDir+"/") || strings.HasPrefix(sandbox.WorkspaceDir, h+"/") {
		return nil, fmt.Errorf("%w: vercel provider: home directory %q must be a clean absolute path apart from /workspace", sandbox.ErrInvalid, opts.HomeDir)
	}
	if opts.SnapshotExpiration != 0 && opts.SnapshotExpiration < 24*time.Hour {
		return nil, fmt.Errorf("%w: vercel provider: snapshot expiration %v is shorter than Vercel's minimum of one day (zero keeps snapshots until they are deleted)", sandbox.ErrInvalid, opts.SnapshotExpiration)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Config.Logger == nil {
		opts.Config.Logger = opts.Logger
	}
	c, err := newClient(opts.Config)
	if err != nil {
		return nil, err
	}
	return &Provider{opts: opts, c: c, log: opts.Logger, mine: map[string]*vsandbox{}}, nil
}

// Client returns the provider's API client (doctor uses it to check the credentials).
func (p *Provider) Client() *Client { return p.c }

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return "vercel" }

// Capabilities implements sandbox.Provider.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Egress:        true,
		MaxFileSize:   p.opts.MaxFileSize,
		HomeDir:       p.opts.HomeDir,
		PortURLs:      true,
		MaxPorts:      MaxPorts,
		MinPort:       MinPort,
		MaxLifetime:   p.opts.MaxLifetime,
		FixedDeadline: true,
		TextOutput:    true,
		WholeDisk:     true,
	}
}

var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

var labelClean = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// sandboxName makes a fresh name "sk-<owner>-<label>-<random>" (Vercel: ≤128 of [a-zA-Z0-9_-]).
func (p *Provider) sandboxName(label string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	label = strings.Trim(labelClean.ReplaceAllString(label, "-"), "-")
	if len(label) > 40 {
		label = label[:40]
	}
	if label != "" {
		label += "-"
	}
	return p.prefix() + label + nameEncoding.EncodeToString(b[:])
}

// prefix starts the names of this owner's sandboxes.
func (p *Provider) prefix() string { return "sk-" + p.opts.Owner + "-" }

// Start implements sandbox.Provider: it creates a Vercel sandbox (persistent:false) from the
// snapshot, with the policy, ports, env and lifetime, and returns once it runs.
func (p *Provider) Start(ctx context.Context, opts sandbox.StartOptions) (sandbox.Sandbox, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: vercel provider is closed", sandbox.ErrUnavailable)
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = p.opts.DefaultLifetime
	}
	if lifetime < time.Second {
		return nil, fmt.Errorf("%w: lifetime %v is shorter than a second", sandbox.ErrInvalid, lifetime)
	}
	if lifetime > p.opts.MaxLifetime {
		return nil, fmt.Errorf("%w: a lifetime of %v is longer than the %v Vercel allows on this plan (set the vercel max_lifetime in the server config if your plan allows more)", sandbox.ErrInvalid, lifetime, p.opts.MaxLifetime)
	}
	if err := checkPorts(opts.Ports); err != nil {
		return nil, err
	}
	np, warnings, err := compilePolicy(opts.Policy, p.opts.Getenv)
	if err != nil {
		return nil, err
	}
	tags := map[string]string{tagOwner: p.opts.Owner}
	if opts.Detached {
		tags[tagLive] = p.opts.Owner
	}
	req := createRequest{
		Name: p.sandboxName(opts.Label), SnapshotID: string(opts.Snapshot), Ports: opts.Ports,
		Timeout: lifetime, VCPUs: p.opts.VCPUs, Env: opts.Env, Tags: tags, NetworkPolicy: &np,
	}
	if opts.Snapshot == "" {
		req.Runtime = p.opts.Runtime
	}
	began := time.Now()
	ss, err := p.c.createSandbox(ctx, req)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "snapshot_not_found" {
			return nil, fmt.Errorf("%w: snapshot %s no longer exists on Vercel (it expired or was deleted): %v", sandbox.ErrNotFound, opts.Snapshot, err)
		}
		return nil, err
	}
	sb := p.handle(ss.Session, ss.Sandbox.Name, ss.Routes, opts.Detached)
	sb.warnings = warnings
	p.log.Debug("vercel sandbox started", "sandbox", ss.Sandbox.Name, "session", ss.Session.ID, "snapshot", opts.Snapshot, "took", time.Since(began))
	if opts.Snapshot == "" {
		if err := sb.initWorkspace(ctx); err != nil {
			_ = sb.Stop(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = sb.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w: vercel provider is closed", sandbox.ErrUnavailable)
	}
	p.mine[sb.sid] = sb
	p.mu.Unlock()
	return sb, nil
}

func checkPorts(ports []int) error {
	if len(ports) > MaxPorts {
		return fmt.Errorf("%w: %d ports; a Vercel sandbox exposes at most %d", sandbox.ErrInvalid, len(ports), MaxPorts)
	}
	for _, port := range ports {
		if port < MinPort || port > 65535 {
			return fmt.Errorf("%w: port %d cannot be exposed on Vercel (ports %d–65535)", sandbox.ErrInvalid, port, MinPort)
		}
	}
	return nil
}

// handle makes a sandbox handle for a running session.
func (p *Provider) handle(s Session, name string, routes []Route, detached bool) *vsandbox {
	sb := &vsandbox{p: p, sid: s.ID, name: name, detached: detached, routes: map[int]string{}, deadline: s.deadline(), started: sessionStart(s)}
	for _, r := range routes {
		sb.routes[r.Port] = r.URL
	}
	return sb
}

// sessionStart is when a session's run time began counting.
func sessionStart(s Session) time.Time {
	if s.StartedAt != nil {
		return time.UnixMilli(*s.StartedAt)
	}
	return time.UnixMilli(s.CreatedAt)
}

// forget drops an ended sandbox from the provider's set.
func (p *Provider) forget(sid string) {
	p.mu.Lock()
	delete(p.mine, sid)
	p.mu.Unlock()
}

// DeleteSnapshot implements sandbox.Provider. It also deletes the stopped sandbox the snapshot
// was taken from, which the provider keeps as the record that the snapshot is its own.
func (p *Provider) DeleteSnapshot(ctx context.Context, ref sandbox.SnapshotRef) error {
	if ref == "" {
		return nil
	}
	snap, err := p.c.getSnapshot(ctx, string(ref))
	if errors.Is(err, sandbox.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	name := ""
	if s, _, err := p.c.GetSession(ctx, snap.SourceSessionID); err == nil {
		name = s.SourceSandboxName
	}
	if snap.Status != "deleted" {
		if _, err := p.c.deleteSnapshot(ctx, snap.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			return err
		}
	}
	if strings.HasPrefix(name, p.prefix()) {
		if err := p.c.deleteSandbox(ctx, name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			p.log.Warn("vercel: could not delete the sandbox of a deleted snapshot", "sandbox", name, "err", err)
		}
	}
	return nil
}

// Diff implements sandbox.Provider: Vercel snapshots a VM's whole disk and says nothing of what
// changed, so two snapshots cannot be compared (Capabilities.Diff is false).
func (p *Provider) Diff(ctx context.Context, from, to sandbox.SnapshotRef) (sandbox.Changes, error) {
	return sandbox.Changes{}, fmt.Errorf("%w: the vercel provider cannot compare snapshots (Vercel keeps whole disks and does not report what changed)", sandbox.ErrUnsupported)
}

// Snapshots implements sandbox.Provider: the snapshots taken from this owner's sandboxes.
// Stopped sandboxes of this owner without a snapshot (left by a crash) are deleted on the way.
func (p *Provider) Snapshots(ctx context.Context) ([]sandbox.SnapshotRef, error) {
	boxes, err := p.c.ListSandboxes(ctx, tagOwner+":"+p.opts.Owner, "")
	if err != nil {
		return nil, err
	}
	sessions := map[string]string{} // session id → sandbox name
	for _, b := range boxes {
		if strings.HasPrefix(b.Name, p.prefix()) && b.CurrentSessionID != "" {
			sessions[b.CurrentSessionID] = b.Name
		}
	}
	snaps, err := p.c.listSnapshots(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []sandbox.SnapshotRef
	held := map[string]bool{}
	for _, s := range snaps {
		if name, ok := sessions[s.SourceSessionID]; ok && s.Status == "created" {
			out = append(out, sandbox.SnapshotRef(s.ID))
			held[name] = true
		}
	}
	p.mu.Lock()
	live := map[string]bool{}
	for sid := range p.mine {
		live[sid] = true
	}
	p.mu.Unlock()
	for _, b := range boxes {
		if held[b.Name] || live[b.CurrentSessionID] || b.Status != "stopped" || !strings.HasPrefix(b.Name, p.prefix()) {
			continue
		}
		if err := p.c.deleteSandbox(ctx, b.Name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			p.log.Warn("vercel: could not delete a stopped sandbox without snapshot", "sandbox", b.Name, "err", err)
		}
	}
	return out, nil
}

// Reconnect implements sandbox.Provider: id is a Vercel session id ("sbx_…") of this owner's
// live sandboxes.
func (p *Provider) Reconnect(ctx context.Context, id string) (sandbox.Sandbox, error) {
	p.mu.Lock()
	if sb, ok := p.mine[id]; ok && sb.detached {
		p.mu.Unlock()
		if err := sb.check(); err == nil {
			return sb, nil
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	s, routes, err := p.c.GetSession(ctx, id)
	if err != nil {
		if errors.Is(err, sandbox.ErrInvalid) {
			err = fmt.Errorf("%w: %v", sandbox.ErrNotFound, err)
		}
		return nil, err
	}
	if !strings.HasPrefix(s.SourceSandboxName, p.prefix()) {
		return nil, fmt.Errorf("%w: Vercel session %s is not a live sandbox of this sandkit installation", sandbox.ErrNotFound, id)
	}
	if !s.running() {
		return nil, fmt.Errorf("%w: Vercel session %s has ended (status %s)", sandbox.ErrNotFound, id, s.Status)
	}
	sb := p.handle(s, s.SourceSandboxName, routes, true)
	p.mu.Lock()
	p.mine[sb.sid] = sb
	p.mu.Unlock()
	return sb, nil
}

// Sandboxes implements sandbox.Provider: the running live sandboxes of this owner. The first
// call also stops this owner's running sandboxes that are neither live nor started by this
// provider: those of durable runs whose server died (they would otherwise run, and cost, until
// their timeout).
func (p *Provider) Sandboxes(ctx context.Context) ([]string, error) {
	live, err := p.c.ListSandboxes(ctx, tagLive+":"+p.opts.Owner, "running")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range live {
		if strings.HasPrefix(b.Name, p.prefix()) && b.CurrentSessionID != "" {
			out = append(out, b.CurrentSessionID)
		}
	}
	p.mu.Lock()
	sweep := !p.swept
	p.swept = true
	p.mu.Unlock()
	if sweep {
		p.sweep(ctx)
	}
	return out, nil
}

// sweep stops and deletes this owner's running non-live sandboxes that this provider did not
// start.
func (p *Provider) sweep(ctx context.Context) {
	all, err := p.c.ListSandboxes(ctx, tagOwner+":"+p.opts.Owner, "running")
	if err != nil {
		p.log.Warn("vercel: could not list sandboxes to stop orphans", "err", err)
		return
	}
	for _, b := range all {
		p.mu.Lock()
		_, ours := p.mine[b.CurrentSessionID]
		p.mu.Unlock()
		if ours || b.Tags[tagLive] != "" || !strings.HasPrefix(b.Name, p.prefix()) {
			continue
		}
		p.log.Info("vercel: stopping an orphaned sandbox of a durable run", "sandbox", b.Name, "session", b.CurrentSessionID)
		if _, err := p.c.stopSession(ctx, b.CurrentSessionID); err != nil && !ended(err) {
			p.log.Warn("vercel: could not stop an orphaned sandbox", "sandbox", b.Name, "err", err)
			continue
		}
		if err := p.c.deleteSandbox(ctx, b.Name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			p.log.Warn("vercel: could not delete an orphaned sandbox", "sandbox", b.Name, "err", err)
		}
	}
}

// ended reports whether err says the session is already gone or going.
func ended(err error) bool {
	return errors.Is(err, sandbox.ErrEnded) || errors.Is(err, sandbox.ErrNotFound)
}

// Close implements sandbox.Provider: sandboxes started without Detached are stopped; live ones
// keep running.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var stop []*vsandbox
	for _, sb := range p.mine {
		if !sb.detached {
			stop = append(stop, sb)
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, sb := range stop {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sb.Stop(ctx); err != nil {
				p.log.Warn("vercel: could not stop a sandbox at close", "session", sb.sid, "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// Import implements sandbox.Provider through the file upload: an empty sandbox gets the files
// in batches (sandbox.ImportByWrites), then it is snapshotted.
func (p *Provider) Import(ctx context.Context, src sandbox.ImportSource) (sandbox.SnapshotInfo, error) {
	return sandbox.ImportByWrites(ctx, p, src)
}
