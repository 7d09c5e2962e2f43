package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// WriteFiles applies a write_files call durably: the files are written and the deletes removed
// in a sandbox started from head, and the result becomes one new commit (kind "write"). Every
// path and size is checked before anything changes (the engine checks syntax and limits, the
// provider symlinks and existence); on any failure head does not move. Writing a file again with
// the content it already has still counts as a change on the local provider (the file is
// rewritten, its modification time moves), so it makes a commit listing the file as modified;
// only a write the provider finds changed nothing makes no commit, and then the returned Commit
// has an empty ID (see changes.go).
func (e *Engine) WriteFiles(ctx context.Context, ref string, req WriteRequest) (Commit, error) {
	if e.isClosed() {
		return Commit{}, ErrClosed
	}
	ch, err := validWrite(req, e.homeDir())
	if err != nil {
		return Commit{}, err
	}
	w, err := e.lookup(ref)
	if err != nil {
		return Commit{}, err
	}
	if err := e.checkLease(ctx, w.ID); err != nil {
		return Commit{}, err
	}
	if err := e.checkSpace("write_files"); err != nil {
		return Commit{}, err
	}
	msg := ch.message()
	var commit Commit
	var jerr error
	j := e.enqueue(w.ID, func(jctx context.Context) {
		commit, jerr = e.durably(jctx, w.ID, CommitWrite, msg, func(sb sandbox.Sandbox) error {
			return sb.ChangeFiles(jctx, ch.FileChanges)
		})
	})
	select {
	case <-j.done:
	case <-ctx.Done():
		if e.withdraw(j) {
			return Commit{}, errorf(ErrCancelled, "write_files was cancelled before it started; nothing was written")
		}
		j.cancel()
		<-j.done
	}
	if jerr != nil {
		return Commit{}, ch.attribute(jerr, req)
	}
	return commit, nil
}

// homeDir is the provider's home directory, where "~" paths lead.
func (e *Engine) homeDir() string { return e.prov.Capabilities().HomeDir }

// durably runs one durable change that needs a sandbox: start from head, apply, snapshot, and
// record a commit moving head by compare-and-swap. It runs inside the workspace's queue. When the
// provider tells that the change changed nothing, there is no commit: it returns noCommit (an
// empty ID, Parent the head, which stays).
func (e *Engine) durably(ctx context.Context, wsID, kind, msg string, apply func(sandbox.Sandbox) error) (Commit, error) {
	if ctx.Err() != nil {
		return Commit{}, errorf(ErrCancelled, "%v", ctx.Err())
	}
	w, base, err := e.unleasedHead(wsID)
	if err != nil {
		return Commit{}, err
	}
	// File operations run no command of the agent's: their sandbox needs no network, and must not
	// fail for want of the workspace policy's credentials.
	sb, err := e.prov.Start(ctx, sandbox.StartOptions{Snapshot: sandbox.SnapshotRef(base.Snapshot), Policy: policies.Deny(), Label: w.ID})
	if err != nil {
		return Commit{}, e.provErr(err, "start a sandbox")
	}
	if err := apply(sb); err != nil {
		_ = sb.Stop(context.Background())
		return Commit{}, e.provErr(err, "")
	}
	info, err := save(ctx, sb)
	if err != nil {
		return Commit{}, e.provErr(err, "save the change")
	}
	if info.Unchanged {
		return noCommit(w.ID, base.ID, kind, msg), nil
	}
	c := withChanges(store.Commit{
		ID: newID(commitPrefix), Workspace: w.ID, Parent: base.ID, Snapshot: string(info.Ref),
		Kind: kind, Message: msg, Created: time.Now().UTC(),
	}, info.Changes)
	if err := e.record(move{ws: w.ID, base: base.ID, info: info, commit: c}); err != nil {
		return Commit{}, recordErr(err)
	}
	return c, nil
}

