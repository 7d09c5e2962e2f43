package vercelfake

import (
	"encoding/json"
	"strings"
	"testing"
)

const secret = "s3cr3t-header-value-never-echoed"

// TestNetworkPolicyValidation: both request shapes are validated, rule by rule (§4.7), on
// create (before any VM starts) and on the session endpoint.
func TestNetworkPolicyValidation(t *testing.T) {
	a := newAPI(t, Options{})
	rule := func(r map[string]any) map[string]any {
		return map[string]any{"allow": map[string]any{"api.example.com": []any{r}}}
	}
	transform := []any{map[string]any{"headers": map[string]string{"authorization": "Bearer " + secret}}}
	for _, tc := range []struct {
		name   string
		policy any
		want   string // in the message
	}{
		{"unknown mode", map[string]any{"mode": "open"}, "mode"},
		{"extra property with allow-all", map[string]any{"mode": "allow-all", "allow": []string{"x.com"}}, "additional property"},
		{"unknown V2 property", map[string]any{"allow": []string{"x.com"}, "deny": []string{"y.com"}}, "additional property `deny`"},
		{"bad domain", map[string]any{"allow": []string{"https://x.com/path"}}, "not a valid domain"},
		{"bad CIDR", map[string]any{"allow": []string{"x.com"}, "subnets": map[string]any{"deny": []string{"10.0.0.0/99"}}}, "not a valid CIDR"},
		{"rule with nothing", rule(map[string]any{"match": map[string]any{"method": []string{"GET"}}}), "exactly one of"},
		{"rule with two actions", rule(map[string]any{"transform": transform, "forwardURL": "https://p.example.com"}), "exactly one of"},
		{"forwardURL not https", rule(map[string]any{"forwardURL": "http://p.example.com"}), "https"},
		{"forwardURL with userinfo", rule(map[string]any{"forwardURL": "https://u:p@p.example.com"}), "credentials"},
		{"forwardURL with query", rule(map[string]any{"forwardURL": "https://p.example.com/?q=1"}), "query"},
		{"forwardURL with fragment", rule(map[string]any{"forwardURL": "https://p.example.com/#f"}), "fragment"},
		{"header name not a token", rule(map[string]any{"transform": []any{map[string]any{"headers": map[string]string{"bad header": "v"}}}}), "header name"},
		{"header value with newline", rule(map[string]any{"transform": []any{map[string]any{"headers": map[string]string{"x-a": "v\r\nx-b: w"}}}}), "invalid value"},
		{"matcher with two kinds", rule(map[string]any{"transform": transform, "match": map[string]any{"path": map[string]string{"exact": "/a", "regex": "/b"}}}), "exactly one of `exact`"},
		{"bad regex", rule(map[string]any{"transform": transform, "match": map[string]any{"path": map[string]string{"regex": "(unclosed"}}}), "RE2"},
		{"response without contentType", rule(map[string]any{"response": map[string]any{"statusCode": 403, "body": "no"}}), "contentType"},
		{"response body on 204", rule(map[string]any{"response": map[string]any{"statusCode": 204, "body": "x", "contentType": "text/plain"}}), "204"},
		{"response status out of range", rule(map[string]any{"response": map[string]any{"statusCode": 700}}), "between 200 and 599"},
		{"response sets content-length", rule(map[string]any{"response": map[string]any{"statusCode": 403, "headers": map[string]string{"Content-Length": "3"}}}), "proxy-managed"},
		{"response repeats a header", rule(map[string]any{"response": map[string]any{"statusCode": 403, "headers": map[string]string{"X-A": "1", "x-a": "2"}}}), "twice"},
		{"legacy injection without domain", map[string]any{"mode": "custom", "injectionRules": []any{map[string]any{"headers": map[string]string{"a": "b"}}}}, "domain"},
		{"legacy forward to http", map[string]any{"mode": "custom", "forwardRules": []any{map[string]any{"domain": "x.com", "forwardURL": "http://y.com"}}}, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.with(t)
			msg := a.wantError("POST", "/v3/sandboxes", map[string]any{"projectId": testProject, "networkPolicy": tc.policy}, 400, "bad_request")
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "networkPolicy") {
				t.Fatalf("message %q, want it to name networkPolicy and say %q", msg, tc.want)
			}
		})
	}
	if n := len(a.fake.Sessions()); n != 0 {
		t.Fatalf("invalid creates started %d sessions", n)
	}
	// The session endpoint validates the same way (the body is the policy itself).
	sid := a.create(map[string]any{"persistent": false}).Session.ID
	msg := a.wantError("POST", "/v2/sandboxes/sessions/"+sid+"/network-policy", rule(map[string]any{"forwardURL": "ftp://x"}), 400, "bad_request")
	if !strings.Contains(msg, `allow["api.example.com"][0].forwardURL`) {
		t.Fatalf("message %q does not locate the rule", msg)
	}
	for _, body := range *a.bodies {
		if strings.Contains(body, secret) {
			t.Fatalf("a response holds a header value: %s", body)
		}
	}
}

