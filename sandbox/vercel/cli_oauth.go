package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The OAuth refresh of the Vercel CLI's login, as @vercel/oidc 3.2.0 does it (getVercelToken in
// token-util.js, with oauth.js and auth-config.js) before it uses the login for the OIDC token
// endpoint:
//
//   - auth.json (com.vercel.cli/ under the data directory) holds token, and, from a login of a
//     recent CLI, expiresAt (seconds since the epoch) and refreshToken. A login without
//     expiresAt never expires; one whose expiresAt is less than the margin away (the 5 minutes
//     @vercel/sandbox passes as expirationBufferMs, refreshBuffer here) is refreshed.
//   - The token endpoint is the token_endpoint of the issuer's discovery document, GET
//     https://vercel.com/.well-known/openid-configuration (remembered once read).
//   - The refresh is POST <token_endpoint>, Content-Type application/x-www-form-urlencoded,
//     client_id=<the Vercel CLI's OAuth client>&grant_type=refresh_token&refresh_token=<…>.
//     The answer is {access_token, token_type: "Bearer", expires_in (seconds), refresh_token?};
//     a refusal is RFC 6749's {error, error_description?}.
//   - auth.json is then written with token = access_token, expiresAt = now + expires_in and
//     refreshToken = the new refresh token, owner-only (mode 0600).
//
// Where this differs from the SDK, on purpose: auth.json is replaced atomically (a temporary
// file renamed over it, through a symlink to its target) and keeps its other fields (the CLI's
// "// Note" lines); the old refresh token is kept when the answer has none (the SDK drops it;
// RFC 6749 §6 lets the client keep using it); auth.json is not overwritten when it changed
// meanwhile (a `vercel login`); and a failed refresh leaves auth.json as it was, where the SDK
// empties it (logging the CLI out, even after a network error). A login that is still valid
// but within the margin is used as it is when it cannot be refreshed.

const (
	// DefaultOAuthIssuerURL is the OAuth issuer whose discovery document @vercel/oidc reads.
	DefaultOAuthIssuerURL = "https://vercel.com"
	// vercelCLIClientID is the Vercel CLI's OAuth client, the client_id @vercel/oidc sends.
	vercelCLIClientID = "cl_HYyOPBNtFMfHhaUn9L4QPfTZz6TP47bp"
)

// unsavedLogin is a refreshed login that could not be written to auth.json, used instead of the
// file's while the file still holds the login it replaced (whose refresh token may no longer be
// valid).
type unsavedLogin struct {
	replaced string // the refresh token of the login it replaced
	auth     authFile
}

