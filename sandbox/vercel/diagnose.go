package vercel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Diagnose checks what `sandkit-mcp doctor` reports of the Vercel provider made from opts: the
// API accepting the credentials for the team and project (one listing request), and the token's
// kind, expiry and renewal. It starts no sandbox.
func Diagnose(ctx context.Context, opts Options) []sandbox.Check {
	api := sandbox.Check{Name: "vercel API"}
	p, err := New(opts)
	if err != nil {
		api.Detail = err.Error()
		return []sandbox.Check{api}
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = p.Client().ListSandboxes(ctx, "sandkit:"+opts.Owner, "")
	// After the request, which renews a token that nears its exp.
	token := tokenCheck(p.Client().TokenStatus(), time.Now())
	if err != nil {
		api.Detail = err.Error()
		var ae *APIError
		var te *TokenExpiredError
		switch {
		case errors.As(err, &te):
			api.Fix = te.Fix
		case errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403):
			api.Fix = "the token was refused or has no access to this team: check VERCEL_TEAM_ID and make a new token (or `vercel env pull` again for an OIDC token)"
		case errors.As(err, &ae) && ae.Status == 404:
			api.Fix = "the project was not found in this team: check VERCEL_PROJECT_ID (a prj_… id or the project's name)"
		default:
			api.Fix = "check the network and the API address (SANDKIT_VERCEL_API_URL / vercel.api_url)"
		}
		return []sandbox.Check{token, api}
	}
	api.OK = true
	lifetime := opts.MaxLifetime
	if lifetime == 0 {
		lifetime = DefaultMaxLifetime
	}
	api.Detail = fmt.Sprintf("credentials accepted; this installation is %q (its sandboxes are tagged sandkit=%s). Each durable command creates one sandbox and one snapshot; max lifetime %v", opts.Owner, opts.Owner, lifetime)
	return []sandbox.Check{token, api}
}

// tokenCheck says what kind of token is used, when an OIDC token expires and how it is renewed,
// or that nothing renews it (still OK: it works until then).
func tokenCheck(st TokenStatus, now time.Time) sandbox.Check {
	c := sandbox.Check{Name: "vercel token", OK: true}
	if !st.OIDC {
		c.Detail = "an access token; it does not expire like an OIDC token"
		return c
	}
	c.Detail = "OIDC token from " + st.Source
	switch left := st.ExpiresAt.Sub(now).Round(time.Minute); {
	case st.ExpiresAt.IsZero():
		c.Detail += ", without an expiry"
	case left > 0:
		c.Detail += fmt.Sprintf(", expires at %s (in %v)", st.ExpiresAt.UTC().Format(time.RFC3339), left)
	default:
		c.Detail += fmt.Sprintf(", expired at %s", st.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if len(st.Renewal) > 0 {
		c.Detail += "; renewal: " + strings.Join(st.Renewal, "; and ")
		if len(st.Problems) > 0 {
			c.Detail += " (not available: " + strings.Join(st.Problems, "; ") + ")"
		}
		return c
	}
	c.Detail += "; nothing renews it (" + strings.Join(st.Problems, "; ") + "), so requests fail once it expires. To keep working past it: " + st.Fix
	return c
}

// APIAddress is the API's base URL in use (DefaultBaseURL unless BaseURL is set).
func (c Config) APIAddress() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return c.BaseURL
}
