package vercelfake

import (
	"crypto/rand"
	"encoding/hex"
	"mime"
	"net/http"
	"sync"
	"time"
)

// The OAuth authorization server the Vercel CLI's login is refreshed at, as @vercel/oidc 3.2.0
// does it (oauth.js): GET /.well-known/openid-configuration (on https://vercel.com in
// production) names the token endpoint, here <the fake's address>/login/oauth/token (Vercel
// documents https://api.vercel.com/login/oauth/token); POST there, Content-Type
// application/x-www-form-urlencoded, client_id=CLIClientID&grant_type=refresh_token&
// refresh_token=…, answers {access_token, token_type: "Bearer", expires_in, refresh_token,
// scope}. A refusal is RFC 6749 §5.2's {error, error_description}: 401 invalid_client for
// another client_id, 400 invalid_grant for a refresh token the fake did not issue (or
// Options.CLIRefreshToken) or that was already used, 400 unsupported_grant_type and
// invalid_request otherwise. Refresh tokens rotate: each is accepted once and the answer
// carries the next (the fake's choice; @vercel/oidc handles either). The access tokens issued
// are accepted by POST /v1/projects/{project}/token, like Options.CLIToken, until their
// expiry by the fake's clock.

// CLIClientID is the Vercel CLI's OAuth client id, the one @vercel/oidc sends.
const CLIClientID = "cl_HYyOPBNtFMfHhaUn9L4QPfTZz6TP47bp"

// DefaultCLITokenTTL is the lifetime of the login tokens the fake's OAuth endpoint issues when
// Options.CLITokenTTL is zero (the fake's choice: Vercel does not document the CLI's).
const DefaultCLITokenTTL = time.Hour

// loginState is the OAuth logins the fake issued, under its own lock (a leaf).
type loginState struct {
	mu      sync.Mutex
	access  map[string]time.Time // access token → expiry
	refresh map[string]bool      // refresh tokens not yet used
	used    bool                 // Options.CLIRefreshToken was used
}

// hasOwnAuth reports whether p is an endpoint with its own authorization (not the API's
// bearer): the OIDC token endpoint (a user's token) and the OAuth endpoints (none, or a
// refresh token in the body).
func hasOwnAuth(p string) bool {
	return isTokenEndpoint(p) || p == "/.well-known/openid-configuration" || p == "/login/oauth/token"
}

// handleOpenIDConfiguration answers the discovery document, naming the fake's token endpoint.
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base,
		"token_endpoint":                        base + "/login/oauth/token",
		"grant_types_supported":                 []string{"refresh_token", "urn:ietf:params:oauth:grant-type:device_code"},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

// oauthError answers RFC 6749's error body.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// handleOAuthToken answers POST /login/oauth/token with the refresh_token grant.
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body must be application/x-www-form-urlencoded.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "The request body cannot be parsed.")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("client_id") == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing client_id.")
		return
	case f.Get("client_id") != CLIClientID:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client.")
		return
	case f.Get("grant_type") != "refresh_token":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Only the refresh_token grant is supported here.")
		return
	case f.Get("refresh_token") == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing refresh_token.")
		return
	}
	access, refresh, ttl, ok := s.rotateLogin(f.Get("refresh_token"))
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, expired or was already used.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": int64(ttl / time.Second),
		"refresh_token": refresh, "scope": "openid offline_access",
	})
}

// rotateLogin consumes the refresh token old and issues a new access and refresh token; ok is
// false when old is unknown or used.
func (s *Server) rotateLogin(old string) (access, refresh string, ttl time.Duration, ok bool) {
	l := &s.logins
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.refresh[old]:
		delete(l.refresh, old)
	case old == s.opts.CLIRefreshToken && !l.used:
		l.used = true
	default:
		return "", "", 0, false
	}
	if l.access == nil {
		l.access, l.refresh = map[string]time.Time{}, map[string]bool{}
	}
	ttl = s.opts.CLITokenTTL
	access, refresh = "vca_"+randomHex(), "vcr_"+randomHex()
	l.access[access] = s.now().Add(ttl)
	l.refresh[refresh] = true
	return access, refresh, ttl, true
}

// loginValid reports whether tok is a login token the OAuth endpoint issued (known) and, if
// so, whether it has not expired by the fake's clock.
func (s *Server) loginValid(tok string) (known, valid bool) {
	l := &s.logins
	l.mu.Lock()
	defer l.mu.Unlock()
	exp, known := l.access[tok]
	return known, known && s.now().Before(exp)
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
