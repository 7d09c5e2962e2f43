package vercel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The bearer token and its renewal.
//
// An access token is sent as it is for the client's life. An OIDC token (a JWT with owner_id or
// exp claims) expires, 12 h after `vercel env pull` for a development token, so the client renews
// it the way the SDK does (@vercel/oidc's getVercelOidcToken, called before each request with a
// 5-minute margin) and by re-reading the file the user names:
//
//  1. Before a request, when less than refreshBuffer of the token's validity remains, the token
//     file (Config.OIDCTokenFile) is looked at: if it changed since it was last read (size or
//     modification time) and holds a token that expires later, that one is used.
//  2. Otherwise, with the Vercel CLI's data directory (Config.CLIDataDir), as @vercel/oidc does:
//     the token cached in com.vercel.token/<project>.json when it has more than refreshBuffer
//     left, else a new one from POST <OIDCRefreshURL>/v1/projects/<project>/token?source=
//     vercel-oidc-refresh&teamId=<team> with the CLI login's token (com.vercel.cli/auth.json)
//     as bearer, saved to that cache. A CLI login that nears its own expiry (auth.json's
//     expiresAt) is first refreshed with its refresh token at the OAuth token endpoint and
//     written back, as @vercel/oidc does (cli_oauth.go). The project and team are the token's project_id and
//     owner_id claims (else .vercel/project.json's projectId and orgId, found from the working
//     directory up, like the SDK).
//  3. A request the API refuses with 401 or 403 is sent once more when 1 or 2 yield a token
//     other than the refused one; after a refusal the token file is read whatever its size and
//     modification time say (a same-length rewrite within the file system's timestamp
//     granularity looks unchanged).
//
// Renewal failures while the token is still valid are not errors (the SDK ignores them too):
// the next request tries again (the token endpoint at most every cliRetryPause for the same
// login). A token past its exp with nothing to renew it fails the request before it is sent,
// with a *TokenExpiredError saying where the token came from, when it expired, why each
// renewal did not help and what to run.

const (
	// refreshBuffer is how long before its exp a token is renewed (the SDK's margin).
	refreshBuffer = 5 * time.Minute
	// DefaultOIDCRefreshURL is the API root @vercel/oidc asks for new OIDC tokens.
	DefaultOIDCRefreshURL = "https://api.vercel.com"
	// cliRetryPause is how long a login token the token endpoint refused is not sent again,
	// unless the API refused the token in use.
	cliRetryPause = 30 * time.Second
	// refreshTimeout bounds one call of the token endpoint.
	refreshTimeout = 30 * time.Second
)

// TokenExpiredError is the failure of a request whose OIDC token has expired and could not be
// renewed. It wraps ErrCredentials, sandbox.ErrUnavailable and, when the API refused the token,
// that *APIError. It never holds a token.
type TokenExpiredError struct {
	// Source is where the token came from: VERCEL_OIDC_TOKEN, a token file's path, or the Vercel
	// CLI login.
	Source string
	// ExpiredAt is the token's exp.
	ExpiredAt time.Time
	// Reasons say why each renewal did not yield a fresh token.
	Reasons []string
	// Fix says what to run.
	Fix string
	// Err is the API's refusal of the token, if a request was sent.
	Err error
}

func (e *TokenExpiredError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vercel: the OIDC token from %s expired at %s and could not be renewed", e.Source, e.ExpiredAt.UTC().Format(time.RFC3339))
	if len(e.Reasons) > 0 {
		b.WriteString(" (" + strings.Join(e.Reasons, "; ") + ")")
	}
	if e.Err != nil {
		b.WriteString("; the API answered: " + strings.TrimPrefix(e.Err.Error(), "vercel: "))
	}
	if e.Fix != "" {
		b.WriteString(". To go on: " + e.Fix)
	}
	return b.String()
}

