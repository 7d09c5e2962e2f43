package vercelfake

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSDKContract runs the published @vercel/sandbox SDK (3.5.0, pinned with a committed
// package-lock.json in testdata/sdk-contract) against the fake: contract.mjs creates a sandbox,
// runs attached and detached commands, writes, reads and makes files, updates the network
// policy, snapshots, creates from the snapshot, extends the timeout, resumes and stops — with
// the SDK's own validators checking every response — and has @vercel/oidc renew an OIDC token
// near its exp at the fake's token endpoint with a CLI login. It needs node and npm, and the npm registry
// (or npm's cache): their absence is a failure, not a skip.
func TestSDKContract(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required by the SDK contract test: %v (install Node.js 20+ with npm)", tool, err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "contract.mjs"} {
		data, err := os.ReadFile(filepath.Join("testdata", "sdk-contract", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	install.Dir = dir
	install.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of the pinned @vercel/sandbox failed: %v\n%s", err, out)
	}
	t.Logf("npm ci: %v", time.Since(began).Round(time.Millisecond))

	a := newAPI(t, Options{CLIToken: testCLIToken})
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "com.vercel.cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "com.vercel.cli", "auth.json"), []byte(`{"token":"`+testCLIToken+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The SDK's retry path against the fake's 429: its first create is refused once and retried
	// after Retry-After.
	a.fake.Inject(Fault{Method: "POST", Path: `^/v3/sandboxes$`, Status: 429, RetryAfter: time.Second})
	node := exec.CommandContext(ctx, "node", "contract.mjs")
	node.Dir = dir
	node.Env = append(withoutVercelEnv(os.Environ()),
		"FAKE_URL="+a.url, "FAKE_TOKEN="+testToken, "FAKE_TEAM="+testTeam, "FAKE_PROJECT="+testProject,
		"FAKE_OIDC_TOKEN="+a.fake.IssueOIDCToken(2*time.Minute), "XDG_DATA_HOME="+data,
		"VERCEL_SANDBOX_TELEMETRY_DISABLED=1", "VERCEL_TELEMETRY_DISABLED=1")
	var out bytes.Buffer
	node.Stdout, node.Stderr = &out, &out
	began = time.Now()
	err := node.Run()
	t.Logf("contract.mjs (%v):\n%s", time.Since(began).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("the SDK contract failed: %v", err)
	}
	if !strings.Contains(out.String(), "contract: all") {
		t.Fatal("contract.mjs exited 0 without reporting that every step passed")
	}
	if n := a.fake.Requests("POST", `^/v3/sandboxes$`); n != 4 {
		t.Errorf("%d create requests, want 4 (three creates, one retried after the injected 429)", n)
	}
	// The SDK's uploads, which the Go client's follow (TestUploadHeaders): x-cwd "/", gzip.
	writes := a.fake.RequestLog("POST", `^/v2/sandboxes/sessions/[^/]+/fs/write$`)
	if len(writes) == 0 {
		t.Error("the SDK contract made no fs/write request")
	}
	for _, r := range writes {
		if r.Header.Get("X-Cwd") != "/" || r.Header.Get("Content-Type") != "application/gzip" {
			t.Errorf("the SDK's fs/write had x-cwd %q, content-type %q", r.Header.Get("X-Cwd"), r.Header.Get("Content-Type"))
		}
	}
	// @vercel/oidc's renewal, as the fake saw it: once, the CLI login's token, no body.
	if reqs := a.fake.RequestLog("POST", `^/v1/projects/[^/]+/token$`); len(reqs) != 1 || reqs[0].Query.Get("source") != "vercel-oidc-refresh" ||
		reqs[0].Query.Get("teamId") != testTeam {
		t.Errorf("token requests %+v; want one with source=vercel-oidc-refresh and teamId=%s", reqs, testTeam)
	}
	// The SDK's snapshot stopped the session; nothing may be left running.
	for _, s := range a.fake.Sessions() {
		if s.Status == "running" {
			t.Errorf("session %s of %s still running after the contract", s.ID, s.Sandbox)
		}
	}
}

// withoutVercelEnv drops Vercel credentials from an environment, so the SDK uses exactly the
// ones the test passes.
func withoutVercelEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "VERCEL_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
