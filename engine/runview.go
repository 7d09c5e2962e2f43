package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/store"
)

// Reading runs: get_run (with output windows after offsets) and list_runs.

// GetRunRequest holds get_run's arguments.
type GetRunRequest struct {
	// ID is the run (run_…).
	ID string
	// Wait is how long to wait (0 to MaxWait): without offsets, for the run to end; with an
	// offset, for output past the offsets or the run's end, whichever comes first (as
	// session_logs does).
	Wait time.Duration
	// StdoutOffset and StderrOffset are byte offsets into the full streams (0: their start; the
	// Next of a previous window to read on): the result's windows hold what lies after them.
	// Nil means 0, and (both nil) that Wait waits for the end only.
	StdoutOffset, StderrOffset *int64
}

// OutputWindow is the part of one output stream after an offset, exact to the byte: Data is the
// stream's bytes [Offset, Next), Offset+len(Data) == Next. The engine keeps the first and the last
// OutputKeep bytes of each stream (Output); when the offset asked for lies in the dropped middle,
// Omitted counts the bytes from it to Offset that are gone, so offset + Omitted == Offset. A
// window never spans the dropped middle: when it ends at the kept head and more is kept after the
// middle, Next < Total and the next call (from Next) reports the middle as Omitted and returns
// the tail. Nothing is returned twice and nothing is skipped without being counted.
type OutputWindow struct {
	Offset  int64  `json:"offset"`
	Data    []byte `json:"-"`
	Next    int64  `json:"next_offset"`
	Omitted int64  `json:"omitted_bytes"`
	// Total is the stream's length so far (final once the run is done).
	Total int64 `json:"total_bytes"`
}

// window cuts the window of o from offset from (0 <= from <= o.Total).
func window(o Output, from int64) OutputWindow {
	head := int64(len(o.Head))
	tailStart := o.Total - int64(len(o.Tail))
	w := OutputWindow{Offset: from, Total: o.Total}
	switch {
	case from < head:
		w.Data = o.Head[from:]
		if tailStart == head && len(o.Tail) > 0 { // nothing dropped: the tail goes on from the head
			w.Data = append(append([]byte(nil), w.Data...), o.Tail...)
		}
	case from < tailStart:
		w.Omitted = tailStart - from
		w.Offset = tailStart
		w.Data = o.Tail
	default:
		w.Data = o.Tail[from-tailStart:]
	}
	w.Next = w.Offset + int64(len(w.Data))
	return w
}

// GetRun returns a run, its kept output (Stdout, Stderr) and the windows of its output after the
// offsets given (StdoutWindow, StderrWindow), waiting as GetRunRequest.Wait says.
func (e *Engine) GetRun(ctx context.Context, req GetRunRequest) (RunResult, error) {
	if err := CheckWait(req.Wait); err != nil {
		return RunResult{}, err
	}
	var outOff, errOff int64
	if req.StdoutOffset != nil {
		outOff = *req.StdoutOffset
	}
	if req.StderrOffset != nil {
		errOff = *req.StderrOffset
	}
	if err := CheckOffset("stdout_offset", outOff); err != nil {
		return RunResult{}, err
	}
	if err := CheckOffset("stderr_offset", errOff); err != nil {
		return RunResult{}, err
	}
	follow := req.StdoutOffset != nil || req.StderrOffset != nil
	var expired <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		expired = t.C
	}
	for {
		e.mu.Lock()
		ar := e.active[req.ID]
		e.mu.Unlock()
		var changed <-chan struct{}
		if ar != nil && follow {
			changed = ar.pulse.wait() // before reading, so no write in between goes unnoticed
		}
		res, err := e.result(req.ID)
		if err != nil {
			return RunResult{}, err
		}
		for _, c := range []struct {
			arg string
			off int64
			o   Output
		}{{"stdout_offset", outOff, res.Stdout}, {"stderr_offset", errOff, res.Stderr}} {
			if c.off > c.o.Total {
				return RunResult{}, badArg(c.arg, ptr(c.o.Total), ptr(c.off), "%s %d is past the end of the output (%d bytes so far); give an offset a previous get_run returned as next_offset, or 0", c.arg, c.off, c.o.Total).
					with(ErrorFields{Argument: c.arg, Limit: ptr(c.o.Total), Got: ptr(c.off), Run: req.ID}).
					then("get_run", "read from the start", map[string]any{"run_id": req.ID, c.arg: 0})
			}
		}
		res.StdoutWindow, res.StderrWindow = window(res.Stdout, outOff), window(res.Stderr, errOff)
		fresh := req.StdoutOffset != nil && res.StdoutWindow.Total > outOff || req.StderrOffset != nil && res.StderrWindow.Total > errOff
		if ar == nil || res.Run.Done() || expired == nil || fresh || ctx.Err() != nil {
			return res, nil
		}
		select {
		case <-ar.done:
		case <-changed: // nil unless following
		case <-expired:
			expired = nil
		case <-ctx.Done():
		}
	}
}

