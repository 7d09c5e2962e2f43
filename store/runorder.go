package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// RunPosition is a place in a workspace's runs ordered by creation: the run created at Created
// with id ID (runs created in the same nanosecond are ordered by id). Listing newest first from a
// position returns the runs strictly older than it, so a position stays valid however many newer
// runs are added meanwhile.
type RunPosition struct {
	Created time.Time
	ID      string
}

// runOrderKey is the key of a run in workspace_run_order: Created as 8 big-endian bytes of Unix
// nanoseconds (times before 1970 sort first, as zero), then the id.
func runOrderKey(created time.Time, id string) []byte {
	var ns uint64
	if created.After(time.Unix(0, 0)) && created.Year() < 2262 {
		ns = uint64(created.UnixNano())
	}
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, ns)
	return append(k, id...)
}

// RunsPage lists the runs of a workspace newest first (by Created, then by id, both descending),
// starting strictly after position after (nil: with the newest run). It returns up to limit runs
// for which filter returns true (nil: every run), reading at most maxScan index entries (0: no
// bound) so that a selective filter over a long history still answers in bounded time. next is
// the position to continue from, or nil when the listing has reached the workspace's first run;
// a page may hold fewer than limit runs (even none) and still have a next position when the scan
// bound was reached. The cost is O(entries scanned), never O(all runs). An unknown workspace has
// no runs.
func (t *Tx) RunsPage(workspaceID string, after *RunPosition, limit, maxScan int, filter func(Run) bool) (runs []Run, next *RunPosition, err error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("store: runs page: limit %d must be positive", limit)
	}
	order, err := t.nested(bucketRunOrder, workspaceID, false)
	if err != nil || order == nil {
		return nil, nil, err
	}
	name := bucketRunOrder + "/" + workspaceID
	c := order.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.Last()
	} else {
		from := runOrderKey(after.Created, after.ID)
		// Seek finds the first key at or after from; the page starts just before it.
		if k, _ = c.Seek(from); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	scanned := 0
	var last []byte
	for ; k != nil; k, v = c.Prev() {
		if len(runs) == limit || (maxScan > 0 && scanned == maxScan) {
			return runs, positionOf(last), nil
		}
		scanned++
		last = k
		if len(k) <= 8 || !bytes.Equal(k[8:], v) {
			return nil, nil, corrupt(name, fmt.Sprintf("%x", k), errors.New("index key and run id disagree"))
		}
		r, err := t.Run(string(v))
		if errors.Is(err, ErrNotFound) {
			return nil, nil, corrupt(name, string(v), fmt.Errorf("index names run %q, which does not exist", v))
		}
		if err != nil {
			return nil, nil, err
		}
		if r.Workspace != workspaceID {
			return nil, nil, corrupt(name, string(v), fmt.Errorf("index names run %q of workspace %q", v, r.Workspace))
		}
		if filter == nil || filter(r) {
			runs = append(runs, r)
		}
	}
	return runs, nil, nil
}

// positionOf turns an order key back into a position.
func positionOf(k []byte) *RunPosition {
	return &RunPosition{Created: time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC(), ID: string(k[8:])}
}
