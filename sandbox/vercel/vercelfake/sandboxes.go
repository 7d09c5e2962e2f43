package vercelfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The named-sandbox endpoints (§5.1): create, get (and resume), list, update, delete, fork.

type sourceSpec struct {
	Type       string  `json:"type"`
	SnapshotID *string `json:"snapshotId,omitempty"`
	URL        *string `json:"url,omitempty"`
	Depth      *int    `json:"depth,omitempty"`
	Revision   *string `json:"revision,omitempty"`
	Username   *string `json:"username,omitempty"`
	Password   *string `json:"password,omitempty"`
}

type resourcesSpec struct {
	VCPUs  *int `json:"vcpus,omitempty"`
	Memory *int `json:"memory,omitempty"`
}

// createRequest is the body of POST /v2|v3/sandboxes and (without projectId, source and
// runtime) of POST /v2/sandboxes/{name}/fork.
type createRequest struct {
	ProjectID          *string           `json:"projectId"`
	Name               *string           `json:"name"`
	Ports              []int             `json:"ports"`
	Source             *sourceSpec       `json:"source"`
	Timeout            *int64            `json:"timeout"`
	Resources          *resourcesSpec    `json:"resources"`
	Runtime            *string           `json:"runtime"`
	Image              *string           `json:"image"`
	Persistent         *bool             `json:"persistent"`
	NetworkPolicy      json.RawMessage   `json:"networkPolicy"`
	NetworkID          *string           `json:"networkId"`
	Env                map[string]string `json:"env"`
	Tags               map[string]string `json:"tags"`
	SnapshotExpiration *int64            `json:"snapshotExpiration"`
	KeepLastSnapshots  *keepLast         `json:"keepLastSnapshots"`
	Mounts             json.RawMessage   `json:"mounts"`
	Region             *string           `json:"region"`
	FailoverRegions    []string          `json:"failoverRegions"`
}

type sandboxAndSession struct {
	Sandbox wireSandbox `json:"sandbox"`
	Session wireSession `json:"session"`
	Routes  []wireRoute `json:"routes"`
	Resumed *bool       `json:"resumed,omitempty"`
}

// sandboxAndSessionLocked renders a named sandbox with its current session.
func (s *Server) sandboxAndSessionLocked(sb *namedSandbox, resumed *bool) sandboxAndSession {
	out := sandboxAndSession{Sandbox: sb.view(), Routes: []wireRoute{}, Resumed: resumed}
	if ss := sb.current; ss != nil {
		out.Session = ss.view()
		out.Routes = ss.routes()
	}
	return out
}

var runtimes = map[string]bool{"node22": true, "node24": true, "node26": true, "python3.13": true}

// validateTimeout checks a session timeout in ms.
func (s *Server) validateTimeout(t int64, field string) error {
	if t <= 0 {
		return badRequest("`%s` should be >= 1", field)
	}
	if max := s.opts.MaxTimeout.Milliseconds(); t > max {
		return &apiError{Status: http.StatusBadRequest, Code: codeTimeoutInvalid,
			Message: fmt.Sprintf("Invalid request: `%s` must be at most %d ms (the plan's maximum sandbox duration is %s).", field, max, s.opts.MaxTimeout)}
	}
	return nil
}

func validateVCPUs(v int) error {
	if v < 1 || (v != 1 && v%2 != 0) || v > maxVCPUs {
		return badRequest("`resources.vcpus` must be 1 or an even number up to %d, got %d", maxVCPUs, v)
	}
	return nil
}

func validatePorts(ports []int) ([]int, error) {
	if len(ports) > maxPorts {
		return nil, badRequest("`ports` should NOT have more than %d items", maxPorts)
	}
	for i, p := range ports {
		if p < 1024 || p > 65535 {
			return nil, badRequest("`ports[%d]` should be >= 1024 and <= 65535, got %d", i, p)
		}
	}
	return sortedPorts(ports), nil
}

func validateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return badRequest("`tags` should NOT have more than %d properties", maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 256 || len(v) > 256 || strings.ContainsAny(k, ":,") {
			return badRequest("`tags` has an invalid tag %q (keys are 1-256 characters without ':' or ',', values at most 256)", k)
		}
	}
	return nil
}