// result reads a run's record and output: live output for an active run, stored output otherwise.
func (e *Engine) result(id string) (RunResult, error) {
	if !hasPrefix(id, runPrefix) {
		return RunResult{}, badArg("run_id", nil, nil, "%q is not a run id (run ids look like run_…); run_command returns one, list_runs lists them", id)
	}
	e.mu.Lock()
	ar := e.active[id]
	un, unrecorded := e.unrecorded[id]
	e.mu.Unlock()
	var res RunResult
	err := e.st.View(func(tx *store.Tx) error {
		var err error
		if res.Run, err = tx.Run(id); err != nil {
			return err
		}
		if ar == nil || res.Run.Done() {
			res.Stdout, res.Stderr, err = tx.RunOutput(id)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return RunResult{}, errorf(ErrNotFound, "no run %q (it may belong to a deleted workspace); list_runs lists a workspace's runs", id).with(ErrorFields{Run: id})
	}
	if err != nil {
		return RunResult{}, fmt.Errorf("read run %s: %w", id, err)
	}
	if ar != nil && !res.Run.Done() {
		res.Stdout, res.Stderr = ar.stdout.output(), ar.stderr.output()
	}
	if unrecorded && !res.Run.Done() {
		res.Run, res.Stdout, res.Stderr = un.run, un.stdout, un.stderr
	}
	return res, nil
}

// ListRunsRequest holds list_runs' arguments.
type ListRunsRequest struct {
	// Workspace is an id or a name.
	Workspace string
	// Status keeps only runs of that status (one of RunStatuses); "" keeps all.
	Status string
	// Limit is the page size: 0 means DefaultListRuns, at most MaxListRuns.
	Limit int
	// Cursor continues a listing: the next cursor a previous call returned; "" starts with the
	// newest run.
	Cursor string
}

// ListRuns lists a workspace's runs newest first (by creation), cancelled, lost and background
// ones included, a page at a time. next is the cursor of the following page, "" when there is
// none. A cursor stays valid while newer runs are added: the next page goes on with older runs,
// never repeating one. With a status filter a page may hold fewer than Limit runs (even none)
// and still return a cursor, since one call examines a bounded number of runs.
func (e *Engine) ListRuns(ctx context.Context, req ListRunsRequest) (runs []Run, next string, err error) {
	if strings.TrimSpace(req.Workspace) == "" {
		return nil, "", badArg("workspace", nil, nil, "workspace is empty; give a workspace id (ws_…) or name; list_workspaces lists them")
	}
	limit, err := CheckListLimit(req.Limit)
	if err != nil {
		return nil, "", err
	}
	if err := checkRunStatus(req.Status); err != nil {
		return nil, "", err
	}
	var out []Run
	var pos *store.RunPosition
	err = e.st.View(func(tx *store.Tx) error {
		w, err := lookupTx(tx, req.Workspace)
		if err != nil {
			return err
		}
		var after *store.RunPosition
		if req.Cursor != "" {
			if after, err = decodeRunCursor(req.Cursor, w.ID); err != nil {
				return err
			}
		}
		var filter func(store.Run) bool
		scan := 0
		if req.Status != "" {
			filter = func(r store.Run) bool { return r.Status == req.Status }
			scan = listRunsScan
		}
		out, pos, err = tx.RunsPage(w.ID, after, limit, scan, filter)
		if pos != nil {
			next = encodeRunCursor(w.ID, *pos)
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if out == nil {
		out = []Run{}
	}
	return out, next, nil
}

// A run cursor is opaque to agents: base64url of "r1 <workspace id> <unix nanoseconds> <run id>".
const runCursorVersion = "r1"

func encodeRunCursor(wsID string, p store.RunPosition) string {
	raw := strings.Join([]string{runCursorVersion, wsID, strconv.FormatInt(p.Created.UnixNano(), 10), p.ID}, " ")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeRunCursor(c, wsID string) (*store.RunPosition, error) {
	bad := func(why string) error {
		return badArg("cursor", nil, nil, "cursor %q %s; pass the next_cursor of the previous list_runs call unchanged, or omit it to start with the newest run", c, why).
			then("list_runs", "start again with the newest runs", map[string]any{"workspace": wsID})
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad("is not a list_runs cursor")
	}
	parts := strings.Split(string(raw), " ")
	if len(parts) != 4 || parts[0] != runCursorVersion || !hasPrefix(parts[3], runPrefix) {
		return nil, bad("is not a list_runs cursor")
	}
	if parts[1] != wsID {
		return nil, bad("belongs to a listing of another workspace")
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, bad("is not a list_runs cursor")
	}
	return &store.RunPosition{Created: time.Unix(0, ns).UTC(), ID: parts[3]}, nil
}
