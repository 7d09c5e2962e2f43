package policies

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzNormalize: Normalize never panics, fails only with ErrInvalid, and is idempotent; what it
// accepts also survives Redact, String, CredentialNames, Within and Compile without panicking.
// Plain `go test` runs the seeds; `go test -fuzz FuzzNormalize ./policies/` explores.
func FuzzNormalize(f *testing.F) {
	seeds := []string{
		`{"mode":"deny-all"}`,
		`{"mode":"allow-all"}`,
		`{"mode":"allow","domains":["Registry.NPMjs.org.","*.githubusercontent.com","registry.npmjs.org"]}`,
		`{"mode":"allow","services":[{"id":"github"},{"id":"Codex"},{"id":"npm"}]}`,
		`{"mode":"allow","services":[{"id":"github","credential":{"env":"SANDKIT_CRED_GH_TOKEN"}},{"id":"anthropic","credential":{"value":"sk-ant"}}]}`,
		`{"mode":"allow","services":[{"id":"gemini","credential":{"redacted":true}}]}`,
		`{"mode":"allow","domains":["a.com"],"services":[{"id":"internal","domains":["API.internal.example.com.","*.internal.example.com"],"headers":[{"name":"Authorization","prefix":"Bearer ","domains":["api.internal.example.com"],"credential":{"env":"T"}},{"name":"x-team","credential":{"value":"blue"}}]}]}`,
		`{"mode":"allow","services":[{"id":"x","domains":["a.com","b.com"],"headers":[{"name":"authorization","domains":["b.com"],"encoding":"basic-x-access-token","credential":{"env":"B"}},{"name":"authorization","domains":["a.com"],"credential":{"env":"A"}}]}]}`,
		`{"mode":"allow","services":[{"id":"openai"},{"id":"org","domains":["api.openai.com"],"headers":[{"name":"openai-organization","credential":{"env":"ORG"}}]}]}`,
		`{"mode":"allow","domains":["https://a.com:443/x","a..b","*.*.c","[::1]","xn--bcher-kva.de","*."]}`,
		`{"mode":"allow","services":[{"id":"npm"},{"id":"NPM"}]}`,
		`{"mode":"allow","services":[{"id":"x","domains":["a.com"],"headers":[{"name":"host","credential":{}}]}]}`,
		`{"mode":"allow","domains":[],"services":[]}`,
		`{"mode":"allow","services":[{"id":"","domains":[""]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Policy
		if json.Unmarshal(data, &p) != nil {
			return
		}
		_ = p.String()
		_ = CredentialNames(p)
		_ = EnvNames(p)
		_ = Durable(p)
		_ = Redact(p)
		n, err := Normalize(p)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize failed without ErrInvalid: %v", err)
			}
			return
		}
		again, err := Normalize(n)
		if err != nil {
			t.Fatalf("Normalize rejects its own output %#v: %v", n, err)
		}
		if !reflect.DeepEqual(again, n) {
			t.Fatalf("Normalize is not idempotent:\n %#v\n %#v", n, again)
		}
		if n.String() != again.String() {
			t.Fatal("String differs on equal policies")
		}
		if _, err := Normalize(Redact(n)); err != nil {
			t.Fatalf("a redacted valid policy is invalid: %v", err)
		}
		if err := Within(n, n); err != nil {
			t.Fatalf("a policy is not within itself: %v", err)
		}
		rules, err := Compile(n, func(name string) (string, bool) { return "v-" + name, true })
		if err != nil {
			if !errors.Is(err, ErrCredential) {
				t.Fatalf("Compile of a valid policy failed without ErrCredential: %v", err)
			}
			return
		}
		for _, d := range n.Domains {
			if _, ok := rules.Match(d); !ok && d[0] != '*' {
				t.Fatalf("domain %q of the policy does not match its rules", d)
			}
		}
	})
}
