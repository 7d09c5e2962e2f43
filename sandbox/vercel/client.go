package vercel

// The REST client for the Vercel Sandbox API (v2 named sandboxes and sessions). This file holds
// the configuration and the Client type; the endpoints live in client_*.go. Every request
// carries the bearer token, teamId first in the query, a JSON content type (also on GETs and
// bodiless POSTs), and the project named the way each endpoint wants it.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// DefaultBaseURL is the API root the official SDK talks to. Paths such as "/v2/sandboxes" are
// appended to it; https://api.vercel.com serves the same paths.
const DefaultBaseURL = "https://vercel.com/api"

// Defaults applied by newClient to zero Config fields.
const (
	defaultRetries       = 2
	defaultMinBackoff    = 400 * time.Millisecond
	defaultMaxRetryAfter = 20 * time.Second
	// defaultHeaderTimeout bounds the wait for response headers of short calls; streams, waits,
	// stops and snapshots are exempt (they legitimately take minutes).
	defaultHeaderTimeout = 60 * time.Second
)

// PolicyShape selects how a custom network policy is serialized in requests (allow-all and
// deny-all read the same in both). The API documents two request shapes; the newest SDK (3.5)
// sends only the V2 one, and production has been seen rejecting it with a 400, so the default
// tries both and a switch forces one.
type PolicyShape int

const (
	// PolicyAuto, the zero value and the default, sends the V2 shape, as the newest SDK does. A 400
	// whose message names a property of the shape sent ("should NOT have additional property
	// `allow`") is retried once in the other shape; the shape that was accepted is then used first
	// for every later request of the client (that is, for its API address) while it lives.
	PolicyAuto PolicyShape = iota
	// PolicyV2 always sends {"allow":[...] | {domain: rules},"subnets":{...}}, the shape SDK
	// 2.x/3.x send.
	PolicyV2
	// PolicyLegacy always sends {"mode":"custom","allowedDomains":[...],...}, the shape SDK 1.x
	// sends and every API generation documents.
	PolicyLegacy
)

// String is "auto", "v2" or "legacy".
func (s PolicyShape) String() string {
	switch s {
	case PolicyV2:
		return "v2"
	case PolicyLegacy:
		return "legacy"
	}
	return "auto"
}

