package vercelfake

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// The snapshot endpoints (§5.5) and snapshot expiry.
//
// A snapshot that expired or was deleted stays readable with status "deleted" (the enum the
// SDK validates has that state, and §10.4 says deleted follows a DELETE, expiry or eviction);
// starting a session from it answers 410 snapshot_not_found. Its backend data is freed at once.

func (s *Server) handleListSnapshots(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	desc, err := s.listOrder(q)
	if err != nil {
		writeError(w, err)
		return
	}
	name := q.Get("name")
	s.snapshots.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	views := listViews(s.snapshots.all, func(sn *snapshot) bool { return name == "" || sn.sandboxName == name }, desc, (*snapshot).view)
	s.snapshots.mu.Unlock()
	writePage(w, q, "snapshots", views)
}

func (s *Server) handleGetSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.snapshots.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots.all[id]
	var out map[string]any
	if sn != nil {
		out = map[string]any{"snapshot": sn.view()}
	}
	s.snapshots.mu.Unlock()
	if sn == nil {
		writeError(w, notFound("Snapshot %s not found.", id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.snapshots.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots.all[id]
	if sn == nil {
		s.snapshots.mu.Unlock()
		writeError(w, notFound("Snapshot %s not found.", id))
		return
	}
	wasLive := sn.status == snapCreated
	sn.markDeletedLocked()
	out := map[string]any{"snapshot": sn.view()}
	s.snapshots.mu.Unlock()
	if wasLive {
		s.deleteBackendSnapshots([]*snapshot{sn})
	}
	writeJSON(w, http.StatusOK, out)
}

// ExpireSnapshot makes the snapshot expire now, as if its expiresAt had passed: creating or
// resuming from it then answers 410 snapshot_not_found, and GET shows it with status
// "deleted". Its backend data is freed. An unknown id is an error.
func (s *Server) ExpireSnapshot(id string) error {
	s.snapshots.mu.Lock()
	sn := s.snapshots.all[id]
	if sn == nil {
		s.snapshots.mu.Unlock()
		return fmt.Errorf("vercelfake: no snapshot %q", id)
	}
	wasLive := sn.status == snapCreated
	now := ms(time.Now())
	if sn.expiration <= 0 || sn.expiresAt() > now {
		sn.expiration = max(now-max(sn.lastUsedAt, sn.createdAt), 1)
	}
	sn.markDeletedLocked()
	s.snapshots.mu.Unlock()
	if wasLive {
		s.deleteBackendSnapshots([]*snapshot{sn})
	}
	return nil
}

// markDeletedLocked gives sn the status deleted (its backend data is the caller's to free).
func (sn *snapshot) markDeletedLocked() {
	if sn.status == snapDeleted {
		return
	}
	sn.status = snapDeleted
	sn.updatedAt = ms(time.Now())
}

// expireSnapshotsLocked deletes the snapshots whose expiresAt has passed; their backend data is
// freed in the background.
func (s *Server) expireSnapshotsLocked(now time.Time) {
	if drop := s.snapshots.expireLocked(now); len(drop) > 0 {
		s.life.goUnlessClosed(func() { s.deleteBackendSnapshots(drop) })
	}
}

// expireLocked marks deleted the snapshots whose expiresAt has passed and returns them.
func (st *snapshotState) expireLocked(now time.Time) []*snapshot {
	var drop []*snapshot
	for _, sn := range st.all {
		if sn.status == snapCreated && sn.expiresAt() != 0 && sn.expiresAt() <= ms(now) {
			sn.markDeletedLocked()
			drop = append(drop, sn)
		}
	}
	return drop
}

// refShared reports whether a snapshot other than the deleted sn still uses sn's backend
// snapshot (snapshots of sessions that changed nothing share their source's).
func (st *snapshotState) refShared(sn *snapshot) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, o := range st.all {
		if o != sn && o.ref == sn.ref && o.status != snapDeleted {
			return true
		}
	}
	return false
}

// deleteBackendSnapshots frees the backend data of deleted snapshots. Sessions already started
// from them are unaffected (the provider contract).
func (s *Server) deleteBackendSnapshots(list []*snapshot) {
	for _, sn := range list {
		if sn.ref == "" || s.snapshots.refShared(sn) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.opts.Backend.DeleteSnapshot(ctx, sn.ref); err != nil {
			s.log.Warn("vercelfake: deleting backend snapshot failed", "snapshot", sn.id, "ref", sn.ref, "err", err)
		}
		cancel()
	}
}

// usableSnapshotLocked returns a snapshot a session can start from, or 410 snapshot_not_found.
// Call with the snapshots' lock held.
func (s *Server) usableSnapshotLocked(id string) (*snapshot, error) {
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots.all[id]
	if sn == nil || sn.status != snapCreated {
		return nil, newError(http.StatusGone, codeSnapshotNotFound, "Snapshot %s was not found: it does not exist, was deleted, or has expired.", id)
	}
	return sn, nil
}

// applyRetentionLocked enforces sb's keepLastSnapshots after a new snapshot: snapshots of sb
// beyond the newest count are deleted (deleteEvicted, the default) or, with deleteEvicted
// false, made to expire after keepLastSnapshots.expiration when given. It returns the deleted
// snapshots, whose backend data the caller frees. Call with the sandboxes' and snapshots' locks
// held.
func (st *snapshotState) applyRetentionLocked(sb *namedSandbox) []*snapshot {
	k := sb.keepLast
	if k == nil {
		return nil
	}
	var mine []*snapshot
	for _, sn := range st.all {
		if sn.sandboxName == sb.name && sn.projectID == sb.projectID && sn.status == snapCreated {
			mine = append(mine, sn)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].createdAt > mine[j].createdAt })
	var drop []*snapshot
	for i, sn := range mine {
		if i < k.Count || sn.id == sb.currentSnapshotID {
			continue
		}
		if k.DeleteEvicted == nil || *k.DeleteEvicted {
			sn.markDeletedLocked()
			drop = append(drop, sn)
		} else if k.Expiration != nil && *k.Expiration > 0 {
			sn.lastUsedAt = ms(time.Now())
			sn.expiration = *k.Expiration
		}
	}
	return drop
}
