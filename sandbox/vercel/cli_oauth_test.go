package vercel_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

const (
	oauthTokenPath  = `^/login/oauth/token$`
	expiredLogin    = "cli-expired-SECRET-4567"
	cliRefreshToken = "vcr_refresh-SECRET-89ab"
)

// execAfterExpiry starts a sandbox on p, waits until gone (when the provider's token expires)
// and returns the sandbox and the error of an Exec then, which must be a *TokenExpiredError.
func execAfterExpiry(t *testing.T, p *vercel.Provider, gone time.Time) (sandbox.Sandbox, error) {
	t.Helper()
	sb := start(t, p, sandbox.StartOptions{Detached: true})
	time.Sleep(time.Until(gone))
	_, err := sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "true"})
	var te *vercel.TokenExpiredError
	if !errors.As(err, &te) {
		t.Fatalf("Exec: %v; want a *TokenExpiredError", err)
	}
	return sb, err
}

// writeExpiredLogin writes an auth.json as a recent `vercel login` does, whose token expired a
// minute ago, with refresh as its refresh token ("" : none).
func writeExpiredLogin(t *testing.T, dataDir, refresh string) string {
	t.Helper()
	dir := filepath.Join(dataDir, "com.vercel.cli")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a := map[string]any{"// Note": "This is your Vercel credentials file. DO NOT SHARE!", "token": expiredLogin,
		"expiresAt": time.Now().Add(-time.Minute).Unix()}
	if refresh != "" {
		a["refreshToken"] = refresh
	}
	data, _ := json.MarshalIndent(a, "", "  ")
	p := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// oauthEnv is the environment of a provider whose OIDC token is tok, with the CLI's data
// directory data and the fake as the OAuth issuer.
func oauthEnv(fe *vercelfaketest.TestEnv, tok, data string) map[string]string {
	return map[string]string{"VERCEL_OIDC_TOKEN": tok, "XDG_DATA_HOME": data, "SANDKIT_VERCEL_OAUTH_ISSUER_URL": fe.URL}
}

// TestOIDCRenewRefreshesCLILogin: when the CLI login in auth.json has expired and holds a
// refresh token, the client first refreshes it like @vercel/oidc (the token endpoint from the
// issuer's discovery document; the refresh_token grant with the CLI's client_id, form-encoded),
// writes auth.json back (mode 0600, the new token, expiry and refresh token, its other fields
// kept), renews the OIDC token with the new login token, and requests go on.
func TestOIDCRenewRefreshesCLILogin(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{CLIRefreshToken: cliRefreshToken, CLITokenTTL: 2 * time.Hour})
	data := t.TempDir()
	auth := writeExpiredLogin(t, data, cliRefreshToken)
	tok, gone := shortToken(fe, 3*time.Second)
	p := oidcProvider(t, fe, "oauthok", oauthEnv(fe, tok, data))
	if st := p.Client().TokenStatus(); len(st.Renewal) != 1 || !strings.Contains(st.Renewal[0], "refreshed first with its refresh token") {
		t.Errorf("token status %+v; want the CLI renewal, saying the login is refreshed first", st)
	}
	sb := start(t, p, sandbox.StartOptions{Detached: true})
	time.Sleep(time.Until(gone))
	if out, _, _ := sh(t, sb, "echo refreshed"); out != "refreshed\n" {
		t.Fatalf("after the OIDC token's expiry, with an expired CLI login: %q", out)
	}

	reqs := fe.Fake.RequestLog("POST", oauthTokenPath)
	if len(reqs) != 1 || reqs[0].Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("%d OAuth token requests (%v); want 1, form-encoded", len(reqs), reqs)
	}
	if n := fe.Fake.Requests("GET", `^/.well-known/openid-configuration$`); n != 1 {
		t.Errorf("%d discovery requests; want 1", n)
	}
	oidc := fe.Fake.RequestLog("POST", tokenEndpoint)
	if len(oidc) != 1 || oidc[0].Header.Get("Authorization") == "Bearer "+expiredLogin {
		t.Fatalf("%d OIDC token requests; want 1, with the refreshed login token", len(oidc))
	}

	fi, err := os.Stat(auth)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("auth.json: %v, %v; want mode 0600", fi, err)
	}
	raw, _ := os.ReadFile(auth)
	var got struct {
		Note         string  `json:"// Note"`
		Token        string  `json:"token"`
		ExpiresAt    float64 `json:"expiresAt"`
		RefreshToken string  `json:"refreshToken"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("auth.json is not JSON: %v", err)
	}
	exp := time.Unix(int64(got.ExpiresAt), 0)
	if got.Token == "" || got.Token == expiredLogin || got.RefreshToken == "" || got.RefreshToken == cliRefreshToken ||
		time.Until(exp) < 110*time.Minute || time.Until(exp) > 2*time.Hour+time.Minute || got.Note == "" {
		t.Errorf("auth.json after the refresh: %s; want a new token, refresh token and expiry (2 h) and the note kept", raw)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(auth), ".auth.json.*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
	if st := p.Client().TokenStatus(); st.Source != "the Vercel CLI login" || len(st.Renewal) != 1 ||
		!strings.Contains(st.Renewal[0], "then it is refreshed with its refresh token") {
		t.Errorf("token status %+v; want the CLI login's token, the login valid until %s", st, exp)
	}
}

// TestOIDCExpiredCLILoginNoRefreshToken: an expired CLI login without a refresh token is not
// refreshed; the error of a request past the OIDC token's expiry says so and what to run, and
// doctor's status lists it as a problem.
func TestOIDCExpiredCLILoginNoRefreshToken(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{CLIRefreshToken: cliRefreshToken})
	data := t.TempDir()
	auth := writeExpiredLogin(t, data, "")
	before, _ := os.ReadFile(auth)
	tok, gone := shortToken(fe, 3*time.Second)
	p := oidcProvider(t, fe, "oauthnone", oauthEnv(fe, tok, data))
	st := p.Client().TokenStatus()
	if len(st.Renewal) != 0 || !strings.Contains(strings.Join(st.Problems, "\n"), "holds no refresh token to renew it; run `vercel login`") {
		t.Errorf("token status %+v; want the expired login without refresh token as a problem", st)
	}
	_, err := execAfterExpiry(t, p, gone)
	if msg := err.Error(); !strings.Contains(msg, "the Vercel CLI login at "+auth+" expired at ") ||
		!strings.Contains(msg, "holds no refresh token to renew it; run `vercel login`") || strings.Contains(msg, "SECRET") {
		t.Errorf("error %q; want it to say the login expired without a refresh token and to run `vercel login`, without tokens", msg)
	}
	if n := fe.Fake.Requests("", oauthTokenPath); n != 0 {
		t.Errorf("%d OAuth requests; want none", n)
	}
	if after, _ := os.ReadFile(auth); string(after) != string(before) {
		t.Errorf("auth.json changed: %s", after)
	}
}

// TestOIDCCLILoginRefreshRefused: a refresh token the OAuth endpoint refuses (unknown, or
// already used) fails the request with the endpoint's OAuth error and what to run, never a
// token; auth.json is left as it was (the SDK would empty it).
func TestOIDCCLILoginRefreshRefused(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{CLIRefreshToken: "vcr_another"})
	data := t.TempDir()
	auth := writeExpiredLogin(t, data, cliRefreshToken)
	before, _ := os.ReadFile(auth)
	tok, gone := shortToken(fe, 3*time.Second)
	p := oidcProvider(t, fe, "oauthbad", oauthEnv(fe, tok, data))
	sb, err := execAfterExpiry(t, p, gone)
	msg := err.Error()
	for _, want := range []string{"the Vercel CLI login at " + auth + " expired at ", "could not be refreshed: the OAuth token endpoint",
		"refused the login's refresh token: invalid_grant (HTTP 400)", "run `vercel login`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q\ndoes not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "SECRET") {
		t.Errorf("error %q shows a token", msg)
	}
	if after, _ := os.ReadFile(auth); string(after) != string(before) {
		t.Errorf("auth.json changed: %s", after)
	}
	// Within cliRetryPause the refusal is not sent again.
	_, _ = sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "true"})
	if n := fe.Fake.Requests("POST", oauthTokenPath); n != 1 {
		t.Errorf("%d OAuth requests; want 1", n)
	}
}