// Config configures a Client. Token, TeamID and ProjectID are required; every other zero field
// takes the default named in its comment.
type Config struct {
	// BaseURL is the API root, an http(s) URL; "" means DefaultBaseURL. Paths such as
	// "/v2/sandboxes" are appended to it.
	BaseURL string
	// Token is the bearer token: a Vercel access token or an OIDC JWT. It is sent only in the
	// Authorization header and never appears in errors or logs. An OIDC token (a JWT with an
	// owner_id or exp claim) is renewed as it nears its exp, or when the API refuses it, from
	// OIDCTokenFile and with the CLI login under CLIDataDir (see TokenExpiredError for when
	// neither can); an access token is used as it is.
	Token string
	// TokenSource names where Token came from in messages (VERCEL_OIDC_TOKEN, a file's path);
	// "" reads "the configured OIDC token".
	TokenSource string
	// OIDCTokenFile is a file the OIDC token is re-read from when the token in use nears its
	// exp and the file changed (size or modification time), and whenever the token is refused: the .env file
	// `vercel env pull` writes (its VERCEL_OIDC_TOKEN=… line), or a file holding only the
	// token. "" means none.
	OIDCTokenFile string
	// CLIDataDir is the Vercel CLI's data directory (~/.local/share on Linux), where its login
	// (com.vercel.cli/auth.json) and @vercel/oidc's token cache (com.vercel.token/) are. When
	// set, an OIDC token is renewed like @vercel/oidc does it: from the cache, else from the
	// token endpoint with the login's token. "" turns that renewal off.
	CLIDataDir string
	// OIDCRefreshURL is the API root of the token endpoint (POST
	// /v1/projects/{project}/token); "" means DefaultOIDCRefreshURL, where @vercel/oidc sends it.
	OIDCRefreshURL string
	// OAuthIssuerURL is the OAuth issuer whose discovery document
	// (/.well-known/openid-configuration) names the token endpoint where an expiring CLI login
	// is refreshed with its refresh token, as @vercel/oidc does; "" means DefaultOAuthIssuerURL.
	OAuthIssuerURL string
	// TeamID is sent as the first query parameter, teamId, on every request.
	TeamID string
	// ProjectID names the project: "projectId" in the create body, ?projectId= on the
	// named-sandbox GET and DELETE, ?project= on the list endpoints.
	ProjectID string
	// HTTPClient sends the requests. nil means a client without an overall timeout (streams and
	// waits are long) whose dialer and TLS handshake each time out after 10s, with keep-alives.
	// Whatever the client, short calls give up waiting for response headers after 60s (and are
	// retried when they are idempotent); streams, waits, stops and snapshots are exempt.
	HTTPClient *http.Client
	// UserAgent is sent as User-Agent; "" means
	// "sandkit-mcp/<version> vercel-sandbox-go (Go/<version>; <os>/<arch>)".
	UserAgent string
	// PolicyShape selects how a network policy is serialized; the zero value is PolicyAuto.
	PolicyShape PolicyShape
	// Retries is the number of extra attempts for retryable failures: 0 means the default, 2;
	// a negative value means none.
	Retries int
	// MinBackoff is the first retry delay (then doubled each attempt, each delay multiplied by a
	// random factor between 1 and 2); 0 means 400ms.
	MinBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After of a 429 that is waited out; a 429 asking for
	// longer is returned at once. 0 means 20s.
	MaxRetryAfter time.Duration
	// Logger receives debug records about retries and recovered streams; nil discards them.
	// Tokens, headers and request bodies are never logged.
	Logger *slog.Logger
	// Sleep waits between attempts; it returns ctx's error if ctx ends first. nil means a real
	// timer. It exists for tests.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client talks to the Vercel Sandbox API. It is safe for concurrent use. A Provider makes its
// own (Provider.Client returns it); of its methods only those used outside this package are
// exported (ListSandboxes and TokenStatus for doctor, GetSession for tests): the rest of the
// wire API is the provider's.
type Client struct {
	base      string // without a trailing slash
	creds     *credentials
	team      string
	project   string
	http      *http.Client
	userAgent string
	// shapes is the network-policy shape in force: forced by Config.PolicyShape, or learnt.
	shapes        *policyShapes
	retries       int
	minBackoff    time.Duration
	maxRetryAfter time.Duration
	log           *slog.Logger
	sleepFn       func(ctx context.Context, d time.Duration) error
	// headerTimeout bounds the wait for response headers of short calls; 0 disables it.
	headerTimeout time.Duration
	// pollInterval is how often createSandbox polls a session that is still pending.
	pollInterval time.Duration
}

// newClient checks cfg and returns a Client. It fails when the token, team or project is empty
// (errors wrapping ErrCredentials, never showing the token) or when BaseURL is not an http(s)
// URL.
func newClient(cfg Config) (*Client, error) {
	switch {
	case cfg.Token == "":
		return nil, &credentialsError{"vercel: no token configured"}
	case !tokenWellFormed(cfg.Token):
		return nil, &credentialsError{"vercel: the token contains whitespace or control characters"}
	case cfg.TeamID == "":
		return nil, &credentialsError{"vercel: no team ID configured"}
	case cfg.ProjectID == "":
		return nil, &credentialsError{"vercel: no project ID configured"}
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if err := checkBaseURL(base); err != nil {
		return nil, fmt.Errorf("vercel: base URL %q: %w", base, err)
	}
	c := &Client{
		base: strings.TrimRight(base, "/"),

		team:          cfg.TeamID,
		project:       cfg.ProjectID,
		http:          cfg.HTTPClient,
		userAgent:     cfg.UserAgent,
		shapes:        newPolicyShapes(cfg.PolicyShape),
		retries:       cfg.Retries,
		minBackoff:    cfg.MinBackoff,
		maxRetryAfter: cfg.MaxRetryAfter,
		log:           cfg.Logger,
		sleepFn:       cfg.Sleep,
		headerTimeout: defaultHeaderTimeout,
		pollInterval:  250 * time.Millisecond,
	}
	if c.http == nil {
		c.http = defaultHTTPClient()
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent()
	}
	if cfg.OIDCRefreshURL != "" {
		if err := checkBaseURL(cfg.OIDCRefreshURL); err != nil {
			return nil, fmt.Errorf("vercel: token endpoint URL %q: %w", cfg.OIDCRefreshURL, err)
		}
	}
	if cfg.OAuthIssuerURL != "" {
		if err := checkBaseURL(cfg.OAuthIssuerURL); err != nil {
			return nil, fmt.Errorf("vercel: OAuth issuer URL %q: %w", cfg.OAuthIssuerURL, err)
		}
	}
	c.creds = newCredentials(cfg, c)
	switch {
	case c.retries == 0:
		c.retries = defaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.minBackoff <= 0 {
		c.minBackoff = defaultMinBackoff
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = defaultMaxRetryAfter
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.sleepFn == nil {
		c.sleepFn = sleepContext
	}
	return c, nil
}

// checkBaseURL accepts absolute http and https URLs with a host and no query or fragment.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("not an http(s) URL")
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must not carry user info, a query or a fragment")
	}
	return nil
}

// defaultHTTPClient has no overall timeout (log streams and waits last minutes) but bounds
// dialing and the TLS handshake; the response-header timeout is applied per request.
func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.DisableKeepAlives = false
	return &http.Client{Transport: tr}
}

// defaultUserAgent is "sandkit-mcp/<ver> vercel-sandbox-go (Go/<ver>; <os>/<arch>)".
func defaultUserAgent() string {
	ver := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	return fmt.Sprintf("sandkit-mcp/%s vercel-sandbox-go (Go/%s; %s/%s)",
		ver, strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH)
}

// sleepContext waits d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
