package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestClientCreateBodies(t *testing.T) {
	cases := []struct {
		name     string
		req      createRequest
		path     string
		want     map[string]any // keys that must be present with these values
		wantGone []string       // keys that must be absent
	}{
		{
			name:     "fresh default image",
			req:      createRequest{Name: "box-1"},
			path:     "/api/v3/sandboxes",
			want:     map[string]any{"projectId": ctProject, "name": "box-1", "ports": []any{}, "persistent": false},
			wantGone: []string{"runtime", "source", "timeout", "resources", "networkPolicy", "env", "tags", "image"},
		},
		{
			name: "legacy runtime",
			req:  createRequest{Name: "box-2", Runtime: "node24", Ports: []int{3000, 8080}, Timeout: 10 * time.Minute, VCPUs: 4},
			path: "/api/v2/sandboxes",
			want: map[string]any{
				"runtime": "node24", "ports": []any{3000.0, 8080.0}, "timeout": 600000.0,
				"resources": map[string]any{"vcpus": 4.0}, "persistent": false,
			},
			wantGone: []string{"source"},
		},
		{
			name: "from a snapshot never sends the runtime",
			req: createRequest{Name: "box-3", SnapshotID: "snap_9", Runtime: "node24",
				Env: map[string]string{"A": "1"}, Tags: map[string]string{"owner": "sandkit"},
				NetworkPolicy: &networkPolicy{Mode: "deny-all"}},
			path: "/api/v3/sandboxes",
			want: map[string]any{
				"source":        map[string]any{"type": "snapshot", "snapshotId": "snap_9"},
				"env":           map[string]any{"A": "1"},
				"tags":          map[string]any{"owner": "sandkit"},
				"networkPolicy": map[string]any{"mode": "deny-all"},
				"persistent":    false,
				"ports":         []any{},
			},
			wantGone: []string{"runtime", "image"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("POST", tc.path, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				ctJSON(w, 200, ctSandboxJSON(tc.req.Name, "running"))
			})
			c, _ := ctClient(t, s, nil)
			got, err := c.createSandbox(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got.Sandbox.Name != tc.req.Name || got.Session.ID != ctSession || len(got.Routes) != 1 || got.Routes[0].Port != 3000 {
				t.Errorf("Create = %+v", got)
			}
			reqs := s.requests("POST", tc.path)
			if len(reqs) != 1 {
				t.Fatalf("server saw %d POSTs to %s", len(reqs), tc.path)
			}
			body := ctBody(t, reqs[0].Body)
			for k, v := range tc.want {
				if !reflect.DeepEqual(body[k], v) {
					t.Errorf("body[%q] = %#v, want %#v", k, body[k], v)
				}
			}
			for _, k := range tc.wantGone {
				if _, ok := body[k]; ok {
					t.Errorf("body has %q: %s", k, reqs[0].Body)
				}
			}
		})
	}
}

func TestClientCreateRequiresName(t *testing.T) {
	s := ctNewServer(t)
	c, _ := ctClient(t, s, nil)
	_, err := c.createSandbox(context.Background(), createRequest{})
	if !errors.Is(err, sandbox.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := s.count("", ""); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestClientCreateRecovery(t *testing.T) {
	t.Run("5xx then the sandbox exists: one POST", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 502, "", "bad gateway") })
		s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
		})
		c, _ := ctClient(t, s, nil)
		got, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if got.Sandbox.Name != "box-1" || got.Session.Status != "running" {
			t.Errorf("Create = %+v", got)
		}
		if n := s.count("POST", ""); n != 1 {
			t.Errorf("server saw %d POSTs, want 1", n)
		}
		if r := s.requests("GET", "/api/v2/sandboxes/box-1"); len(r) != 1 || r[0].Query != "teamId=team_1&projectId=prj_1" {
			t.Errorf("GET by name: %+v", r)
		}
	})
	t.Run("connection cut after sending, then the sandbox exists: one POST", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("POST", "/api/v3/sandboxes", func(http.ResponseWriter, *http.Request, []byte) { ctCut() })
		s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
		})
		c, _ := ctClient(t, s, nil)
		if _, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if n := s.count("POST", ""); n != 1 {
			t.Errorf("server saw %d POSTs, want 1", n)
		}
	})
	t.Run("5xx then 404: POSTed again", func(t *testing.T) {
		s := ctNewServer(t)
		var posts atomic.Int32
		s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			if posts.Add(1) == 1 {
				ctErr(w, 503, "", "try later")
				return
			}
			ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
		})
		s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctErr(w, 404, "not_found", "Named sandbox 'box-1' not found for this project.")
		})
		c, sl := ctClient(t, s, nil)
		if _, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if posts.Load() != 2 || s.count("GET", "") != 1 || len(sl.all()) != 1 {
			t.Errorf("POSTs %d, GETs %d, sleeps %v; want 2, 1, one", posts.Load(), s.count("GET", ""), sl.all())
		}
	})
	t.Run("always 5xx and 404: gives up after the retries", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 500, "", "boom") })
		s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 404, "not_found", "no") })
		c, _ := ctClient(t, s, nil)
		_, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != 500 {
			t.Fatalf("err = %v, want the 500", err)
		}
		if n := s.count("POST", ""); n != 3 {
			t.Errorf("server saw %d POSTs, want 3", n)
		}
	})
	t.Run("5xx and the lookup fails: not POSTed again", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 500, "", "boom") })
		s.handle("GET", "/api/v2/sandboxes/box-1", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 403, "forbidden", "no") })
		c, _ := ctClient(t, s, nil)
		_, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"})
		if err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Fatalf("err = %v", err)
		}
		if n := s.count("POST", ""); n != 1 {
			t.Errorf("server saw %d POSTs, want 1", n)
		}
	})
	t.Run("4xx is returned without a lookup", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctErr(w, 410, "snapshot_not_found", "Snapshot expired")
		})
		c, _ := ctClient(t, s, nil)
		_, err := c.createSandbox(context.Background(), createRequest{Name: "box-1", SnapshotID: "snap_x"})
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if n := s.count("", ""); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
}

