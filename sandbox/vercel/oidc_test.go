package vercel_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

const (
	tokenEndpoint = `^/v1/projects/[^/]+/token$`
	cliLoginToken = "cli-login-SECRET-0123"
)

// oidcProvider is a provider whose credentials come from ConfigFromEnv over env (with the fake's
// address as the API and the token endpoint), as the server builds them.
func oidcProvider(t *testing.T, fe *vercelfaketest.TestEnv, owner string, env map[string]string) *vercel.Provider {
	t.Helper()
	env["SANDKIT_VERCEL_API_URL"] = fe.URL
	env["SANDKIT_VERCEL_OIDC_REFRESH_URL"] = fe.URL
	cfg, err := vercel.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.MinBackoff = 10 * time.Millisecond
	p := newProvider(t, fe, owner, func(o *vercel.Options) { o.Config = cfg })
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// writeEnvFile writes a .env file as `vercel env pull` does, with tok as VERCEL_OIDC_TOKEN.
func writeEnvFile(t *testing.T, path, tok string) {
	t.Helper()
	data := "# Created by Vercel CLI\nVERCEL_ENV=\"development\"\nVERCEL_OIDC_TOKEN=\"" + tok + "\"\n"
	if err := os.WriteFile(path+".tmp", []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// writeCLILogin writes the Vercel CLI's auth.json under the data directory.
func writeCLILogin(t *testing.T, dataDir, login string) {
	t.Helper()
	dir := filepath.Join(dataDir, "com.vercel.cli")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(`{"token":"`+login+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shortToken issues a token valid for ttl and returns it with the time by which it has surely
// expired (exp has whole seconds).
func shortToken(fe *vercelfaketest.TestEnv, ttl time.Duration) (string, time.Time) {
	gone := time.Now().Add(ttl + 1100*time.Millisecond)
	return fe.Fake.IssueOIDCToken(ttl), gone
}

// TestOIDCRenewFromFile: with a token file, requests go on past the token's expiry once
// `vercel env pull` has written a fresh token there (read before the request, since the token
// in use has expired), and past a refusal of a token the client still thinks valid (the fake's
// clock runs ahead): the refused request is sent once more with the file's new token.
func TestOIDCRenewFromFile(t *testing.T) {
	var skew atomic.Int64
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{Clock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	dir := t.TempDir()
	file := filepath.Join(dir, ".env.local")
	tok, gone := shortToken(fe, 4*time.Second)
	writeEnvFile(t, file, tok)
	p := oidcProvider(t, fe, "oidcfile", map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": file, "XDG_DATA_HOME": filepath.Join(dir, "nocli")})
	sb := start(t, p, sandbox.StartOptions{Detached: true})
	if out, _, _ := sh(t, sb, "echo one"); out != "one\n" {
		t.Fatalf("before expiry: %q", out)
	}

	time.Sleep(time.Until(gone))
	writeEnvFile(t, file, fe.Fake.IssueOIDCToken(time.Hour))
	if out, _, _ := sh(t, sb, "echo two"); out != "two\n" {
		t.Fatalf("after expiry, with a fresh token in the file: %q", out)
	}
	st := p.Client().TokenStatus()
	if !st.OIDC || st.Source != file || time.Until(st.ExpiresAt) < 50*time.Minute {
		t.Errorf("token status %+v; want the file's hour-long token", st)
	}

	// The fake's clock runs two hours ahead: it refuses the hour-long token the client trusts.
	skew.Store(int64(2 * time.Hour))
	writeEnvFile(t, file, fe.Fake.IssueOIDCToken(3*time.Hour))
	before := fe.Fake.Requests("POST", cmdPath)
	if out, _, _ := sh(t, sb, "echo three"); out != "three\n" {
		t.Fatalf("after a refusal, with a fresh token in the file: %q", out)
	}
	if n := fe.Fake.Requests("POST", cmdPath) - before; n != 2 {
		t.Errorf("%d command requests; want 2 (the refused one, then the same with the new token)", n)
	}
	if st := p.Client().TokenStatus(); time.Until(st.ExpiresAt) < 2*time.Hour {
		t.Errorf("token status %+v; want the file's three-hour token", st)
	}
}

// TestOIDCRenewWithCLILogin: with the Vercel CLI's login, the client renews a token that nears
// its exp like @vercel/oidc: POST /v1/projects/{project}/token?source=vercel-oidc-refresh&teamId=
// with the login's token and no body, the answer cached in com.vercel.token/<project>.json
// (owner-only), where a second client finds it without asking again. Requests go on past the
// first token's expiry.
func TestOIDCRenewWithCLILogin(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{CLIToken: cliLoginToken})
	data := t.TempDir()
	writeCLILogin(t, data, cliLoginToken)
	tok, gone := shortToken(fe, 3*time.Second)
	p := oidcProvider(t, fe, "oidccli", map[string]string{"VERCEL_OIDC_TOKEN": tok, "XDG_DATA_HOME": data})
	sb := start(t, p, sandbox.StartOptions{Detached: true})
	time.Sleep(time.Until(gone))
	if out, _, _ := sh(t, sb, "echo renewed"); out != "renewed\n" {
		t.Fatalf("after the first token's expiry: %q", out)
	}
	reqs := fe.Fake.RequestLog("POST", tokenEndpoint)
	if len(reqs) != 1 {
		t.Fatalf("%d token requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/projects/"+vercelfaketest.TestProjectID+"/token" || r.Query.Get("source") != "vercel-oidc-refresh" ||
		r.Query.Get("teamId") != vercelfaketest.TestTeamID || r.Header.Get("Content-Type") != "" {
		t.Errorf("token request %s ?%s content-type %q; want @vercel/oidc's", r.Path, r.Query.Encode(), r.Header.Get("Content-Type"))
	}
	st := p.Client().TokenStatus()
	if st.Source != "the Vercel CLI login" || time.Until(st.ExpiresAt) < 11*time.Hour || len(st.Renewal) == 0 {
		t.Errorf("token status %+v; want a 12-hour token from the CLI login, renewable", st)
	}

	cache := filepath.Join(data, "com.vercel.token", vercelfaketest.TestProjectID+".json")
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token cache: %v, %v; want a file with mode 0600", fi, err)
	}
	raw, _ := os.ReadFile(cache)
	var cached struct{ Token string }
	if json.Unmarshal(raw, &cached) != nil || cached.Token == "" || cached.Token == tok {
		t.Errorf("the cache holds %s; want {\"token\": the renewed token}", raw)
	}
	// A second client with the expired token takes the cached one.
	p2 := oidcProvider(t, fe, "oidccli2", map[string]string{"VERCEL_OIDC_TOKEN": tok, "XDG_DATA_HOME": data})
	if _, err := p2.Sandboxes(ctxT(t)); err != nil {
		t.Fatalf("second client: %v", err)
	}
	if n := fe.Fake.Requests("POST", tokenEndpoint); n != 1 {
		t.Errorf("%d token requests after the second client; want still 1 (the cache)", n)
	}
}

// TestOIDCExpiredWithoutRenewal: a token past its exp with neither a token file nor a CLI login
// fails the request before it is sent, with an error that says where the token came from, when
// it expired, why nothing renewed it and what to run, never the token.
func TestOIDCExpiredWithoutRenewal(t *testing.T) {
	fe := vercelfaketest.StartForTest(t, "", vercelfake.Options{CLIToken: cliLoginToken})
	data := t.TempDir()
	tok, gone := shortToken(fe, 4*time.Second)
	p := oidcProvider(t, fe, "oidcnone", map[string]string{"VERCEL_OIDC_TOKEN": tok, "XDG_DATA_HOME": data})
	sb := start(t, p, sandbox.StartOptions{Detached: true})
	if st := p.Client().TokenStatus(); len(st.Renewal) != 0 || !strings.Contains(st.Fix, "vercel login") {
		t.Errorf("token status %+v; want no renewal and a fix naming `vercel login`", st)
	}
	time.Sleep(time.Until(gone))
	before := fe.Fake.Requests("", "")
	_, err := sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "true"})
	var te *vercel.TokenExpiredError
	if !errors.As(err, &te) || !errors.Is(err, vercel.ErrCredentials) || !errors.Is(err, sandbox.ErrUnavailable) {
		t.Fatalf("Exec after expiry: %v; want a *TokenExpiredError wrapping ErrCredentials and ErrUnavailable", err)
	}
	msg := err.Error()
	for _, want := range []string{"the OIDC token from VERCEL_OIDC_TOKEN expired at " + te.ExpiredAt.Format(time.RFC3339),
		"there is no Vercel CLI login at " + filepath.Join(data, "com.vercel.cli", "auth.json"), "vercel env pull", "vercel login", "SANDKIT_VERCEL_OIDC_TOKEN_FILE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q\ndoes not say %q", msg, want)
		}
	}
	for _, part := range strings.Split(tok, ".") {
		if strings.Contains(msg, part) {
			t.Errorf("error %q shows the token", msg)
		}
	}
	if n := fe.Fake.Requests("", "") - before; n != 0 {
		t.Errorf("%d requests reached the API with the expired token; want none", n)
	}

	// `vercel login` afterwards: the next request renews the token with it.
	writeCLILogin(t, data, cliLoginToken)
	if out, _, _ := sh(t, sb, "echo back"); out != "back\n" {
		t.Errorf("after `vercel login`: %q", out)
	}
}
