package vercelfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testCLIToken = "cli_login_0123456789"

// status sends method path with bearer tok (no body) and returns the status and the error's
// message.
func (a *api) status(method, path, tok string) (int, string) {
	a.t.Helper()
	resp := a.request(method, path, nil, map[string]string{"Authorization": "Bearer " + tok})
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	a.read(resp, method+" "+path, resp.StatusCode, &e)
	return resp.StatusCode, e.Error.Message
}

// TestOIDCTokens: the fake accepts the OIDC tokens it issued until their exp by its clock, with
// the team and project in their claims; an expired, forged or foreign token is a 403.
func TestOIDCTokens(t *testing.T) {
	var skew atomic.Int64
	a := newAPI(t, Options{Clock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	list := "/v2/sandboxes?project=" + testProject

	tok := a.fake.IssueOIDCToken(time.Hour)
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OwnerID   string `json:"owner_id"`
		ProjectID string `json:"project_id"`
		Exp, Iat  int64
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.OwnerID != testTeam || c.ProjectID != testProject || c.Exp-c.Iat != 3600 {
		t.Fatalf("claims %s (%v); want owner_id %s, project_id %s, exp an hour after iat", raw, err, testTeam, testProject)
	}
	if st, msg := a.status("GET", list, tok); st != http.StatusOK {
		t.Fatalf("a fresh OIDC token: %d %s", st, msg)
	}
	skew.Store(int64(2 * time.Hour))
	if st, msg := a.status("GET", list, tok); st != http.StatusForbidden || !strings.Contains(msg, "expired") {
		t.Errorf("the token after its exp by the fake's clock: %d %q; want 403 saying it expired", st, msg)
	}
	skew.Store(0)
	if st, _ := a.status("GET", list, a.fake.IssueOIDCToken(-time.Second)); st != http.StatusForbidden {
		t.Errorf("an expired token: %d, want 403", st)
	}
	forged := tok[:strings.LastIndex(tok, ".")+1] + base64.RawURLEncoding.EncodeToString([]byte("not the signature"))
	if st, _ := a.status("GET", list, forged); st != http.StatusForbidden {
		t.Errorf("a forged token: %d, want 403", st)
	}
	other := newAPI(t, Options{})
	if st, _ := a.status("GET", list, other.fake.IssueOIDCToken(time.Hour)); st != http.StatusForbidden {
		t.Errorf("another fake's token: %d, want 403", st)
	}
}

// TestOIDCTokenEndpoint: POST /v1/projects/{project}/token, as @vercel/oidc's refresh sends it
// (the CLI login's token, no body), answers {token} with a token of the fake's TTL that the
// Sandbox API accepts; an OIDC token, a wrong team or an unknown project are refused.
func TestOIDCTokenEndpoint(t *testing.T) {
	a := newAPI(t, Options{CLIToken: testCLIToken, OIDCTokenTTL: 90 * time.Minute})
	path := "/v1/projects/" + testProject + "/token?source=vercel-oidc-refresh"
	resp := a.request("POST", path, nil, map[string]string{"Authorization": "Bearer " + testCLIToken, "Content-Type": ""})
	var out struct {
		Token string `json:"token"`
	}
	a.read(resp, "POST token", http.StatusOK, &out)
	if ok, err := a.fake.checkOIDCToken(out.Token); !ok || err != nil {
		t.Fatalf("the issued token is not the fake's or has expired: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(out.Token, ".")[1])
	var c struct{ Exp, Iat int64 }
	if json.Unmarshal(raw, &c) != nil || c.Exp-c.Iat != 90*60 {
		t.Errorf("claims %s; want exp 90 minutes after iat", raw)
	}
	if st, msg := a.status("GET", "/v2/sandboxes?project="+testProject, out.Token); st != http.StatusOK {
		t.Errorf("the refreshed token on the Sandbox API: %d %s", st, msg)
	}
	// Served without the /api prefix too (api.vercel.com, where @vercel/oidc sends it).
	req, _ := http.NewRequest("POST", a.url+path+"&teamId="+testTeam, nil)
	req.Header.Set("Authorization", "Bearer "+testCLIToken)
	r2, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	a.read(r2, "POST token without /api", http.StatusOK, nil)

	if st, _ := a.status("POST", path, out.Token); st != http.StatusForbidden {
		t.Errorf("an OIDC token as the bearer: %d, want 403", st)
	}
	if st, _ := a.status("POST", path, "wrong"); st != http.StatusForbidden {
		t.Errorf("a wrong token: %d, want 403", st)
	}
	if st, _ := a.status("POST", "/v1/projects/prj_other/token?source=vercel-oidc-refresh", testCLIToken); st != http.StatusNotFound {
		t.Errorf("an unknown project: %d, want 404", st)
	}
	if st, _ := a.status("POST", "/v1/projects/"+testProjNm+"/token?source=vercel-oidc-refresh", testCLIToken); st != http.StatusOK {
		t.Errorf("the project by name: %d, want 200", st)
	}
	wrongTeam, _ := http.NewRequest("POST", a.url+path+"&teamId=team_other", nil)
	wrongTeam.Header.Set("Authorization", "Bearer "+testCLIToken)
	r3, err := a.client.Do(wrongTeam)
	if err != nil {
		t.Fatal(err)
	}
	a.read(r3, "POST token for another team", http.StatusForbidden, nil)
}

// TestRejectPolicyShape: with RejectPolicyShape the fake refuses that shape with production's
// 400 naming its property, on the session update as on create; the other shape and allow-all
// pass. (The fake's Close stops the session.)
func TestRejectPolicyShape(t *testing.T) {
	for _, tc := range []struct{ reject, refused, accepted, prop string }{
		{"v2", `{"allow":["example.com"]}`, `{"mode":"custom","allowedDomains":["example.com"]}`, "`allow`"},
		{"legacy", `{"mode":"custom","allowedDomains":["example.com"]}`, `{"allow":["example.com"]}`, "`allowedDomains`"},
	} {
		t.Run(tc.reject, func(t *testing.T) {
			a := newAPI(t, Options{RejectPolicyShape: tc.reject})
			body := func(pol string) []byte {
				return []byte(`{"projectId":"` + testProject + `","ports":[],"persistent":false,"networkPolicy":` + pol + `}`)
			}
			msg := a.wantError("POST", "/v3/sandboxes", body(tc.refused), http.StatusBadRequest, codeBadRequest)
			if !strings.Contains(msg, "`networkPolicy` should NOT have additional property "+tc.prop) {
				t.Errorf("create refusal: %q", msg)
			}
			var created struct {
				Session struct{ ID string } `json:"session"`
			}
			a.call("POST", "/v3/sandboxes", body(tc.accepted), http.StatusOK, &created)
			sess := "/v2/sandboxes/sessions/" + created.Session.ID
			msg = a.wantError("POST", sess+"/network-policy", []byte(tc.refused), http.StatusBadRequest, codeBadRequest)
			if !strings.Contains(msg, "should NOT have additional property "+tc.prop) {
				t.Errorf("session update refusal: %q", msg)
			}
			a.call("POST", sess+"/network-policy", []byte(tc.accepted), http.StatusOK, nil)
			a.call("POST", sess+"/network-policy", []byte(`{"mode":"allow-all"}`), http.StatusOK, nil)
		})
	}
}
