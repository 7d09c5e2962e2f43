//go:build !linux

package local

import (
	"context"
	"fmt"
	"runtime"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// errNotLinux is the error New gives on this system, and what to do instead.
var errNotLinux = fmt.Errorf("%w: the local provider runs sandboxes in Linux namespaces with bubblewrap, which %s does not have; "+
	"use the Vercel provider (--provider vercel, or \"provider\": \"vercel\" in the config), or run sandkit-mcp inside a Linux VM",
	sandbox.ErrUnavailable, runtime.GOOS)

// Provider is the local provider's type on systems that cannot run it. New never returns one
// here; the type exists so that code written against it builds on every system, and each method
// fails as New does.
type Provider struct{}

var _ sandbox.Provider = (*Provider)(nil)

// Usable says why this system cannot run the local provider at all.
func Usable() error { return errNotLinux }

// New fails on this system, saying what to use instead.
func New(Options) (*Provider, error) { return nil, errNotLinux }

// Diagnose reports that this system cannot run local sandboxes, and what to do instead.
func Diagnose(string) []Check {
	return []Check{{
		Name:   "local sandboxes",
		Detail: fmt.Sprintf("the local provider needs Linux namespaces and bubblewrap; this is %s", runtime.GOOS),
		Fix:    "use the Vercel provider (`--provider vercel`, with VERCEL_OIDC_TOKEN or VERCEL_ACCESS_TOKEN + VERCEL_TEAM_ID + VERCEL_PROJECT_ID; see the README), or run sandkit-mcp inside a Linux VM",
	}}
}

func (*Provider) Name() string                       { return "local" }
func (*Provider) Dir() string                        { return "" }
func (*Provider) Capabilities() sandbox.Capabilities { return sandbox.Capabilities{} }
func (*Provider) Start(context.Context, sandbox.StartOptions) (sandbox.Sandbox, error) {
	return nil, errNotLinux
}
func (*Provider) DeleteSnapshot(context.Context, sandbox.SnapshotRef) error { return errNotLinux }
func (*Provider) Snapshots(context.Context) ([]sandbox.SnapshotRef, error)  { return nil, errNotLinux }
func (*Provider) Diff(context.Context, sandbox.SnapshotRef, sandbox.SnapshotRef) (sandbox.Changes, error) {
	return sandbox.Changes{}, errNotLinux
}
func (*Provider) Import(context.Context, sandbox.ImportSource) (sandbox.SnapshotInfo, error) {
	return sandbox.SnapshotInfo{}, errNotLinux
}
func (*Provider) Tree(context.Context, sandbox.SnapshotRef) (sandbox.Tree, error) {
	return nil, errNotLinux
}
func (*Provider) Reconnect(context.Context, string) (sandbox.Sandbox, error) { return nil, errNotLinux }
func (*Provider) Sandboxes(context.Context) ([]string, error)                { return nil, errNotLinux }
func (*Provider) Close() error                                               { return nil }

// RunBare fails as New does (on Linux it runs a command in a bare bwrap, for benchmarks).
func (*Provider) RunBare(context.Context, ...string) error { return errNotLinux }
