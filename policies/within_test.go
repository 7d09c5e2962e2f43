package policies

import (
	"errors"
	"strings"
	"testing"
)

func TestWithin(t *testing.T) {
	domains := func(d ...string) Policy { return Policy{Mode: Allow, Domains: d} }
	presetsOnly := func(ids ...string) Policy {
		p := Policy{Mode: Allow}
		for _, id := range ids {
			p.Services = append(p.Services, Service{ID: id})
		}
		return p
	}
	limit := presetsOnly("npm", "github")
	cases := []struct {
		name     string
		p, limit Policy
		want     string // "" when within; else the exact message
	}{
		{"anything under allow-all", Policy{Mode: AllowAll}, Policy{Mode: AllowAll}, ""},
		{"allow under allow-all", domains("*.example.com"), Policy{Mode: AllowAll}, ""},
		{"deny under deny", Deny(), Deny(), ""},
		{"deny under allow", Deny(), limit, ""},
		{"allow-all under deny", Policy{Mode: AllowAll}, Deny(),
			`policy wider than allowed: the operator's limit is "deny-all", so the sandbox may not reach the network; policy "allow-all" asks for more; use mode "deny-all"`},
		{"allow under deny", presetsOnly("npm"), Deny(),
			`policy wider than allowed: the operator's limit is "deny-all", so the sandbox may not reach the network; policy "allow:npm" asks for more; use mode "deny-all"`},
		{"allow-all under allow", Policy{Mode: AllowAll}, limit,
			`policy wider than allowed: mode "allow-all" is not allowed by the operator's limit "allow:github,npm"; use mode "allow" with the services and domains you need within it`},
		{"same presets", presetsOnly("github"), limit, ""},
		{"preset domain as plain domain", domains("api.github.com", "raw.githubusercontent.com", "*.raw.githubusercontent.com"), limit, ""},
		{"preset under its domains", presetsOnly("github"), domains("github.com", "api.github.com", "*.githubusercontent.com"), ""},
		{"preset under a covering wildcard", presetsOnly("npm"), domains("*.npmjs.org"), ""},
		{"custom service under the limit's preset domains", allow(custom("gh", []string{"api.github.com"}, Header{Name: "x-key", Credential: envCred("SANDKIT_CRED_K")})), limit, ""},
		{"wildcard under exact", domains("*.example.com"), limit,
			`policy wider than allowed: domain "*.example.com" is not allowed by the operator's limit "allow:github,npm"; narrow the policy, or ask the operator to widen the limit`},
		{"apex under wildcard", domains("example.com"), domains("*.example.com"),
			`policy wider than allowed: domain "example.com" is not allowed by the operator's limit "allow:*.example.com"; narrow the policy, or ask the operator to widen the limit`},
		{"wider wildcard", domains("*.example.com"), domains("*.api.example.com"),
			`policy wider than allowed: domain "*.example.com" is not allowed by the operator's limit "allow:*.api.example.com"; narrow the policy, or ask the operator to widen the limit`},
		{"narrower wildcard", domains("*.api.example.com", "x.y.example.com"), domains("*.example.com"), ""},
		{"suffix trick", domains("evilexample.com"), domains("*.example.com"),
			`policy wider than allowed: domain "evilexample.com" is not allowed by the operator's limit "allow:*.example.com"; narrow the policy, or ask the operator to widen the limit`},
		{"preset beyond the limit", presetsOnly("github", "pypi"), limit,
			`policy wider than allowed: domains "pypi.org", "files.pythonhosted.org" of service "pypi" are not allowed by the operator's limit "allow:github,npm"; narrow the policy, or ask the operator to widen the limit`},
		{"preset partly covered", presetsOnly("github"), domains("github.com", "api.github.com"),
			`policy wider than allowed: domain "*.githubusercontent.com" of service "github" is not allowed by the operator's limit "allow:api.github.com,github.com"; narrow the policy, or ask the operator to widen the limit`},
		{"several parts beyond", Policy{Mode: Allow, Domains: []string{"registry.npmjs.org", "x.example.com"}, Services: []Service{{ID: "crates"}, {ID: "npm"}}}, limit,
			`policy wider than allowed: domain "x.example.com", domains "crates.io", "index.crates.io", "static.crates.io" of service "crates" are not allowed by the operator's limit "allow:github,npm"; narrow the policy, or ask the operator to widen the limit`},
		{"custom service beyond", allow(custom("internal", []string{"api.internal.example.com"})), limit,
			`policy wider than allowed: domain "api.internal.example.com" of service "internal" is not allowed by the operator's limit "allow:github,npm"; narrow the policy, or ask the operator to widen the limit`},
		{"wildcard suffix trick", domains("*.evilexample.com"), domains("*.example.com"),
			`policy wider than allowed: domain "*.evilexample.com" is not allowed by the operator's limit "allow:*.example.com"; narrow the policy, or ask the operator to widen the limit`},
		{"unnormalized input", domains("API.GitHub.com."), presetsOnly("GitHub"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Within(c.p, c.limit)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrTooWide) || err.Error() != c.want {
				t.Fatalf("Within =\n %v\nwant\n %s", err, c.want)
			}
		})
	}

	if err := Within(Policy{Mode: Allow, Domains: []string{"a.*.com"}}, limit); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid policy: %v, want ErrInvalid", err)
	}
	if err := Within(Deny(), Policy{Mode: "open"}); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "operator's limit: ") {
		t.Errorf("invalid limit: %v, want an ErrInvalid naming the operator's limit", err)
	}
}
