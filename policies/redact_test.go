package policies

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// withSecrets is a per-run policy holding literal secrets in both places they can be.
func withSecrets() Policy {
	return Policy{Mode: Allow, Domains: []string{"example.com"}, Services: []Service{
		{ID: "anthropic", Credential: &Credential{Value: secret}},
		{ID: "github"},
		custom("internal", []string{"api.internal.example.com"},
			Header{Name: "authorization", Prefix: "Bearer ", Credential: Credential{Value: secret + "-2"}},
			Header{Name: "x-team", Credential: Credential{Env: "SANDKIT_CRED_TEAM"}}),
	}}
}

func TestDurable(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		want string // "" for no error
	}{
		{"deny", Deny(), ""},
		{"env credentials", allow(Service{ID: "github"}, Service{ID: "openai", Credential: &Credential{Env: "MY_KEY"}},
			custom("x", []string{"a.example.com"}, Header{Name: "x-key", Credential: envCred("X_KEY")})), ""},
		{"preset literal", allow(Service{ID: "github", Credential: &Credential{Value: secret}}),
			`literal secret in a durable policy: service "github" carries a literal secret; a durable policy (a workspace's default, a setup policy) must read credentials from the server's environment`},
		{"header literal", allow(custom("internal", []string{"a.example.com"}, Header{Name: "x-key", Credential: Credential{Value: secret}})),
			`service "internal" carries a literal secret`},
		{"several", withSecrets(), `services "anthropic", "internal" carry a literal secret`},
		{"redacted", allow(Service{ID: "github", Credential: &Credential{Redacted: true}}),
			`service "github" holds a redacted credential, which can never be applied`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Durable(c.p)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Durable = %v, want an ErrSecret saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("Durable's error shows the secret: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	p := withSecrets()
	r := Redact(p)
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), secret) {
		t.Fatalf("redacted JSON holds the secret: %s", out)
	}
	want := Policy{Mode: Allow, Domains: []string{"example.com"}, Services: []Service{
		{ID: "anthropic", Credential: &Credential{Redacted: true}},
		{ID: "github"},
		custom("internal", []string{"api.internal.example.com"},
			Header{Name: "authorization", Prefix: "Bearer ", Credential: Credential{Redacted: true}},
			Header{Name: "x-team", Credential: Credential{Env: "SANDKIT_CRED_TEAM"}}),
	}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("Redact =\n %#v\nwant\n %#v", r, want)
	}
	// The input keeps its secrets (it is still to be compiled) and shares nothing with the result.
	if !reflect.DeepEqual(p, withSecrets()) {
		t.Fatal("Redact changed its input")
	}
	r.Services[2].Headers[0].Domains = append(r.Services[2].Headers[0].Domains, "x")
	r.Domains[0] = "changed.example.com"
	if !reflect.DeepEqual(p, withSecrets()) {
		t.Fatal("Redact's result shares memory with its input")
	}
	// Redacted policies still normalize (they are stored and shown), are idempotent under Redact,
	// and cannot be compiled.
	n, err := Normalize(Redact(p))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(Redact(n), n) {
		t.Fatal("Redact is not idempotent")
	}
	if _, err := Compile(n, newEnv("GITHUB_TOKEN", "g", "SANDKIT_CRED_TEAM", "t").get); !errors.Is(err, ErrCredential) {
		t.Fatalf("Compile of a redacted policy: %v, want ErrCredential", err)
	}
	if got := Redact(Deny()); !reflect.DeepEqual(got, Deny()) {
		t.Fatalf("Redact(deny) = %#v", got)
	}
}

func TestCredentialNames(t *testing.T) {
	n, err := Normalize(withSecrets())
	if err != nil {
		t.Fatal(err)
	}
	got := CredentialNames(n)
	want := []string{"anthropic: literal value (redacted)", "github: env GITHUB_TOKEN", "internal: literal value (redacted)", "internal: env SANDKIT_CRED_TEAM"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CredentialNames = %q, want %q", got, want)
	}
	if got := CredentialNames(Redact(n)); !reflect.DeepEqual(got, want) {
		t.Fatalf("CredentialNames(redacted) = %q, want %q", got, want)
	}
	if got := CredentialNames(allow(Service{ID: "codex"}, Service{ID: "npm"})); !reflect.DeepEqual(got, []string{"codex: env OPENAI_API_KEY (or CODEX_API_KEY)"}) {
		t.Fatalf("CredentialNames(codex, npm) = %q", got)
	}
	if got := CredentialNames(allow(Service{ID: "npm"})); got != nil {
		t.Fatalf("CredentialNames(npm) = %q, want nil", got)
	}
	for _, s := range got {
		if strings.Contains(s, secret) {
			t.Fatalf("CredentialNames shows the secret: %q", got)
		}
	}
}

func TestEnvNames(t *testing.T) {
	p := allow(Service{ID: "openai"}, Service{ID: "github", Credential: &Credential{Env: "GH_BOT"}}, Service{ID: "anthropic", Credential: &Credential{Value: secret}},
		Service{ID: "npm"}, custom("x", []string{"a.example.com"}, Header{Name: "x-a", Credential: envCred("X_KEY")}, Header{Name: "x-b", Credential: envCred("X_KEY")}))
	want := []string{"CODEX_API_KEY", "GH_BOT", "OPENAI_API_KEY", "X_KEY"}
	if got := EnvNames(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("EnvNames = %q, want %q", got, want)
	}
	if got := EnvNames(Deny()); got != nil {
		t.Fatalf("EnvNames(deny) = %q", got)
	}
}