func (e *TokenExpiredError) Unwrap() []error {
	errs := []error{ErrCredentials, sandbox.ErrUnavailable}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// renewalFix is what to run to go on with an expired OIDC token, given the renewals configured.
func renewalFix(file, cli bool) string {
	var ways []string
	if file {
		ways = append(ways, "run `vercel env pull` in the linked project so that it writes a fresh token to the token file (it is re-read by itself)")
	} else {
		ways = append(ways, fmt.Sprintf("run `vercel env pull` in the linked project and name the file it writes in vercel.oidc_token_file (or %s) to have it re-read by itself, or restart the server with the new %s", EnvOIDCTokenFile, EnvOIDCToken))
	}
	if cli {
		ways = append(ways, "run `vercel login` so that the token is renewed with the Vercel CLI's login")
	} else {
		ways = append(ways, "log in with `vercel login` (as the server's user) so that the token is renewed with the Vercel CLI's login")
	}
	ways = append(ways, fmt.Sprintf("use an access token (%s with %s and %s), which does not expire this way", EnvAccessToken, EnvTeamID, EnvProjectID))
	return strings.Join(ways, "; or ")
}

// credentials hold the bearer token and renew an OIDC one. Safe for concurrent use: renewals
// are serialized, so concurrent requests near expiry make one of them.
type credentials struct {
	oidc bool
	now  func() time.Time
	file *tokenFile // nil: no token file
	cli  *cliLogin  // nil: no CLI-login renewal
	// team and project of the CLI renewal: the first token's claims ("" : from .vercel/project.json).
	team, project string

	mu     sync.Mutex
	token  string
	exp    time.Time // zero: no exp claim (never expires)
	source string
}

// newCredentials makes the credentials of cfg; the CLI renewal sends its requests with c's HTTP
// client and user agent.
func newCredentials(cfg Config, c *Client) *credentials {
	cr := &credentials{token: cfg.Token, now: time.Now, source: cfg.TokenSource}
	claims, err := parseOIDCClaims(cfg.Token, "")
	if err != nil || claims.OwnerID == "" && claims.Exp == nil {
		return cr // an access token
	}
	cr.oidc, cr.exp, cr.team, cr.project = true, claims.expiry(), claims.OwnerID, claims.ProjectID
	if cr.source == "" {
		cr.source = "the configured OIDC token"
	}
	if cfg.OIDCTokenFile != "" {
		cr.file = &tokenFile{path: cfg.OIDCTokenFile}
	}
	if cfg.CLIDataDir != "" {
		u := cfg.OIDCRefreshURL
		if u == "" {
			u = DefaultOIDCRefreshURL
		}
		iss := cfg.OAuthIssuerURL
		if iss == "" {
			iss = DefaultOAuthIssuerURL
		}
		cr.cli = &cliLogin{dataDir: cfg.CLIDataDir, url: strings.TrimRight(u, "/"), issuer: strings.TrimRight(iss, "/"),
			http: c.http, userAgent: c.userAgent}
	}
	return cr
}

// current returns the token to send, renewing it first when it nears its exp. It fails with a
// *TokenExpiredError when the token has expired and nothing renewed it.
func (cr *credentials) current(ctx context.Context) (string, error) {
	if !cr.oidc {
		return cr.token, nil
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.exp.IsZero() || cr.exp.Sub(cr.now()) > refreshBuffer {
		return cr.token, nil
	}
	reasons := cr.renewLocked(ctx, "")
	if reasons != nil && !cr.now().Before(cr.exp) {
		return "", cr.expiredLocked(reasons, nil)
	}
	return cr.token, nil
}

// renew is called after the API refused the token refused with a 401 or 403. It returns a
// different token to retry with, or "" when there is none; then, when the token in use has
// expired, a *TokenExpiredError wrapping refusal.
func (cr *credentials) renew(ctx context.Context, refused string, refusal error) (string, error) {
	if !cr.oidc {
		return "", nil
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.token != refused {
		return cr.token, nil // renewed meanwhile
	}
	reasons := cr.renewLocked(ctx, refused)
	if reasons == nil {
		return cr.token, nil
	}
	if !cr.exp.IsZero() && !cr.now().Before(cr.exp) {
		return "", cr.expiredLocked(reasons, refusal)
	}
	return "", nil
}

// renewLocked tries the token file, then the CLI login. It returns nil when it adopted a new
// token, else why neither helped. refused is the token the API refused ("" when none was).
func (cr *credentials) renewLocked(ctx context.Context, refused string) []string {
	var reasons []string
	if cr.file != nil {
		tok, err := cr.file.readIfChanged(refused != "")
		switch {
		case err != nil:
			reasons = append(reasons, err.Error())
		case tok == "":
			reasons = append(reasons, fmt.Sprintf("the token file %s has not changed since it was read", cr.file.path))
		default:
			why := cr.adoptLocked(tok, cr.file.path, refused != "")
			if why == "" {
				return nil
			}
			reasons = append(reasons, "the token file "+why)
		}
	}
	if cr.cli != nil {
		tok, err := cr.cli.token(ctx, cliRequest{project: cr.project, team: cr.team, refused: refused, now: cr.now()})
		if err != nil {
			reasons = append(reasons, err.Error())
		} else {
			why := cr.adoptLocked(tok, "the Vercel CLI login", refused != "")
			if why == "" {
				return nil
			}
			reasons = append(reasons, "the Vercel CLI login's renewal "+why)
		}
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no token file is configured and the Vercel CLI's data directory is unknown")
	}
	return reasons
}

// adoptLocked makes tok the token in use when it is a different, unexpired OIDC token that
// expires later than the one in use (or any such token after a refusal). Otherwise it says why
// not, in words that follow the source's name ("holds ...").
func (cr *credentials) adoptLocked(tok, source string, refused bool) string {
	if !tokenWellFormed(tok) {
		return fmt.Sprintf("%s holds a token with whitespace or control characters", source)
	}
	claims, err := parseOIDCClaims(tok, source)
	if err != nil {
		return strings.TrimPrefix(err.Error(), source+" ")
	}
	exp, now := claims.expiry(), cr.now()
	switch {
	case tok == cr.token:
		return fmt.Sprintf("%s holds the token already in use", source)
	case !exp.IsZero() && !now.Before(exp):
		return fmt.Sprintf("%s holds a token that expired at %s", source, exp.Format(time.RFC3339))
	case !refused && !cr.exp.IsZero() && !exp.IsZero() && !exp.After(cr.exp):
		return fmt.Sprintf("%s holds a token that expires at %s, no later than the one in use", source, exp.Format(time.RFC3339))
	}
	cr.token, cr.exp, cr.source = tok, exp, source
	return ""
}

func (cr *credentials) expiredLocked(reasons []string, refusal error) *TokenExpiredError {
	return &TokenExpiredError{Source: cr.source, ExpiredAt: cr.exp, Reasons: reasons,
		Fix: renewalFix(cr.file != nil, cr.cli != nil && cliLoginPresent(cr.cli.dataDir)), Err: refusal}
}

// TokenStatus describes the client's bearer token and how it is renewed (doctor shows it). It
// never holds a token.
type TokenStatus struct {
	// OIDC is set for an OIDC token; an access token does not expire this way.
	OIDC bool
	// Source is where the token in use came from.
	Source string
	// ExpiresAt is the token's exp (zero: none).
	ExpiresAt time.Time
	// Renewal lists the renewals that look usable now; Problems why the others would not work.
	Renewal  []string
	Problems []string
	// Fix says what to run when Renewal is empty.
	Fix string
}

// TokenStatus reports the token in use and how it would be renewed, looking at the token file
// and the CLI login without sending anything.
func (c *Client) TokenStatus() TokenStatus {
	cr := c.creds
	if !cr.oidc {
		return TokenStatus{Source: "an access token"}
	}
	cr.mu.Lock()
	st := TokenStatus{OIDC: true, Source: cr.source, ExpiresAt: cr.exp}
	cr.mu.Unlock()
	if cr.file == nil {
		st.Problems = append(st.Problems, fmt.Sprintf("no token file is configured (vercel.oidc_token_file or %s)", EnvOIDCTokenFile))
	} else if tok, err := readTokenFile(cr.file.path); err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else if claims, err := parseOIDCClaims(tok, cr.file.path); err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else {
		what := fmt.Sprintf("re-read from %s when it changes", cr.file.path)
		if exp := claims.expiry(); !exp.IsZero() {
			what += fmt.Sprintf(" (it now holds a token that expires at %s)", exp.Format(time.RFC3339))
		}
		st.Renewal = append(st.Renewal, what)
	}
	if cr.cli == nil {
		st.Problems = append(st.Problems, "the Vercel CLI's data directory is unknown (no HOME or XDG_DATA_HOME)")
	} else if what, err := cr.cli.status(cr.project, cr.team, c.now()); err != nil {
		st.Problems = append(st.Problems, err.Error())
	} else {
		st.Renewal = append(st.Renewal, what)
	}
	if len(st.Renewal) == 0 {
		st.Fix = renewalFix(cr.file != nil, false)
	}
	return st
}

// now is the clock of token expiry.
func (c *Client) now() time.Time { return c.creds.now() }
