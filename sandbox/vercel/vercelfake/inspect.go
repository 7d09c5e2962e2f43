package vercelfake

import (
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// What tests look at: the requests the fake received, its sessions and its snapshots.

// requestLog is the requests received and the faults still to inject (faults.go), under its
// own lock (a leaf, like lifecycle's).
type requestLog struct {
	mu       sync.Mutex
	requests []requestRecord
	faults   []*faultState
}

type requestRecord struct {
	method, path string
	query        url.Values
	header       http.Header // without Authorization
}

// record logs r (its path without "/api" is path) and takes the first fault that applies to
// it (nil: none).
func (l *requestLog) record(r *http.Request, path string) *faultState {
	hdr := r.Header.Clone()
	hdr.Del("Authorization")
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, requestRecord{method: r.Method, path: path, query: r.URL.Query(), header: hdr})
	return l.takeFaultLocked(r.Method, path)
}

// Requests counts the requests received so far whose method is method ("" = any) and whose
// path (without "/api" and without the query) matches pathRegexp. Tests use it to assert, e.g.,
// that exactly one command was posted. A pathRegexp that does not compile panics.
func (s *Server) Requests(method, pathRegexp string) int {
	re := regexp.MustCompile(pathRegexp)
	s.traffic.mu.Lock()
	defer s.traffic.mu.Unlock()
	n := 0
	for _, rr := range s.traffic.requests {
		if (method == "" || strings.EqualFold(method, rr.method)) && re.MatchString(rr.path) {
			n++
		}
	}
	return n
}

// Request is a request the fake received, for tests: the path without "/api", the query, and
// the headers except Authorization.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// RequestLog returns the requests received so far that Requests(method, pathRegexp) counts,
// oldest first.
func (s *Server) RequestLog(method, pathRegexp string) []Request {
	re := regexp.MustCompile(pathRegexp)
	s.traffic.mu.Lock()
	defer s.traffic.mu.Unlock()
	var out []Request
	for _, rr := range s.traffic.requests {
		if (method == "" || strings.EqualFold(method, rr.method)) && re.MatchString(rr.path) {
			out = append(out, Request{Method: rr.method, Path: rr.path, Query: rr.query, Header: rr.header})
		}
	}
	return out
}

// SessionInfo describes a session for tests.
type SessionInfo struct {
	ID               string
	Sandbox          string
	Status           string
	BackendID        string // the backend sandbox's ID ("" before it started)
	SourceSnapshotID string
	Timeout          time.Duration
	Commands         int
}

// Sessions lists every session the server knows (stopped ones included), oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	all := slices.Collect(maps.Values(s.sessions.all))
	sortByCreation(all, false)
	out := make([]SessionInfo, 0, len(all))
	for _, ss := range all {
		info := SessionInfo{
			ID: ss.id, Sandbox: ss.sb.name, Status: ss.status, SourceSnapshotID: ss.sourceSnapshotID,
			Timeout: time.Duration(ss.timeout) * time.Millisecond, Commands: len(ss.order),
		}
		if ss.backend != nil {
			info.BackendID = ss.backend.ID()
		}
		out = append(out, info)
	}
	return out
}

// SnapshotInfo describes a snapshot for tests.
type SnapshotInfo struct {
	ID              string
	Sandbox         string
	SourceSessionID string
	Status          string // created or deleted
	CreationMethod  string // manual or automatic
	Ref             sandbox.SnapshotRef
	ExpiresAt       time.Time // zero: never
}

// Snapshots lists every snapshot the server knows (deleted ones included), oldest first.
func (s *Server) Snapshots() []SnapshotInfo {
	s.snapshots.mu.Lock()
	defer s.snapshots.mu.Unlock()
	s.expireSnapshotsLocked(time.Now())
	all := slices.Collect(maps.Values(s.snapshots.all))
	sortByCreation(all, false)
	out := make([]SnapshotInfo, 0, len(all))
	for _, sn := range all {
		info := SnapshotInfo{ID: sn.id, Sandbox: sn.sandboxName, SourceSessionID: sn.sourceSessionID,
			Status: sn.status, CreationMethod: sn.creationMethod, Ref: sn.ref}
		if e := sn.expiresAt(); e != 0 {
			info.ExpiresAt = time.UnixMilli(e)
		}
		out = append(out, info)
	}
	return out
}
