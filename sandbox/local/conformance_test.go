package local_test

import (
	"context"
	"sync"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/sandboxtest"
)

// TestConformance runs the provider conformance suite against real bubblewrap sandboxes.
func TestConformance(t *testing.T) {
	sandboxtest.RunConformanceTests(t, &harness{dirs: map[sandbox.Provider]string{}})
}

// harness makes local providers, each over its own data directory, and reopens a closed one on
// the same directory to check that snapshots survive a restart.
type harness struct {
	mu   sync.Mutex
	dirs map[sandbox.Provider]string
}

func (h *harness) MakeProvider(ctx context.Context, t *testing.T) sandbox.Provider {
	return h.open(t, t.TempDir())
}

func (h *harness) RestartProvider(ctx context.Context, t *testing.T, closed sandbox.Provider) sandbox.Provider {
	h.mu.Lock()
	dir, ok := h.dirs[closed]
	h.mu.Unlock()
	if !ok {
		t.Fatalf("RestartProvider: provider %v was not made by this harness", closed)
	}
	return h.open(t, dir)
}

func (h *harness) open(t *testing.T, dir string) sandbox.Provider {
	t.Helper()
	p, err := local.New(local.Options{Dir: dir})
	if err != nil {
		t.Fatalf("local.New(Dir %s): %v (the local provider needs bwrap: apt-get install -y bubblewrap)", dir, err)
	}
	h.mu.Lock()
	h.dirs[p] = dir
	h.mu.Unlock()
	return p
}
