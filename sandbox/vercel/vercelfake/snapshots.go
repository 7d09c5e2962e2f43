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
	if p := q.Get("project"); p != "" {
		if err := s.checkProject("project", p); err != nil {
			writeError(w, err)
			return
		}
	}
	desc, err := sortOrder(q)
	if err != nil {
		writeError(w, err)
		return
	}
	name := q.Get("name")
	s.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	var list []*snapshot
	for _, sn := range s.snapshots {
		if name == "" || sn.sandboxName == name {
			list = append(list, sn)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.createdAt != b.createdAt {
			return (a.createdAt < b.createdAt) != desc
		}
		return (a.id < b.id) != desc
	})
	views := make([]wireSnapshot, len(list))
	for i, sn := range list {
		views[i] = sn.view()
	}
	s.mu.Unlock()
	page, pag, err := paginate(views, q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": page, "pagination": pag})
}

func (s *Server) handleGetSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots[id]
	var out map[string]any
	if sn != nil {
		out = map[string]any{"snapshot": sn.view()}
	}
	s.mu.Unlock()
	if sn == nil {
		writeError(w, notFound("Snapshot %s not found.", id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots[id]
	if sn == nil {
		s.mu.Unlock()
		writeError(w, notFound("Snapshot %s not found.", id))
		return
	}
	wasLive := sn.status == snapCreated
	s.markDeletedLocked(sn)
	out := map[string]any{"snapshot": sn.view()}
	s.mu.Unlock()
	if wasLive {
		s.deleteBackendSnapshots([]*snapshot{sn})
	}
	writeJSON(w, http.StatusOK, out)
}

// ExpireSnapshot makes the snapshot expire now, as if its expiresAt had passed: creating or
// resuming from it then answers 410 snapshot_not_found, and GET shows it with status
// "deleted". Its backend data is freed. An unknown id is an error.
func (s *Server) ExpireSnapshot(id string) error {
	s.mu.Lock()
	sn := s.snapshots[id]
	if sn == nil {
		s.mu.Unlock()
		return fmt.Errorf("vercelfake: no snapshot %q", id)
	}
	wasLive := sn.status == snapCreated
	now := ms(time.Now())
	if sn.expiration <= 0 || sn.expiresAt() > now {
		sn.expiration = max(now-max(sn.lastUsedAt, sn.createdAt), 1)
	}
	s.markDeletedLocked(sn)
	s.mu.Unlock()
	if wasLive {
		s.deleteBackendSnapshots([]*snapshot{sn})
	}
	return nil
}

// markDeletedLocked gives sn the status deleted (its backend data is the caller's to free).
func (s *Server) markDeletedLocked(sn *snapshot) {
	if sn.status == snapDeleted {
		return
	}
	sn.status = snapDeleted
	sn.updatedAt = ms(time.Now())
}

// expireSnapshotsLocked deletes the snapshots whose expiresAt has passed; their backend data is
// freed in the background.
func (s *Server) expireSnapshotsLocked(now time.Time) {
	var drop []*snapshot
	for _, sn := range s.snapshots {
		if sn.status == snapCreated && sn.expiresAt() != 0 && sn.expiresAt() <= ms(now) {
			s.markDeletedLocked(sn)
			drop = append(drop, sn)
		}
	}
	if len(drop) > 0 {
		s.goLocked(func() { s.deleteBackendSnapshots(drop) })
	}
}

// backendRefShared reports whether a snapshot other than the deleted sn still uses sn's backend
// snapshot (snapshots of sessions that changed nothing share their source's).
func (s *Server) backendRefShared(sn *snapshot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.snapshots {
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
		if sn.ref == "" || s.backendRefShared(sn) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.opts.Backend.DeleteSnapshot(ctx, sn.ref); err != nil {
			s.log.Warn("vercelfake: deleting backend snapshot failed", "snapshot", sn.id, "ref", sn.ref, "err", err)
		}
		cancel()
	}
}
