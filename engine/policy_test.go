package engine_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
)

// countingProvider is the real local provider, counting the setup sandboxes it starts (the
// engine labels them "template <name>").
type countingProvider struct {
	*local.Provider
	setups atomic.Int64
}

func (c *countingProvider) Start(ctx context.Context, opts sandbox.StartOptions) (sandbox.Sandbox, error) {
	if strings.HasPrefix(opts.Label, "template ") {
		c.setups.Add(1)
	}
	return c.Provider.Start(ctx, opts)
}

// cenv is an env over the real local provider, counted (pv is env's provider as the
// countingProvider it is), opened with the options set gives.
type cenv struct {
	*env
	pv *countingProvider
}

func openWith(t *testing.T, dir string, set func(*engine.Options)) (*cenv, error) {
	t.Helper()
	pv := &countingProvider{Provider: localProvider(t, dir)}
	v, err := openOver(t, dir, pv, set)
	if err != nil {
		return nil, err
	}
	return &cenv{env: v, pv: pv}, nil
}

// newCEnv opens a fresh cenv that closes when the test ends.
func newCEnv(t *testing.T, set func(*engine.Options)) *cenv {
	t.Helper()
	v, err := openWith(t, t.TempDir(), set)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.close)
	return v
}

func (v *cenv) snapshots(t *testing.T) []sandbox.SnapshotRef {
	t.Helper()
	refs, err := v.pv.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

// sandboxDirs lists the sandbox directories the local provider holds (every running sandbox,
// detached or not, has one).
func (v *cenv) sandboxDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(v.dir, "local", "sandboxes"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Name())
	}
	return out
}

func github(cred *policies.Credential) policies.Policy {
	return policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "github", Credential: cred}}}
}

func TestPolicyDurableCheck(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, nil)
	ctx := ctxT(t)
	literal := github(&policies.Credential{Value: "ghp_literal"})
	_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "lit", Policy: &literal})
	wantErr(t, "create_workspace with a literal secret", err, engine.ErrPolicy, `service "github"`, "literal secret", "env")
	if !errors.Is(err, policies.ErrSecret) {
		t.Errorf("the error should also match policies.ErrSecret: %v", err)
	}
	custom := policies.Policy{Mode: policies.Allow, Services: []policies.Service{{
		ID: "internal-api", Domains: []string{"api.internal.example"},
		Headers: []policies.Header{{Name: "authorization", Prefix: "Bearer ", Credential: policies.Credential{Value: "tok"}}},
	}}}
	w := v.mkws(t, "w")
	_, err = v.e.SetPolicy(ctx, engine.Holder{}, w.Name, custom)
	wantErr(t, "set_policy with a literal secret", err, engine.ErrPolicy, `service "internal-api"`, "literal secret")

	// The same secret is fine where it is not stored: run_command's and open_session's policy.
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: w.Name, Command: "true", Policy: &custom})
	if err != nil || r.Run.Status != engine.RunExited {
		t.Fatalf("run with a literal per-run policy: %+v %v", r.Run, err)
	}

	// Bad policies are refused with the policies package's precise message.
	for _, bad := range []struct {
		p    policies.Policy
		want string
	}{
		{policies.Policy{Mode: policies.Allow, Domains: []string{"a.*.example.com"}}, "wildcard"},
		{policies.Policy{Mode: policies.Allow, Domains: []string{"example.com:443"}}, "port"},
		{policies.Policy{Mode: policies.Allow}, "at least one domain or service"},
		{policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "nosuchpreset"}}}, "nosuchpreset"},
	} {
		_, err := v.e.SetPolicy(ctx, engine.Holder{}, w.Name, bad.p)
		wantErr(t, "set_policy "+bad.want, err, engine.ErrPolicy, bad.want)
	}
}