func validateSnapshotExpiration(v int64, field string) error {
	if v != 0 && (v < minSnapshotTTL.Milliseconds()) {
		return badRequest("`%s` must be 0 (never expire) or at least %d ms (1 day)", field, minSnapshotTTL.Milliseconds())
	}
	return nil
}

func validateKeepLast(k *keepLast) error {
	if k == nil {
		return nil
	}
	if k.Count < 1 || k.Count > 10 {
		return badRequest("`keepLastSnapshots.count` should be >= 1 and <= 10")
	}
	if k.Expiration != nil {
		return validateSnapshotExpiration(*k.Expiration, "keepLastSnapshots.expiration")
	}
	return nil
}

func validateRegions(region *string, failover []string) (string, []string, error) {
	r := defaultRegion
	if region != nil {
		if !regions[*region] {
			return "", nil, badRequest("`region` %q is not a sandbox region", *region)
		}
		r = *region
	}
	out := []string{}
	for _, f := range failover {
		if !regions[f] {
			return "", nil, badRequest("`failoverRegions` holds %q, which is not a sandbox region", f)
		}
		if f == r {
			return "", nil, badRequest("failoverRegions must not include the sandbox region: %s", r)
		}
		out = append(out, f)
	}
	return r, out, nil
}

// imageRef is the digest-pinned image reference the service reports for an image name.
func imageRef(image string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		return image
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	sum := sha256.Sum256([]byte(image))
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

// configCopy copies the configuration of sb (not its identity, sessions or history).
func (sb *namedSandbox) configCopy() *namedSandbox {
	return &namedSandbox{
		projectID: sb.projectID, persistent: sb.persistent, region: sb.region,
		failover: append([]string{}, sb.failover...), vcpus: sb.vcpus, runtime: sb.runtime, image: sb.image,
		timeout: sb.timeout, policy: sb.policy, networkID: sb.networkID, env: sb.env, tags: sb.tags,
		ports: append([]int{}, sb.ports...), snapExp: sb.snapExp, keepLast: sb.keepLast,
	}
}

// applyConfig validates the configuration fields of a create or fork body onto sb (a fresh
// sandbox, or a copy of the fork source).
func (s *Server) applyConfig(sb *namedSandbox, req *createRequest, v3 bool) error {
	if req.Name != nil {
		if !nameRe.MatchString(*req.Name) {
			return badRequest("`name` must be 1-128 characters of letters, digits, '-' and '_'")
		}
		sb.name = *req.Name
	}
	if req.Ports != nil {
		ports, err := validatePorts(req.Ports)
		if err != nil {
			return err
		}
		sb.ports = ports
	}
	if req.Timeout != nil {
		if err := s.validateTimeout(*req.Timeout, "timeout"); err != nil {
			return err
		}
		sb.timeout = *req.Timeout
	}
	if req.Resources != nil {
		if req.Resources.VCPUs != nil {
			if err := validateVCPUs(*req.Resources.VCPUs); err != nil {
				return err
			}
			sb.vcpus = *req.Resources.VCPUs
		}
		if req.Resources.Memory != nil && *req.Resources.Memory != sb.vcpus*memoryPerVCPU {
			return badRequest("`resources.memory` must be %d (2048 MB per vCPU) for %d vCPUs", sb.vcpus*memoryPerVCPU, sb.vcpus)
		}
	}
	if req.Runtime != nil {
		if !runtimes[*req.Runtime] {
			return badRequest("`runtime` should be equal to one of the allowed values: node22, node24, node26, python3.13")
		}
		sb.runtime, sb.image = *req.Runtime, ""
	}
	if req.Image != nil {
		if !v3 {
			return badRequest("should NOT have additional property `image` (images are created through /v3/sandboxes)")
		}
		if strings.TrimSpace(*req.Image) == "" {
			return badRequest("`image` must not be empty")
		}
		sb.image, sb.runtime = imageRef(*req.Image), ""
	}
	if req.Persistent != nil {
		sb.persistent = *req.Persistent
	}
	if len(bytes.TrimSpace(req.NetworkPolicy)) > 0 && string(bytes.TrimSpace(req.NetworkPolicy)) != "null" {
		if err := s.refusePolicyShape(req.NetworkPolicy, "networkPolicy"); err != nil {
			return err
		}
		p, err := parsePolicy(req.NetworkPolicy, "networkPolicy")
		if err != nil {
			return err
		}
		if _, err := p.backendPolicy(); err != nil {
			return err
		}
		sb.policy = p
	}
	if req.NetworkID != nil {
		sb.networkID = *req.NetworkID
	}
	if req.Env != nil {
		for k := range req.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return badRequest("`env` has an invalid variable name %q", k)
			}
		}
		sb.env = req.Env
	}
	if req.Tags != nil {
		if err := validateTags(req.Tags); err != nil {
			return err
		}
		sb.tags = req.Tags
	}
	if req.SnapshotExpiration != nil {
		if err := validateSnapshotExpiration(*req.SnapshotExpiration, "snapshotExpiration"); err != nil {
			return err
		}
		v := *req.SnapshotExpiration
		sb.snapExp = &v
	}
	if req.KeepLastSnapshots != nil {
		if err := validateKeepLast(req.KeepLastSnapshots); err != nil {
			return err
		}
		k := *req.KeepLastSnapshots
		sb.keepLast = &k
	}
	if m := bytes.TrimSpace(req.Mounts); len(m) > 0 && string(m) != "null" && string(m) != "{}" {
		return badRequest("`mounts`: drives are not supported by the fake Sandbox API")
	}
	if req.Region != nil || req.FailoverRegions != nil {
		region := &sb.region
		if req.Region != nil {
			region = req.Region
		}
		r, f, err := validateRegions(region, req.FailoverRegions)
		if err != nil {
			return err
		}
		sb.region, sb.failover = r, f
	}
	return nil
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

