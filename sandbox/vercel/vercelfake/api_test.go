package vercelfake

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestAuth: the bearer token, the team scope and the project are checked on every request,
// with the service's error bodies; paths work with and without "/api".
func TestAuth(t *testing.T) {
	a := newAPI(t, Options{})
	get := func(url string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	list := a.url + "/api/v2/sandboxes?project=" + testProject + "&teamId=" + testTeam
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	for _, tc := range []struct {
		name   string
		url    string
		hdr    map[string]string
		status int
		want   string
	}{
		{"no token", list, nil, 403, `"code":"forbidden"`},
		{"bad token", list, map[string]string{"Authorization": "Bearer nope"}, 403, `"invalidToken":true`},
		{"not a bearer", list, map[string]string{"Authorization": testToken}, 403, `"code":"forbidden"`},
		{"wrong team", strings.Replace(list, testTeam, "team_other", 1), bearer, 403, `team_other`},
		{"no team", a.url + "/api/v2/sandboxes?project=" + testProject, bearer, 403, `"code":"forbidden"`},
		{"team by slug", a.url + "/api/v2/sandboxes?project=" + testProject + "&slug=" + testTeam, bearer, 200, `"sandboxes":[]`},
		{"unknown project", strings.Replace(list, testProject, "prj_other", 1), bearer, 404, `Project not found`},
		{"project by name", strings.Replace(list, testProject, testProjNm, 1), bearer, 200, `"pagination"`},
		{"without /api", a.url + "/v2/sandboxes?project=" + testProject + "&teamId=" + testTeam, bearer, 200, `"sandboxes":[]`},
		{"unknown endpoint", a.url + "/api/v2/nothing?teamId=" + testTeam, bearer, 404, `"code":"not_found"`},
		{"unknown named sandbox", a.url + "/api/v2/sandboxes/ghost?projectId=" + testProject + "&teamId=" + testTeam, bearer, 404, `Named sandbox 'ghost' not found`},
		{"named sandbox, wrong project", a.url + "/api/v2/sandboxes/ghost?projectId=prj_other&teamId=" + testTeam, bearer, 404, `Project not found`},
		{"unknown session", a.url + "/api/v2/sandboxes/sessions/sbx_nope?teamId=" + testTeam, bearer, 404, `"code":"not_found"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(tc.url, tc.hdr)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d with %s", status, body, tc.status, tc.want)
			}
		})
	}
	a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": "prj_other"}, 404, "not_found")
	a.wantError("POST", "/v3/sandboxes", map[string]any{}, 400, "bad_request")
}

// TestCreateValidation: create validates its body before starting anything, in the service's
// message style; names are unique per project (409 conflict).
func TestCreateValidation(t *testing.T) {
	a := newAPI(t, Options{})
	ports16 := make([]int, 16)
	for i := range ports16 {
		ports16[i] = 3000 + i
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		path string
		want string
	}{
		{"too many ports", map[string]any{"ports": ports16}, "", "Invalid request: `ports` should NOT have more than 15 items."},
		{"port below 1024", map[string]any{"ports": []int{80}}, "", "`ports[0]` should be >= 1024"},
		{"port not an integer", map[string]any{"ports": []any{3000.5}}, "", "`ports` should be"},
		{"odd vcpus", map[string]any{"resources": map[string]any{"vcpus": 3}}, "", "`resources.vcpus` must be 1 or an even number"},
		{"memory not 2048 per vcpu", map[string]any{"resources": map[string]any{"vcpus": 2, "memory": 1024}}, "", "`resources.memory` must be 4096"},
		{"six tags", map[string]any{"tags": map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}}, "", "`tags` should NOT have more than 5"},
		{"unknown property", map[string]any{"bogus": true}, "", "should NOT have additional property `bogus`"},
		{"bad name", map[string]any{"name": "no spaces please"}, "", "`name` must be"},
		{"unknown runtime", map[string]any{"runtime": "node18"}, "/v2/sandboxes", "`runtime`"},
		{"image on v2", map[string]any{"image": "vercel/sandbox/universal"}, "/v2/sandboxes", "additional property `image`"},
		{"runtime with a snapshot source", map[string]any{"runtime": "node24", "source": map[string]any{"type": "snapshot", "snapshotId": "snap_x"}}, "/v2/sandboxes", "cannot be combined"},
		{"git source", map[string]any{"source": map[string]any{"type": "git", "url": "https://github.com/o/r.git"}}, "", "not supported"},
		{"failover includes the region", map[string]any{"region": "iad1", "failoverRegions": []string{"sfo1", "iad1"}}, "", "failoverRegions must not include the sandbox region: iad1"},
		{"short snapshot expiration", map[string]any{"snapshotExpiration": 60_000}, "", "`snapshotExpiration`"},
		{"keepLastSnapshots count", map[string]any{"keepLastSnapshots": map[string]any{"count": 11}}, "", "`keepLastSnapshots.count`"},
		{"timeout zero", map[string]any{"timeout": 0}, "", "`timeout`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.with(t)
			tc.body["projectId"] = testProject
			path := tc.path
			if path == "" {
				path = "/v3/sandboxes"
			}
			msg := a.wantError("POST", path, tc.body, 400, "bad_request")
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q, want %q", msg, tc.want)
			}
		})
	}
	if n := len(a.fake.Sessions()); n != 0 {
		t.Fatalf("invalid creates started %d sessions", n)
	}

	// Private "__" parameters are ignored; a generated name has the service's shape; a
	// duplicate name is a 409 conflict (inferred: the API does not document it).
	made := a.create(map[string]any{"__interactive": true, "persistent": false, "resources": map[string]any{"vcpus": 1}})
	if !regexp.MustCompile(`^[a-z]+-[a-z]+-[a-z]+-[a-z0-9]{6}$`).MatchString(made.Sandbox.Name) {
		t.Fatalf("generated name %q", made.Sandbox.Name)
	}
	if *made.Session.VCPUs != 1 || *made.Session.Memory != 2048 {
		t.Fatalf("resources %d vcpus %d MB", *made.Session.VCPUs, *made.Session.Memory)
	}
	a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "name": made.Sandbox.Name}, 409, "conflict")
	if !regexp.MustCompile(`^sbx_[a-zA-Z0-9]{28}$`).MatchString(made.Session.ID) {
		t.Fatalf("session id %q", made.Session.ID)
	}
}
