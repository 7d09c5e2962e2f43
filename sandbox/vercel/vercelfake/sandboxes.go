package vercelfake

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The named-sandbox endpoints (§5.1): create, get (and resume), list, delete, fork; PATCH is in
// sandbox_update.go.

type sandboxAndSession struct {
	Sandbox wireSandbox `json:"sandbox"`
	Session wireSession `json:"session"`
	Routes  []wireRoute `json:"routes"`
	Resumed *bool       `json:"resumed,omitempty"`
}

// sandboxAndSessionLocked renders a named sandbox with its current session. Call with the
// sandboxes' and sessions' locks held.
func (s *Server) sandboxAndSessionLocked(sb *namedSandbox, resumed *bool) sandboxAndSession {
	out := sandboxAndSession{Sandbox: sb.view(), Routes: []wireRoute{}, Resumed: resumed}
	if ss := sb.current; ss != nil {
		out.Session = ss.view()
		out.Routes = ss.routes()
	}
	return out
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	v3 := strings.HasPrefix(r.URL.Path, "/v3/")
	var req createRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	if req.ProjectID == nil {
		writeError(w, badRequest("should have required property `projectId`"))
		return
	}
	if err := s.checkProject("projectId", *req.ProjectID); err != nil {
		writeError(w, err)
		return
	}
	now := ms(time.Now())
	sb := &namedSandbox{
		projectID: s.opts.ProjectID, persistent: true, region: defaultRegion, failover: []string{},
		vcpus: defaultVCPUs, timeout: defaultTimeoutMs, ports: []int{}, subdomains: map[int]string{},
		policy:    &netPolicy{mode: "allow-all"}, // the default when none is given (§4.7)
		createdAt: now, updatedAt: now, statusUpdatedAt: now,
	}
	if err := s.applyConfig(sb, &req, v3); err != nil {
		writeError(w, err)
		return
	}
	if src := req.Source; src != nil {
		switch src.Type {
		case "snapshot":
			if src.SnapshotID == nil || *src.SnapshotID == "" {
				writeError(w, badRequest("`source.snapshotId` is required when `source.type` is \"snapshot\""))
				return
			}
			if req.Runtime != nil || req.Image != nil {
				writeError(w, badRequest("`runtime` and `image` cannot be combined with a snapshot source"))
				return
			}
		case "git", "tarball":
			writeError(w, badRequest("`source.type` %q is not supported by the fake Sandbox API (use a snapshot source, or write the files with fs/write)", src.Type))
			return
		default:
			writeError(w, badRequest("`source.type` should be equal to one of the allowed values: git, tarball, snapshot"))
			return
		}
	}
	if sb.runtime == "" && sb.image == "" && req.Source == nil && v3 {
		sb.image = imageRef("vercel/sandbox/universal:latest")
	}

	var sourceID string
	if req.Source != nil {
		sourceID = *req.Source.SnapshotID
	}
	s.launch(w, r, sb, sourceID)
}

// namedSandboxFor looks up the {name} of r with its projectId query parameter.
func (s *Server) namedSandboxFor(r *http.Request) (*namedSandbox, error) {
	if err := s.checkProject("projectId", r.URL.Query().Get("projectId")); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	sb := s.sandboxes.get(name)
	if sb == nil {
		return nil, notFound("Named sandbox '%s' not found for this project.", name)
	}
	return sb, nil
}

func (s *Server) handleGetSandbox(w http.ResponseWriter, r *http.Request) {
	sb, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var resumed *bool
	switch r.URL.Query().Get("resume") {
	case "", "false":
	case "true":
		did, err := s.resume(r.Context(), sb)
		if err != nil {
			writeError(w, err)
			return
		}
		resumed = &did
	default:
		writeError(w, badRequest("`resume` should be true or false"))
		return
	}
	unlock := s.lock(onSandboxes | onSessions)
	out := s.sandboxAndSessionLocked(sb, resumed)
	unlock()
	writeJSON(w, http.StatusOK, out)
}

