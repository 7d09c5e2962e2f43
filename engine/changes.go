package engine

import (
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Honest history. A commit is a change: a durable run, a durable write or a commit_session whose
// sandbox changed nothing makes no commit (the provider tells, sandbox.SnapshotInfo.Unchanged),
// and a restore to a state identical to the head makes none either (sandbox.Provider.Diff). Every
// commit records what it changed relative to its parent (the replaced head, for a restore):
// Commit.ChangesKnown, Commit.Changes (bounded) and Commit.ChangedFiles/ChangedBytes. A provider
// that cannot tell (Vercel) commits as before, and the records say the changes are unknown.

// withChanges records what a commit changed, as the provider reported it.
func withChanges(c store.Commit, ch sandbox.Changes) store.Commit {
	c.ChangesKnown = ch.Known
	c.ChangedFiles, c.ChangedBytes = ch.Files, ch.Bytes
	c.Changes = nil
	for _, p := range ch.Paths {
		if len(c.Changes) == store.MaxChanges {
			break
		}
		c.Changes = append(c.Changes, store.PathChange{Path: p.Path, Op: p.Op, Type: p.Type})
	}
	return c
}

// noCommit is what WriteFiles, CommitSession and Restore return when they changed nothing: a
// Commit with an empty ID (none was stored) whose Parent is the head, which stays.
func noCommit(wsID, head, kind, msg string) store.Commit {
	return store.Commit{Workspace: wsID, Parent: head, Kind: kind, Message: msg, ChangesKnown: true, Created: time.Now().UTC()}
}
