package vercelfake

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const dayMs = int64(24 * time.Hour / time.Millisecond)

// TestSnapshots: a snapshot stops the session (unlike the official mock), answers 422
// sandbox_snapshotting while it runs, then 410 sandbox_stopped; the snapshot's expiry comes
// from the request, the sandbox default, or 30 days (7 on the v3 path); the named sandbox's
// currentSnapshotId moves; sessions created or resumed from it see its files; an expired or
// deleted snapshot answers 410 snapshot_not_found; stopping a persistent sandbox takes an
// automatic snapshot.
func TestSnapshots(t *testing.T) {
	const delay = 700 * time.Millisecond
	a := newAPI(t, Options{SnapshotDelay: delay})
	first := a.create(map[string]any{"name": "snappy", "persistent": false})
	sid := first.Session.ID
	a.sh(sid, "echo snapshotted > data.txt")

	// Snapshot #1, observed while it runs.
	var snap1 struct {
		Snapshot tSnapshot
		Session  tSession
	}
	var wg sync.WaitGroup
	wg.Add(1)
	began := time.Now()
	var took time.Duration
	var status int
	var body []byte
	var err error
	go func() {
		defer wg.Done()
		status, body, err = a.callAsync("POST", "/v2/sandboxes/sessions/"+sid+"/snapshot", fmt.Sprintf(`{"expiration":%d}`, 2*dayMs))
		took = time.Since(began)
	}()
	a.waitStatus(sid, "snapshotting")
	a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/cmd", map[string]any{"command": "true"}, 422, "sandbox_snapshotting")
	a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/snapshot", nil, 422, "sandbox_snapshotting")
	a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/fs/read", map[string]any{"path": "data.txt"}, 422, "sandbox_snapshotting")
	wg.Wait()
	if err != nil || status != 200 {
		t.Fatalf("snapshot: %d %s %v", status, body, err)
	}
	if err := json.Unmarshal(body, &snap1); err != nil {
		t.Fatal(err)
	}
	if took < delay {
		t.Fatalf("the snapshot took %v, less than SnapshotDelay %v", took, delay)
	}
	s1 := snap1.Snapshot
	if s1.Status != "created" || s1.CreationMethod != "manual" || s1.SourceSessionID != sid || s1.Region != "iad1" || s1.SizeBytes == nil {
		t.Fatalf("snapshot %+v", s1)
	}
	if s1.ExpiresAt != s1.CreatedAt+2*dayMs {
		t.Fatalf("expiresAt %d, want createdAt + 2 days (%d)", s1.ExpiresAt, s1.CreatedAt+2*dayMs)
	}
	if snap1.Session.Status != "stopped" || snap1.Session.SnapshottedAt == 0 {
		t.Fatalf("session after the snapshot %+v", snap1.Session)
	}
	a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/cmd", map[string]any{"command": "true"}, 410, "sandbox_stopped")
	var named tSandboxAndSession
	a.call("GET", "/v2/sandboxes/snappy?projectId="+testProject, nil, 200, &named)
	if named.Sandbox.CurrentSnapshotID != s1.ID || named.Sandbox.Status != "stopped" || named.Session.ID != sid {
		t.Fatalf("named sandbox after the snapshot %+v", named)
	}

	// A new sandbox from snapshot #1 sees the file; snapshot #2 without a body: 30 days.
	restored := a.create(map[string]any{"name": "restored", "persistent": false, "source": map[string]any{"type": "snapshot", "snapshotId": s1.ID}})
	if restored.Session.SourceSnapshotID != s1.ID || restored.Sandbox.CurrentSnapshotID != s1.ID {
		t.Fatalf("restored %+v", restored)
	}
	if got := a.sh(restored.Session.ID, "cat data.txt").stdout; got != "snapshotted\n" {
		t.Fatalf("restored data.txt %q", got)
	}
	var snap2 struct{ Snapshot tSnapshot }
	a.call("POST", "/v2/sandboxes/sessions/"+restored.Session.ID+"/snapshot", nil, 200, &snap2)
	if s2 := snap2.Snapshot; s2.ExpiresAt != s2.CreatedAt+30*dayMs || s2.ParentID != s1.ID {
		t.Fatalf("snapshot #2 %+v: want 30 days and parent %s", s2, s1.ID)
	}

	// Resuming "snappy" starts a new session from its current snapshot; v3 snapshot: 7 days.
	var resumed tSandboxAndSession
	a.call("GET", "/v2/sandboxes/snappy?projectId="+testProject+"&resume=true", nil, 200, &resumed)
	if resumed.Resumed == nil || !*resumed.Resumed || resumed.Session.ID == sid || resumed.Session.Status != "running" || resumed.Session.SourceSnapshotID != s1.ID {
		t.Fatalf("resume %+v", resumed)
	}
	var again tSandboxAndSession // resuming a running sandbox starts nothing
	a.call("GET", "/v2/sandboxes/snappy?projectId="+testProject+"&resume=true", nil, 200, &again)
	if *again.Resumed || again.Session.ID != resumed.Session.ID {
		t.Fatalf("second resume %+v", again)
	}
	if got := a.sh(resumed.Session.ID, "cat data.txt").stdout; got != "snapshotted\n" {
		t.Fatalf("resumed data.txt %q", got)
	}
	var snap3 struct{ Snapshot tSnapshot }
	a.call("POST", "/v3/sandboxes/sessions/"+resumed.Session.ID+"/snapshot", nil, 200, &snap3)
	if s3 := snap3.Snapshot; s3.ExpiresAt != s3.CreatedAt+7*dayMs {
		t.Fatalf("v3 snapshot %+v: want 7 days", s3)
	}

	// Expiry and deletion.
	if err := a.fake.ExpireSnapshot(s1.ID); err != nil {
		t.Fatal(err)
	}
	a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "source": map[string]any{"type": "snapshot", "snapshotId": s1.ID}}, 410, "snapshot_not_found")
	var got struct{ Snapshot tSnapshot }
	a.call("GET", "/v2/sandboxes/snapshots/"+s1.ID, nil, 200, &got)
	if got.Snapshot.Status != "deleted" || got.Snapshot.ExpiresAt > time.Now().UnixMilli() {
		t.Fatalf("expired snapshot %+v", got.Snapshot)
	}
	a.call("DELETE", "/v2/sandboxes/snapshots/"+snap3.Snapshot.ID, nil, 200, &got)
	if got.Snapshot.Status != "deleted" {
		t.Fatalf("deleted snapshot %+v", got.Snapshot)
	}
	a.wantError("GET", "/v2/sandboxes/snappy?projectId="+testProject+"&resume=true", nil, 410, "snapshot_not_found")
	a.wantError("GET", "/v2/sandboxes/snapshots/snap_nope", nil, 404, "not_found")
	a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "source": map[string]any{"type": "snapshot", "snapshotId": "snap_nope"}}, 410, "snapshot_not_found")
	for _, info := range a.fake.Snapshots() {
		if info.ID == s1.ID && info.Status != "deleted" {
			t.Fatalf("Snapshots() shows %+v", info)
		}
	}

	// A persistent sandbox's stop takes an automatic snapshot that the next session resumes.
	keeper := a.create(map[string]any{"name": "keeper", "snapshotExpiration": 3 * dayMs})
	a.sh(keeper.Session.ID, "echo kept > kept.txt")
	var stopped struct {
		Session  tSession
		Sandbox  tSandbox
		Snapshot *tSnapshot
	}
	a.call("POST", "/v2/sandboxes/sessions/"+keeper.Session.ID+"/stop", nil, 200, &stopped)
	auto := stopped.Snapshot
	if auto == nil || auto.CreationMethod != "automatic" || auto.ExpiresAt != auto.CreatedAt+3*dayMs || stopped.Sandbox.CurrentSnapshotID != auto.ID || stopped.Session.Status != "stopped" {
		t.Fatalf("persistent stop %+v snapshot %+v", stopped, auto)
	}
	a.call("GET", "/v2/sandboxes/keeper?projectId="+testProject+"&resume=true", nil, 200, &resumed)
	if got := a.sh(resumed.Session.ID, "cat kept.txt").stdout; got != "kept\n" {
		t.Fatalf("after resume kept.txt %q", got)
	}
	var never struct{ Snapshot tSnapshot }
	raw := a.call("POST", "/v2/sandboxes/sessions/"+resumed.Session.ID+"/snapshot", map[string]any{"expiration": 0}, 200, &never)
	if never.Snapshot.ExpiresAt != 0 || strings.Contains(raw, "expiresAt") || never.Snapshot.ParentID != auto.ID {
		t.Fatalf("expiration 0 (never): %s", raw)
	}

	// Listing: by sandbox name, and paginated.
	var list struct {
		Snapshots  []tSnapshot
		Pagination struct {
			Count int
			Next  *string
		}
	}
	a.call("GET", "/v2/sandboxes/snapshots?project="+testProject+"&name=keeper", nil, 200, &list)
	if len(list.Snapshots) != 2 || list.Snapshots[0].ID != never.Snapshot.ID || list.Snapshots[1].ID != auto.ID || list.Pagination.Count != 2 || list.Pagination.Next != nil {
		t.Fatalf("list name=keeper %+v", list)
	}
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		q := "/v2/sandboxes/snapshots?project=" + testProject + "&limit=2"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		list.Pagination.Next = nil
		a.call("GET", q, nil, 200, &list)
		for _, s := range list.Snapshots {
			seen[s.ID] = true
		}
		if list.Pagination.Next == nil {
			break
		}
		cursor = *list.Pagination.Next
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paginated list saw %d snapshots, want 5", len(seen))
	}
}

// waitStatus polls GET session until the session reaches status (the API offers no signal).
func (a *api) waitStatus(sid, status string) {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct{ Session tSession }
		a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 200, &got)
		if got.Session.Status == status {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("session %s is %s, never %s", sid, got.Session.Status, status)
		}
		yieldBriefly()
	}
}
