package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/tools"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
)

const goodConfig = `{
  "default_policy": {"mode": "allow", "services": [{"id": "npm"}]},
  "max_policy": {"mode": "allow", "services": [{"id": "npm"}, {"id": "github"}], "domains": ["*.example.com"]},
  "templates": {
    "node": {
      "description": "  Node with deps  ",
      "command": "sh",
      "args": ["-c", "npm ci"],
      "policy": {"mode": "allow", "services": [{"id": "npm"}, {"id": "github", "credential": {"env": "SANDKIT_CRED_CI"}}]},
      "timeout": "20m"
    },
    "empty": {"command": "true", "policy": {"mode": "deny-all"}}
  }
}`

func TestParseOperatorConfig(t *testing.T) {
	oc, err := parseOperatorConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if oc.defaultPolicy.String() != "allow:npm" || oc.maxPolicy == nil || oc.maxPolicy.String() != "allow:*.example.com,github,npm" {
		t.Errorf("policies: default %s, max %v", oc.defaultPolicy.String(), oc.maxPolicy)
	}
	node := oc.templates["node"]
	if node.Command != "sh" || !slices.Equal(node.Args, []string{"-c", "npm ci"}) || node.Timeout != 20*time.Minute ||
		node.Description != "Node with deps" || node.Policy.String() != "allow:github,npm" {
		t.Errorf("template node: %+v", node)
	}
	if e := oc.templates["empty"]; e.Timeout != 30*time.Minute || e.Policy.Mode != policies.DenyAll {
		t.Errorf("template empty: %+v (default timeout 30m)", e)
	}

	none, err := parseOperatorConfig([]byte(`{}`))
	if err != nil || none.defaultPolicy.Mode != policies.DenyAll || none.maxPolicy != nil || len(none.templates) != 0 {
		t.Errorf("empty config: %+v %v", none, err)
	}
}