// TestNetworkPolicy: accepted policies are stored and echoed in the response (legacy) shape
// with header names only — never a value, in any response — and the domain part is really
// enforced by the backend: a denied host gets the egress proxy's 403, an allowed one does not.
func TestNetworkPolicy(t *testing.T) {
	a := newAPI(t, Options{})
	transform := []any{map[string]any{"headers": map[string]string{"Authorization": "Bearer " + secret, "X-Api-Key": secret}}}
	created := a.create(map[string]any{"persistent": false, "networkPolicy": map[string]any{
		"mode": "custom", "allowedDomains": []string{"allowed.example.com"},
		"injectionRules": []any{map[string]any{"domain": "api.example.com", "headers": map[string]string{"authorization": secret}}},
	}})
	sid := created.Session.ID
	var shown map[string]any
	_ = json.Unmarshal(created.Session.NetworkPolicy, &shown)
	if shown["mode"] != "custom" || !strings.Contains(string(created.Session.NetworkPolicy), `"headerNames":["authorization"]`) {
		t.Fatalf("created with %s", created.Session.NetworkPolicy)
	}
	// Enforced: allowed.example.com and api.example.com pass the policy, others do not. The
	// hosts do not exist, so an allowed request fails later, but not with the policy's 403.
	if code := a.proxyStatus(sid, "other.example.com"); code != "403" {
		t.Fatalf("a host outside the policy answered %s, want the proxy's 403", code)
	}
	if code := a.proxyStatus(sid, "allowed.example.com"); code == "403" {
		t.Fatal("an allowed host was refused")
	}
	if code := a.proxyStatus(sid, "api.example.com"); code == "403" {
		t.Fatal("a host with an injection rule was refused")
	}

	np := "/v2/sandboxes/sessions/" + sid + "/network-policy"
	for _, tc := range []struct {
		name    string
		policy  any
		want    string // the echoed policy, exactly
		blocked string // a host the backend then refuses ("" = none checked)
		open    string // a host it then lets through
	}{
		{"deny-all", map[string]any{"mode": "deny-all"}, `{"mode":"deny-all"}`, "allowed.example.com", ""},
		{"allow-all", map[string]any{"mode": "allow-all"}, `{"mode":"allow-all"}`, "", "anything.example.com"},
		{"V2 list with subnets", map[string]any{"allow": []string{"github.com", "*.npmjs.org"}, "subnets": map[string]any{"allow": []string{"10.0.0.0/8"}, "deny": []string{"10.1.0.0/16"}}},
			`{"mode":"custom","allowedDomains":["github.com","*.npmjs.org"],"allowedCIDRs":["10.0.0.0/8"],"deniedCIDRs":["10.1.0.0/16"]}`, "example.com", "registry.npmjs.org"},
		{"V2 record with rules", map[string]any{"allow": map[string]any{
			"ai-gateway.vercel.sh": []any{map[string]any{"match": map[string]any{"path": map[string]string{"startsWith": "/v1/"}, "method": []string{"POST"}}, "transform": transform}},
			"internal.example.com": []any{map[string]any{"forwardURL": "https://proxy.example.com/hook"}},
			"blocked.example.com":  []any{map[string]any{"response": map[string]any{"statusCode": 403, "contentType": "text/plain", "body": "blocked", "headers": map[string]string{"X-Why": secret}}}},
			"plain.example.com":    []any{},
		}},
			// (The test's Go map is encoded with sorted keys: the record's order as sent.)
			`{"mode":"custom","allowedDomains":["ai-gateway.vercel.sh","blocked.example.com","internal.example.com","plain.example.com"],` +
				`"injectionRules":[{"domain":"ai-gateway.vercel.sh","headerNames":["authorization","x-api-key"],"match":{"path":{"startsWith":"/v1/"},"method":["POST"]}}],` +
				`"forwardRules":[{"domain":"internal.example.com","forwardURL":"https://proxy.example.com/hook"}],` +
				`"responseRules":[{"domain":"blocked.example.com","response":{"statusCode":403,"headerNames":["x-why"],"contentType":"text/plain","hasBody":true}}]}`,
			"example.com", "plain.example.com"},
		{"V2 record with a wildcard: any domain", map[string]any{"allow": map[string]any{"*": []any{}}}, `{"mode":"custom","allowedDomains":["*"]}`, "", "whatever.example.org"},
		{"empty V2 object: nothing allowed", map[string]any{}, `{"mode":"custom"}`, "github.com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.with(t)
			var out struct {
				Session struct {
					NetworkPolicy json.RawMessage `json:"networkPolicy"`
				} `json:"session"`
			}
			raw := a.call("POST", np, tc.policy, 200, &out)
			checkSessionShape(t, raw, "session")
			if string(out.Session.NetworkPolicy) != tc.want {
				t.Fatalf("echoed\n%s\nwant\n%s", out.Session.NetworkPolicy, tc.want)
			}
			if tc.blocked != "" {
				if code := a.proxyStatus(sid, tc.blocked); code != "403" {
					t.Fatalf("%s answered %s, want the proxy's 403", tc.blocked, code)
				}
			}
			if tc.open != "" {
				if code := a.proxyStatus(sid, tc.open); code == "403" {
					t.Fatalf("%s was refused", tc.open)
				}
			}
		})
	}
	// The session's policy is echoed by GET too; the sandbox keeps the policy it was created with.
	var got tSandboxAndSession
	a.call("GET", "/v2/sandboxes/sessions/"+sid, nil, 200, &got)
	if string(got.Session.NetworkPolicy) != `{"mode":"custom"}` {
		t.Fatalf("GET session policy %s", got.Session.NetworkPolicy)
	}
	for _, body := range *a.bodies {
		if strings.Contains(body, secret) {
			t.Fatalf("a response holds a header value: %s", body)
		}
	}
}

// proxyStatus asks the sandbox's egress proxy for http://host/ and returns the HTTP status the
// proxy answered ("000" when no HTTP answer came back).
func (a *api) proxyStatus(sid, host string) string {
	a.t.Helper()
	r := a.run(sid, map[string]any{"command": "curl", "args": []string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "http://" + host + "/"}})
	return strings.TrimSpace(r.stdout)
}
