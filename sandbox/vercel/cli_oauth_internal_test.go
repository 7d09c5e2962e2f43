package vercel

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// oauthServer is an issuer whose token endpoint answers with answer (status and body) and
// counts the refreshes.
func oauthServer(t *testing.T, status int, answer string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"token_endpoint": srv.URL + "/token"})
		case "/token":
			n.Add(1)
			if r.ParseForm() != nil || r.PostForm.Get("client_id") != vercelCLIClientID || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") == "" {
				w.WriteHeader(400)
				return
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(answer))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func testLogin(t *testing.T, issuer string) (*cliLogin, string) {
	t.Helper()
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "com.vercel.cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &cliLogin{dataDir: data, issuer: issuer, http: http.DefaultClient, userAgent: "test"}, cliAuthPath(data)
}

func writeAuthJSON(t *testing.T, p string, exp time.Time, refresh string) {
	t.Helper()
	data := `{"// Note":"keep","token":"old-login","expiresAt":` + jsonInt(exp.Unix()) + `,"refreshToken":"` + refresh + `"}`
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func readAuthJSON(t *testing.T, p string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}

// TestLoginRefreshKeepsRefreshToken: an answer without refresh_token keeps the old one (the SDK
// would drop it); the other fields stay; a login within the margin is refreshed; through a
// symlink the target is rewritten.
func TestLoginRefreshKeepsRefreshToken(t *testing.T) {
	srv, n := oauthServer(t, 200, `{"access_token":"new-login","token_type":"Bearer","expires_in":3600}`)
	l, p := testLogin(t, srv.URL)
	target := filepath.Join(filepath.Dir(p), "real-auth.json")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	writeAuthJSON(t, target, now.Add(2*time.Minute), "SECRET-r1") // within the 5-minute margin
	tok, err := l.loginToken(context.Background(), now)
	if err != nil || tok != "new-login" || n.Load() != 1 {
		t.Fatalf("loginToken = %q, %v after %d refreshes; want the new login after 1", tok, err, n.Load())
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("auth.json is no longer a symlink: %v", err)
	}
	m := readAuthJSON(t, target)
	if m["token"] != "new-login" || m["refreshToken"] != "SECRET-r1" || m["// Note"] != "keep" || m["expiresAt"] != float64(now.Unix()+3600) {
		t.Errorf("auth.json %v; want the new token and expiry, refresh token r1 and the note kept", m)
	}
	// Fresh now: no refresh.
	if tok, err := l.loginToken(context.Background(), now); err != nil || tok != "new-login" || n.Load() != 1 {
		t.Errorf("second loginToken = %q, %v after %d refreshes", tok, err, n.Load())
	}
}

// TestLoginRefreshBadAnswers: answers the SDK rejects fail the refresh of an expired login with
// a clear error (without the tokens); a login still valid within the margin is used as it is.
func TestLoginRefreshBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		status       int
		want         string
	}{
		{"no expires_in", `{"access_token":"a","token_type":"Bearer"}`, 200, "without expires_in"},
		{"not Bearer", `{"access_token":"a","token_type":"mac","expires_in":60}`, 200, `token_type "mac"`},
		{"no access token", `{"token_type":"Bearer","expires_in":60}`, 200, "without a usable access_token"},
		{"OAuth error echoing the token", `{"error":"invalid_grant","error_description":"token SECRET-r1 revoked"}`, 400, "invalid_grant (HTTP 400): token … revoked"},
		{"not JSON", `<html>`, 502, "refused the login's refresh token: HTTP 502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := oauthServer(t, tc.status, tc.answer)
			l, p := testLogin(t, srv.URL)
			now := time.Now()
			writeAuthJSON(t, p, now.Add(-time.Minute), "SECRET-r1")
			_, err := l.loginToken(context.Background(), now)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "run `vercel login`") ||
				strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "old-login") {
				t.Fatalf("err = %v; want one saying %q and to run `vercel login`, without tokens", err, tc.want)
			}
			// Still valid, within the margin: the old login is used; the failure is not retried at once.
			l.failedRefresh = ""
			writeAuthJSON(t, p, now.Add(time.Minute), "SECRET-r1")
			if tok, err := l.loginToken(context.Background(), now); err != nil || tok != "old-login" {
				t.Errorf("within the margin: %q, %v; want the old login", tok, err)
			}
		})
	}
}

// TestLoginRefreshUnsaved: when auth.json cannot be rewritten the refreshed login is used from
// memory while the file still holds the one it replaced; when auth.json changed during the
// refresh (a `vercel login`), it is left as it is.
func TestLoginRefreshUnsaved(t *testing.T) {
	srv, n := oauthServer(t, 200, `{"access_token":"new-login","token_type":"Bearer","expires_in":3600,"refresh_token":"r2"}`)
	l, p := testLogin(t, srv.URL)
	now := time.Now()
	writeAuthJSON(t, p, now.Add(-time.Minute), "SECRET-r1")
	renameFile = func(string, string) error { return os.ErrPermission }
	t.Cleanup(func() { renameFile = os.Rename })
	for i := range 2 {
		if tok, err := l.loginToken(context.Background(), now); err != nil || tok != "new-login" || n.Load() != 1 {
			t.Fatalf("call %d: %q, %v after %d refreshes; want the refreshed login from memory after 1", i, tok, err, n.Load())
		}
	}
	if m := readAuthJSON(t, p); m["token"] != "old-login" {
		t.Errorf("auth.json was rewritten: %v", m)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".auth.json.*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
	// auth.json written anew (a `vercel login`): the file's login is used again.
	renameFile = os.Rename
	if err := os.WriteFile(p, []byte(`{"token":"fresh-login"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := l.loginToken(context.Background(), now); err != nil || tok != "fresh-login" || l.unsaved != nil {
		t.Errorf("after a new login: %q, %v; want the file's", tok, err)
	}

	old := []byte(`{"token":"old-login"}`)
	if err := writeAuth(p, old, authFile{Token: "x", ExpiresAt: new(float64), RefreshToken: "y"}); err != errAuthChanged {
		t.Errorf("writeAuth over a changed file: %v; want errAuthChanged", err)
	}
}