func TestOperatorConfigErrors(t *testing.T) {
	tpl := func(body string) string { return `{"templates": {"node": ` + body + `}}` }
	tests := []struct {
		name, in string
		want     []string
	}{
		{"syntax", "{\n  \"default_policy\": {\"mode\": \"deny-all\"},\n  oops\n}", []string{"not valid JSON", "line 3, column"}},
		{"not an object", `[1]`, []string{"expected an object", "array"}},
		{"empty", ``, []string{"empty"}},
		{"trailing", `{} {}`, []string{"unexpected data"}},
		{"unknown top field", `{"max": {"mode": "deny-all"}}`, []string{`unknown field "max"`, "default_policy, max_policy, templates, egress, provider, vercel, host_roots and retention"}},
		{"negative keep_commits", `{"retention": {"keep_commits": -1}}`, []string{"retention.keep_commits", "-1 is negative", "1 or more", "0 (or leave it out)"}},
		{"negative keep_days", `{"retention": {"keep_days": -7}}`, []string{"retention.keep_days", "-7 is negative", "1 or more"}},
		{"huge keep_days", `{"retention": {"keep_days": 100000}}`, []string{"retention.keep_days", "100000", "36500"}},
		{"fractional keep_days", `{"retention": {"keep_days": 1.5}}`, []string{"retention.keep_days", "a whole number", "1.5"}},
		{"keep_commits as a string", `{"retention": {"keep_commits": "10"}}`, []string{"retention.keep_commits", "a whole number", "string"}},
		{"retention unknown field", `{"retention": {"keep_weeks": 2}}`, []string{"retention", `unknown field "keep_weeks"`}},
		{"retention not an object", `{"retention": 10}`, []string{"retention", "expected an object"}},
		{"relative host root", `{"host_roots": ["projects"]}`, []string{"host_roots", `"projects" is not an absolute path`}},
		{"missing host root", `{"host_roots": ["/nonexistent/sandkit-root"]}`, []string{"host_roots", "/nonexistent/sandkit-root"}},
		{"host roots type", `{"host_roots": "/srv"}`, []string{"host_roots", "expected an array"}},
		{"unknown provider", `{"provider": "e2b"}`, []string{"provider", `"e2b"`, "local", "vercel"}},
		{"vercel odd vcpus", `{"vercel": {"vcpus": 3}}`, []string{"vercel.vcpus", "1 or an even number"}},
		{"vercel bad duration", `{"vercel": {"max_lifetime": "forever"}}`, []string{"vercel.max_lifetime", `"forever"`}},
		{"vercel short snapshot expiration", `{"vercel": {"snapshot_expiration": "1h"}}`, []string{"vercel.snapshot_expiration", "24h"}},
		{"vercel policy shape", `{"vercel": {"policy_shape": "v3"}}`, []string{"vercel.policy_shape", "legacy", "v2"}},
		{"vercel unknown field", `{"vercel": {"token": "x"}}`, []string{"vercel", "token"}},
		{"unknown policy field", `{"default_policy": {"mode": "deny-all", "allow": ["x"]}}`, []string{"default_policy", `unknown field "allow"`}},
		{"wrong type", `{"default_policy": {"mode": 3}}`, []string{"default_policy.mode", "expected a string", "number"}},
		{"bad default", `{"default_policy": {"mode": "allow", "domains": ["a.*.com"]}}`, []string{"default_policy", "wildcard"}},
		{"bad max", `{"max_policy": {"mode": "allow", "domains": ["a.com:80"]}}`, []string{"max_policy", "port"}},
		{"unknown preset", `{"max_policy": {"mode": "allow", "services": [{"id": "npmjs"}]}}`, []string{"max_policy", `"npmjs"`}},
		{"literal default", `{"default_policy": {"mode": "allow", "services": [{"id": "github", "credential": {"value": "ghp_x"}}]}}`,
			[]string{"default_policy", `service "github"`, "literal secret"}},
		{"default wider than max", `{"default_policy": {"mode": "allow-all"}, "max_policy": {"mode": "allow", "services": [{"id": "npm"}]}}`,
			[]string{"default_policy is wider than max_policy", "allow-all"}},
		{"max of deny with default deny", `{"max_policy": {"mode": "deny-all"}, "default_policy": {"mode": "allow", "domains": ["a.com"]}}`,
			[]string{"default_policy is wider than max_policy"}},
		{"templates not an object", `{"templates": []}`, []string{"templates", "expected an object"}},
		{"template unknown field", tpl(`{"command": "true", "policy": {"mode": "deny-all"}, "env": {}}`), []string{"templates.node", `unknown field "env"`}},
		{"template without command", tpl(`{"policy": {"mode": "deny-all"}}`), []string{"templates.node", "command is empty"}},
		{"template without policy", tpl(`{"command": "true"}`), []string{"templates.node.policy is required"}},
		{"template args type", tpl(`{"command": "sh", "args": "-c true", "policy": {"mode": "deny-all"}}`), []string{"templates.node.args", "expected an array"}},
		{"template bad policy", tpl(`{"command": "true", "policy": {"mode": "allow"}}`), []string{"templates.node.policy", "at least one domain or service"}},
		{"template literal secret", tpl(`{"command": "true", "policy": {"mode": "allow", "services": [{"id": "github", "credential": {"value": "s"}}]}}`),
			[]string{"templates.node", `service "github"`, "literal secret"}},
		{"template bad timeout", tpl(`{"command": "true", "policy": {"mode": "deny-all"}, "timeout": "ten minutes"}`), []string{"templates.node.timeout", `"ten minutes"`}},
		{"template huge timeout", tpl(`{"command": "true", "policy": {"mode": "deny-all"}, "timeout": "12h"}`), []string{"templates.node", "timeout"}},
		{"template bad name", `{"templates": {"my node": {"command": "true", "policy": {"mode": "deny-all"}}}}`, []string{"templates", `"my node"`}},
	}
	for _, tc := range tests {
		_, err := parseOperatorConfig([]byte(tc.in))
		if err == nil {
			t.Errorf("%s: accepted %s", tc.name, tc.in)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestLoadOperatorConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := config{dataDir: dir}
	oc, err := loadOperatorConfig(cfg)
	if err != nil || oc.path != "" || oc.defaultPolicy.Mode != policies.DenyAll {
		t.Fatalf("no config file: %+v %v", oc, err)
	}
	// <data-dir>/config.json is read when present; errors name the file.
	def := filepath.Join(dir, "config.json")
	if err := os.WriteFile(def, []byte(`{"default_policy": {"mode": "allow-al"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadOperatorConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), def) || !strings.Contains(err.Error(), `unknown mode "allow-al"`) {
		t.Fatalf("bad default config: %v", err)
	}
	// --config wins, and must exist.
	other := filepath.Join(t.TempDir(), "ops.json")
	if err := os.WriteFile(other, []byte(goodConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	oc, err = loadOperatorConfig(config{dataDir: dir, configFile: other})
	if err != nil || oc.path != other || len(oc.templates) != 2 {
		t.Fatalf("--config: %+v %v", oc, err)
	}
	_, err = loadOperatorConfig(config{dataDir: dir, configFile: filepath.Join(dir, "missing.json")})
	if err == nil || !strings.Contains(err.Error(), "--config") || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing --config: %v", err)
	}
	// The flag is made absolute and passed to a daemon the door starts.
	c, _, err := parseConfig("sandkit-mcp", []string{"--data-dir", dir, "--config", "rel.json"})
	if err != nil || !filepath.IsAbs(c.configFile) {
		t.Fatalf("--config rel.json: %+v %v", c, err)
	}
	if args := daemonArgs(c); !slices.Contains(args, c.configFile) {
		t.Errorf("daemon args %v do not pass --config on", args)
	}
	if args := daemonArgs(config{dataDir: dir}); slices.Contains(args, "--config") {
		t.Errorf("daemon args %v pass --config without one", args)
	}
}

func TestServerInstructions(t *testing.T) {
	oc, err := parseOperatorConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	s := tools.Instructions(tools.ServerFacts{DefaultPolicy: oc.defaultPolicy, MaxPolicy: oc.maxPolicy})
	for _, w := range []string{"allow:npm", "operator's limit", "github", "no setup templates"} {
		if !strings.Contains(s, w) {
			t.Errorf("instructions do not mention %q:\n%s", w, s)
		}
	}
}

func TestOperatorConfigEgress(t *testing.T) {
	oc, err := parseOperatorConfig([]byte(`{"egress": {"allow_addrs": ["10.0.0.5:443", "[fd00::5]:8443"],
		"allow_prefixes": ["10.1.2.3/16"], "resolve": {"Registry.Internal.": ["10.0.0.5"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	eg := oc.egress
	if len(eg.AllowAddrs) != 2 || eg.AllowAddrs[0].String() != "10.0.0.5:443" || eg.AllowAddrs[1].String() != "[fd00::5]:8443" {
		t.Errorf("allow_addrs: %v", eg.AllowAddrs)
	}
	if len(eg.AllowPrefixes) != 1 || eg.AllowPrefixes[0].String() != "10.1.0.0/16" {
		t.Errorf("allow_prefixes (masked): %v", eg.AllowPrefixes)
	}
	if got := eg.Resolve["registry.internal"]; len(got) != 1 || got[0].String() != "10.0.0.5" {
		t.Errorf("resolve (lower-cased, trailing dot removed): %v", eg.Resolve)
	}
	for _, c := range []struct{ in, want string }{
		{`{"egress": {"allow_addrs": ["10.0.0.5"]}}`, "egress.allow_addrs[0]"},
		{`{"egress": {"allow_prefixes": ["10.0.0.0"]}}`, "egress.allow_prefixes[0]"},
		{`{"egress": {"resolve": {"a.internal": []}}}`, "egress.resolve.a.internal"},
		{`{"egress": {"resolve": {"a.internal": ["nope"]}}}`, "is not an IP address"},
		{`{"egress": {"allow": []}}`, "allow"},
	} {
		if _, err := parseOperatorConfig([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.in, err, c.want)
		}
	}
}

func TestOperatorConfigVercel(t *testing.T) {
	oc, err := parseOperatorConfig([]byte(`{"provider": "vercel", "vercel": {"runtime": "node24", "vcpus": 4,
		"max_lifetime": "24h", "default_lifetime": "10m", "snapshot_expiration": "720h", "api_url": "https://api.vercel.com", "policy_shape": "v2",
		"oidc_token_file": "/srv/app/./.env.local"}}`))
	if err != nil {
		t.Fatal(err)
	}
	v := oc.vercel
	if oc.provider != "vercel" || v.runtime != "node24" || v.vcpus != 4 || v.maxLifetime != 24*time.Hour || v.defaultLifetime != 10*time.Minute ||
		v.snapshotExpiration != 720*time.Hour || v.apiURL != "https://api.vercel.com" || v.policyShape != vercel.PolicyV2 ||
		v.oidcTokenFile != "/srv/app/.env.local" {
		t.Fatalf("parsed %+v, provider %q", v, oc.provider)
	}
	if _, err := parseOperatorConfig([]byte(`{"vercel": {"oidc_token_file": ".env.local"}}`)); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative oidc_token_file: %v; want an error asking for an absolute path", err)
	}
	for shape, want := range map[string]vercel.PolicyShape{"": vercel.PolicyAuto, "auto": vercel.PolicyAuto, "legacy": vercel.PolicyLegacy} {
		oc, err := parseOperatorConfig([]byte(`{"vercel": {"policy_shape": "` + shape + `"}}`))
		if err != nil || oc.vercel.policyShape != want {
			t.Errorf("policy_shape %q: %v, %v; want %v", shape, oc.vercel.policyShape, err, want)
		}
	}
	if got := providerName(config{}, oc); got != "vercel" {
		t.Errorf("providerName without a flag = %q, want the config's vercel", got)
	}
	if got := providerName(config{provider: "local"}, oc); got != "local" {
		t.Errorf("providerName with --provider local = %q, want the flag to win", got)
	}
	if got := providerName(config{}, operatorConfig{}); got != "local" {
		t.Errorf("providerName by default = %q, want local", got)
	}
}

func TestInstallationID(t *testing.T) {
	dir := t.TempDir()
	a, err := installationID(dir)
	if err != nil || !installationIDRe.MatchString(a) {
		t.Fatalf("installationID = %q, %v", a, err)
	}
	if b, err := installationID(dir); err != nil || b != a {
		t.Fatalf("second call = %q, %v; want the same id %q", b, err, a)
	}
	if err := os.WriteFile(filepath.Join(dir, "installation-id"), []byte("NOT VALID\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := installationID(dir); err == nil || !strings.Contains(err.Error(), "installation id") {
		t.Fatalf("damaged id file: %v; want an error saying so", err)
	}
}

func TestOperatorConfigHostRoots(t *testing.T) {
	dir := t.TempDir()
	oc, err := parseOperatorConfig([]byte(`{"host_roots": ["` + dir + `/", "` + dir + `"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(oc.hostRoots, []string{dir}) {
		t.Errorf("host roots %v, want [%s] (cleaned, once)", oc.hostRoots, dir)
	}
}

func TestOperatorConfigRetention(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want engine.Retention
		says string
	}{
		{`{}`, engine.Retention{}, "keep everything"},
		{`{"retention": {}}`, engine.Retention{}, "keep everything"},
		{`{"retention": {"keep_commits": 20}}`, engine.Retention{KeepCommits: 20}, "keep_commits=20"},
		{`{"retention": {"keep_days": 30}}`, engine.Retention{KeepDays: 30}, "keep_days=30"},
		{`{"retention": {"keep_commits": 5, "keep_days": 0}}`, engine.Retention{KeepCommits: 5}, "keep_commits=5"},
		{`{"retention": {"keep_commits": 100, "keep_days": 7}}`, engine.Retention{KeepCommits: 100, KeepDays: 7}, "keep_commits=100, keep_days=7"},
	} {
		oc, err := parseOperatorConfig([]byte(tc.in))
		if err != nil || oc.retention != tc.want {
			t.Errorf("%s: retention %+v, %v; want %+v", tc.in, oc.retention, err, tc.want)
			continue
		}
		oc.path = "/etc/sandkit.json"
		if d := oc.describe(); !strings.Contains(d, "retention "+tc.says) {
			t.Errorf("%s: describe() = %q, want it to say retention %s", tc.in, d, tc.says)
		}
	}
}