// resume makes sure sb has a running session: when its current session is not running (or
// stopping), a new session starts from sb's current snapshot (the one a stop or snapshot
// left); it says whether it started one. Concurrent resumes are one.
func (s *Server) resume(ctx context.Context, sb *namedSandbox) (bool, error) {
	sb.resumeMu.Lock()
	defer sb.resumeMu.Unlock()
	for {
		unlock := s.lock(onSandboxes | onSessions | onSnapshots)
		if s.sandboxes.all[sb.name] != sb {
			unlock()
			return false, notFound("Named sandbox '%s' not found for this project.", sb.name)
		}
		cur := sb.current
		if cur != nil && (cur.status == statusRunning || cur.status == statusPending) {
			unlock()
			return false, nil
		}
		if cur != nil && (cur.status == statusStopping || cur.status == statusSnapshotting) {
			done := cur.done
			unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return false, ctx.Err()
			case <-s.ctx.Done():
				return false, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed.")
			}
		}
		var source *snapshot
		if sb.currentSnapshotID != "" {
			sn, err := s.usableSnapshotLocked(sb.currentSnapshotID)
			if err != nil {
				unlock()
				return false, err
			}
			source = sn
		}
		unlock()
		if _, err := s.startSession(ctx, sb, source); err != nil {
			return false, err
		}
		return true, nil
	}
}

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := s.checkListProject(q); err != nil {
		writeError(w, err)
		return
	}
	sortBy := q.Get("sortBy")
	if sortBy == "" {
		sortBy = "createdAt"
	}
	switch sortBy {
	case "createdAt", "name", "statusUpdatedAt", "currentSnapshotId":
	default:
		writeError(w, badRequest("`sortBy` should be equal to one of the allowed values: createdAt, name, statusUpdatedAt, currentSnapshotId"))
		return
	}
	desc, err := sortOrder(q)
	if err != nil {
		writeError(w, err)
		return
	}
	prefix := q.Get("namePrefix")
	if prefix != "" && sortBy != "name" {
		writeError(w, badRequest("`namePrefix` can only be used with sortBy=name"))
		return
	}
	status := q.Get("status")
	if status != "" {
		if sortBy != "createdAt" {
			writeError(w, badRequest("`status` can only be used with sortBy=createdAt"))
			return
		}
		if status != statusRunning && status != statusStopping && status != statusStopped {
			writeError(w, badRequest("`status` should be equal to one of the allowed values: running, stopping, stopped"))
			return
		}
	}
	tags := q["tags"]
	if len(tags) > 1 {
		writeError(w, badRequest("only one `tags` filter is supported"))
		return
	}
	var tagKey, tagValue string
	if len(tags) == 1 {
		var ok bool
		if tagKey, tagValue, ok = strings.Cut(tags[0], ":"); !ok || tagKey == "" {
			writeError(w, badRequest("`tags` should be key:value"))
			return
		}
	}
	unlock := s.lock(onSandboxes | onSessions)
	var list []wireSandbox
	for _, sb := range s.sandboxes.all {
		v := sb.view()
		if prefix != "" && !strings.HasPrefix(v.Name, prefix) {
			continue
		}
		if status != "" && v.Status != status && !(status == statusStopping && v.Status == statusSnapshotting) {
			continue
		}
		if len(tags) == 1 {
			if got, ok := sb.tags[tagKey]; !ok || got != tagValue {
				continue
			}
		}
		list = append(list, v)
	}
	unlock()
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		var less, equal bool
		switch sortBy {
		case "name":
			less, equal = a.Name < b.Name, a.Name == b.Name
		case "statusUpdatedAt":
			less, equal = a.StatusUpdatedAt < b.StatusUpdatedAt, a.StatusUpdatedAt == b.StatusUpdatedAt
		case "currentSnapshotId":
			less, equal = a.CurrentSnapshotID < b.CurrentSnapshotID, a.CurrentSnapshotID == b.CurrentSnapshotID
		default:
			less, equal = a.CreatedAt < b.CreatedAt, a.CreatedAt == b.CreatedAt
		}
		if equal {
			less = a.Name < b.Name
		}
		return less != desc
	})
	writePage(w, q, "sandboxes", list)
}

