package policies

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// secret is a literal credential the tests plant in policies; it must never show in a message.
const secret = "s3cr3t-VALUE-9f2c"

func allow(services ...Service) Policy { return Policy{Mode: Allow, Services: services} }

func custom(id string, domains []string, headers ...Header) Service {
	return Service{ID: id, Domains: domains, Headers: headers}
}

func envCred(name string) Credential { return Credential{Env: name} }

func TestNormalizeRejects(t *testing.T) {
	auth := func(c Credential) Header { return Header{Name: "authorization", Prefix: "Bearer ", Credential: c} }
	long := strings.Repeat("abcdefghi.", 26) + "com" // 263 characters, labels all short
	cases := []struct {
		name string
		in   Policy
		want []string // substrings of the message
	}{
		// Modes and emptiness.
		{"allow with nothing", Policy{Mode: Allow}, []string{`mode "allow" needs at least one domain or service`, `"deny-all"`}},
		{"allow with empty lists", Policy{Mode: Allow, Domains: []string{}, Services: []Service{}}, []string{"at least one domain or service"}},
		{"services on deny", Policy{Mode: DenyAll, Services: []Service{{ID: "npm"}}}, []string{`mode "deny-all" takes no domains or services`}},
		{"services on allow-all", Policy{Mode: AllowAll, Services: []Service{{ID: "npm"}}}, []string{`mode "allow-all" takes no domains or services`}},

		// Domains.
		{"scheme", Policy{Mode: Allow, Domains: []string{"https://Registry.npmjs.org/"}}, []string{`domain "https://Registry.npmjs.org/" has a scheme`, `write "registry.npmjs.org"`}},
		{"path", Policy{Mode: Allow, Domains: []string{"github.com/acme/repo"}}, []string{"has a path", `write "github.com"`}},
		{"query", Policy{Mode: Allow, Domains: []string{"a.com?x=1"}}, []string{"has a path", `write "a.com"`}},
		{"port", Policy{Mode: Allow, Domains: []string{"a.com:8443"}}, []string{`domain "a.com:8443" has a port`, `write "a.com"`}},
		{"non-numeric port", Policy{Mode: Allow, Domains: []string{"https://a.com:443nx"}}, []string{"has a scheme"}},
		{"user info", Policy{Mode: Allow, Domains: []string{"git@github.com"}}, []string{"has user info", `write "github.com"`}},
		{"ipv4", Policy{Mode: Allow, Domains: []string{"10.0.0.1"}}, []string{"looks like an IP address"}},
		{"ipv6", Policy{Mode: Allow, Domains: []string{"[::1]"}}, []string{"looks like an IP address"}},
		{"ipv6 bare", Policy{Mode: Allow, Domains: []string{"fe80::1"}}, []string{"looks like an IP address"}},
		{"single label", Policy{Mode: Allow, Domains: []string{"localhost"}}, []string{`domain "localhost" is a single label`}},
		{"double wildcard", Policy{Mode: Allow, Domains: []string{"*.*.example.com"}}, []string{"wildcard is allowed only as the whole first label"}},
		{"wildcard last", Policy{Mode: Allow, Domains: []string{"example.*"}}, []string{"wildcard"}},
		{"star star", Policy{Mode: Allow, Domains: []string{"**.example.com"}}, []string{"wildcard"}},
		{"wildcard alone with dot", Policy{Mode: Allow, Domains: []string{"*."}}, []string{"wildcard"}},
		{"non-ascii", Policy{Mode: Allow, Domains: []string{"bücher.de"}}, []string{"contains 'ü'", "xn--"}},
		{"space inside", Policy{Mode: Allow, Domains: []string{"a b.com"}}, []string{"contains ' '"}},
		{"too long", Policy{Mode: Allow, Domains: []string{long}}, []string{"longer than 253 characters"}},
		{"hyphen end", Policy{Mode: Allow, Domains: []string{"a-.com"}}, []string{"starting or ending with '-'"}},

		// Services.
		{"no id", allow(Service{ID: "  ", Domains: []string{"a.com"}}), []string{"service #1 has no id", "npm"}},
		{"id with space", allow(custom("my api", []string{"a.com"})), []string{`service id "my api"`, "lower-case letters"}},
		{"id with dot", allow(custom("a.com", []string{"a.com"})), []string{`service id "a.com"`}},
		{"id starting with dash", allow(custom("-x", []string{"a.com"})), []string{`service id "-x"`}},
		{"unknown preset", allow(Service{ID: "gihub"}), []string{`unknown preset "gihub"`,
			"known presets: ai-gateway, anthropic, bun, codex, crates, gemini, github, go-proxy, npm, openai, pypi", `give its "domains"`}},
		{"unknown preset with credential", allow(Service{ID: "gihub", Credential: &Credential{Env: "GITHUB_TOKEN"}}), []string{`unknown preset "gihub"`}},
		{"domains on preset", allow(Service{ID: "github", Domains: []string{"gist.github.com"}}), []string{`service "github" is a preset and brings its own domains (github.com, api.github.com, *.githubusercontent.com)`, `remove "domains"`}},
		{"headers on preset", allow(Service{ID: "anthropic", Headers: []Header{auth(envCred("SANDKIT_CRED_X"))}}), []string{`service "anthropic" is a preset and brings its own headers`, `set "credential"`}},
		{"credential on credential-less preset", allow(Service{ID: "npm", Credential: &Credential{Env: "NPM_TOKEN"}}), []string{`preset "npm" sends no credential, so it takes none`}},
		{"credential on custom service", allow(Service{ID: "internal", Domains: []string{"a.com"}, Credential: &Credential{Env: "SANDKIT_CRED_T"}}), []string{`custom service "internal": "credential" is for presets only`}},
		{"custom service without domains", allow(Service{ID: "internal", Headers: []Header{auth(envCred("SANDKIT_CRED_T"))}}), []string{`custom service "internal" needs "domains"`}},
		{"bad service domain", allow(custom("internal", []string{"a.*.com"})), []string{`service "internal": domain "a.*.com"`, "wildcard"}},
		{"duplicate preset", allow(Service{ID: "npm"}, Service{ID: "npm"}), []string{`service "npm" appears twice`}},
		{"duplicate by case", allow(custom("api", []string{"a.com"}), custom("API", []string{"b.com"})), []string{`services "api" and "API" are the same service ("api")`}},
		{"duplicate by alias", allow(Service{ID: "openai"}, Service{ID: "codex"}), []string{`services "openai" and "codex" are the same service ("openai")`}},

		// Headers.
		{"header without name", allow(custom("x", []string{"a.com"}, Header{Credential: envCred("SANDKIT_CRED_T")})), []string{`service "x": header #1 has no name`}},
		{"header name with space", allow(custom("x", []string{"a.com"}, Header{Name: "x api", Credential: envCred("SANDKIT_CRED_T")})), []string{`header name "x api" has characters`, "RFC"[:0] + "!#$%&'*+-.^_`|~"}},
		{"header name with colon", allow(custom("x", []string{"a.com"}, Header{Name: ":authority", Credential: envCred("SANDKIT_CRED_T")})), []string{`header name ":authority"`}},
		{"header name with newline", allow(custom("x", []string{"a.com"}, Header{Name: "a\nb", Credential: envCred("SANDKIT_CRED_T")})), []string{"cannot have"}},
		{"host header", allow(custom("x", []string{"a.com"}, Header{Name: "Host", Credential: envCred("SANDKIT_CRED_T")})), []string{`header "host" belongs to the connection`}},
		{"content-length", allow(custom("x", []string{"a.com"}, Header{Name: "content-length", Credential: envCred("SANDKIT_CRED_T")})), []string{`"content-length" belongs to the connection`}},
		{"transfer-encoding", allow(custom("x", []string{"a.com"}, Header{Name: "Transfer-Encoding", Credential: envCred("SANDKIT_CRED_T")})), []string{`"transfer-encoding" belongs`}},
		{"connection", allow(custom("x", []string{"a.com"}, Header{Name: "connection", Credential: envCred("SANDKIT_CRED_T")})), []string{`"connection" belongs`}},
		{"upgrade", allow(custom("x", []string{"a.com"}, Header{Name: "upgrade", Credential: envCred("SANDKIT_CRED_T")})), []string{`"upgrade" belongs`}},
		{"proxy-authorization", allow(custom("x", []string{"a.com"}, Header{Name: "Proxy-Authorization", Credential: envCred("SANDKIT_CRED_T")})), []string{`"proxy-authorization" belongs`, "proxy-*"}},
		{"header domain not the service's", allow(custom("x", []string{"a.com", "b.com"}, Header{Name: "authorization", Domains: []string{"c.com"}, Credential: envCred("SANDKIT_CRED_T")})),
			[]string{`service "x": header "authorization": domain "c.com" is not one of the service's domains (a.com, b.com)`}},
		{"header domain exact under service wildcard", allow(custom("x", []string{"*.a.com"}, Header{Name: "authorization", Domains: []string{"api.a.com"}, Credential: envCred("SANDKIT_CRED_T")})),
			[]string{`domain "api.a.com" is not one of the service's domains (*.a.com)`}},
		{"header domain malformed", allow(custom("x", []string{"a.com"}, Header{Name: "authorization", Domains: []string{"a.com:443"}, Credential: envCred("SANDKIT_CRED_T")})),
			[]string{`header "authorization": domain "a.com:443" has a port`}},
		{"prefix with newline", allow(custom("x", []string{"a.com"}, Header{Name: "authorization", Prefix: "Bearer\r\nX-Evil: 1 ", Credential: envCred("SANDKIT_CRED_T")})), []string{"the prefix has a control character"}},
		{"unknown encoding", allow(custom("x", []string{"a.com"}, Header{Name: "authorization", Encoding: "base64", Credential: envCred("SANDKIT_CRED_T")})), []string{`unknown encoding "base64"`, `"basic-x-access-token"`}},
		{"same header twice in a service", allow(custom("x", []string{"a.com", "b.com"},
			Header{Name: "authorization", Credential: envCred("SANDKIT_CRED_T")},
			Header{Name: "Authorization", Domains: []string{"b.com"}, Credential: envCred("SANDKIT_CRED_U")})),
			[]string{`service "x" sets header "authorization" twice for "b.com"`}},
		{"same header from two services", allow(Service{ID: "openai"}, custom("my-openai", []string{"api.openai.com"}, Header{Name: "authorization", Credential: envCred("SANDKIT_CRED_T")})),
			[]string{`services "my-openai" and "openai" both set header "authorization" on "api.openai.com"`}},

		// Credentials.
		{"credential with no source", allow(custom("x", []string{"a.com"}, Header{Name: "authorization"})), []string{`header "authorization" credential: no source`, "an empty value is not a credential"}},
		{"empty literal value", allow(Service{ID: "github", Credential: &Credential{Value: ""}}), []string{`service "github" credential: no source`}},
		{"blank literal value", allow(Service{ID: "github", Credential: &Credential{Value: "   "}}), []string{"the literal value is blank"}},
		{"value with newline", allow(Service{ID: "github", Credential: &Credential{Value: secret + "\r\nx-evil: 1"}}), []string{"the literal value has a control character"}},
		{"env and value", allow(Service{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_T", Value: secret}}), []string{`exactly one of "env", "value" or "redacted", not "env" and "value"`}},
		{"value and redacted", allow(custom("x", []string{"a.com"}, Header{Name: "x-key", Credential: Credential{Value: secret, Redacted: true}})), []string{`not "value" and "redacted"`}},
		{"all three", allow(Service{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_T", Value: secret, Redacted: true}}), []string{`not "env" and "value" and "redacted"`}},
		{"env starting with digit", allow(Service{ID: "github", Credential: &Credential{Env: "1TOKEN"}}), []string{`environment variable name "1TOKEN" is not valid`}},
		{"env with dash", allow(custom("x", []string{"a.com"}, Header{Name: "x-key", Credential: envCred("MY-TOKEN")})), []string{`environment variable name "MY-TOKEN" is not valid`}},
		{"env with dollar", allow(Service{ID: "github", Credential: &Credential{Env: "$GITHUB_TOKEN"}}), []string{`"$GITHUB_TOKEN" is not valid`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalize(c.in)
			if err == nil {
				t.Fatalf("Normalize accepted %+v as %+v", c.in, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestNormalizeCanonical(t *testing.T) {
	cases := []struct {
		name string
		in   Policy
		want Policy
	}{
		{"presets sorted, alias and case canonical", allow(Service{ID: " NPM "}, Service{ID: "Codex"}, Service{ID: "github"}),
			Policy{Mode: Allow, Services: []Service{{ID: "github"}, {ID: "npm"}, {ID: "openai"}}}},
		{"plain domains with services", Policy{Mode: Allow, Domains: []string{"B.example.com.", "a.example.com", "b.example.com"}, Services: []Service{{ID: "pypi"}}},
			Policy{Mode: Allow, Domains: []string{"a.example.com", "b.example.com"}, Services: []Service{{ID: "pypi"}}}},
		{"credential override kept", allow(Service{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_GH_BOT_TOKEN"}}),
			allow(Service{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_GH_BOT_TOKEN"}})},
		{"literal override kept", allow(Service{ID: "anthropic", Credential: &Credential{Value: secret}}),
			allow(Service{ID: "anthropic", Credential: &Credential{Value: secret}})},
		{"redacted accepted", allow(Service{ID: "anthropic", Credential: &Credential{Redacted: true}}),
			allow(Service{ID: "anthropic", Credential: &Credential{Redacted: true}})},
		{"custom service canonical", allow(Service{ID: "Internal_API", Domains: []string{"API.internal.example.com.", "*.Internal.example.com", "api.internal.example.com"},
			Headers: []Header{
				{Name: " X-Team ", Credential: Credential{Value: "blue"}},
				{Name: "Authorization", Prefix: "Bearer ", Domains: []string{"api.internal.example.com.", "API.internal.example.com"}, Credential: envCred("SANDKIT_CRED_INTERNAL_TOKEN")},
			}}),
			allow(Service{ID: "internal_api", Domains: []string{"*.internal.example.com", "api.internal.example.com"},
				Headers: []Header{
					{Name: "authorization", Prefix: "Bearer ", Domains: []string{"api.internal.example.com"}, Credential: envCred("SANDKIT_CRED_INTERNAL_TOKEN")},
					{Name: "x-team", Credential: Credential{Value: "blue"}},
				}})},
		{"same header on different domains", allow(custom("x", []string{"a.example.com", "b.example.com"},
			Header{Name: "authorization", Domains: []string{"b.example.com"}, Prefix: "Basic ", Encoding: encodingBasic, Credential: envCred("SANDKIT_CRED_B")},
			Header{Name: "authorization", Domains: []string{"a.example.com"}, Credential: envCred("SANDKIT_CRED_A")})),
			allow(custom("x", []string{"a.example.com", "b.example.com"},
				Header{Name: "authorization", Domains: []string{"a.example.com"}, Credential: envCred("SANDKIT_CRED_A")},
				Header{Name: "authorization", Domains: []string{"b.example.com"}, Prefix: "Basic ", Encoding: encodingBasic, Credential: envCred("SANDKIT_CRED_B")}))},
		{"header-less custom service", allow(custom("mirror", []string{"mirror.example.org"})), allow(custom("mirror", []string{"mirror.example.org"}))},
		{"a preset and a custom header on one domain, different names", allow(Service{ID: "openai"}, custom("org", []string{"api.openai.com"}, Header{Name: "openai-organization", Credential: envCred("SANDKIT_CRED_OPENAI_ORG")})),
			allow(Service{ID: "openai"}, custom("org", []string{"api.openai.com"}, Header{Name: "openai-organization", Credential: envCred("SANDKIT_CRED_OPENAI_ORG")}))},
		{"wildcard over a tld", Policy{Mode: Allow, Domains: []string{"*.dev"}}, Policy{Mode: Allow, Domains: []string{"*.dev"}}},
		{"empty lists become nil", Policy{Mode: Allow, Domains: []string{"a.com"}, Services: []Service{}}, Policy{Mode: Allow, Domains: []string{"a.com"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := json.Marshal(c.in)
			got, err := Normalize(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Normalize =\n %#v\nwant\n %#v", got, c.want)
			}
			again, err := Normalize(got)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("Normalize is not idempotent: %+v, %v", again, err)
			}
			if after, _ := json.Marshal(c.in); string(after) != string(before) {
				t.Fatalf("Normalize changed its input: %s -> %s", before, after)
			}
		})
	}
}

func TestNormalizeDoesNotAlias(t *testing.T) {
	cred := &Credential{Env: "SANDKIT_CRED_A"}
	in := allow(Service{ID: "github", Credential: cred})
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	got.Services[0].Credential.Env = "B"
	if cred.Env != "SANDKIT_CRED_A" {
		t.Fatal("the normalized policy shares its credential with the input")
	}
}

func TestPolicyJSON(t *testing.T) {
	// The shape tools decode: every field name as documented.
	const doc = `{"mode":"allow","domains":["example.com"],"services":[{"id":"github","credential":{"env":"SANDKIT_CRED_GH_TOKEN"}},
		{"id":"internal","domains":["api.internal.example.com"],"headers":[{"name":"Authorization","prefix":"Bearer ","credential":{"value":"v"}}]}]}`
	var p Policy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	n, err := Normalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.String(); got != "allow:example.com,github,internal" {
		t.Fatalf("String() = %q", got)
	}
	out, _ := json.Marshal(n)
	want := `{"mode":"allow","domains":["example.com"],"services":[{"id":"github","credential":{"env":"SANDKIT_CRED_GH_TOKEN"}},{"id":"internal","domains":["api.internal.example.com"],"headers":[{"name":"authorization","prefix":"Bearer ","credential":{"value":"v"}}]}]}`
	if string(out) != want {
		t.Fatalf("JSON =\n %s\nwant\n %s", out, want)
	}
}

func TestStringStable(t *testing.T) {
	cases := []struct {
		p    Policy
		want string
	}{
		{Policy{Mode: DenyAll}, "deny-all"},
		{Policy{Mode: AllowAll}, "allow-all"},
		{Policy{Mode: Allow, Domains: []string{"b.com", "*.b.com", "a.com", "*.a.b.com"}}, "allow:*.a.b.com,a.com,b.com,*.b.com"},
		{Policy{Mode: Allow, Domains: []string{"registry.example.com"}, Services: []Service{{ID: "npm"}, {ID: "github"}}}, "allow:github,npm,registry.example.com"},
		{Policy{Mode: Allow, Services: []Service{{ID: "github"}, {ID: "npm"}}, Domains: []string{"registry.example.com"}}, "allow:github,npm,registry.example.com"},
		{Policy{Mode: Allow, Services: []Service{{ID: "anthropic", Credential: &Credential{Value: secret}}}}, "allow:anthropic"},
		{Policy{Mode: Allow, Services: []Service{custom("x", []string{"a.example.com"}, Header{Name: "authorization", Credential: Credential{Value: secret}})}}, "allow:x"},
	}
	for _, c := range cases {
		if got := c.p.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		n, err := Normalize(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := n.String(); got != c.want {
			t.Errorf("normalized String() = %q, want %q", got, c.want)
		}
	}
}

// TestCredentialEnvPrefix: an agent's policy may name only SANDKIT_CRED_* variables (and a
// preset's own defaults), so it cannot send an arbitrary server secret to a host it chose.
func TestCredentialEnvPrefix(t *testing.T) {
	steal := Policy{Mode: Allow, Services: []Service{{ID: "evil", Domains: []string{"attacker.example"},
		Headers: []Header{{Name: "x-leak", Credential: Credential{Env: "VERCEL_ACCESS_TOKEN"}}}}}}
	if _, err := Normalize(steal); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), CredentialEnvPrefix) {
		t.Fatalf("a custom service naming VERCEL_ACCESS_TOKEN: %v", err)
	}
	other := Policy{Mode: Allow, Services: []Service{{ID: "github", Credential: &Credential{Env: "AWS_SECRET_ACCESS_KEY"}}}}
	if _, err := Normalize(other); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a preset credential from an unrelated variable: %v", err)
	}
	for _, ok := range []Policy{
		{Mode: Allow, Services: []Service{{ID: "github", Credential: &Credential{Env: "GITHUB_TOKEN"}}}},
		{Mode: Allow, Services: []Service{{ID: "github", Credential: &Credential{Env: "SANDKIT_CRED_BOT"}}}},
		{Mode: Allow, Services: []Service{{ID: "internal", Domains: []string{"api.internal.example"},
			Headers: []Header{{Name: "authorization", Prefix: "Bearer ", Credential: Credential{Env: "SANDKIT_CRED_INTERNAL"}}}}}},
	} {
		if _, err := Normalize(ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}