func TestPolicyOperatorLimit(t *testing.T) {
	t.Parallel()
	limit := policies.Policy{Mode: policies.Allow, Domains: []string{"*.example.com"}, Services: []policies.Service{{ID: "npm"}}}
	v := newCEnv(t, func(o *engine.Options) { o.MaxPolicy = &limit })
	ctx := ctxT(t)
	h := engine.Holder{Conn: "c1", Client: "agent-1"}

	allowAll := policies.Policy{Mode: policies.AllowAll}
	gh := github(nil)
	outside := policies.Policy{Mode: policies.Allow, Domains: []string{"evil.test"}}
	inside := policies.Policy{Mode: policies.Allow, Domains: []string{"a.example.com"}, Services: []policies.Service{{ID: "npm"}}}

	_, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "wide", Policy: &allowAll})
	wantErr(t, "create_workspace allow-all", err, engine.ErrPolicy, "allow-all", "operator's limit", "max_policy")
	if !errors.Is(err, policies.ErrTooWide) {
		t.Errorf("the error should also match policies.ErrTooWide: %v", err)
	}
	w, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "ok", Policy: &inside})
	if err != nil {
		t.Fatalf("create_workspace within the limit: %v", err)
	}
	_, err = v.e.SetPolicy(ctx, h, w.Name, gh)
	wantErr(t, "set_policy github", err, engine.ErrPolicy, `service "github"`, "operator's limit")
	_, err = v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: w.Name, Command: "true", Policy: &outside})
	wantErr(t, "run_command outside", err, engine.ErrPolicy, `"evil.test"`, "operator's limit")
	_, err = v.e.OpenSession(ctx, h, engine.OpenSessionRequest{Workspace: w.Name, Policy: &gh})
	wantErr(t, "open_session github", err, engine.ErrPolicy, `service "github"`, "operator's limit")
	if got, _ := v.e.GetWorkspace(ctx, w.Name); got.Lease != nil {
		t.Fatalf("a refused open_session left a lease: %+v", got.Lease)
	}
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: w.Name, Command: "true", Policy: &inside})
	if err != nil || r.Run.Status != engine.RunExited {
		t.Fatalf("run within the limit: %+v %v", r.Run, err)
	}

	// The operator default must itself be within the limit.
	_, err = openWith(t, t.TempDir(), func(o *engine.Options) { o.MaxPolicy = &limit; o.DefaultPolicy = allowAll })
	if err == nil || !strings.Contains(err.Error(), "wider than the max policy") {
		t.Fatalf("Open with a default wider than the limit: %v", err)
	}
}

// TestPolicyLimitNarrowed: a workspace whose stored default the operator's (new) limit no longer
// admits says so, and its runs are refused until set_policy narrows it.
func TestPolicyLimitNarrowed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v, err := openWith(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	wide := policies.Policy{Mode: policies.Allow, Domains: []string{"evil.test"}}
	if _, err := v.e.CreateWorkspace(ctxT(t), engine.CreateWorkspaceRequest{Name: "w", Policy: &wide}); err != nil {
		t.Fatal(err)
	}
	v.close()
	deny := policies.Deny()
	v, err = openWith(t, dir, func(o *engine.Options) { o.MaxPolicy = &deny })
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	ctx := ctxT(t)
	w, _ := v.e.GetWorkspace(ctx, "w")
	if !slices.ContainsFunc(w.Warnings, func(s string) bool { return strings.Contains(s, "set_policy") }) {
		t.Errorf("get_workspace should warn that the policy is now too wide: %v", w.Warnings)
	}
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "w", Command: "true"})
	if err != nil || r.Run.Status != engine.RunFailed || !strings.Contains(r.Run.Error, "set_policy") || !strings.Contains(r.Run.Error, "deny-all") {
		t.Fatalf("run with a default beyond the new limit: %+v %v", r.Run, err)
	}
	if _, err := v.e.SetPolicy(ctx, engine.Holder{}, "w", deny); err != nil {
		t.Fatal(err)
	}
	if r := v.sh(t, "w", "true"); r.Run.Status != engine.RunExited {
		t.Fatalf("run after set_policy: %+v", r.Run)
	}
}

// TestPolicySecretsNeverStored: literal secrets of per-run and per-session overrides are applied
// but never written to the state file, not even in passing.
func TestPolicySecretsNeverStored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v, err := openWith(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	const runSecret, sessionSecret = "sk-run-7f3a9c1e55d0", "sk-session-b61e04d2aa97"
	w := v.mkws(t, "w")
	over := github(&policies.Credential{Value: runSecret})
	r, err := v.e.RunCommand(ctx, engine.RunCommandRequest{Workspace: w.Name, Command: "sh", Args: []string{"-c", "echo ran"}, Policy: &over})
	if err != nil || r.Run.Status != engine.RunExited {
		t.Fatalf("run: %+v %v", r.Run, err)
	}
	if r.Run.Policy != "allow:github" {
		t.Errorf("run policy = %q, want the description allow:github", r.Run.Policy)
	}
	h := engine.Holder{Conn: "c1", Client: "agent"}
	sover := policies.Policy{Mode: policies.Allow, Services: []policies.Service{{
		ID: "internal", Domains: []string{"api.internal.example"},
		Headers: []policies.Header{{Name: "x-api-key", Credential: policies.Credential{Value: sessionSecret}}},
	}}}
	s, err := v.e.OpenSession(ctx, h, engine.OpenSessionRequest{Workspace: w.Name, Policy: &sover})
	if err != nil {
		t.Fatal(err)
	}
	if s.Override == nil || len(s.Override.Services) != 1 || !s.Override.Services[0].Headers[0].Credential.Redacted {
		t.Errorf("the session's stored override must be the redacted policy: %+v", s.Override)
	}
	if _, err := v.e.CommitSession(ctx, h, s.ID, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := v.e.GetRun(ctx, engine.GetRunRequest{ID: r.Run.ID})
	if got.Run.Policy != "allow:github" {
		t.Errorf("stored run policy = %q", got.Run.Policy)
	}
	v.close()
	raw, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{runSecret, sessionSecret} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the state file contains the literal secret %q", secret)
		}
	}
	if !bytes.Contains(raw, []byte(`"redacted":true`)) {
		t.Errorf("the state file should hold the session's redacted override")
	}
}

