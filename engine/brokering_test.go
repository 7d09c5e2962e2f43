package engine_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
	"github.com/sandkit/sandkit-mcp/store"
)

// TestPerRunLiteralCredential: a run_command whose own policy carries a literal key reaches a
// TLS server (on loopback, mapped to a name and allowed for this test) with the key injected by
// the egress proxy; the command never sees the key, and the state file never holds it.
func TestPerRunLiteralCredential(t *testing.T) {
	t.Parallel()
	const secret = "sk-literal-per-run-7f3a9c"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte("hello from the api\n"))
	}))
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pv, err := local.New(local.Options{Dir: filepath.Join(dir, "local"), Egress: local.EgressOptions{
		AllowAddrs: []netip.AddrPort{addr}, UpstreamRoots: roots,
		Resolve: map[string][]netip.Addr{"example.com": {addr.Addr()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	localtest.StopLiveAtCleanup(t, pv)
	defer pv.Close()
	e, err := engine.Open(context.Background(), engine.Options{Store: st, Provider: pv})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := ctxT(t)
	if _, err := e.CreateWorkspace(ctx, engine.CreateWorkspaceRequest{Name: "api"}); err != nil {
		t.Fatal(err)
	}
	pol := policies.Policy{Mode: policies.Allow, Services: []policies.Service{{
		ID: "api", Domains: []string{"example.com"},
		Headers: []policies.Header{{Name: "authorization", Prefix: "Bearer ", Credential: policies.Credential{Value: secret}}},
	}}}
	url := "https://example.com:" + strings.Split(srv.Listener.Addr().String(), ":")[1] + "/v1"
	r, err := e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "api", Command: "sh", Policy: &pol,
		Args: []string{"-c", "curl -sS --max-time 20 " + url + "; env; cat /proc/self/environ"}})
	if err != nil {
		t.Fatal(err)
	}
	out := stdout(r) + string(r.Stderr.Head)
	if r.Run.ExitCode == nil || *r.Run.ExitCode != 0 || !strings.Contains(out, "hello from the api") {
		t.Fatalf("run: %+v\n%s", r.Run, out)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the literal key reached the sandbox")
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 1 || got[0] != "Bearer "+secret {
		t.Fatalf("the server saw Authorization %q, want the injected literal key", got)
	}
	// Without the per-run policy the workspace's deny-all default applies: refused, readable.
	r2, err := e.RunCommand(ctx, engine.RunCommandRequest{Workspace: "api", Command: "sh",
		Args: []string{"-c", "curl -sS --max-time 20 " + url + " || true"}})
	if err != nil {
		t.Fatal(err)
	}
	if out := stdout(r2) + string(r2.Stderr.Head); !strings.Contains(out, "403") {
		t.Fatalf("deny-all default must refuse with a 403: %s", out)
	}
	e.Close()
	st.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the state file holds the literal key")
	}
}
