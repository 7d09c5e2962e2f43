// Package vercelfaketest starts the Vercel fake for tests: over a local (bubblewrap) backend, on
// 127.0.0.1, stopped with the test.
package vercelfaketest

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
)

// Credentials the fake started by StartForTest accepts.
const (
	TestToken     = "test-token-0123456789"
	TestTeamID    = "team_sandkittest"
	TestProjectID = "prj_sandkittest"
)

// TestEnv is a running fake for tests: the HTTP server (on 127.0.0.1), the fake behind it and its
// local backend.
type TestEnv struct {
	URL     string
	Fake    *vercelfake.Server
	Backend *local.Provider
}

// StartForTest starts a fake over a local (bubblewrap) backend in a directory of its own under dir
// (t.TempDir() when ""), with TestToken, TestTeamID and TestProjectID, and stops it all when t
// ends: the HTTP server, every session's backend sandbox, the backend.
func StartForTest(t testing.TB, dir string, opts vercelfake.Options) *TestEnv {
	t.Helper()
	return StartWithEgress(t, dir, opts, local.EgressOptions{})
}

// StartWithEgress is StartForTest with the backend's egress options: the proxy that enforces
// the sessions' network policies resolves and may dial what egress says (test servers on the
// host, as an operator's registry mirror would be).
func StartWithEgress(t testing.TB, dir string, opts vercelfake.Options, egress local.EgressOptions) *TestEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	backend, err := local.New(local.Options{Dir: filepath.Join(dir, "vercelfake-backend"), DefaultLifetime: time.Hour, HomeDir: vercelfake.HomeDir, Egress: egress})
	if err != nil {
		t.Fatalf("vercelfake: local backend: %v (install bubblewrap: apt-get install -y bubblewrap)", err)
	}
	localtest.StopLiveAtCleanup(t, backend)
	opts.Backend = backend
	if opts.Token == "" {
		opts.Token, opts.TeamID, opts.ProjectID = TestToken, TestTeamID, TestProjectID
	}
	if opts.ProjectName == "" {
		opts.ProjectName = "sandkit-test"
	}
	fake, err := vercelfake.New(opts)
	if err != nil {
		t.Fatalf("vercelfake: %v", err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = fake.Close()
	})
	return &TestEnv{URL: srv.URL, Fake: fake, Backend: backend}
}
