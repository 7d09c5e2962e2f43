package vercelfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// OIDC tokens (reference §2.2). Vercel's OIDC tokens are JWTs whose owner_id and project_id
// claims name the team and project, valid for 12 h when `vercel env pull` writes them. The fake
// issues its own (HS256 under a key of its own, where Vercel signs with RS256): IssueOIDCToken
// for tests, and POST /v1/projects/{project}/token, the endpoint @vercel/oidc's refresh calls
// (https://api.vercel.com/v1/projects/{projectId}/token?source=vercel-oidc-refresh&teamId=…,
// bearer: the Vercel CLI login's token from auth.json, no body; answered {token}). The Sandbox
// endpoints accept such a token until its exp by the fake's clock; past it, or with a bad
// signature, they answer 403 forbidden with invalidToken, as for a wrong token.

// DefaultOIDCTokenTTL is the lifetime of the OIDC tokens the fake issues when
// Options.OIDCTokenTTL is zero: that of the development tokens `vercel env pull` writes.
const DefaultOIDCTokenTTL = 12 * time.Hour

// oidcClaims are the claims of the tokens the fake issues (those Vercel's carry that clients read).
type oidcClaims struct {
	Iss         string `json:"iss"`
	Sub         string `json:"sub"`
	Aud         string `json:"aud"`
	Owner       string `json:"owner"`
	OwnerID     string `json:"owner_id"`
	Project     string `json:"project"`
	ProjectID   string `json:"project_id"`
	Environment string `json:"environment"`
	Iat         int64  `json:"iat"`
	Nbf         int64  `json:"nbf"`
	Exp         int64  `json:"exp"`
}

// now is the fake's clock.
func (s *Server) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock()
	}
	return time.Now()
}

// IssueOIDCToken returns a new OIDC token for the fake's team and project that the fake accepts
// until ttl from now by its clock (zero: Options.OIDCTokenTTL). A negative ttl makes a token
// that has already expired.
func (s *Server) IssueOIDCToken(ttl time.Duration) string {
	if ttl == 0 {
		ttl = s.opts.OIDCTokenTTL
	}
	now := s.now()
	slug := s.opts.TeamSlug
	if slug == "" {
		slug = s.opts.TeamID
	}
	project := s.opts.ProjectName
	if project == "" {
		project = s.opts.ProjectID
	}
	c := oidcClaims{
		Iss: "https://oidc.vercel.com/" + slug, Aud: "https://vercel.com/" + slug,
		Sub:   "owner:" + slug + ":project:" + project + ":environment:development",
		Owner: slug, OwnerID: s.opts.TeamID, Project: project, ProjectID: s.opts.ProjectID,
		Environment: "development", Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(ttl).Unix(),
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "vercelfake"})
	payload, _ := json.Marshal(c)
	signing := b64(header) + "." + b64(payload)
	return signing + "." + b64(s.sign(signing))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *Server) sign(signing string) []byte {
	m := hmac.New(sha256.New, s.oidcKey)
	m.Write([]byte(signing))
	return m.Sum(nil)
}

// checkOIDCToken reports whether tok is a token the fake issued (ok), and, if it is, an error
// when it has expired by the fake's clock.
func (s *Server) checkOIDCToken(tok string) (ok bool, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false, nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.sign(parts[0]+"."+parts[1])) {
		return false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false, nil
	}
	var c oidcClaims
	if json.Unmarshal(raw, &c) != nil {
		return false, nil
	}
	if !s.now().Before(time.Unix(c.Exp, 0)) {
		return true, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "Not authorized: the OIDC token has expired", Extra: map[string]any{"invalidToken": true}}
	}
	return true, nil
}

// isTokenEndpoint reports whether p is the OIDC token endpoint's path, which has its own
// authorization (a user's token, not an OIDC one).
func isTokenEndpoint(p string) bool {
	rest, ok := strings.CutPrefix(p, "/v1/projects/")
	return ok && strings.HasSuffix(rest, "/token") && strings.Count(rest, "/") == 1
}

// handleOIDCToken answers POST /v1/projects/{project}/token: a new OIDC token for the project,
// for the bearer of a user token (Options.CLIToken, the CLI login's, a login token the OAuth
// endpoint issued until its expiry, or Options.Token); an OIDC
// token is refused (it would renew itself for ever). ?teamId= scopes it like any request; the
// project is its id or name. The request has no body (@vercel/oidc sends none).
func (s *Server) handleOIDCToken(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	token, _ := strings.CutPrefix(auth, "Bearer ")
	switch {
	case auth == "":
		writeError(w, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "The request is missing an authentication token", Extra: map[string]any{"missingToken": true}})
		return
	case token == "" || token != s.opts.CLIToken && token != s.opts.Token:
		known, valid := s.loginValid(token)
		if !valid {
			msg := "Not authorized"
			if known {
				msg = "Not authorized: the token has expired"
			}
			writeError(w, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
				Message: msg, Extra: map[string]any{"invalidToken": true}})
			return
		}
	}
	if err := s.checkTeam(r); err != nil {
		writeError(w, err)
		return
	}
	if err := s.checkProject("projectId", r.PathValue("project")); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": s.IssueOIDCToken(0)})
}