func TestClientCreatePollsPendingSession(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, ctSandboxJSON("box-1", "pending"))
	})
	var gets atomic.Int32
	s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		status := "pending"
		if gets.Add(1) >= 2 {
			status = "running"
		}
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, status), "routes": []any{}})
	})
	c, sl := ctClient(t, s, nil)
	got, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Session.Status != "running" || len(got.Routes) != 1 {
		t.Errorf("Create = %+v", got)
	}
	if d := sl.all(); !reflect.DeepEqual(d, []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}) {
		t.Errorf("sleeps = %v, want two polls of 250ms", d)
	}
}

func TestClientCreateFailedSessionIsAnError(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, ctSandboxJSON("box-1", "failed"))
	})
	c, _ := ctClient(t, s, nil)
	if _, err := c.createSandbox(context.Background(), createRequest{Name: "box-1"}); !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("err = %v, want ErrEnded", err)
	}
}

func TestClientListPagination(t *testing.T) {
	s := ctNewServer(t)
	pages := map[string]string{ // cursor -> next
		"":   "c1",
		"c1": "c2",
		"c2": "",
	}
	page := func(w http.ResponseWriter, r *http.Request, key string) {
		cur := r.URL.Query().Get("cursor")
		next, ok := pages[cur]
		if !ok {
			t.Errorf("unknown cursor %q", cur)
		}
		var nextJSON any
		if next != "" {
			nextJSON = next
		}
		items := []any{}
		switch key {
		case "sandboxes":
			items = append(items, map[string]any{"name": "box-" + cur, "status": "running", "currentSessionId": "sbx_" + cur})
		default:
			items = append(items, map[string]any{"id": "snap_" + cur, "status": "created"})
		}
		ctJSON(w, 200, map[string]any{key: items, "pagination": map[string]any{"count": 1, "next": nextJSON}})
	}
	s.handle("GET", "/api/v2/sandboxes", func(w http.ResponseWriter, r *http.Request, _ []byte) { page(w, r, "sandboxes") })
	s.handle("GET", "/api/v2/sandboxes/snapshots", func(w http.ResponseWriter, r *http.Request, _ []byte) { page(w, r, "snapshots") })
	c, _ := ctClient(t, s, nil)

	boxes, err := c.ListSandboxes(context.Background(), "", "")
	if err != nil {
		t.Fatalf("ListSandboxes: %v", err)
	}
	var names []string
	for _, b := range boxes {
		names = append(names, b.Name)
	}
	if !reflect.DeepEqual(names, []string{"box-", "box-c1", "box-c2"}) {
		t.Errorf("names = %v", names)
	}
	var queries []string
	for _, r := range s.requests("GET", "/api/v2/sandboxes") {
		queries = append(queries, r.Query)
	}
	want := []string{"teamId=team_1&project=prj_1", "teamId=team_1&project=prj_1&cursor=c1", "teamId=team_1&project=prj_1&cursor=c2"}
	if !reflect.DeepEqual(queries, want) {
		t.Errorf("queries = %q, want %q", queries, want)
	}

	snaps, err := c.listSnapshots(context.Background(), "")
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	if len(snaps) != 3 || snaps[2].ID != "snap_c2" {
		t.Errorf("snapshots = %+v", snaps)
	}
	if r := s.requests("GET", "/api/v2/sandboxes/snapshots"); len(r) != 3 || r[2].Query != "teamId=team_1&project=prj_1&cursor=c2" {
		t.Errorf("snapshot list requests = %+v", r)
	}
}

