package vercel_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/sandboxtest"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

// TestConformance runs the provider conformance suite against the Vercel provider talking HTTP
// to the fake (whose sessions run in real bubblewrap sandboxes).
func TestConformance(t *testing.T) {
	sandboxtest.RunConformanceTests(t, &harness{envs: map[sandbox.Provider]*vercelfaketest.TestEnv{}})
}

// harness gives each provider a fake of its own ("the cloud"); a restarted provider talks to the
// same fake with the same owner, as a restarted server would.
type harness struct {
	mu   sync.Mutex
	envs map[sandbox.Provider]*vercelfaketest.TestEnv
}

func (h *harness) MakeProvider(ctx context.Context, t *testing.T) sandbox.Provider {
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	p := newProvider(t, env, "conformance")
	h.mu.Lock()
	h.envs[p] = env
	h.mu.Unlock()
	return p
}

// MakeEgressProvider implements sandboxtest.EgressHarness: the fake's backend, whose proxy
// enforces the sessions' network policies, resolves the names to the test servers and may dial
// exactly their addresses.
func (h *harness) MakeEgressProvider(ctx context.Context, t *testing.T, upstreams map[string]netip.AddrPort) sandbox.Provider {
	eg := local.EgressOptions{Resolve: map[string][]netip.Addr{}}
	for name, ap := range upstreams {
		eg.Resolve[name] = []netip.Addr{ap.Addr()}
		eg.AllowAddrs = append(eg.AllowAddrs, ap)
	}
	env := vercelfaketest.StartWithEgress(t, "", vercelfake.Options{}, eg)
	p := newProvider(t, env, "conformance")
	h.mu.Lock()
	h.envs[p] = env
	h.mu.Unlock()
	return p
}

func (h *harness) RestartProvider(ctx context.Context, t *testing.T, closed sandbox.Provider) sandbox.Provider {
	h.mu.Lock()
	env := h.envs[closed]
	h.mu.Unlock()
	if env == nil {
		t.Fatal("RestartProvider: unknown provider")
	}
	p := newProvider(t, env, "conformance")
	h.mu.Lock()
	h.envs[p] = env
	h.mu.Unlock()
	return p
}

// newProvider makes a Vercel provider over env's fake with owner, quick retries and the given
// client config changes.
func newProvider(t testing.TB, env *vercelfaketest.TestEnv, owner string, change ...func(*vercel.Options)) *vercel.Provider {
	t.Helper()
	opts := vercel.Options{
		Config: vercel.Config{
			BaseURL: env.URL, Token: vercelfaketest.TestToken, TeamID: vercelfaketest.TestTeamID,
			ProjectID: vercelfaketest.TestProjectID, MinBackoff: 10 * time.Millisecond,
		},
		Owner:       owner,
		MaxLifetime: 24 * time.Hour,
		Getenv: func(name string) (string, bool) {
			if name == "SANDKIT_CRED_TEST" {
				return "secret-value-42", true
			}
			return "", false
		},
	}
	for _, c := range change {
		c(&opts)
	}
	p, err := vercel.New(opts)
	if err != nil {
		t.Fatalf("vercel.New: %v", err)
	}
	return p
}
