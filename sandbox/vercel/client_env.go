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
	// EnvOIDCTokenFile optionally names the file `vercel env pull` writes (e.g. .env.local), from
	// which the OIDC token is re-read when it nears expiry or is refused (Config.OIDCTokenFile).
	EnvOIDCTokenFile = "SANDKIT_VERCEL_OIDC_TOKEN_FILE"
	// EnvOIDCRefreshURL optionally overrides the API root of the OIDC token endpoint
	// (DefaultOIDCRefreshURL), for tests and proxies.
	EnvOIDCRefreshURL = "SANDKIT_VERCEL_OIDC_REFRESH_URL"
	// EnvOAuthIssuerURL optionally overrides the OAuth issuer at which the Vercel CLI's login is
	// refreshed (DefaultOAuthIssuerURL), for tests and proxies.
	EnvOAuthIssuerURL = "SANDKIT_VERCEL_OAUTH_ISSUER_URL"
)

// ErrCredentials is wrapped by every error about missing or malformed credentials, from
// ConfigFromEnv and newClient.
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
// when VERCEL_ACCESS_TOKEN is set; otherwise from an OIDC token, a JWT whose owner_id and
// project_id claims give the team and project (VERCEL_TEAM_ID and VERCEL_PROJECT_ID override
// them when set). The OIDC token is VERCEL_OIDC_TOKEN's, or the one in the file
// SANDKIT_VERCEL_OIDC_TOKEN_FILE names (a .env file as `vercel env pull` writes it, or the token
// alone) when that one expires later or VERCEL_OIDC_TOKEN is unset; the file becomes
// OIDCTokenFile. With an OIDC token, CLIDataDir is the Vercel CLI's data directory as
// @vercel/oidc finds it ($XDG_DATA_HOME, else ~/.local/share on Linux, ~/Library/Application
// Support on macOS), so the client renews the token with the CLI's login like the SDK does, and
// SANDKIT_VERCEL_OIDC_REFRESH_URL and SANDKIT_VERCEL_OAUTH_ISSUER_URL, when set, become
// OIDCRefreshURL and OAuthIssuerURL. The JWT's signature is
// not verified, since the API does that; its exp claim is checked, so a token that has expired
// with nothing to renew it (no token file, no CLI login) is reported before any request.
// SANDKIT_VERCEL_API_URL, when set, becomes BaseURL. Other fields stay zero (newClient's
// defaults).
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

	tok, source, file := getenv(EnvOIDCToken), EnvOIDCToken, getenv(EnvOIDCTokenFile)
	if tok != "" && !tokenWellFormed(tok) {
		return Config{}, credErrorf("%s contains whitespace or control characters", EnvOIDCToken)
	}
	if file != "" {
		ft, err := readTokenFile(file)
		switch {
		case err != nil && tok == "":
			return Config{}, credErrorf("%s: %v", EnvOIDCTokenFile, err)
		case err == nil && (tok == "" || expiresLater(ft, tok)):
			tok, source = ft, file
		}
	}
	if tok == "" {
		return Config{}, credErrorf("no Vercel credentials: set %s (vercel env pull) or %s, %s and %s",
			EnvOIDCToken, EnvAccessToken, EnvTeamID, EnvProjectID)
	}
	claims, err := parseOIDCClaims(tok, source)
	if err != nil {
		return Config{}, err
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
			source, EnvTeamID, EnvProjectID)
	case team == "":
		return Config{}, credErrorf("%s has no owner_id claim and %s is not set", source, EnvTeamID)
	case project == "":
		return Config{}, credErrorf("%s has no project_id claim and %s is not set", source, EnvProjectID)
	}
	cfg.Token, cfg.TeamID, cfg.ProjectID, cfg.TokenSource = tok, team, project, source
	cfg.OIDCTokenFile, cfg.CLIDataDir, cfg.OIDCRefreshURL = file, cliDataDir(getenv), getenv(EnvOIDCRefreshURL)
	if cfg.OIDCRefreshURL != "" {
		if err := checkBaseURL(cfg.OIDCRefreshURL); err != nil {
			return Config{}, credErrorf("%s is not a usable API URL: %v", EnvOIDCRefreshURL, err)
		}
	}
	if cfg.OAuthIssuerURL = getenv(EnvOAuthIssuerURL); cfg.OAuthIssuerURL != "" {
		if err := checkBaseURL(cfg.OAuthIssuerURL); err != nil {
			return Config{}, credErrorf("%s is not a usable issuer URL: %v", EnvOAuthIssuerURL, err)
		}
	}
	if exp := claims.expiry(); !exp.IsZero() && !now.Before(exp) {
		// Expired already: fine when something may renew it before the first request.
		if file == "" && !cliLoginPresent(cfg.CLIDataDir) {
			return Config{}, &TokenExpiredError{Source: source, ExpiredAt: exp,
				Reasons: []string{"no token file is configured and there is no Vercel CLI login" + cliLoginWhere(cfg.CLIDataDir)},
				Fix:     renewalFix(false, false)}
		}
	}
	return cfg, nil
}

// expiresLater reports whether token a expires after token b (a token without exp never
// expires; an unreadable one counts as expired).
func expiresLater(a, b string) bool {
	ca, errA := parseOIDCClaims(a, "")
	cb, errB := parseOIDCClaims(b, "")
	switch {
	case errA != nil:
		return false
	case errB != nil:
		return true
	}
	ea, eb := ca.expiry(), cb.expiry()
	return !eb.IsZero() && (ea.IsZero() || ea.After(eb))
}

// oidcClaims are the claims of a Vercel OIDC token that the client uses.
type oidcClaims struct {
	OwnerID   string   `json:"owner_id"`
	ProjectID string   `json:"project_id"`
	Exp       *float64 `json:"exp"`
}

// expiry is the exp claim as a time; zero when there is none.
func (c oidcClaims) expiry() time.Time {
	if c.Exp == nil {
		return time.Time{}
	}
	return time.Unix(int64(*c.Exp), 0).UTC()
}

// parseOIDCClaims decodes a JWT's payload without verifying its signature; source names the
// token in errors ("" means VERCEL_OIDC_TOKEN). Errors never carry any part of the token (nor
// decoder messages, which could quote it).
func parseOIDCClaims(tok, source string) (oidcClaims, error) {
	if source == "" {
		source = EnvOIDCToken
	}
	notJWT := credErrorf("%s is not a JWT (expected three dot-separated base64url parts)", source)
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
		return oidcClaims{}, credErrorf("%s is not a JWT: its header is not a JSON object", source)
	}
	var claims oidcClaims
	if json.Unmarshal(decoded[1], &claims) != nil {
		return oidcClaims{}, credErrorf("%s is not a JWT: its payload is not a JSON object with string owner_id/project_id and numeric exp claims", source)
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
