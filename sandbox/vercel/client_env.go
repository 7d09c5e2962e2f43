package vercel

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Environment variables read by ConfigFromEnv.
const (
	// EnvOIDCToken holds a Vercel OIDC token (a JWT), as written by `vercel env pull`.
	EnvOIDCToken = "VERCEL_OIDC_TOKEN"
	// EnvAccessToken holds a Vercel access token; it needs EnvTeamID and EnvProjectID.
	EnvAccessToken = "VERCEL_ACCESS_TOKEN"
	// EnvTeamID holds the team ID; with an OIDC token it overrides the token's owner_id claim.
	EnvTeamID = "VERCEL_TEAM_ID"
	// EnvProjectID holds the project ID; with an OIDC token it overrides the project_id claim.
	EnvProjectID = "VERCEL_PROJECT_ID"
	// EnvAPIURL optionally overrides the API base URL (DefaultBaseURL).
	EnvAPIURL = "SANDKIT_VERCEL_API_URL"
)

// ErrCredentials is wrapped by every error about missing or malformed credentials, from
// ConfigFromEnv and NewClient.
var ErrCredentials = errors.New("vercel credentials")

// credentialsError is a credentials problem whose message is shown as is (it names the variable
// at fault and never holds a token).
type credentialsError struct{ msg string }

func (e *credentialsError) Error() string { return e.msg }
func (e *credentialsError) Unwrap() error { return ErrCredentials }

// ConfigFromEnv builds a Config from the environment, read through getenv (os.Getenv in
// production; an empty value counts as unset).
//
// Credentials come from VERCEL_ACCESS_TOKEN together with VERCEL_TEAM_ID and VERCEL_PROJECT_ID
// when VERCEL_ACCESS_TOKEN is set; otherwise from VERCEL_OIDC_TOKEN, a JWT whose owner_id and
// project_id claims give the team and project (VERCEL_TEAM_ID and VERCEL_PROJECT_ID override
// them when set). The JWT's signature is not verified, since the API does that; its exp claim is
// checked so an expired token is reported before any request. SANDKIT_VERCEL_API_URL, when set,
// becomes BaseURL. Other fields stay zero (NewClient's defaults).
//
// Errors wrap ErrCredentials, name exactly which variable is missing or malformed and what to
// do, and never include a token's value. A token containing whitespace or control characters
// is malformed.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	return configFromEnv(getenv, time.Now())
}

// configFromEnv is ConfigFromEnv with the clock as a parameter.
func configFromEnv(getenv func(string) string, now time.Time) (Config, error) {
	cfg := Config{BaseURL: getenv(EnvAPIURL)}
	if cfg.BaseURL != "" {
		if err := checkBaseURL(cfg.BaseURL); err != nil {
			return Config{}, credErrorf("%s is not a usable API URL: %v", EnvAPIURL, err)
		}
	}
	team, project := getenv(EnvTeamID), getenv(EnvProjectID)

	if tok := getenv(EnvAccessToken); tok != "" {
		if !tokenWellFormed(tok) {
			return Config{}, credErrorf("%s contains whitespace or control characters", EnvAccessToken)
		}
		var missing []string
		if team == "" {
			missing = append(missing, EnvTeamID)
		}
		if project == "" {
			missing = append(missing, EnvProjectID)
		}
		switch len(missing) {
		case 2:
			return Config{}, credErrorf("%s is set but %s and %s are not: an access token needs both (find them in the project's settings)",
				EnvAccessToken, EnvTeamID, EnvProjectID)
		case 1:
			return Config{}, credErrorf("%s is set but %s is not: an access token needs %s and %s (find them in the project's settings)",
				EnvAccessToken, missing[0], EnvTeamID, EnvProjectID)
		}
		cfg.Token, cfg.TeamID, cfg.ProjectID = tok, team, project
		return cfg, nil
	}

	tok := getenv(EnvOIDCToken)
	if tok == "" {
		return Config{}, credErrorf("no Vercel credentials: set %s (vercel env pull) or %s, %s and %s",
			EnvOIDCToken, EnvAccessToken, EnvTeamID, EnvProjectID)
	}
	if !tokenWellFormed(tok) {
		return Config{}, credErrorf("%s contains whitespace or control characters", EnvOIDCToken)
	}
	claims, err := parseOIDCClaims(tok)
	if err != nil {
		return Config{}, err
	}
	if claims.Exp != nil {
		exp := time.Unix(int64(*claims.Exp), 0).UTC()
		if !now.Before(exp) {
			return Config{}, credErrorf("%s expired at %s: run `vercel env pull` again",
				EnvOIDCToken, exp.Format(time.RFC3339))
		}
	}
	if team == "" {
		team = claims.OwnerID
	}
	if project == "" {
		project = claims.ProjectID
	}
	switch {
	case team == "" && project == "":
		return Config{}, credErrorf("%s has no owner_id and no project_id claim, and %s and %s are not set",
			EnvOIDCToken, EnvTeamID, EnvProjectID)
	case team == "":
		return Config{}, credErrorf("%s has no owner_id claim and %s is not set", EnvOIDCToken, EnvTeamID)
	case project == "":
		return Config{}, credErrorf("%s has no project_id claim and %s is not set", EnvOIDCToken, EnvProjectID)
	}
	cfg.Token, cfg.TeamID, cfg.ProjectID = tok, team, project
	return cfg, nil
}

// oidcClaims are the claims of a Vercel OIDC token that the client uses.
type oidcClaims struct {
	OwnerID   string   `json:"owner_id"`
	ProjectID string   `json:"project_id"`
	Exp       *float64 `json:"exp"`
}

// parseOIDCClaims decodes a JWT's payload without verifying its signature. Errors never carry
// any part of the token (nor decoder messages, which could quote it).
func parseOIDCClaims(tok string) (oidcClaims, error) {
	notJWT := credErrorf("%s is not a JWT (expected three dot-separated base64url parts)", EnvOIDCToken)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return oidcClaims{}, notJWT
	}
	var decoded [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
		if err != nil || len(b) == 0 {
			return oidcClaims{}, notJWT
		}
		decoded[i] = b
	}
	var header map[string]any
	if json.Unmarshal(decoded[0], &header) != nil {
		return oidcClaims{}, credErrorf("%s is not a JWT: its header is not a JSON object", EnvOIDCToken)
	}
	var claims oidcClaims
	if json.Unmarshal(decoded[1], &claims) != nil {
		return oidcClaims{}, credErrorf("%s is not a JWT: its payload is not a JSON object with string owner_id/project_id and numeric exp claims", EnvOIDCToken)
	}
	return claims, nil
}

// tokenWellFormed reports whether tok can go into an Authorization header: no whitespace and no
// control characters.
func tokenWellFormed(tok string) bool {
	for _, r := range tok {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// credErrorf makes a *credentialsError.
func credErrorf(format string, args ...any) error {
	return &credentialsError{fmt.Sprintf(format, args...)}
}