func (s *Server) handleDeleteSandbox(w http.ResponseWriter, r *http.Request) {
	sb, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	orphans := r.URL.Query().Get("deleteOrphanSnapshots") == "true"
	s.sandboxes.mu.Lock()
	if s.sandboxes.all[sb.name] != sb {
		s.sandboxes.mu.Unlock()
		writeError(w, notFound("Named sandbox '%s' not found for this project.", sb.name))
		return
	}
	delete(s.sandboxes.all, sb.name)
	cur := sb.current
	s.sandboxes.mu.Unlock()
	if cur != nil {
		if _, err := s.endSession(r.Context(), cur, endDelete, nil, false); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusGone {
				writeError(w, err)
				return
			}
		}
	}
	var drop []*snapshot
	unlock := s.lock(onSandboxes | onSessions | onSnapshots)
	if orphans {
		used := map[string]bool{}
		for _, other := range s.sandboxes.all {
			used[other.currentSnapshotID] = true
		}
		for _, sn := range s.snapshots.all {
			if sn.sandboxName == sb.name && sn.projectID == sb.projectID && sn.status == snapCreated && !used[sn.id] {
				sn.markDeletedLocked()
				drop = append(drop, sn)
			}
		}
	}
	out := map[string]any{"sandbox": sb.view()}
	if cur != nil {
		out["routes"] = cur.routes()
	}
	unlock()
	s.deleteBackendSnapshots(drop)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleFork(w http.ResponseWriter, r *http.Request) {
	src, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req createRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	for name, set := range map[string]bool{"projectId": req.ProjectID != nil, "source": req.Source != nil, "runtime": req.Runtime != nil} {
		if set {
			writeError(w, badRequest("should NOT have additional property `%s`", name))
			return
		}
	}
	now := ms(time.Now())
	s.sandboxes.mu.Lock()
	sb := src.configCopy()
	sb.subdomains = map[int]string{}
	sb.createdAt, sb.updatedAt, sb.statusUpdatedAt = now, now, now
	srcSnapshot := src.currentSnapshotID
	s.sandboxes.mu.Unlock()
	if err := s.applyConfig(sb, &req, true); err != nil {
		writeError(w, err)
		return
	}
	s.launch(w, r, sb, srcSnapshot)
}

// launch registers the new sandbox sb (a fresh name when it has none; 409 when its name is taken),
// starts its first session from snapshot sourceID ("" for none; 410 when it is gone) and answers
// SandboxAndSession. Create and fork end here.
func (s *Server) launch(w http.ResponseWriter, r *http.Request, sb *namedSandbox, sourceID string) {
	unlock := s.lock(onSandboxes | onSnapshots)
	var source *snapshot
	if sourceID != "" {
		sn, err := s.usableSnapshotLocked(sourceID)
		if err != nil {
			unlock()
			writeError(w, err)
			return
		}
		source = sn
		sb.currentSnapshotID = sn.id
	}
	if sb.name == "" {
		for sb.name == "" || s.sandboxes.all[sb.name] != nil {
			sb.name = newSandboxName()
		}
	}
	if s.sandboxes.all[sb.name] != nil {
		unlock()
		writeError(w, newError(http.StatusConflict, codeConflict, "A sandbox named %q already exists in this project.", sb.name))
		return
	}
	for _, p := range sb.ports {
		sb.subdomains[p] = newSubdomain()
	}
	s.sandboxes.all[sb.name] = sb
	unlock()
	if _, err := s.startSession(r.Context(), sb, source); err != nil {
		s.sandboxes.mu.Lock()
		if s.sandboxes.all[sb.name] == sb {
			delete(s.sandboxes.all, sb.name)
		}
		s.sandboxes.mu.Unlock()
		writeError(w, err)
		return
	}
	unlock = s.lock(onSandboxes | onSessions)
	out := s.sandboxAndSessionLocked(sb, nil)
	unlock()
	writeJSON(w, http.StatusOK, out)
}
