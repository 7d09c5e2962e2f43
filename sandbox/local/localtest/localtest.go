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
func StopLiveAtCleanup(t testing.TB, p *local.Provider) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ids, _ := p.Sandboxes(ctx)
		for _, id := range ids {
			if sb, err := p.Reconnect(ctx, id); err == nil {
				_ = sb.Stop(ctx)
			}
		}
		_ = p.Close()
	})
}
