package vercelfake

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRoutes: each port gets a route {url, subdomain, port}; the URL really serves the HTTP
// server listening on that port inside the VM (a python3 http.server here); a port nothing
// listens on answers 502; PATCH ports changes the routes of the running session at once; the
// listeners close when the session stops, and the traffic shows in networkTransfer.
func TestRoutes(t *testing.T) {
	a := newAPI(t, Options{})
	created := a.create(map[string]any{"name": "web", "persistent": false, "ports": []int{8123, 8124}})
	sid := created.Session.ID
	if len(created.Routes) != 2 {
		t.Fatalf("routes %+v", created.Routes)
	}
	sub := regexp.MustCompile(`^sb-[a-z0-9]{12}$`)
	for i, r := range created.Routes {
		if r.Port != []int{8123, 8124}[i] || !sub.MatchString(r.Subdomain) || !strings.HasPrefix(r.URL, "http://127.0.0.1:") {
			t.Fatalf("route %+v", r)
		}
	}
	web, idle := created.Routes[0], created.Routes[1]

	a.sh(sid, "mkdir -p site && echo 'served from the sandbox' > site/index.txt")
	var server struct{ Command tCommand }
	a.call("POST", "/v2/sandboxes/sessions/"+sid+"/cmd", map[string]any{
		"command": "python3", "args": []string{"-m", "http.server", "8123", "--bind", "127.0.0.1", "--directory", "site"},
		"env": map[string]string{"PYTHONUNBUFFERED": "1"},
	}, 200, &server)
	// The server says when it listens.
	logs := a.stream("GET", "/v2/sandboxes/sessions/"+sid+"/cmd/"+server.Command.ID+"/logs", nil)
	for seen := ""; !strings.Contains(seen, "Serving HTTP"); {
		m, err := logs.next()
		if err != nil {
			t.Fatalf("python3 http.server never said it serves (output %q): %v", seen, err)
		}
		var d string
		_ = json.Unmarshal(m["data"], &d)
		seen += d
	}
	status, body := httpGet(t, web.URL+"/index.txt")
	if status != 200 || body != "served from the sandbox\n" {
		t.Fatalf("route GET: %d %q", status, body)
	}
	if status, _ := httpGet(t, idle.URL+"/"); status != http.StatusBadGateway {
		t.Fatalf("a port nothing listens on answered %d, want 502", status)
	}

	// PATCH ports: 8124 goes, 8125 comes; the subdomain of a kept port does not change.
	var patched struct {
		Sandbox tSandbox
		Routes  []tRoute
	}
	a.call("PATCH", "/v2/sandboxes/web?projectId="+testProject, map[string]any{"ports": []int{8123, 8125}}, 200, &patched)
	if len(patched.Routes) != 2 || patched.Routes[0] != web || patched.Routes[1].Port != 8125 {
		t.Fatalf("patched routes %+v (was %+v)", patched.Routes, web)
	}
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(idle.URL + "/"); err == nil {
		t.Fatal("the route of a removed port still answers")
	}

	var stopped struct{ Session tSession }
	a.call("POST", "/v2/sandboxes/sessions/"+sid+"/stop", nil, 200, &stopped)
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(web.URL + "/index.txt"); err == nil {
		t.Fatal("the route still answers after the session stopped")
	}
	if tr := stopped.Session.NetworkTransfer; tr == nil || tr.Ingress == 0 || tr.Egress == 0 {
		t.Fatalf("networkTransfer %+v after proxied requests", tr)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestSandboxes: listing with filters and pagination, sessions of a sandbox, PATCH, fork, and
// DELETE (which stops the session and frees the name, optionally deleting orphan snapshots).
func TestSandboxes(t *testing.T) {
	a := newAPI(t, Options{})
	for _, n := range []struct{ name, env string }{{"alpha", "prod"}, {"beta", "dev"}, {"gamma", "prod"}} {
		a.create(map[string]any{"name": n.name, "persistent": true, "tags": map[string]string{"env": n.env}})
	}
	type listing struct {
		Sandboxes  []tSandbox
		Pagination struct {
			Count int
			Next  *string
		}
	}
	names := func(l listing) string {
		var out []string
		for _, s := range l.Sandboxes {
			out = append(out, s.Name)
		}
		return strings.Join(out, ",")
	}
	var l listing
	a.call("GET", "/v2/sandboxes?project="+testProject+"&tags=env:prod&sortBy=name&sortOrder=asc", nil, 200, &l)
	if names(l) != "alpha,gamma" {
		t.Fatalf("tags=env:prod: %s", names(l))
	}
	a.call("GET", "/v2/sandboxes?project="+testProject+"&sortBy=name&sortOrder=asc&limit=2", nil, 200, &l)
	if names(l) != "alpha,beta" || l.Pagination.Count != 2 || l.Pagination.Next == nil {
		t.Fatalf("page 1: %s %+v", names(l), l.Pagination)
	}
	a.call("GET", "/v2/sandboxes?project="+testProject+"&sortBy=name&sortOrder=asc&limit=2&cursor="+*l.Pagination.Next, nil, 200, &l)
	if names(l) != "gamma" || l.Pagination.Next != nil {
		t.Fatalf("page 2: %s %+v", names(l), l.Pagination)
	}
	a.call("GET", "/v2/sandboxes?project="+testProject+"&sortBy=name&namePrefix=g", nil, 200, &l)
	if names(l) != "gamma" {
		t.Fatalf("namePrefix: %s", names(l))
	}
	a.wantError("GET", "/v2/sandboxes?project="+testProject+"&namePrefix=g", nil, 400, "bad_request")
	a.wantError("GET", "/v2/sandboxes?project="+testProject+"&tags=a:1&tags=b:2", nil, 400, "bad_request")

	// Stop beta: a status filter sees it, and its automatic snapshot.
	var beta tSandboxAndSession
	a.call("GET", "/v2/sandboxes/beta?projectId="+testProject, nil, 200, &beta)
	a.call("POST", "/v2/sandboxes/sessions/"+beta.Session.ID+"/stop", nil, 200, nil)
	a.call("GET", "/v2/sandboxes?project="+testProject+"&status=stopped", nil, 200, &l)
	if names(l) != "beta" {
		t.Fatalf("status=stopped: %s", names(l))
	}
	a.call("GET", "/v2/sandboxes?project="+testProject+"&status=running&sortOrder=asc", nil, 200, &l)
	if names(l) != "alpha,gamma" {
		t.Fatalf("status=running: %s", names(l))
	}

	// Sessions of a sandbox, newest first, across a resume.
	var resumed tSandboxAndSession
	a.call("GET", "/v2/sandboxes/beta?projectId="+testProject+"&resume=true", nil, 200, &resumed)
	var sessions struct{ Sessions []tSession }
	a.call("GET", "/v2/sandboxes/sessions?project="+testProject+"&name=beta", nil, 200, &sessions)
	if len(sessions.Sessions) != 2 || sessions.Sessions[0].ID != resumed.Session.ID || sessions.Sessions[1].ID != beta.Session.ID {
		t.Fatalf("sessions of beta %+v", sessions.Sessions)
	}

	// PATCH changes the configuration (for the next sessions); a bad value changes nothing.
	var patched struct{ Sandbox tSandbox }
	a.call("PATCH", "/v2/sandboxes/alpha?projectId="+testProject, map[string]any{"persistent": false, "tags": map[string]string{"env": "staging"}, "timeout": 600_000}, 200, &patched)
	if *patched.Sandbox.Persistent || patched.Sandbox.Tags["env"] != "staging" {
		t.Fatalf("patched %+v", patched.Sandbox)
	}
	a.wantError("PATCH", "/v2/sandboxes/alpha?projectId="+testProject, map[string]any{"tags": map[string]string{"env": "x"}, "resources": map[string]any{"vcpus": 5}}, 400, "bad_request")
	a.call("GET", "/v2/sandboxes/alpha?projectId="+testProject, nil, 200, &resumed)
	if resumed.Sandbox.Tags["env"] != "staging" {
		t.Fatalf("a failed PATCH changed the tags: %+v", resumed.Sandbox.Tags)
	}

	// Fork beta (running its resumed session): the fork restores beta's current snapshot.
	a.sh(resumed.Session.ID, "true")
	a.call("GET", "/v2/sandboxes/beta?projectId="+testProject, nil, 200, &beta)
	var fork tSandboxAndSession
	a.call("POST", "/v2/sandboxes/beta/fork?projectId="+testProject, map[string]any{"name": "beta-fork", "persistent": false}, 200, &fork)
	if fork.Session.SourceSnapshotID != beta.Sandbox.CurrentSnapshotID || fork.Sandbox.Tags["env"] != "dev" || *fork.Sandbox.Persistent {
		t.Fatalf("fork %+v (beta's snapshot %s)", fork, beta.Sandbox.CurrentSnapshotID)
	}

	// DELETE stops the session and frees the name; orphan snapshots go with it when asked.
	snapID := beta.Sandbox.CurrentSnapshotID
	var deleted struct{ Sandbox tSandbox }
	a.call("DELETE", "/v2/sandboxes/gamma?projectId="+testProject, nil, 200, &deleted)
	if deleted.Sandbox.Status != "stopped" {
		t.Fatalf("deleted %+v", deleted.Sandbox)
	}
	a.wantError("GET", "/v2/sandboxes/gamma?projectId="+testProject, nil, 404, "not_found")
	a.create(map[string]any{"name": "gamma", "persistent": false}) // the name is free again
	a.call("DELETE", "/v2/sandboxes/beta?projectId="+testProject+"&deleteOrphanSnapshots=true", nil, 200, nil)
	var snap struct{ Snapshot tSnapshot }
	a.call("GET", "/v2/sandboxes/snapshots/"+snapID, nil, 200, &snap)
	if snap.Snapshot.Status != "created" {
		t.Fatalf("beta's snapshot, still the current snapshot of beta-fork: %+v", snap.Snapshot)
	}
	delta := a.create(map[string]any{"name": "delta"})
	var stopped struct{ Snapshot *tSnapshot }
	a.call("POST", "/v2/sandboxes/sessions/"+delta.Session.ID+"/stop", nil, 200, &stopped)
	a.call("DELETE", "/v2/sandboxes/delta?projectId="+testProject+"&deleteOrphanSnapshots=true", nil, 200, nil)
	a.call("GET", "/v2/sandboxes/snapshots/"+stopped.Snapshot.ID, nil, 200, &snap)
	if snap.Snapshot.Status != "deleted" {
		t.Fatalf("delta's orphan snapshot %+v", snap.Snapshot)
	}
}
