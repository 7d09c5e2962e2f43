package engine

// TEMPORARY: signatures of the engine API while it is being implemented. Every function here is
// replaced by its real implementation before this file is deleted.

import (
	"context"
	"errors"
	"time"
)

var errPending = errors.New("engine: not implemented yet")

// Engine owns workspaces, commits and runs.
type Engine struct{}

// CreateWorkspace makes a new workspace whose head is an empty commit.
func (e *Engine) CreateWorkspace(ctx context.Context, req CreateWorkspaceRequest) (Workspace, error) {
	return Workspace{}, errPending
}

// ListWorkspaces lists workspaces, optionally filtered by a label ("key" or "key=value").
func (e *Engine) ListWorkspaces(ctx context.Context, label string) ([]Workspace, error) {
	return nil, errPending
}

// GetWorkspace finds a workspace by id or name.
func (e *Engine) GetWorkspace(ctx context.Context, ref string) (Workspace, error) {
	return Workspace{}, errPending
}

// DeleteWorkspace deletes a workspace, its history and runs, and frees its snapshots.
func (e *Engine) DeleteWorkspace(ctx context.Context, ref string) error { return errPending }

// RunCommand runs a durable command (see RunCommandRequest). In the foreground it returns when the
// command has finished and its commit is made; with Background it returns at once.
func (e *Engine) RunCommand(ctx context.Context, req RunCommandRequest) (RunResult, error) {
	return RunResult{}, errPending
}

// GetRun returns a run and its output, waiting up to wait for it to finish.
func (e *Engine) GetRun(ctx context.Context, id string, wait time.Duration) (RunResult, error) {
	return RunResult{}, errPending
}

// CancelRun cancels a queued or running run; its workspace head does not move.
func (e *Engine) CancelRun(ctx context.Context, id string) (Run, error) { return Run{}, errPending }

// WriteFiles writes files durably: one new commit.
func (e *Engine) WriteFiles(ctx context.Context, ref string, files []WriteFile) (Commit, error) {
	return Commit{}, errPending
}

// ReadFile reads a file at the workspace head.
func (e *Engine) ReadFile(ctx context.Context, ref, path string, offset, max int64) (FileContent, error) {
	return FileContent{}, errPending
}

// ListFiles lists a directory at the workspace head.
func (e *Engine) ListFiles(ctx context.Context, ref, path string, depth int) ([]FileEntry, error) {
	return nil, errPending
}

// History lists commits from the head back, newest first.
func (e *Engine) History(ctx context.Context, ref string, limit int) ([]Commit, error) {
	return nil, errPending
}

// Restore makes a new commit whose state is that of an earlier commit and moves head to it.
func (e *Engine) Restore(ctx context.Context, ref, commitID string) (Workspace, Commit, error) {
	return Workspace{}, Commit{}, errPending
}

// Fork makes a new workspace whose head shares the state of commitID ("" = the head).
func (e *Engine) Fork(ctx context.Context, ref, commitID, name string) (Workspace, error) {
	return Workspace{}, errPending
}