// usableSnapshotLocked returns a snapshot a session can start from, or 410 snapshot_not_found.
func (s *Server) usableSnapshotLocked(id string) (*snapshot, error) {
	s.expireSnapshotsLocked(time.Now())
	sn := s.snapshots[id]
	if sn == nil || sn.status != snapCreated {
		return nil, newError(http.StatusGone, codeSnapshotNotFound, "Snapshot %s was not found: it does not exist, was deleted, or has expired.", id)
	}
	return sn, nil
}

// startSession boots a new session of sb from source (nil: empty) and makes it sb's current
// session. It returns once the session is running.
func (s *Server) startSession(ctx context.Context, sb *namedSandbox, source *snapshot) (*session, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed.")
	}
	now := ms(time.Now())
	ss := &session{
		id: newSessionID(), sb: sb, projectID: sb.projectID, status: statusPending, region: sb.region,
		vcpus: sb.vcpus, runtime: sb.runtime, timeout: sb.timeout, policy: sb.policy,
		requestedAt: now, createdAt: now, updatedAt: now,
		ports: append([]int(nil), sb.ports...), listeners: map[int]*routeListener{},
		commands: map[string]*command{}, done: make(chan struct{}),
	}
	var ref sandbox.SnapshotRef
	if source != nil {
		ss.sourceSnapshotID = source.id
		ss.sourceRef = source.ref
		ref = source.ref
		source.lastUsedAt = now
		source.updatedAt = now
	}
	s.sessions[ss.id] = ss
	sb.current = ss
	sb.statusUpdatedAt = now
	pol, err := sb.policy.backendPolicy()
	env, lifetime, label := sb.env, time.Duration(ss.timeout)*time.Millisecond+backendGrace, "vercelfake "+sb.name+" "+ss.id
	s.mu.Unlock()

	fail := func(err error) (*session, error) {
		s.mu.Lock()
		ss.status = statusFailed
		ss.updatedAt = ms(time.Now())
		sb.statusUpdatedAt = ss.updatedAt
		close(ss.done)
		s.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return fail(err)
	}
	// The VM must not die with the request that asked for it.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	backend, err := s.opts.Backend.Start(bctx, sandbox.StartOptions{
		Snapshot: ref,
		Policy:   pol,
		Env:      env,
		Lifetime: lifetime,
		Label:    label,
		Detached: true,
	})
	if err != nil {
		s.log.Error("vercelfake: backend start failed", "sandbox", sb.name, "session", ss.id, "err", err)
		if errors.Is(err, sandbox.ErrNotFound) {
			return fail(newError(http.StatusGone, codeSnapshotNotFound, "The snapshot's data is gone: %v", err))
		}
		return fail(internalError(fmt.Errorf("start the VM: %w", err)))
	}
	listeners := map[int]*routeListener{}
	for _, p := range ss.ports {
		l, err := openRoute(ss, backend, p, s.log)
		if err != nil {
			for _, l := range listeners {
				l.close()
			}
			_ = backend.Stop(context.Background())
			return fail(internalError(err))
		}
		listeners[p] = l
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		for _, l := range listeners {
			l.close()
		}
		_ = backend.Stop(context.Background())
		return fail(newError(http.StatusServiceUnavailable, codeUnavailable, "The fake Sandbox API has been closed."))
	}
	now = ms(time.Now())
	ss.backend = backend
	ss.listeners = listeners
	ss.status = statusRunning
	ss.startedAt = now
	ss.updatedAt = now
	if sb.current == ss {
		sb.statusUpdatedAt = now
	}
	s.armTimerLocked(ss)
	s.mu.Unlock()
	s.log.Info("vercelfake: session running", "sandbox", sb.name, "session", ss.id, "backend", backend.ID())
	return ss, nil
}

