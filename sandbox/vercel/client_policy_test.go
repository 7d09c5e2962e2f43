package vercel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestClientPolicyShapes(t *testing.T) {
	custom := networkPolicy{
		Mode:           "custom",
		AllowedDomains: []string{"github.com", "*.npmjs.org"},
		AllowedCIDRs:   []string{"10.0.0.0/8"},
		DeniedCIDRs:    []string{"10.1.0.0/16"},
	}
	withInjection := custom
	withInjection.Injection = []injectionRule{
		{Domain: "api.github.com", Headers: map[string]string{"authorization": "Bearer ghp_secret"}},
		{Domain: "github.com", Headers: map[string]string{"x-one": "1"}},
		{Domain: "github.com", Headers: map[string]string{"x-two": "2", "x-one": "later"}},
	}
	cases := []struct {
		name   string
		p      networkPolicy
		legacy string
		v2     string
	}{
		{"allow-all", networkPolicy{Mode: "allow-all", AllowedDomains: []string{"ignored.com"}}, `{"mode":"allow-all"}`, `{"mode":"allow-all"}`},
		{"deny-all", networkPolicy{Mode: "deny-all"}, `{"mode":"deny-all"}`, `{"mode":"deny-all"}`},
		{
			"custom domains only",
			networkPolicy{Mode: "custom", AllowedDomains: []string{"github.com"}},
			`{"mode":"custom","allowedDomains":["github.com"]}`,
			`{"allow":["github.com"]}`,
		},
		{
			"custom nothing allowed",
			networkPolicy{Mode: "custom"},
			`{"mode":"custom"}`,
			`{"allow":[]}`,
		},
		{
			"custom with subnets",
			custom,
			`{"mode":"custom","allowedDomains":["github.com","*.npmjs.org"],"allowedCIDRs":["10.0.0.0/8"],"deniedCIDRs":["10.1.0.0/16"]}`,
			`{"allow":["github.com","*.npmjs.org"],"subnets":{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}}`,
		},
		{
			"custom only denied subnets",
			networkPolicy{Mode: "custom", AllowedDomains: []string{"a.com"}, DeniedCIDRs: []string{"10.0.0.0/8"}},
			`{"mode":"custom","allowedDomains":["a.com"],"deniedCIDRs":["10.0.0.0/8"]}`,
			`{"allow":["a.com"],"subnets":{"deny":["10.0.0.0/8"]}}`,
		},
		{
			"custom with injection",
			withInjection,
			`{"mode":"custom","allowedDomains":["github.com","*.npmjs.org"],"allowedCIDRs":["10.0.0.0/8"],"deniedCIDRs":["10.1.0.0/16"],` +
				`"injectionRules":[{"domain":"api.github.com","headers":{"authorization":"Bearer ghp_secret"}},` +
				`{"domain":"github.com","headers":{"x-one":"1"}},{"domain":"github.com","headers":{"x-one":"later","x-two":"2"}}]}`,
			`{"allow":{"*.npmjs.org":[],"api.github.com":[{"transform":[{"headers":{"authorization":"Bearer ghp_secret"}}]}],` +
				`"github.com":[{"transform":[{"headers":{"x-one":"later","x-two":"2"}}]}]},` +
				`"subnets":{"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"]}}`,
		},
	}
	for _, tc := range cases {
		for _, shape := range []PolicyShape{PolicyLegacy, PolicyV2} {
			want := tc.legacy
			name := tc.name + "/legacy"
			if shape == PolicyV2 {
				want, name = tc.v2, tc.name+"/v2"
			}
			t.Run(name, func(t *testing.T) {
				s := ctNewServer(t)
				s.handle("POST", "/api/v2/sandboxes/sessions/"+ctSession+"/network-policy", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
					ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running")})
				})
				s.handle("POST", "/api/v3/sandboxes", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
					ctJSON(w, 200, ctSandboxJSON("box-1", "running"))
				})
				c, _ := ctClient(t, s, func(cfg *Config) { cfg.PolicyShape = shape })
				if _, err := c.setNetworkPolicy(context.Background(), ctSession, tc.p); err != nil {
					t.Fatalf("SetNetworkPolicy: %v", err)
				}
				if got := string(s.requests("POST", "/api/v2/sandboxes/sessions/"+ctSession+"/network-policy")[0].Body); got != want {
					t.Errorf("network-policy body\n got %s\nwant %s", got, want)
				}
				p := tc.p
				if _, err := c.createSandbox(context.Background(), createRequest{Name: "box-1", NetworkPolicy: &p}); err != nil {
					t.Fatalf("Create: %v", err)
				}
				body := string(s.requests("POST", "/api/v3/sandboxes")[0].Body)
				if !strings.Contains(body, `"networkPolicy":`+want) {
					t.Errorf("create body %s does not carry the policy %s", body, want)
				}
			})
		}
	}
}

func TestClientPolicyInvalid(t *testing.T) {
	s := ctNewServer(t)
	c, _ := ctClient(t, s, nil)
	for _, p := range []networkPolicy{
		{Mode: ""},
		{Mode: "default-allow"},
		{Mode: "custom", Injection: []injectionRule{{Headers: map[string]string{"a": "b"}}}},
	} {
		if _, err := c.setNetworkPolicy(context.Background(), ctSession, p); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", p, err)
		}
		if _, err := c.createSandbox(context.Background(), createRequest{Name: "b", NetworkPolicy: &p}); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("create with %+v: err = %v, want ErrInvalid", p, err)
		}
	}
	if n := s.count("", ""); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}
