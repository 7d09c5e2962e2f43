package engine

// TEMPORARY: signatures of the session API while it is being implemented; replaced before landing.

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"
)

var errSessionPending = errors.New("engine: sessions not implemented yet")

// OpenSession opens a live session on a workspace: a sandbox started from head that the caller
// (the holder) drives until it commits, discards, or the session expires.
func (e *Engine) OpenSession(ctx context.Context, h Holder, req OpenSessionRequest) (Session, error) {
	return Session{}, errSessionPending
}

// AttachSession makes h the holder of the workspace's open session, once the previous holder's
// connection is gone (or h already holds it).
func (e *Engine) AttachSession(ctx context.Context, h Holder, workspace string) (Session, error) {
	return Session{}, errSessionPending
}

// GetSession returns a session by id (any state).
func (e *Engine) GetSession(ctx context.Context, id string) (Session, error) {
	return Session{}, errSessionPending
}

// SessionExec runs a command in the session, in the foreground or background.
func (e *Engine) SessionExec(ctx context.Context, h Holder, req SessionExecRequest) (SessionExecResult, error) {
	return SessionExecResult{}, errSessionPending
}

// SessionLogs reports a background process and its output from offset since, waiting up to wait.
func (e *Engine) SessionLogs(ctx context.Context, h Holder, sessionID, processID string, since int64, wait time.Duration) (ProcessStatus, error) {
	return ProcessStatus{}, errSessionPending
}

// SessionKill signals a background process (and its process group).
func (e *Engine) SessionKill(ctx context.Context, h Holder, sessionID, processID string, sig syscall.Signal) (ProcessStatus, error) {
	return ProcessStatus{}, errSessionPending
}

// SessionURL returns a URL on the host that reaches port inside the session.
func (e *Engine) SessionURL(ctx context.Context, h Holder, sessionID string, port int) (string, error) {
	return "", errSessionPending
}

// ExtendSession sets the session to expire timeout from now.
func (e *Engine) ExtendSession(ctx context.Context, h Holder, sessionID string, timeout time.Duration) (Session, error) {
	return Session{}, errSessionPending
}

// CommitSession snapshots the session as a new commit (kind "session"), moves head and ends it.
func (e *Engine) CommitSession(ctx context.Context, h Holder, sessionID, message string) (Commit, error) {
	return Commit{}, errSessionPending
}

// DiscardSession ends the session and drops its changes; head stays.
func (e *Engine) DiscardSession(ctx context.Context, h Holder, sessionID string) (Session, error) {
	return Session{}, errSessionPending
}

// SessionWriteFiles writes files into the live session (no commit).
func (e *Engine) SessionWriteFiles(ctx context.Context, h Holder, sessionID string, files []WriteFile) error {
	return errSessionPending
}

// SessionReadFile reads a file from the live session.
func (e *Engine) SessionReadFile(ctx context.Context, h Holder, sessionID, path string, offset, max int64) (FileContent, error) {
	return FileContent{}, errSessionPending
}

// SessionListFiles lists a directory of the live session.
func (e *Engine) SessionListFiles(ctx context.Context, h Holder, sessionID, path string, depth int) ([]FileEntry, error) {
	return nil, errSessionPending
}

// Disconnect tells the engine that a connection is gone: the sessions it holds become detached
// (their sandboxes keep running until they expire), and another connection may attach them.
func (e *Engine) Disconnect(conn string) {}

// Preview resolves a preview URL token to its session and port, and a dialer reaching that port.
// Unknown or ended tokens yield ErrNotFound.
func (e *Engine) Preview(token string) (PreviewTarget, func(ctx context.Context) (net.Conn, error), error) {
	return PreviewTarget{}, nil, errSessionPending
}
