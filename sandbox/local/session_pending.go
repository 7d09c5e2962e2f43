package local

// TEMPORARY: the live-sandbox part of the provider contract, not implemented yet. Replaced by the
// sessions work before landing.

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Reconnect is not implemented yet.
func (p *Provider) Reconnect(ctx context.Context, id string) (sandbox.Sandbox, error) {
	return nil, fmt.Errorf("reconnect: %w", sandbox.ErrUnsupported)
}

// Sandboxes is not implemented yet.
func (p *Provider) Sandboxes(ctx context.Context) ([]string, error) {
	return nil, fmt.Errorf("sandboxes: %w", sandbox.ErrUnsupported)
}

func (s *localSandbox) Deadline() time.Time { return time.Time{} }

func (s *localSandbox) Extend(ctx context.Context, until time.Time) error {
	return sandbox.ErrUnsupported
}

func (s *localSandbox) StartProcess(ctx context.Context, req sandbox.ExecRequest) (string, error) {
	return "", sandbox.ErrUnsupported
}

func (s *localSandbox) Process(ctx context.Context, id string, since int64, wait time.Duration) (sandbox.ProcessStatus, error) {
	return sandbox.ProcessStatus{}, sandbox.ErrUnsupported
}

func (s *localSandbox) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	return sandbox.ErrUnsupported
}

func (s *localSandbox) DialPort(ctx context.Context, port int) (net.Conn, error) {
	return nil, sandbox.ErrUnsupported
}
