package store

import (
	"errors"
	"fmt"
	"sort"
)

// Run returns the run with the given id.
func (t *Tx) Run(id string) (Run, error) {
	b, err := t.bucket(bucketRuns)
	if err != nil {
		return Run{}, err
	}
	raw := b.Get([]byte(id))
	if raw == nil {
		return Run{}, fmt.Errorf("store: run %q %w", id, ErrNotFound)
	}
	return decode[Run](bucketRuns, id, raw)
}

// PutRun creates or replaces a run. Its workspace must exist (ErrNotFound otherwise). A non-empty
// IdempotencyKey is indexed per workspace; a key already held by another run of that workspace
// fails with ErrExists. Replacing a run moves its index entries when its key or workspace changed.
func (t *Tx) PutRun(r Run) error {
	if r.ID == "" || r.Workspace == "" {
		return fmt.Errorf("store: put run: id %q and workspace %q must both be set", r.ID, r.Workspace)
	}
	ok, err := t.workspaceExists(r.Workspace)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("store: run %q: workspace %q %w", r.ID, r.Workspace, ErrNotFound)
	}
	b, err := t.bucket(bucketRuns)
	if err != nil {
		return err
	}
	old, err := t.Run(r.ID)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if r.IdempotencyKey != "" {
		idem, err := t.nested(bucketIdempotency, r.Workspace, false)
		if err != nil {
			return err
		}
		if idem != nil {
			if owner := idem.Get([]byte(r.IdempotencyKey)); owner != nil && string(owner) != r.ID {
				return fmt.Errorf("store: idempotency key %q of workspace %q %w (held by run %q)",
					r.IdempotencyKey, r.Workspace, ErrExists, owner)
			}
		}
	}
	if exists {
		moved := old.Workspace != r.Workspace
		if err := t.unindexRun(old, moved, moved || old.IdempotencyKey != r.IdempotencyKey, moved || !old.Created.Equal(r.Created)); err != nil {
			return err
		}
	}
	idx, err := t.nested(bucketWorkspaceRuns, r.Workspace, true)
	if err != nil {
		return err
	}
	if err := putRaw(idx, bucketWorkspaceRuns+"/"+r.Workspace, r.ID, []byte{}); err != nil {
		return err
	}
	order, err := t.nested(bucketRunOrder, r.Workspace, true)
	if err != nil {
		return err
	}
	if err := order.Put(runOrderKey(r.Created, r.ID), []byte(r.ID)); err != nil {
		return fmt.Errorf("store: write bucket %q: %w", bucketRunOrder+"/"+r.Workspace, err)
	}
	if r.IdempotencyKey != "" {
		idem, err := t.nested(bucketIdempotency, r.Workspace, true)
		if err != nil {
			return err
		}
		if err := putRaw(idem, bucketIdempotency+"/"+r.Workspace, r.IdempotencyKey, []byte(r.ID)); err != nil {
			return err
		}
	}
	return put(b, bucketRuns, r.ID, r)
}

// unindexRun removes a stored run's entry from the per-workspace run index (when workspace is set),
// from the idempotency index (when key is set and the entry still names this run) and from the
// run order index (when order is set).
func (t *Tx) unindexRun(old Run, workspace, key, order bool) error {
	if order {
		b, err := t.nested(bucketRunOrder, old.Workspace, false)
		if err != nil {
			return err
		}
		if b != nil {
			if err := b.Delete(runOrderKey(old.Created, old.ID)); err != nil {
				return fmt.Errorf("store: delete from bucket %q: %w", bucketRunOrder+"/"+old.Workspace, err)
			}
		}
	}
	if workspace {
		idx, err := t.nested(bucketWorkspaceRuns, old.Workspace, false)
		if err != nil {
			return err
		}
		if idx != nil {
			if err := del(idx, bucketWorkspaceRuns+"/"+old.Workspace, old.ID); err != nil {
				return err
			}
		}
	}
	if key && old.IdempotencyKey != "" {
		idem, err := t.nested(bucketIdempotency, old.Workspace, false)
		if err != nil {
			return err
		}
		if idem != nil && string(idem.Get([]byte(old.IdempotencyKey))) == old.ID {
			if err := del(idem, bucketIdempotency+"/"+old.Workspace, old.IdempotencyKey); err != nil {
				return err
			}
		}
	}
	return nil
}

