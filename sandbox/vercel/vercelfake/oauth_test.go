package vercelfake

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testRefreshToken = "vcr_initial_0123456789"

// oauthPost sends form to the token endpoint with contentType and returns the status and the
// decoded body.
func (a *api) oauthPost(endpoint string, form url.Values, contentType string) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), "POST", endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	var out map[string]any
	a.read(resp, "POST "+endpoint, resp.StatusCode, &out)
	return resp.StatusCode, out
}

// TestOAuthRefresh: the discovery document names the token endpoint; the refresh_token grant
// with the CLI's client_id, as @vercel/oidc sends it, answers a Bearer access token with
// expires_in and the next refresh token; the access token works on the OIDC token endpoint
// until its expiry; refresh tokens are single-use; a wrong client_id, an unknown refresh token,
// another grant or a JSON body are refused with RFC 6749's error body.
func TestOAuthRefresh(t *testing.T) {
	var skew atomic.Int64
	a := newAPI(t, Options{CLIRefreshToken: testRefreshToken, CLITokenTTL: 30 * time.Minute,
		Clock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	var md struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	a.read(a.request("GET", "/.well-known/openid-configuration", nil, nil), "discovery", http.StatusOK, &md)
	if md.TokenEndpoint != a.url+"/login/oauth/token" {
		t.Fatalf("token_endpoint %q, want %s/login/oauth/token", md.TokenEndpoint, a.url)
	}
	form := func(client, grant, refresh string) url.Values {
		return url.Values{"client_id": {client}, "grant_type": {grant}, "refresh_token": {refresh}}
	}
	const formType = "application/x-www-form-urlencoded"

	for _, tc := range []struct {
		name        string
		form        url.Values
		contentType string
		status      int
		code        string
	}{
		{"another client", form("cl_other", "refresh_token", testRefreshToken), formType, 401, "invalid_client"},
		{"an unknown refresh token", form(CLIClientID, "refresh_token", "vcr_unknown"), formType, 400, "invalid_grant"},
		{"another grant", form(CLIClientID, "password", testRefreshToken), formType, 400, "unsupported_grant_type"},
		{"a JSON body", form(CLIClientID, "refresh_token", testRefreshToken), "application/json", 400, "invalid_request"},
	} {
		st, out := a.oauthPost(md.TokenEndpoint, tc.form, tc.contentType)
		if st != tc.status || out["error"] != tc.code || out["error_description"] == "" {
			t.Errorf("%s: %d %v; want %d {error: %s, error_description}", tc.name, st, out, tc.status, tc.code)
		}
	}

	st, out := a.oauthPost(md.TokenEndpoint, form(CLIClientID, "refresh_token", testRefreshToken), formType)
	access, _ := out["access_token"].(string)
	next, _ := out["refresh_token"].(string)
	if st != 200 || access == "" || out["token_type"] != "Bearer" || out["expires_in"] != float64(1800) || next == "" || next == testRefreshToken {
		t.Fatalf("refresh: %d %v; want a Bearer access token, expires_in 1800 and a new refresh token", st, out)
	}
	if st, out := a.oauthPost(md.TokenEndpoint, form(CLIClientID, "refresh_token", testRefreshToken), formType); st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("the used refresh token again: %d %v; want 400 invalid_grant", st, out)
	}
	oidcPath := "/v1/projects/" + testProject + "/token?source=vercel-oidc-refresh"
	if st, msg := a.status("POST", oidcPath, access); st != http.StatusOK {
		t.Errorf("the issued login token on the OIDC token endpoint: %d %s", st, msg)
	}
	skew.Store(int64(time.Hour))
	if st, msg := a.status("POST", oidcPath, access); st != http.StatusForbidden || !strings.Contains(msg, "expired") {
		t.Errorf("the login token after its expiry: %d %q; want 403 saying it expired", st, msg)
	}
	if st, out := a.oauthPost(md.TokenEndpoint, form(CLIClientID, "refresh_token", next), formType); st != 200 || out["access_token"] == access {
		t.Errorf("the next refresh token: %d %v; want a new access token", st, out)
	}
}