// unleasedHead reads a workspace and its head commit, failing when a session holds it.
func (e *Engine) unleasedHead(wsID string) (store.Workspace, store.Commit, error) {
	var w store.Workspace
	var head store.Commit
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		if w, err = tx.Workspace(wsID); err != nil {
			return err
		}
		if err := checkLeaseTx(tx, w, Holder{}); err != nil {
			return err
		}
		head, err = tx.Commit(w.Head)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return w, head, errorf(ErrNotFound, "the workspace was deleted")
	}
	return w, head, err
}

// recordErr is the error for a change whose record failed: the workspace deleted meanwhile,
// head moved (ErrBusy, as is), or the store failing.
func recordErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(ErrNotFound, "the workspace was deleted meanwhile")
	}
	if err != nil && !errors.Is(err, ErrBusy) {
		return fmt.Errorf("record commit: %w", err)
	}
	return err
}

// provErr maps a provider error to an engine error, keeping the provider's message.
func (e *Engine) provErr(err error, doing string) error {
	prefix := ""
	if doing != "" {
		prefix = "could not " + doing + ": "
	}
	// The provider's message starts with its own sentinel ("not found: …"); the engine's sentinel
	// says the same, so keep only one.
	msg := err.Error()
	for _, s := range []error{sandbox.ErrNotFound, sandbox.ErrInvalid, sandbox.ErrPathEscape, sandbox.ErrEnded, sandbox.ErrUnavailable, sandbox.ErrUnsupported} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(ErrCancelled, "%s%s", prefix, msg)
	case errors.Is(err, sandbox.ErrPathEscape):
		return errorf(ErrInvalid, "%s%s; paths must stay inside /workspace or the home directory ~, also through symlinks", prefix, msg)
	case errors.Is(err, sandbox.ErrInvalid):
		return errorf(ErrInvalid, "%s%s", prefix, msg)
	case errors.Is(err, sandbox.ErrNotFound):
		return errorf(ErrNotFound, "%s%s", prefix, msg)
	default:
		return errorf(ErrProvider, "%s%v", prefix, err)
	}
}

// atCommit starts a throwaway sandbox at a commit of the workspace ("" for its head; arg names
// the argument that gave it, see commitArg) for a read and stops it afterwards.
func (e *Engine) atCommit(ctx context.Context, ref, commit, arg string, read func(sb sandbox.Sandbox, id string) error) error {
	var w store.Workspace
	var c store.Commit
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		if w, err = lookupTx(tx, ref); err != nil {
			return err
		}
		c, err = commitArg(tx, w, commit, arg)
		return err
	}); err != nil {
		return err
	}
	sb, err := e.prov.Start(ctx, sandbox.StartOptions{Snapshot: sandbox.SnapshotRef(c.Snapshot), Policy: policies.Deny(), Label: w.ID})
	if err != nil {
		// Retention may have pruned the commit (and deleted its snapshot) since it was read.
		var perr error
		_ = e.st.View(func(tx *store.Tx) error { perr = prunedCommit(tx, w, c.ID, arg, ""); return nil })
		if perr != nil {
			return perr
		}
		return e.provErr(err, "start a sandbox to read from")
	}
	defer sb.Stop(context.Background())
	return read(sb, c.ID)
}

// commitArg resolves a commit argument of workspace w (arg names it: "commit", "from", "to"):
// "" is the head; anything else must be the id of one of w's commits (any it ever had, not
// only those on the current history chain).
func commitArg(tx *store.Tx, w store.Workspace, id, arg string) (store.Commit, error) {
	if id == "" {
		return tx.Commit(w.Head)
	}
	hist := map[string]any{"workspace": w.ID}
	if !hasPrefix(id, commitPrefix) {
		return store.Commit{}, errorf(ErrInvalid, "%s %q is not a commit id (they start with %s); workspace_history lists the commits of %s", arg, id, commitPrefix, w.Name).
			with(ErrorFields{Workspace: w.ID, Argument: arg}).then("workspace_history", "list the commit ids", hist)
	}
	c, err := tx.Commit(id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Workspace != w.ID) {
		if perr := prunedCommit(tx, w, id, arg, ""); perr != nil {
			return store.Commit{}, perr
		}
		return store.Commit{}, errorf(ErrNotFound, "%s: workspace %s has no commit %s; workspace_history lists its commits", arg, w.Name, id).
			with(ErrorFields{Workspace: w.ID, Commit: id, Argument: arg}).then("workspace_history", "list the commit ids", hist)
	}
	return c, err
}

