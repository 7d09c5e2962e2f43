package vercel

import (
	"context"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// treeChunk is how much of a file one read of a Tree takes.
const treeChunk = 8 << 20

// Tree implements sandbox.Provider: a snapshot is opaque here, so the view is a sandbox booted
// from it, without network, read through the file API (sandbox.TreeBySandbox).
func (p *Provider) Tree(ctx context.Context, ref sandbox.SnapshotRef) (sandbox.Tree, error) {
	return sandbox.TreeBySandbox(ctx, p, ref, sandbox.StartOptions{Policy: policies.Deny(), Label: "tree"}, treeChunk)
}
