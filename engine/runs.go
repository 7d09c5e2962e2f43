package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// activeRun is a run queued or running in this process.
type activeRun struct {
	id     string
	ws     string
	job    *job
	stdout *capture
	stderr *capture
	pulse  pulse         // fires on new output
	done   chan struct{} // closed once the final record is stored
	// recorded is closed once RunCommand has recorded the run (or given up: abandoned, then the
	// job does nothing); begun is set when that record already marked it running.
	recorded  chan struct{}
	abandoned bool
	begun     *runStart

	mu     sync.Mutex
	reason string // why it was cancelled, if it was
	// unrecorded is set when not even the run's end could be stored (a full disk): the caller is
	// told, and the store reads the run lost after the next start.
	unrecorded error
}

// unrecordedRun is what the engine remembers of a run whose end it could not store, until the
// next start marks it lost: GetRun answers from it instead of the store's "running".
type unrecordedRun struct {
	run            store.Run
	stdout, stderr store.Output
}

// runMargin is how much longer than its command's timeout a durable run's sandbox may live (to
// start, snapshot and stop).
const runMargin = 2 * time.Minute

// RunCommand runs a durable command (see RunCommandRequest and the package rules). In the
// foreground it returns when the command has finished and its commit is recorded, or when Yield
// has passed, with the run still queued or running (it goes on and commits on its own; GetRun
// follows it). With Background it returns at once with the run queued. A foreground call whose
// ctx is cancelled before it returns kills the command; the run reads cancelled and the workspace
// head does not move.
func (e *Engine) RunCommand(ctx context.Context, req RunCommandRequest) (RunResult, error) {
	if e.isClosed() {
		return RunResult{}, ErrClosed
	}
	if err := CheckCommand(req.Command, req.Args); err != nil {
		return RunResult{}, err
	}
	if err := CheckStdin(len(req.Stdin)); err != nil {
		return RunResult{}, err
	}
	if err := validEnv(req.Env); err != nil {
		return RunResult{}, err
	}
	timeout, err := CheckTimeout(req.Timeout)
	if err != nil {
		return RunResult{}, err
	}
	yield, err := CheckYield(req.Background, req.Yield)
	if err != nil {
		return RunResult{}, err
	}
	if err := e.providerLifetime(timeout+runMargin, fmt.Sprintf("timeout_ms %d plus a %v margin", timeout.Milliseconds(), runMargin)); err != nil {
		return RunResult{}, err
	}
	cwd := "."
	if req.Cwd != "" {
		if cwd, err = cleanPath(req.Cwd, true); err != nil {
			return RunResult{}, err
		}
	}
	var override *policies.Policy
	if req.Policy != nil {
		p, err := e.checkPolicy(*req.Policy, useRun)
		if err != nil {
			return RunResult{}, err
		}
		override = &p
	}
	if len(req.IdempotencyKey) > MaxIdempotencyKey {
		return RunResult{}, badArg("idempotency_key", ptr(int64(MaxIdempotencyKey)), ptr(int64(len(req.IdempotencyKey))), "idempotency_key is %d bytes, longer than %d; use a shorter key (a UUID will do)", len(req.IdempotencyKey), MaxIdempotencyKey)
	}
	w, err := e.lookup(req.Workspace)
	if err != nil {
		return RunResult{}, err
	}
	if w.Provider != e.prov.Name() {
		return RunResult{}, errorf(ErrInvalid, "workspace %s belongs to provider %q, but this server runs provider %q", w.Name, w.Provider, e.prov.Name())
	}
	if err := e.checkLease(ctx, w.ID); err != nil {
		return RunResult{}, err
	}
	if err := e.checkSpace("run_command"); err != nil {
		return RunResult{}, err
	}
	pol := w.Policy
	if override != nil {
		pol = *override
	}
	envNames := make([]string, 0, len(req.Env))
	for k := range req.Env {
		envNames = append(envNames, k)
	}
	sort.Strings(envNames)
	run := store.Run{
		ID: newID(runPrefix), Workspace: w.ID, Command: req.Command, Args: req.Args, Shell: req.Args == nil, Cwd: req.Cwd,
		EnvNames: envNames, Policy: describePolicy(pol), Status: RunQueued, IdempotencyKey: req.IdempotencyKey,
		Background: req.Background, Created: time.Now().UTC(),
	}

	lines := &lineWatch{notify: req.Progress}
	if req.Background {
		lines = nil
	}
	ar := &activeRun{
		id: run.ID, ws: w.ID,
		stdout: newCapture(OutputKeep, lines), stderr: newCapture(OutputKeep, lines),
		done: make(chan struct{}), recorded: make(chan struct{}),
	}
	ar.stdout.onWrite, ar.stderr.onWrite = ar.pulse.fire, ar.pulse.fire
	// The job is queued before the run is recorded, so that the record knows whether the job is
	// first in the workspace's queue; it waits for the record (and does nothing when there is
	// none).
	j, first := e.enqueueFirst(w.ID, func(jctx context.Context) {
		<-ar.recorded
		if ar.abandoned {
			return
		}
		e.execute(jctx, ar, req, cwd, timeout, override)
	})
	ar.job = j

	// Record the run, or find the one already recorded under the idempotency key, atomically. A
	// foreground run first in its workspace's queue is recorded as started in the same
	// transaction (one fsync fewer on every run's path): nothing of the workspace can run between
	// this transaction and the job, so the head read here is the head it starts from.
	var prior *store.Run
	var begun *runStart
	err = e.st.Group(func(tx *store.Tx) error {
		prior, begun = nil, nil
		if req.IdempotencyKey != "" {
			r, err := tx.RunByIdempotencyKey(w.ID, req.IdempotencyKey)
			if err == nil {
				prior = &r
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		rec := run
		if first && !req.Background {
			// What would stop the start is left to the job, which records it (execute).
			if st, err := e.beginRun(ctx, tx, &rec, override); err == nil {
				begun = &st
			} else {
				rec = run
			}
		}
		return tx.PutRun(rec)
	})
	if err != nil || prior != nil {
		ar.abandoned = true
		close(ar.recorded)
	}
	if err != nil {
		return RunResult{}, fmt.Errorf("record run: %w", err)
	}
	if prior != nil {
		if prior.Command != req.Command || !slices.Equal(prior.Args, req.Args) || prior.Shell != run.Shell {
			return RunResult{}, badArg("idempotency_key", nil, nil, "idempotency_key %q was already used on this workspace for a different command (run %s: %s); use a new key for a new command", req.IdempotencyKey, prior.ID, cmdline(prior.Command, prior.Args)).
				with(ErrorFields{Argument: "idempotency_key", Run: prior.ID})
		}
		wait := time.Duration(0)
		if !req.Background {
			wait = yield
		}
		return e.GetRun(ctx, GetRunRequest{ID: prior.ID, Wait: wait})
	}

	ar.begun = begun
	e.mu.Lock()
	e.active[run.ID] = ar
	e.mu.Unlock()
	close(ar.recorded)
	e.log.Info("run queued", "run", run.ID, "workspace", w.ID, "command", req.Command, "background", req.Background)
	if req.Background {
		return RunResult{Run: run}, nil
	}
	t := time.NewTimer(yield)
	defer t.Stop()
	select {
	case <-ar.done:
	case <-t.C:
		// The command goes on without this call; its progress has no one to go to any more.
		lines.stop()
		e.log.Info("run yielded", "run", run.ID, "after", yield)
	case <-ctx.Done():
		e.cancelRun(ar, "the caller cancelled the request")
		<-ar.done
	}
	ar.mu.Lock()
	lostErr := ar.unrecorded
	ar.mu.Unlock()
	if lostErr != nil {
		return RunResult{}, lostErr
	}
	return e.result(run.ID)
}

// execute is the job of one run: start a sandbox from head, run, commit, record.
func (e *Engine) execute(ctx context.Context, ar *activeRun, req RunCommandRequest, cwd string, timeout time.Duration, override *policies.Policy) {
	if ctx.Err() != nil {
		e.finishInterrupted(ar, nil)
		return
	}
	// Mark running and read the head to start from, unless RunCommand did (beginRun).
	var st runStart
	var err error
	if ar.begun != nil {
		st = *ar.begun
	} else {
		err = e.st.Group(func(tx *store.Tx) error {
			r, err := tx.Run(ar.id)
			if err != nil {
				return err
			}
			if st, err = e.beginRun(ctx, tx, &r, override); err != nil {
				return err
			}
			return tx.PutRun(r)
		})
	}
	w, base := st.w, st.base
	if err != nil {
		e.finish(ar, func(r *store.Run) {
			r.Status = RunFailed
			r.Error = fmt.Sprintf("could not start: %v", err)
			if errors.Is(err, store.ErrNotFound) {
				r.Error = "could not start: the workspace was deleted"
			}
			if errors.Is(err, ErrLeased) {
				r.Error = fmt.Sprintf("could not start: %v", strings.TrimPrefix(err.Error(), ErrLeased.Error()+": "))
			}
			if errors.Is(err, ErrPolicy) {
				r.Error = fmt.Sprintf("could not start: %v", err)
			}
		})
		return
	}
	pol := w.Policy
	if override != nil {
		pol = *override
	}
	sb, err := e.prov.Start(ctx, sandbox.StartOptions{
		Snapshot: sandbox.SnapshotRef(base.Snapshot), Policy: pol, Label: w.ID,
		Lifetime: timeout + runMargin,
	})
	if err != nil {
		if ctx.Err() != nil {
			e.finishInterrupted(ar, nil)
			return
		}
		e.finish(ar, func(r *store.Run) {
			r.Status = RunFailed
			r.Error = fmt.Sprintf("the sandbox could not start from commit %s: %v; the workspace is unchanged", base.ID, err)
			if errors.Is(err, sandbox.ErrNotFound) {
				r.Error += "; the commit's snapshot is gone at the provider: restore_workspace to an earlier commit (workspace_history lists them) to go on from there"
			}
		})
		return
	}
	warnings := sb.Warnings()
	prog, args := shellArgv(req.Command, req.Args)
	res, err := sb.Exec(ctx, sandbox.ExecRequest{
		Command: prog, Args: args, Cwd: cwd, Env: req.Env, Stdin: req.Stdin,
		Timeout: timeout, Stdout: ar.stdout, Stderr: ar.stderr,
	})
	if err != nil {
		_ = sb.Stop(context.Background())
		if ctx.Err() != nil {
			e.finishInterrupted(ar, warnings)
			return
		}
		e.finish(ar, func(r *store.Run) {
			r.Status = RunFailed
			r.Error = fmt.Sprintf("the sandbox failed while running the command: %v; nothing was committed and the workspace is unchanged", err)
			r.Warnings = mergeWarnings(r.Warnings, warnings)
		})
		return
	}
	// The command ran to an end (exit status or timeout): commit whatever it left (rule 3), unless
	// it left nothing (changes.go).
	info, err := save(ctx, sb)
	if err != nil {
		e.finish(ar, func(r *store.Run) {
			r.Status = RunFailed
			code := res.ExitCode
			r.ExitCode = &code
			r.TimedOut = res.TimedOut
			r.Error = fmt.Sprintf("the command ended (exit %d) but its changes could not be saved: %v; the workspace is unchanged", res.ExitCode, err)
			r.Warnings = mergeWarnings(r.Warnings, warnings)
		})
		return
	}
	code := res.ExitCode
	finished := time.Now().UTC()
	// A command that changed nothing makes no commit: head stays and the run says so.
	commit := withChanges(store.Commit{
		ID: newID(commitPrefix), Workspace: w.ID, Parent: base.ID, Snapshot: string(info.Ref),
		Kind: CommitRun, Message: runMessage(req.Command, req.Args, res), RunID: ar.id, ExitCode: &code,
		Created: finished,
	}, info.Changes)
	stdout, stderr := ar.stdout.output(), ar.stderr.output()
	err = e.record(move{ws: w.ID, base: base.ID, info: info, commit: commit, also: func(tx *store.Tx) error {
		r, err := tx.Run(ar.id)
		if err != nil {
			return err
		}
		r.Status = RunExited
		r.ExitCode = &code
		r.TimedOut = res.TimedOut
		if info.Unchanged {
			r.Unchanged = true
		} else {
			r.CommitID = commit.ID
			r.ChangesUnknown = !info.Changes.Known
		}
		r.Finished = &finished
		r.DurationMS = res.Duration.Milliseconds()
		r.Warnings = mergeWarnings(r.Warnings, warnings)
		switch {
		case res.TimedOut && info.Unchanged:
			r.Error = fmt.Sprintf("the command timed out after %d ms and was killed; it had changed nothing, so there is no commit", timeout.Milliseconds())
		case res.TimedOut:
			r.Error = fmt.Sprintf("the command timed out after %d ms and was killed; what it had written is committed", timeout.Milliseconds())
		}
		if err := tx.PutRun(r); err != nil {
			return err
		}
		return tx.PutRunOutput(ar.id, stdout, stderr)
	}})
	if err != nil {
		e.finish(ar, func(r *store.Run) {
			r.Status = RunFailed
			r.ExitCode = &code
			r.TimedOut = res.TimedOut
			r.Error = fmt.Sprintf("the command ended (exit %d) but its commit could not be recorded: %v; the workspace is unchanged", res.ExitCode, err)
		})
		return
	}
	if info.Unchanged {
		e.log.Info("run changed nothing; no commit", "run", ar.id, "workspace", w.ID, "exit", code, "head", base.ID, "ms", res.Duration.Milliseconds())
	} else {
		e.log.Info("run committed", "run", ar.id, "workspace", w.ID, "exit", code, "commit", commit.ID, "files", commit.ChangedFiles, "ms", res.Duration.Milliseconds())
	}
	e.release(ar)
}

// runStart is what a run starts from: its workspace as stored when it started, and the head.
type runStart struct {
	w    store.Workspace
	base store.Commit
}

// beginRun checks in tx that run r can start (its workspace, the lease, the head, the policy) and
// marks r running from the head; the caller stores r.
func (e *Engine) beginRun(ctx context.Context, tx *store.Tx, r *store.Run, override *policies.Policy) (runStart, error) {
	var st runStart
	var err error
	if st.w, err = tx.Workspace(r.Workspace); err != nil {
		return st, err
	}
	if err := checkLeaseTx(tx, st.w, CallerFrom(ctx)); err != nil {
		return st, err
	}
	if st.base, err = tx.Commit(st.w.Head); err != nil {
		return st, err
	}
	if override == nil {
		if err := e.defaultPolicyUsable(st.w); err != nil {
			return st, err
		}
	}
	started := time.Now().UTC()
	r.Status = RunRunning
	r.Started = &started
	r.BaseCommit = st.base.ID
	if override == nil { // the default as it is now (set_policy may have run meanwhile)
		r.Policy = describePolicy(st.w.Policy)
	}
	return st, nil
}

// finishInterrupted records a run stopped by cancellation (cancelled) or by the engine closing
// (lost); nothing is committed.
func (e *Engine) finishInterrupted(ar *activeRun, warnings []string) {
	ar.mu.Lock()
	reason := ar.reason
	ar.mu.Unlock()
	e.finish(ar, func(r *store.Run) {
		r.Warnings = mergeWarnings(r.Warnings, warnings)
		if reason != "" {
			r.Status = RunCancelled
			r.Error = fmt.Sprintf("cancelled: %s; nothing was committed and the workspace is unchanged", reason)
			return
		}
		r.Status = RunLost
		r.Error = "the server shut down while this run was in flight; nothing was committed and the workspace is unchanged; run the command again if needed"
	})
}

// finish stores a run's final record (with its output) and releases it. When that cannot be
// stored (a full disk: the output is what takes room), the end is stored without the output;
// when even that fails, the run is remembered in memory as ended (GetRun answers from it), the
// foreground caller gets an ErrStorage error, and the store reads the run lost after the next
// start. finish is only reached by runs that commit nothing, so head is unchanged either way.
func (e *Engine) finish(ar *activeRun, mutate func(r *store.Run)) {
	now := time.Now().UTC()
	stdout, stderr := ar.stdout.output(), ar.stderr.output()
	var final store.Run
	end := func(tx *store.Tx, note string) error {
		r, err := tx.Run(ar.id)
		if err != nil {
			return err
		}
		mutate(&r)
		r.Finished = &now
		if r.Started != nil {
			r.DurationMS = now.Sub(*r.Started).Milliseconds()
		}
		r.Error += note
		final = r
		return tx.PutRun(r)
	}
	err := e.st.Group(func(tx *store.Tx) error {
		if err := end(tx, ""); err != nil {
			return err
		}
		return tx.PutRunOutput(ar.id, stdout, stderr)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.log.Error("could not record the end of a run with its output; recording it without", "run", ar.id, "err", err)
		note := fmt.Sprintf("; its output could not be stored (%v)", err)
		err2 := e.st.Group(func(tx *store.Tx) error { return end(tx, note) })
		if err2 != nil && !errors.Is(err2, store.ErrNotFound) {
			e.log.Error("could not record the end of a run; it reads lost after the next start", "run", ar.id, "err", err2)
			final.Error += fmt.Sprintf("; the server could not record this run's end (%v), so after its next start the run reads lost", err2)
			ar.mu.Lock()
			ar.unrecorded = errorf(ErrStorage, "run %s ended (%s) but the server could not record its end: %v. Nothing was committed and the workspace's head is unchanged; the run reads lost after the server's next start. Tell the user to free disk space under the data directory %s, then run the command again",
				ar.id, final.Status, err2, e.space.dir).with(ErrorFields{Run: ar.id, Workspace: ar.ws})
			ar.mu.Unlock()
			e.mu.Lock()
			e.unrecorded[ar.id] = unrecordedRun{run: final, stdout: stdout, stderr: stderr}
			e.mu.Unlock()
		}
	}
	e.release(ar)
}

func (e *Engine) release(ar *activeRun) {
	e.mu.Lock()
	delete(e.active, ar.id)
	e.mu.Unlock()
	close(ar.done)
}

// cancelRun cancels an active run: a queued one is recorded cancelled at once; a running one is
// killed by its job context and recorded by its job.
func (e *Engine) cancelRun(ar *activeRun, reason string) {
	ar.mu.Lock()
	first := ar.reason == ""
	if first {
		ar.reason = reason
	}
	ar.mu.Unlock()
	if !first {
		return
	}
	if e.withdraw(ar.job) {
		ar.job.cancel()
		e.finishInterrupted(ar, nil)
		return
	}
	ar.job.cancel()
}

// cancelWorkspaceRuns cancels every active run of a workspace and waits until each is recorded.
func (e *Engine) cancelWorkspaceRuns(wsID, reason string) {
	e.mu.Lock()
	var runs []*activeRun
	for _, ar := range e.active {
		if ar.ws == wsID {
			runs = append(runs, ar)
		}
	}
	e.mu.Unlock()
	for _, ar := range runs {
		e.cancelRun(ar, reason)
	}
	for _, ar := range runs {
		<-ar.done
	}
}

// CancelRun cancels a queued or running run; it reads cancelled and its workspace head does not
// move. Cancelling a finished run is an error that says how it finished.
func (e *Engine) CancelRun(ctx context.Context, id string) (Run, error) {
	res, err := e.result(id)
	if err != nil {
		return Run{}, err
	}
	if res.Run.Done() {
		return res.Run, errorf(ErrInvalid, "run %s already finished (status %s); there is nothing to cancel", id, res.Run.Status)
	}
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	if ar == nil {
		return res.Run, errorf(ErrNotFound, "run %s is not running in this server", id)
	}
	e.cancelRun(ar, "cancel_run was called")
	select {
	case <-ar.done:
	case <-ctx.Done():
		return Run{}, errorf(ErrCancelled, "%v", ctx.Err())
	}
	res, err = e.result(id)
	return res.Run, err
}

func runMessage(cmd string, args []string, res sandbox.ExecResult) string {
	line := cmdline(cmd, args)
	if res.TimedOut {
		return fmt.Sprintf("run: %s (timed out)", line)
	}
	return fmt.Sprintf("run: %s (exit %d)", line, res.ExitCode)
}

// cmdline renders a command for messages, shortened to 120 characters.
func cmdline(cmd string, args []string) string {
	s := strings.Join(append([]string{cmd}, args...), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func mergeWarnings(a, b []string) []string {
	for _, w := range b {
		if !slices.Contains(a, w) {
			a = append(a, w)
		}
	}
	return a
}
