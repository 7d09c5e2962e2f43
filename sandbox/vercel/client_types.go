package vercel

import (
	"encoding/json"
	"time"
)

// Wire objects of the v2 API. Field names are the API's; timestamps are milliseconds since the
// epoch and durations milliseconds; fields the API may omit or send as null are pointers.

// Session is one VM run of a named sandbox (the API's "session"; a v1 "sandbox").
type Session struct {
	ID      string `json:"id"`
	Memory  int    `json:"memory"` // MB
	VCPUs   int    `json:"vcpus"`
	Region  string `json:"region"`
	Runtime string `json:"runtime,omitempty"`
	// Timeout is the total allowed run time in ms, extensions included.
	Timeout int64 `json:"timeout"`
	// Status is pending, running, stopping, stopped, failed, aborted or snapshotting.
	Status            string          `json:"status"`
	RequestedAt       int64           `json:"requestedAt"`
	StartedAt         *int64          `json:"startedAt,omitempty"`
	StoppedAt         *int64          `json:"stoppedAt,omitempty"`
	CreatedAt         int64           `json:"createdAt"`
	UpdatedAt         int64           `json:"updatedAt"`
	Cwd               string          `json:"cwd"`
	SourceSnapshotID  string          `json:"sourceSnapshotId,omitempty"`
	SourceSandboxName string          `json:"sourceSandboxName,omitempty"`
	NetworkPolicy     *PolicyResponse `json:"networkPolicy,omitempty"`
}

// deadline is when the session ends itself: (startedAt, or createdAt when absent) + timeout.
func (s Session) deadline() time.Time {
	start := s.CreatedAt
	if s.StartedAt != nil {
		start = *s.StartedAt
	}
	return time.UnixMilli(start + s.Timeout)
}

// running reports whether the session is running or still starting (status "running" or
// "pending").
func (s Session) running() bool { return s.Status == "running" || s.Status == "pending" }

// NamedSandbox is the durable, named sandbox whose sessions are VM runs.
type NamedSandbox struct {
	Name       string `json:"name"`
	Persistent bool   `json:"persistent"`
	// Status mirrors the status of the current session.
	Status            string            `json:"status"`
	CurrentSessionID  string            `json:"currentSessionId"`
	CurrentSnapshotID string            `json:"currentSnapshotId,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	CreatedAt         int64             `json:"createdAt"`
}

// Route is the public URL of one exposed port: https://<subdomain>.vercel.run.
type Route struct {
	URL       string `json:"url"`
	Subdomain string `json:"subdomain"`
	Port      int    `json:"port"`
}

// sandboxAndSession is the answer of create and of the named-sandbox GET.
type sandboxAndSession struct {
	Sandbox NamedSandbox `json:"sandbox"`
	Session Session      `json:"session"`
	Routes  []Route      `json:"routes"`
}

// command is a command of a session. ExitCode is nil while it runs.
type command struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"` // the executable as sent
	Args       []string `json:"args"`
	Cwd        string   `json:"cwd"`
	SessionID  string   `json:"sessionId"`
	ExitCode   *int     `json:"exitCode"`
	DurationMs *int64   `json:"durationMs,omitempty"`
	StartedAt  int64    `json:"startedAt"`
}

// snapshot is a saved disk of a session. Status is created, deleted or failed; ExpiresAt is
// absent for a snapshot that never expires.
type snapshot struct {
	ID              string `json:"id"`
	SourceSessionID string `json:"sourceSessionId"`
	Region          string `json:"region"`
	Status          string `json:"status"`
	SizeBytes       int64  `json:"sizeBytes"`
	ExpiresAt       *int64 `json:"expiresAt,omitempty"`
	CreatedAt       int64  `json:"createdAt"`
	UpdatedAt       int64  `json:"updatedAt"`
	// CreationMethod is "manual" or "automatic" (made when a persistent sandbox stopped).
	CreationMethod string `json:"creationMethod,omitempty"`
}

// wirePagination is the v2 cursor object; Next is null (or absent) on the last page.
type wirePagination struct {
	Count int             `json:"count"`
	Next  json.RawMessage `json:"next"`
}

// nextCursor returns the cursor for the next page, or "" on the last page. The v2 API sends a
// string; a number is accepted as its literal text.
func (p wirePagination) nextCursor() string {
	if len(p.Next) == 0 || string(p.Next) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(p.Next, &s) == nil {
		return s
	}
	return string(p.Next)
}
