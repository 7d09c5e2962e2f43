// Package localtest helps tests that use the local provider clean up after themselves: live
// (detached) sandboxes outlive the provider by design, so a test that fails between opening and
// ending a session would otherwise leave one running until its deadline.
package localtest

import (
	"context"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox/local"
)

// StopLiveAtCleanup registers a cleanup that stops every live sandbox p knows, then closes p.
// Register it right after local.New, so it runs after the test's other cleanups.
// A provider the test closed already has let go of its live sandboxes (they outlive it by
// design), so a new provider on the same directory adopts them and stops them.
func StopLiveAtCleanup(t testing.TB, p *local.Provider) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopAll(ctx, p)
		_ = p.Close()
		if q, err := local.New(local.Options{Dir: p.Dir()}); err == nil {
			stopAll(ctx, q)
			_ = q.Close()
		}
	})
}

func stopAll(ctx context.Context, p *local.Provider) {
	ids, _ := p.Sandboxes(ctx)
	for _, id := range ids {
		if sb, err := p.Reconnect(ctx, id); err == nil {
			_ = sb.Stop(ctx)
		}
	}
}