// oauthTokens is the token endpoint's answer to a refresh.
type oauthTokens struct {
	AccessToken  string   `json:"access_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    *float64 `json:"expires_in"`
	RefreshToken string   `json:"refresh_token"`
}

// loginExpiredError says the CLI login expired and why it was not refreshed.
func loginExpiredError(path string, exp time.Time, why string) error {
	return fmt.Errorf("the Vercel CLI login at %s expired at %s and %s; run `vercel login`", path, exp.Format(time.RFC3339), why)
}

// loginToken returns the CLI login's token for the OIDC token endpoint, refreshing the login
// first when it nears its expiry. Called with l.mu held.
func (l *cliLogin) loginToken(ctx context.Context, now time.Time) (string, error) {
	a, raw, err := l.readAuth()
	if err != nil {
		return "", err
	}
	if u := l.unsaved; u != nil {
		if a.RefreshToken == u.replaced {
			a = u.auth
		} else {
			l.unsaved = nil // auth.json changed since
		}
	}
	exp := a.expiry()
	if exp.IsZero() || exp.Sub(now) >= refreshBuffer {
		return a.Token, nil
	}
	p := cliAuthPath(l.dataDir)
	expired := !now.Before(exp)
	if a.RefreshToken == "" {
		if !expired {
			return a.Token, nil
		}
		return "", loginExpiredError(p, exp, "holds no refresh token to renew it")
	}
	var tokens oauthTokens
	if a.RefreshToken == l.failedRefresh && now.Sub(l.failedRefreshAt) < cliRetryPause {
		err = l.failedRefreshErr
	} else {
		tokens, err = l.refresh(ctx, a.RefreshToken)
	}
	if err != nil {
		l.failedRefresh, l.failedRefreshAt, l.failedRefreshErr = a.RefreshToken, now, err
		if !expired {
			return a.Token, nil
		}
		return "", loginExpiredError(p, exp, "could not be refreshed: "+strings.TrimSuffix(err.Error(), "."))
	}
	l.failedRefresh = ""
	expiresAt := float64(now.Unix() + int64(*tokens.ExpiresIn))
	next := authFile{Token: tokens.AccessToken, ExpiresAt: &expiresAt, RefreshToken: tokens.RefreshToken}
	if next.RefreshToken == "" {
		next.RefreshToken = a.RefreshToken
	}
	switch err := writeAuth(p, raw, next); {
	case err == nil, errors.Is(err, errAuthChanged):
		l.unsaved = nil
	default:
		l.unsaved = &unsavedLogin{replaced: a.RefreshToken, auth: next}
	}
	return next.Token, nil
}

// refresh asks the issuer's token endpoint for a new login with the refresh token, as
// @vercel/oidc does. Errors never hold a token.
func (l *cliLogin) refresh(ctx context.Context, refreshToken string) (oauthTokens, error) {
	endpoint, err := l.tokenEndpoint(ctx)
	if err != nil {
		return oauthTokens{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	form := url.Values{"client_id": {vercelCLIClientID}, "grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", l.userAgent)
	resp, err := l.http.Do(req)
	if err != nil {
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s could not be reached: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s: reading its answer: %w", endpoint, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		what := "HTTP " + strconv.Itoa(resp.StatusCode)
		if json.Unmarshal(bytes.TrimSpace(data), &e) == nil && e.Error != "" {
			what = oauthText(e.Error, refreshToken) + " (" + what + ")"
			if e.Description != "" {
				what += ": " + oauthText(e.Description, refreshToken)
			}
		}
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s refused the login's refresh token: %s", endpoint, what)
	}
	var t oauthTokens
	switch {
	case json.Unmarshal(bytes.TrimSpace(data), &t) != nil:
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s answered something other than a token response", endpoint)
	case t.AccessToken == "" || !tokenWellFormed(t.AccessToken):
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s answered without a usable access_token", endpoint)
	case !strings.EqualFold(t.TokenType, "Bearer"):
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s answered token_type %q, not Bearer", endpoint, oauthText(t.TokenType, refreshToken))
	case t.ExpiresIn == nil:
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s answered without expires_in", endpoint)
	case t.RefreshToken != "" && !tokenWellFormed(t.RefreshToken):
		return oauthTokens{}, fmt.Errorf("the OAuth token endpoint %s answered a refresh_token with whitespace or control characters", endpoint)
	}
	return t, nil
}

// oauthText is s from the token endpoint, shortened, without the refresh token.
func oauthText(s, refreshToken string) string {
	s = strings.ReplaceAll(s, refreshToken, "…")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// tokenEndpoint returns the token_endpoint of the issuer's discovery document
// (<issuer>/.well-known/openid-configuration), read once.
func (l *cliLogin) tokenEndpoint(ctx context.Context) (string, error) {
	if l.oauthEndpoint != "" {
		return l.oauthEndpoint, nil
	}
	doc := l.issuer + "/.well-known/openid-configuration"
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, doc, http.NoBody)
	if err != nil {
		return "", fmt.Errorf("the OAuth discovery document %s: %w", doc, err)
	}
	req.Header.Set("User-Agent", l.userAgent)
	resp, err := l.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("the OAuth discovery document %s could not be fetched: %w", doc, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("the OAuth discovery document %s could not be fetched: HTTP %d", doc, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return "", fmt.Errorf("the OAuth discovery document %s: %w", doc, err)
	}
	var md struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if json.Unmarshal(bytes.TrimSpace(data), &md) != nil || md.TokenEndpoint == "" {
		return "", fmt.Errorf("the OAuth discovery document %s names no token_endpoint", doc)
	}
	u, err := url.Parse(md.TokenEndpoint)
	switch {
	case err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return "", fmt.Errorf("the OAuth discovery document %s names a token_endpoint that is not an http(s) URL", doc)
	case u.Scheme == "http" && strings.HasPrefix(l.issuer, "https:"):
		// The refresh token is not sent in clear text because an https issuer said so.
		return "", fmt.Errorf("the OAuth discovery document %s names a token_endpoint without TLS", doc)
	}
	l.oauthEndpoint = md.TokenEndpoint
	return md.TokenEndpoint, nil
}

// renameFile is os.Rename (tests make it fail).
var renameFile = os.Rename

// errAuthChanged: auth.json changed between its reading and the refresh's end, so it was left
// as it is.
var errAuthChanged = errors.New("auth.json changed meanwhile")

// writeAuth replaces auth.json at path (or its target, when it is a symlink) with the refreshed
// login next, keeping the other fields of old (the content read before the refresh), owner-only
// and atomically. It fails with errAuthChanged, writing nothing, when the file no longer holds
// old.
func writeAuth(path string, old []byte, next authFile) error {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	fields := map[string]json.RawMessage{}
	_ = json.Unmarshal(old, &fields)
	for k, v := range map[string]any{"token": next.Token, "expiresAt": int64(*next.ExpiresAt), "refreshToken": next.RefreshToken} {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fields[k] = raw
	}
	data, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return err
	}
	if cur, err := os.ReadFile(path); err != nil || !bytes.Equal(cur, old) {
		return errAuthChanged
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".auth.json.*.tmp")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(data, '\n'))
	merr := tmp.Chmod(0o600)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := renameFile(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