func TestPolicyCredentialNames(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	v := newCEnv(t, func(o *engine.Options) {
		o.Getenv = func(name string) (string, bool) { s, ok := env[name]; return s, ok }
	})
	ctx := ctxT(t)
	p := policies.Policy{Mode: policies.Allow, Domains: []string{"example.com"}, Services: []policies.Service{
		{ID: "github"}, {ID: "npm"},
		{ID: "internal", Domains: []string{"api.internal.example"}, Headers: []policies.Header{{Name: "x-api-key", Credential: policies.Credential{Env: "SANDKIT_CRED_INTERNAL"}}}},
	}}
	w, err := v.e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "w", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"github: env GITHUB_TOKEN", "internal: env SANDKIT_CRED_INTERNAL"}
	if !slices.Equal(w.Credentials, want) {
		t.Errorf("credentials = %q, want %q", w.Credentials, want)
	}
	if w.Policy.String() != "allow:example.com,github,internal,npm" {
		t.Errorf("policy = %s", w.Policy.String())
	}
	if !slices.ContainsFunc(w.Warnings, func(s string) bool { return strings.Contains(s, "GITHUB_TOKEN") }) {
		t.Errorf("a credential variable the server lacks must be warned about: %q", w.Warnings)
	}
	env["GITHUB_TOKEN"], env["SANDKIT_CRED_INTERNAL"] = "t", "k"
	w, _ = v.e.GetWorkspace(ctx, "w")
	if slices.ContainsFunc(w.Warnings, func(s string) bool {
		return strings.Contains(s, "GITHUB_TOKEN") || strings.Contains(s, "SANDKIT_CRED_INTERNAL")
	}) {
		t.Errorf("no credential warning once the variables are set: %q", w.Warnings)
	}
}

// TestSetPolicyLease: set_policy is a durable change: another connection is refused while a
// session holds the workspace; the holder may, and its live sandbox follows, unless the session
// has its own policy.
func TestSetPolicyLease(t *testing.T) {
	t.Parallel()
	v := newCEnv(t, nil)
	ctx := ctxT(t)
	a, b := engine.Holder{Conn: "a", Client: "agent-a"}, engine.Holder{Conn: "b", Client: "agent-b"}
	w := v.mkws(t, "w")
	npm := policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "npm"}}}

	got, err := v.e.SetPolicy(ctx, b, w.Name, npm)
	if err != nil || got.Policy.String() != "allow:npm" || got.Version <= w.Version {
		t.Fatalf("set_policy without a session: %+v %v", got, err)
	}
	if r := v.sh(t, w.Name, "true"); r.Run.Policy != "allow:npm" {
		t.Errorf("a run after set_policy records policy %q, want allow:npm", r.Run.Policy)
	}

	s, err := v.e.OpenSession(ctx, a, engine.OpenSessionRequest{Workspace: w.Name, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.e.SetPolicy(ctx, b, w.Name, policies.Deny())
	wantErr(t, "set_policy by another connection", err, engine.ErrLeased, s.ID, "agent-a", "holder")
	_, err = v.e.SetPolicy(ctx, engine.Holder{}, w.Name, policies.Deny())
	wantErr(t, "set_policy without a connection", err, engine.ErrLeased, s.ID)

	got, err = v.e.SetPolicy(ctx, a, w.Name, policies.Deny())
	if err != nil || got.Policy.Mode != policies.DenyAll {
		t.Fatalf("set_policy by the holder: %+v %v", got, err)
	}
	if got.Lease == nil || got.Lease.Policy != "deny-all" {
		t.Errorf("the live session follows the holder's new default: lease %+v", got.Lease)
	}
	if _, err := v.e.DiscardSession(ctx, a, s.ID); err != nil {
		t.Fatal(err)
	}

	// A session with its own policy keeps it.
	own := policies.Policy{Mode: policies.Allow, Domains: []string{"example.com"}}
	s, err = v.e.OpenSession(ctx, a, engine.OpenSessionRequest{Workspace: w.Name, Timeout: time.Minute, Policy: &own})
	if err != nil {
		t.Fatal(err)
	}
	got, err = v.e.SetPolicy(ctx, a, w.Name, npm)
	if err != nil || got.Policy.String() != "allow:npm" {
		t.Fatalf("set_policy by the holder of a session with its own policy: %+v %v", got, err)
	}
	if got.Lease == nil || got.Lease.Policy != "allow:example.com" || !slices.ContainsFunc(got.Warnings, func(s string) bool { return strings.Contains(s, "its own policy") }) {
		t.Errorf("the session keeps its own policy, and the result says so: lease %+v, warnings %q", got.Lease, got.Warnings)
	}
	if _, err := v.e.DiscardSession(ctx, a, s.ID); err != nil {
		t.Fatal(err)
	}
}