// namedSandboxFor looks up the {name} of r with its projectId query parameter.
func (s *Server) namedSandboxFor(r *http.Request) (*namedSandbox, error) {
	if err := s.checkProject("projectId", r.URL.Query().Get("projectId")); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	s.mu.Lock()
	sb := s.sandboxes[name]
	s.mu.Unlock()
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
	s.mu.Lock()
	out := s.sandboxAndSessionLocked(sb, resumed)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// resume makes sure sb has a running session: when its current session is not running (or
// stopping), a new session starts from sb's current snapshot (the one a stop or snapshot
// left); it says whether it started one. Concurrent resumes are one.
func (s *Server) resume(ctx context.Context, sb *namedSandbox) (bool, error) {
	sb.resumeMu.Lock()
	defer sb.resumeMu.Unlock()
	for {
		s.mu.Lock()
		if s.sandboxes[sb.name] != sb {
			s.mu.Unlock()
			return false, notFound("Named sandbox '%s' not found for this project.", sb.name)
		}
		cur := sb.current
		if cur != nil && (cur.status == statusRunning || cur.status == statusPending) {
			s.mu.Unlock()
			return false, nil
		}
		if cur != nil && (cur.status == statusStopping || cur.status == statusSnapshotting) {
			done := cur.done
			s.mu.Unlock()
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
				s.mu.Unlock()
				return false, err
			}
			source = sn
		}
		s.mu.Unlock()
		if _, err := s.startSession(ctx, sb, source); err != nil {
			return false, err
		}
		return true, nil
	}
}

func (s *Server) handleListSandboxes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if p := q.Get("project"); p != "" {
		if err := s.checkProject("project", p); err != nil {
			writeError(w, err)
			return
		}
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
	s.mu.Lock()
	var list []wireSandbox
	for _, sb := range s.sandboxes {
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
	s.mu.Unlock()
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
	page, pag, err := paginate(list, q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sandboxes": page, "pagination": pag})
}

// sortOrder reads sortOrder (default desc).
func sortOrder(q url.Values) (desc bool, err error) {
	switch q.Get("sortOrder") {
	case "", "desc":
		return true, nil
	case "asc":
		return false, nil
	}
	return false, badRequest("`sortOrder` should be equal to one of the allowed values: asc, desc")
}

// paginate cuts one page out of items: limit (1-100, default 50) items after the opaque cursor.
func paginate[T any](items []T, q url.Values) ([]T, wirePagination, error) {
	limit := 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return nil, wirePagination{}, badRequest("`limit` should be an integer between 1 and 100")
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		n, perr := strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		if err != nil || perr != nil || !strings.HasPrefix(string(raw), "o:") || n < 0 {
			return nil, wirePagination{}, badRequest("`cursor` is not a cursor this API returned")
		}
		offset = n
	}
	if offset > len(items) {
		offset = len(items)
	}
	end := min(offset+limit, len(items))
	page := items[offset:end]
	if page == nil {
		page = []T{}
	}
	pag := wirePagination{Count: len(page)}
	if end < len(items) {
		next := base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(end)))
		pag.Next = &next
	}
	return page, pag, nil
}