func TestClientListPaginationRepeatedCursor(t *testing.T) {
	s := ctNewServer(t)
	s.handle("GET", "/api/v2/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"sandboxes": []any{}, "pagination": map[string]any{"count": 0, "next": "same"}})
	})
	c, _ := ctClient(t, s, nil)
	if _, err := c.ListSandboxes(context.Background(), "", ""); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v, want a repeated-cursor error", err)
	}
	if n := s.count("", ""); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestClientSnapshotBodies(t *testing.T) {
	never := time.Duration(0)
	week := 7 * 24 * time.Hour
	cases := []struct {
		name string
		exp  *time.Duration
		want string
	}{
		{"no expiration sends no body", nil, ""},
		{"zero means never", &never, `{"expiration":0}`},
		{"a week", &week, `{"expiration":604800000}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("POST", "/api/v2/sandboxes/sessions/"+ctSession+"/snapshot", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				// v1 answers 201; any 2xx is fine.
				ctJSON(w, 201, map[string]any{
					"snapshot": map[string]any{"id": "snap_1", "sourceSessionId": ctSession, "status": "created", "creationMethod": "manual", "sizeBytes": 42},
					"session":  ctSessionJSON(ctSession, "stopped"),
				})
			})
			c, _ := ctClient(t, s, nil)
			snap, sess, err := c.snapshot(context.Background(), ctSession, tc.exp)
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if snap.ID != "snap_1" || snap.SizeBytes != 42 || sess.Status != "stopped" {
				t.Errorf("Snapshot = %+v, %+v", snap, sess)
			}
			r := s.requests("POST", "")
			if string(r[0].Body) != tc.want {
				t.Errorf("body = %q, want %q", r[0].Body, tc.want)
			}
			if ct := r[0].Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type = %q", ct)
			}
		})
	}
}

func TestClientSessionCalls(t *testing.T) {
	s := ctNewServer(t)
	sess := "/api/v2/sandboxes/sessions/" + ctSession
	s.handle("POST", sess+"/stop", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctErr(w, 410, "sandbox_stopped", "Sandbox has stopped")
	})
	s.handle("POST", sess+"/extend-timeout", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running")})
	})
	s.handle("DELETE", "/api/v2/sandboxes/gone", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctErr(w, 404, "not_found", "Named sandbox 'gone' not found for this project.")
	})
	c, _ := ctClient(t, s, nil)
	ctx := context.Background()

	_, err := c.stopSession(ctx, ctSession)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 410 || !errors.Is(err, sandbox.ErrEnded) {
		t.Errorf("StopSession of a stopped session: %v, want the 410", err)
	}
	if err := c.deleteSandbox(ctx, "gone"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("DeleteSandbox of an unknown name: %v, want ErrNotFound", err)
	}
	got, err := c.extendTimeout(ctx, ctSession, 90*time.Second)
	if err != nil {
		t.Fatalf("ExtendTimeout: %v", err)
	}
	if want := time.UnixMilli(2000 + 300000); !got.deadline().Equal(want) || !got.running() {
		t.Errorf("deadline %v running %v", got.deadline(), got.running())
	}
	if b := s.requests("POST", sess+"/extend-timeout")[0].Body; string(b) != `{"duration":90000}` {
		t.Errorf("extend body = %s", b)
	}
}

func TestSessionDeadline(t *testing.T) {
	started := int64(5000)
	cases := []struct {
		s    Session
		want int64
	}{
		{Session{CreatedAt: 1000, Timeout: 60000}, 61000},
		{Session{CreatedAt: 1000, StartedAt: &started, Timeout: 60000}, 65000},
	}
	for _, tc := range cases {
		if got := tc.s.deadline(); got.UnixMilli() != tc.want {
			t.Errorf("Deadline(%+v) = %d, want %d", tc.s, got.UnixMilli(), tc.want)
		}
	}
	for status, want := range map[string]bool{"running": true, "pending": true, "stopping": false, "stopped": false, "snapshotting": false} {
		if got := (Session{Status: status}).running(); got != want {
			t.Errorf("Running(%s) = %v", status, got)
		}
	}
}

func TestWireObjectsDecode(t *testing.T) {
	// Nullable and optional fields of the reference's shapes.
	raw := `{"sandbox":{"name":"b","persistent":false,"status":"running","currentSessionId":"sbx_1","createdAt":1,"tags":{"k":"v"}},
	"session":{"id":"sbx_1","memory":2048,"vcpus":1,"region":"iad1","timeout":300000,"status":"running","requestedAt":1,
	"createdAt":1,"updatedAt":2,"cwd":"/vercel/sandbox","sourceSnapshotId":"snap_1","sourceSandboxName":"b",
	"networkPolicy":{"mode":"custom","allowedDomains":["github.com"],"injectionRules":[{"domain":"api.github.com","headerNames":["authorization"]}]}},
	"routes":[{"url":"https://sb-x.vercel.run","subdomain":"sb-x","port":3000}]}`
	var got sandboxAndSession
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	p := got.Session.NetworkPolicy
	if p == nil || p.Mode != "custom" || len(p.InjectionRules) != 1 || p.InjectionRules[0].HeaderNames[0] != "authorization" {
		t.Errorf("policy = %+v", p)
	}
	if got.Session.StartedAt != nil || got.Session.SourceSnapshotID != "snap_1" || got.Sandbox.Tags["k"] != "v" {
		t.Errorf("decoded %+v", got)
	}
}