// ReadFile reads a file at the workspace head: up to max bytes (<=0: MaxFileSize) from offset.
// The path may be in /workspace or the home (see paths.go).
func (e *Engine) ReadFile(ctx context.Context, ref, path string, offset, max int64) (FileContent, error) {
	return e.ReadFileAt(ctx, ref, "", path, offset, max)
}

// ReadFileAt is ReadFile at a commit of the workspace ("" for its head) instead of the head;
// errors about the commit name the argument "commit".
func (e *Engine) ReadFileAt(ctx context.Context, ref, commit, path string, offset, max int64) (FileContent, error) {
	home := e.homeDir()
	p, max, err := readArgs(path, home, offset, max)
	if err != nil {
		return FileContent{}, err
	}
	var fc FileContent
	err = e.atCommit(ctx, ref, commit, "commit", func(sb sandbox.Sandbox, id string) error {
		c, err := sb.ReadFile(ctx, p.prov, offset, max)
		if err != nil {
			return readErr(e.provErr(err, ""), p, path)
		}
		fc = FileContent{Path: p.show, Data: c.Data, Size: c.Size, Offset: offset, Commit: id}
		return nil
	})
	return fc, err
}

// readErr completes a read_file error: the path argument, and for a directory the call that
// lists it.
func readErr(err error, p filePath, orig string) error {
	e, ok := AsError(err)
	if !ok || !pathKind(e) {
		return err
	}
	e.Fields.Argument, e.Fields.Path = "path", orig
	if errors.Is(e, ErrInvalid) && strings.Contains(e.Msg, "is a directory") {
		if !strings.Contains(e.Msg, "list_files") {
			e.Msg += "; list it with list_files"
		}
		e.then("list_files", "list the directory instead", map[string]any{"path": p.show})
	}
	return e
}

// ListFiles lists a directory at the workspace head, depth levels deep (<=0: 1). The path may be
// in /workspace ("" for /workspace itself) or the home ("~"); entries in the home are named
// "~/...".
func (e *Engine) ListFiles(ctx context.Context, ref, path string, depth int) ([]FileEntry, error) {
	return e.ListFilesAt(ctx, ref, "", path, depth)
}

// ListFilesAt is ListFiles at a commit of the workspace ("" for its head) instead of the head;
// errors about the commit name the argument "commit".
func (e *Engine) ListFilesAt(ctx context.Context, ref, commit, path string, depth int) ([]FileEntry, error) {
	home := e.homeDir()
	p, depth, err := listArgs(path, home, depth)
	if err != nil {
		return nil, err
	}
	var out []FileEntry
	err = e.atCommit(ctx, ref, commit, "commit", func(sb sandbox.Sandbox, _ string) error {
		entries, err := sb.ListFiles(ctx, p.prov, depth)
		if err != nil {
			return listErr(e.provErr(err, ""), path)
		}
		out = fileEntries(entries, home)
		return nil
	})
	return out, err
}

// listErr sets the path argument of a list_files error.
func listErr(err error, orig string) error {
	if e, ok := AsError(err); ok && pathKind(e) {
		e.Fields.Argument, e.Fields.Path = "path", orig
		return e
	}
	return err
}

// pathKind reports whether e is about a path (not, say, an ended session or a provider outage).
func pathKind(e *Error) bool {
	return e.Kind == ErrInvalid || e.Kind == ErrNotFound
}