// updateRequest is the body of PATCH /v2/sandboxes/{name}.
type updateRequest struct {
	Persistent         *bool              `json:"persistent"`
	Resources          *resourcesSpec     `json:"resources"`
	Timeout            *int64             `json:"timeout"`
	NetworkPolicy      json.RawMessage    `json:"networkPolicy"`
	NetworkID          json.RawMessage    `json:"networkId"`
	Tags               *map[string]string `json:"tags"`
	Ports              *[]int             `json:"ports"`
	SnapshotExpiration *int64             `json:"snapshotExpiration"`
	KeepLastSnapshots  json.RawMessage    `json:"keepLastSnapshots"`
	CurrentSnapshotID  *string            `json:"currentSnapshotId"`
	Region             *string            `json:"region"`
	FailoverRegions    *[]string          `json:"failoverRegions"`
	Mounts             json.RawMessage    `json:"mounts"`
	Env                *map[string]string `json:"env"`
	Runtime            *string            `json:"runtime"`
}

func (s *Server) handleUpdateSandbox(w http.ResponseWriter, r *http.Request) {
	sb, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req updateRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	// Validate everything before changing anything.
	cfg := createRequest{Timeout: req.Timeout, Resources: req.Resources, NetworkPolicy: req.NetworkPolicy,
		SnapshotExpiration: req.SnapshotExpiration, Region: req.Region, Runtime: req.Runtime, Mounts: req.Mounts}
	if req.Tags != nil {
		cfg.Tags = *req.Tags
	}
	if req.FailoverRegions != nil {
		cfg.FailoverRegions = *req.FailoverRegions
	}
	if req.Env != nil {
		cfg.Env = *req.Env
	}
	var ports []int
	if req.Ports != nil {
		if ports, err = validatePorts(*req.Ports); err != nil {
			writeError(w, err)
			return
		}
	}
	var networkID *string
	if nid := bytes.TrimSpace(req.NetworkID); len(nid) > 0 {
		networkID = new(string)
		if string(nid) != "null" {
			if err := json.Unmarshal(nid, networkID); err != nil {
				writeError(w, badRequest("`networkId` should be string or null"))
				return
			}
		}
	}
	var keep *keepLast
	clearKeep := false
	if k := bytes.TrimSpace(req.KeepLastSnapshots); len(k) > 0 {
		if string(k) == "null" {
			clearKeep = true
		} else {
			keep = &keepLast{}
			if err := decodeJSON(k, keep, false); err != nil {
				writeError(w, prefixError(err, "keepLastSnapshots"))
				return
			}
			if err := validateKeepLast(keep); err != nil {
				writeError(w, err)
				return
			}
		}
	}

	s.mu.Lock()
	scratch := sb.configCopy() // validation on a copy: a failure changes nothing
	if req.Region == nil && req.FailoverRegions != nil {
		cfg.Region = &scratch.region
	}
	if err := s.applyConfig(scratch, &cfg, true); err != nil {
		s.mu.Unlock()
		writeError(w, err)
		return
	}
	if req.CurrentSnapshotID != nil {
		sn := s.snapshots[*req.CurrentSnapshotID]
		if sn == nil || sn.projectID != sb.projectID {
			s.mu.Unlock()
			writeError(w, notFound("Snapshot %s not found.", *req.CurrentSnapshotID))
			return
		}
	}
	sb.timeout, sb.vcpus, sb.policy, sb.tags, sb.env = scratch.timeout, scratch.vcpus, scratch.policy, scratch.tags, scratch.env
	sb.snapExp, sb.region, sb.failover, sb.runtime = scratch.snapExp, scratch.region, scratch.failover, scratch.runtime
	if req.Persistent != nil {
		sb.persistent = *req.Persistent
	}
	if networkID != nil {
		sb.networkID = *networkID
	}
	if keep != nil {
		sb.keepLast = keep
	}
	if clearKeep {
		sb.keepLast = nil
	}
	if req.CurrentSnapshotID != nil {
		sb.currentSnapshotID = *req.CurrentSnapshotID
	}
	sb.updatedAt = ms(time.Now())
	var opened []int
	var closing []*routeListener
	cur := sb.current
	if req.Ports != nil {
		sb.ports = ports
		for _, p := range ports {
			if sb.subdomains[p] == "" {
				sb.subdomains[p] = newSubdomain()
			}
		}
		// Ports take effect at once on a running session.
		if cur != nil && cur.status == statusRunning {
			want := map[int]bool{}
			for _, p := range ports {
				want[p] = true
				if cur.listeners[p] == nil {
					opened = append(opened, p)
				}
			}
			for p, l := range cur.listeners {
				if !want[p] {
					closing = append(closing, l)
					delete(cur.listeners, p)
				}
			}
			cur.ports = ports
		}
	}
	s.mu.Unlock()
	for _, l := range closing {
		l.close()
	}
	for _, p := range opened {
		l, err := openRoute(cur, cur.backend, p, s.log)
		if err != nil {
			writeError(w, internalError(err))
			return
		}
		s.mu.Lock()
		if cur.status == statusRunning && cur.listeners != nil {
			cur.listeners[p] = l
			l = nil
		}
		s.mu.Unlock()
		if l != nil {
			l.close()
		}
	}
	s.mu.Lock()
	out := map[string]any{"sandbox": sb.view()}
	if req.Ports != nil {
		routes := []wireRoute{}
		if cur != nil {
			routes = cur.routes()
		}
		out["routes"] = routes
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteSandbox(w http.ResponseWriter, r *http.Request) {
	sb, err := s.namedSandboxFor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	orphans := r.URL.Query().Get("deleteOrphanSnapshots") == "true"
	s.mu.Lock()
	if s.sandboxes[sb.name] != sb {
		s.mu.Unlock()
		writeError(w, notFound("Named sandbox '%s' not found for this project.", sb.name))
		return
	}
	delete(s.sandboxes, sb.name)
	cur := sb.current
	s.mu.Unlock()
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
	s.mu.Lock()
	if orphans {
		used := map[string]bool{}
		for _, other := range s.sandboxes {
			used[other.currentSnapshotID] = true
		}
		for _, sn := range s.snapshots {
			if sn.sandboxName == sb.name && sn.projectID == sb.projectID && sn.status == snapCreated && !used[sn.id] {
				s.markDeletedLocked(sn)
				drop = append(drop, sn)
			}
		}
	}
	out := map[string]any{"sandbox": sb.view()}
	if cur != nil {
		out["routes"] = cur.routes()
	}
	s.mu.Unlock()
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
	s.mu.Lock()
	sb := src.configCopy()
	sb.subdomains = map[int]string{}
	sb.createdAt, sb.updatedAt, sb.statusUpdatedAt = now, now, now
	srcSnapshot := src.currentSnapshotID
	s.mu.Unlock()
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
	s.mu.Lock()
	var source *snapshot
	if sourceID != "" {
		sn, err := s.usableSnapshotLocked(sourceID)
		if err != nil {
			s.mu.Unlock()
			writeError(w, err)
			return
		}
		source = sn
		sb.currentSnapshotID = sn.id
	}
	if sb.name == "" {
		for sb.name == "" || s.sandboxes[sb.name] != nil {
			sb.name = newSandboxName()
		}
	}
	if s.sandboxes[sb.name] != nil {
		s.mu.Unlock()
		writeError(w, newError(http.StatusConflict, codeConflict, "A sandbox named %q already exists in this project.", sb.name))
		return
	}
	for _, p := range sb.ports {
		sb.subdomains[p] = newSubdomain()
	}
	s.sandboxes[sb.name] = sb
	s.mu.Unlock()
	if _, err := s.startSession(r.Context(), sb, source); err != nil {
		s.mu.Lock()
		if s.sandboxes[sb.name] == sb {
			delete(s.sandboxes, sb.name)
		}
		s.mu.Unlock()
		writeError(w, err)
		return
	}
	s.mu.Lock()
	out := s.sandboxAndSessionLocked(sb, nil)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
