package vercelfake

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestTimeout: the session's timeout really ends it at (startedAt + timeout), extensions
// included: commands waiting on it get 410, its backend sandbox is gone, a persistent sandbox
// got its automatic snapshot. extend-timeout adds to the timeout, and refuses to pass the plan
// maximum with 400 sandbox_timeout_invalid.
func TestTimeout(t *testing.T) {
	a := newAPI(t, Options{MaxTimeout: 10 * time.Second})
	a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "timeout": 20_000}, 400, "sandbox_timeout_invalid")

	created := a.create(map[string]any{"name": "short", "timeout": 1500})
	sid := created.Session.ID
	if *created.Session.Timeout != 1500 || created.Sandbox.ExpiresAt != created.Session.StartedAt+1500 {
		t.Fatalf("created %+v", created)
	}
	ext := "/v2/sandboxes/sessions/" + sid + "/extend-timeout"
	a.wantError("POST", ext, map[string]any{"duration": 9000}, 400, "sandbox_timeout_invalid")
	a.wantError("POST", ext, map[string]any{"duration": 999}, 400, "bad_request")
	a.wantError("POST", ext, map[string]any{}, 400, "bad_request")
	var extended struct{ Session tSession }
	a.call("POST", ext, map[string]any{"duration": 1000}, 200, &extended)
	if *extended.Session.Timeout != 2500 {
		t.Fatalf("extended timeout %d, want 2500", *extended.Session.Timeout)
	}
	deadline := time.UnixMilli(extended.Session.StartedAt + 2500)

	var backendID string
	for _, s := range a.fake.Sessions() {
		if s.ID == sid {
			backendID = s.BackendID
		}
	}
	if ids, _ := a.backend.Sandboxes(t.Context()); !slices.Contains(ids, backendID) {
		t.Fatalf("backend sandbox %q not live: %v", backendID, ids)
	}

	// A detached command waited on: the wait ends when the session times out.
	var started struct{ Command tCommand }
	a.call("POST", "/v2/sandboxes/sessions/"+sid+"/cmd", map[string]any{"command": "sleep", "args": []string{"60"}}, 200, &started)
	a.wantError("GET", "/v2/sandboxes/sessions/"+sid+"/cmd/"+started.Command.ID+"?wait=true", nil, http.StatusGone, "sandbox_stopped")
	if now := time.Now(); now.Before(deadline) {
		t.Fatalf("the session ended at %v, before its deadline %v", now, deadline)
	}
	var got struct{ Session tSession }
	a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 200, &got)
	if got.Session.Status != "stopped" || got.Session.StoppedAt < deadline.UnixMilli() {
		t.Fatalf("after the deadline %+v", got.Session)
	}
	if ids, _ := a.backend.Sandboxes(t.Context()); slices.Contains(ids, backendID) {
		t.Fatalf("backend sandbox %s still live after the timeout", backendID)
	}
	var named tSandboxAndSession
	a.call("GET", "/v2/sandboxes/short?projectId="+testProject, nil, 200, &named)
	if named.Sandbox.CurrentSnapshotID == "" {
		t.Fatal("a persistent sandbox that timed out has no automatic snapshot")
	}
	a.wantError("POST", ext, map[string]any{"duration": 1000}, 410, "sandbox_stopped")
}
