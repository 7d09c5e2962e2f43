package policies

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// enforced is what a policy makes a provider do: the compiled rules without the cosmetic service
// ids (a Spec's header rules form one custom service, whatever the model called it).
func enforced(t *testing.T, p Policy) Rules {
	t.Helper()
	getenv := func(name string) (string, bool) { return "secret-of-" + name, true }
	r, err := Compile(p, getenv)
	if err != nil {
		t.Fatalf("compile %+v: %v", p, err)
	}
	for i := range r.Hosts {
		r.Hosts[i].Service = ""
	}
	sort.Slice(r.Hosts, func(i, j int) bool { return r.Hosts[i].Pattern < r.Hosts[j].Pattern })
	return r
}

// TestSpecRoundTrip: every policy the model can express survives ToSpec and FromSpec with the
// same enforcement: presets, credentials from the environment or literal, plain domains, custom
// services with headers on some of their domains, encodings.
func TestSpecRoundTrip(t *testing.T) {
	policies := []Policy{
		Deny(),
		{Mode: AllowAll},
		{Mode: Allow, Domains: []string{"example.com", "*.example.org"}},
		{Mode: Allow, Services: []Service{{ID: "npm"}, {ID: "github"}}},
		{Mode: Allow, Services: []Service{{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_GH"}}}},
		{Mode: Allow, Services: []Service{{ID: "openai", Credential: &Credential{Value: "sk-literal"}}}, Domains: []string{"pypi.org"}},
		{Mode: Allow, Services: []Service{{ID: "internal", Domains: []string{"api.internal.example", "cdn.internal.example"},
			Headers: []Header{{Domains: []string{"api.internal.example"}, Name: "authorization", Prefix: "Bearer ", Credential: Credential{Env: "SANDKIT_CRED_I"}}}}}},
		{Mode: Allow, Services: []Service{{ID: "git", Domains: []string{"git.example.com"},
			Headers: []Header{{Name: "authorization", Prefix: "Basic ", Encoding: encodingBasic, Credential: Credential{Value: "tok"}},
				{Name: "x-trace", Credential: Credential{Env: "SANDKIT_CRED_T"}}}}}},
	}
	for _, p := range policies {
		s := ToSpec(p)
		b, _ := json.Marshal(s)
		back, err := FromSpec(s)
		if err != nil {
			t.Errorf("FromSpec(%s): %v", b, err)
			continue
		}
		if got, want := enforced(t, back), enforced(t, p); !reflect.DeepEqual(got, want) {
			t.Errorf("policy %+v\nas spec %s\nenforces %v, want %v", p, b, got, want)
		}
	}
}

// TestSpecErrors: mistakes only the compact form can make are named in its own terms.
func TestSpecErrors(t *testing.T) {
	tests := []struct {
		spec string
		want string
	}{
		{`{"allow": ["npmjs"]}`, `allow[0] "npmjs" is neither a preset`},
		{`{"allow": [" "]}`, "allow[0] is empty"},
		{`{"allow": ["*", "npm"]}`, "stands alone"},
		{`{"allow": ["*"], "headers": [{"hosts": ["a.com"], "name": "x", "env": "SANDKIT_CRED_A"}]}`, "stands alone"},
		{`{"credentials": {"github": {"env": "SANDKIT_CRED_G"}}}`, `preset "github" is not in allow`},
		{`{"allow": ["npm"], "credentials": {"mine": {"env": "SANDKIT_CRED_G"}}}`, `"mine" is not a preset`},
		{`{"headers": [{"name": "x-k", "env": "SANDKIT_CRED_K"}]}`, "headers[0] has no hosts"},
	}
	for _, tc := range tests {
		var s Spec
		if err := json.Unmarshal([]byte(tc.spec), &s); err != nil {
			t.Fatal(err)
		}
		_, err := FromSpec(s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromSpec(%s) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
	if p, err := FromSpec(Spec{}); err != nil || p.Mode != DenyAll {
		t.Errorf("the empty spec is %+v, %v; want deny-all", p, err)
	}
	if s := ToSpec(Deny()); s.Allow == nil || len(s.Allow) != 0 {
		t.Errorf("deny-all shows allow %v; want an empty list, never null", s.Allow)
	}
}