// RunByIdempotencyKey returns the run of the workspace that was stored with the given key.
func (t *Tx) RunByIdempotencyKey(workspaceID, key string) (Run, error) {
	notFound := fmt.Errorf("store: run with idempotency key %q in workspace %q %w", key, workspaceID, ErrNotFound)
	if key == "" {
		return Run{}, notFound
	}
	idem, err := t.nested(bucketIdempotency, workspaceID, false)
	if err != nil {
		return Run{}, err
	}
	if idem == nil {
		return Run{}, notFound
	}
	raw := idem.Get([]byte(key))
	if raw == nil {
		return Run{}, notFound
	}
	idxName := bucketIdempotency + "/" + workspaceID
	r, err := t.Run(string(raw))
	switch {
	case errors.Is(err, ErrNotFound):
		return Run{}, corrupt(idxName, key, fmt.Errorf("index names run %q, which does not exist", raw))
	case err != nil:
		return Run{}, err
	case r.Workspace != workspaceID || r.IdempotencyKey != key:
		return Run{}, corrupt(idxName, key, fmt.Errorf("index names run %q, which has workspace %q and key %q",
			raw, r.Workspace, r.IdempotencyKey))
	}
	return r, nil
}

// Runs returns every run for which filter returns true (nil: every run), sorted by Created, then
// by id. It reads every run record; one damaged record fails the whole listing.
func (t *Tx) Runs(filter func(Run) bool) ([]Run, error) {
	b, err := t.bucket(bucketRuns)
	if err != nil {
		return nil, err
	}
	var out []Run
	err = b.ForEach(func(k, v []byte) error {
		r, err := decode[Run](bucketRuns, string(k), v)
		if err != nil {
			return err
		}
		if filter == nil || filter(r) {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// outputRecord is how a run's output is stored: one JSON object with both streams, the bytes
// base64-encoded by encoding/json and so kept exactly (binary included).
type outputRecord struct {
	Stdout storedOutput `json:"stdout"`
	Stderr storedOutput `json:"stderr"`
}

// storedOutput pins the on-disk field names of Output independently of its Go field names.
type storedOutput struct {
	Head    []byte `json:"head,omitempty"`
	Tail    []byte `json:"tail,omitempty"`
	Omitted int64  `json:"omitted"`
	Total   int64  `json:"total"`
}

func (outputRecord) valid(string) error { return nil }

// PutRunOutput stores (replacing) the captured output of a run, which must exist (ErrNotFound).
func (t *Tx) PutRunOutput(runID string, stdout, stderr Output) error {
	runs, err := t.bucket(bucketRuns)
	if err != nil {
		return err
	}
	if runs.Get([]byte(runID)) == nil {
		return fmt.Errorf("store: run %q %w", runID, ErrNotFound)
	}
	b, err := t.bucket(bucketRunOutputs)
	if err != nil {
		return err
	}
	return put(b, bucketRunOutputs, runID, outputRecord{Stdout: storedOutput(stdout), Stderr: storedOutput(stderr)})
}

// RunOutput returns the captured output of a run: zero Outputs when none is stored yet, ErrNotFound
// when the run itself does not exist.
func (t *Tx) RunOutput(runID string) (stdout, stderr Output, err error) {
	runs, err := t.bucket(bucketRuns)
	if err != nil {
		return Output{}, Output{}, err
	}
	if runs.Get([]byte(runID)) == nil {
		return Output{}, Output{}, fmt.Errorf("store: run %q %w", runID, ErrNotFound)
	}
	b, err := t.bucket(bucketRunOutputs)
	if err != nil {
		return Output{}, Output{}, err
	}
	raw := b.Get([]byte(runID))
	if raw == nil {
		return Output{}, Output{}, nil
	}
	o, err := decode[outputRecord](bucketRunOutputs, runID, raw)
	if err != nil {
		return Output{}, Output{}, err
	}
	return Output(o.Stdout), Output(o.Stderr), nil
}

// deleteRunsOf removes the runs of a workspace, their output and both run indexes.
func (t *Tx) deleteRunsOf(workspaceID string) error {
	idx, err := t.nested(bucketWorkspaceRuns, workspaceID, false)
	if err != nil {
		return err
	}
	runs, err := t.bucket(bucketRuns)
	if err != nil {
		return err
	}
	outputs, err := t.bucket(bucketRunOutputs)
	if err != nil {
		return err
	}
	for _, id := range keys(idx) {
		// A damaged index must not take another workspace's run with it.
		if r, err := decode[Run](bucketRuns, id, runs.Get([]byte(id))); err == nil && r.Workspace != workspaceID {
			continue
		}
		if err := del(runs, bucketRuns, id); err != nil {
			return err
		}
		if err := del(outputs, bucketRunOutputs, id); err != nil {
			return err
		}
	}
	if err := t.dropNested(bucketWorkspaceRuns, workspaceID); err != nil {
		return err
	}
	if err := t.dropNested(bucketRunOrder, workspaceID); err != nil {
		return err
	}
	return t.dropNested(bucketIdempotency, workspaceID)
}
