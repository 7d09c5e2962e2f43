package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandkit/sandkit-mcp/internal/door"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
)

// The operator config: a JSON file (--config FILE, else <data-dir>/config.json when it exists)
// that the server's operator writes, never an agent. Every field is optional:
//
//	{
//	  "default_policy": {"mode": "deny-all"},
//	  "max_policy": {"mode": "allow", "services": [{"id": "npm"}, {"id": "github"}], "domains": ["*.example.com"]},
//	  "provider": "local",
//	  "vercel": {"runtime": "node24", "vcpus": 2, "max_lifetime": "24h", "default_lifetime": "5m",
//	             "snapshot_expiration": "0s", "api_url": "https://vercel.com/api", "policy_shape": "auto",
//	             "oidc_token_file": "/home/me/app/.env.local"},
//	  "host_roots": ["/srv/projects"],
//	  "retention": {"keep_commits": 100, "keep_days": 30},
//	  "egress": {"allow_addrs": ["10.0.0.5:443"], "allow_prefixes": ["10.1.0.0/16"],
//	             "resolve": {"registry.internal": ["10.0.0.5"]}},
//	  "templates": {
//	    "node": {
//	      "description": "Node.js project with its npm dependencies installed",
//	      "command": "sh",
//	      "args": ["-c", "git clone https://github.com/acme/app . && npm ci"],
//	      "policy": {"mode": "allow", "services": [{"id": "github"}, {"id": "npm"}]},
//	      "timeout": "20m"
//	    }
//	  }
//	}
//
//   - default_policy: the egress policy of workspaces created without one (default deny-all).
//     Durable: credentials from the server's environment only. Within max_policy.
//   - max_policy: the widest policy agents may use, for workspace defaults (create_workspace,
//     set_policy) and per-run and per-session overrides (run_command, open_session) alike.
//     Absent: no limit.
//   - provider: "local" (bubblewrap on this machine, the default) or "vercel" (Vercel Sandbox;
//     credentials from the environment: VERCEL_OIDC_TOKEN, or VERCEL_ACCESS_TOKEN with
//     VERCEL_TEAM_ID and VERCEL_PROJECT_ID). --provider and SANDKIT_PROVIDER override it.
//   - vercel: the Vercel provider's settings, all optional: runtime (legacy runtime of fresh
//     sandboxes, e.g. "node24"; default Vercel's default image), vcpus (1 or even), max_lifetime
//     (the plan's limit on a sandbox's run time: 45m on Hobby, the default; 24h on Pro),
//     default_lifetime, snapshot_expiration (Go duration ≥ 24h; "0s", the default, keeps
//     snapshots until sandkit deletes them), api_url (default https://vercel.com/api; env
//     SANDKIT_VERCEL_API_URL), policy_shape ("auto", the default: the V2 shape the newest SDK
//     sends, and the legacy one after a 400 naming the V2 shape, remembered; "v2" or "legacy"
//     force one), oidc_token_file (absolute path of the .env file `vercel env pull` writes; the
//     OIDC token is re-read from it when it changes, so the server keeps working past the
//     token's 12 h; env SANDKIT_VERCEL_OIDC_TOKEN_FILE).
//   - egress: what the egress proxy may dial although it is refused by default (loopback,
//     private ranges, link-local, cloud metadata, the host's own addresses): allow_addrs are
//     exact IP:port destinations, allow_prefixes CIDR ranges; resolve maps host names to
//     addresses before DNS (split horizon). Policies still decide which names may be asked for.
//   - host_roots: absolute host directories every connection may import from
//     (create_workspace from_host_dir) and export to (export_workspace), like
//     `serve --host-root`; they must exist when the daemon starts.
//   - retention: how much history each workspace keeps (default: everything). keep_commits N
//     keeps the newest N commits of each workspace, keep_days D those younger than D days; with
//     both, a commit is pruned only when it is outside both, and an absent or 0 key bounds
//     nothing. Whatever they say, a workspace keeps its head, its first commit (exports start
//     from it), its open session's base and every commit another workspace was forked from.
//     Pruning runs after each commit and, for keep_days, at start and hourly; it frees the
//     snapshots (locally: layers) no kept commit shares. Pruned commits cannot be restored,
//     forked, read or diffed: the error says the retention policy pruned them.
//   - templates: shared setups by name (letters, digits, '.', '_', '-'). command and policy are
//     required; policy is durable and governs the setup sandbox only (workspaces made from the
//     template get their own policy); it is not bound by max_policy, which limits agents.
//     timeout is a Go duration (default 30m, at most 6h). Changing command, args or policy
//     builds a new snapshot on next use; description and timeout do not.
//
// The file is read when the daemon starts: after editing it, `sandkit-mcp stop` (the next door
// starts a daemon with the new config). It is refused as a whole, with the file and field named,
// when anything in it is wrong: an unknown field, a wrong type, an invalid policy.

// defaultConfigFile is the config file looked for in the data dir when --config is not given.
const defaultConfigFile = "config.json"

// operatorConfig is the config file as decoded and checked, ready for engine.Options.
type operatorConfig struct {
	// path is the file it came from ("" when there is none).
	path          string
	defaultPolicy policies.Policy
	maxPolicy     *policies.Policy
	templates     map[string]engine.Template
	egress        local.EgressOptions
	// hostRoots is "host_roots", absolute and clean.
	hostRoots []string
	// retention is "retention" (zero: keep everything).
	retention engine.Retention
	// provider is the "provider" field ("" when absent); vercel the "vercel" section.
	provider string
	vercel   vercelSettings
}

// vercelSettings is the "vercel" section, decoded.
type vercelSettings struct {
	runtime            string
	vcpus              int
	maxLifetime        time.Duration
	defaultLifetime    time.Duration
	snapshotExpiration time.Duration
	apiURL             string
	policyShape        vercel.PolicyShape
	// oidcTokenFile is "oidc_token_file", absolute and clean ("" when absent).
	oidcTokenFile string
}

// configFileVercel is the "vercel" section as written in the file.
type configFileVercel struct {
	Runtime            string `json:"runtime"`
	VCPUs              int    `json:"vcpus"`
	MaxLifetime        string `json:"max_lifetime"`
	DefaultLifetime    string `json:"default_lifetime"`
	SnapshotExpiration string `json:"snapshot_expiration"`
	APIURL             string `json:"api_url"`
	PolicyShape        string `json:"policy_shape"`
	OIDCTokenFile      string `json:"oidc_token_file"`
}

// configFileEgress is the "egress" section as written in the file.
type configFileEgress struct {
	AllowAddrs    []string            `json:"allow_addrs"`
	AllowPrefixes []string            `json:"allow_prefixes"`
	Resolve       map[string][]string `json:"resolve"`
}

// configFileRetention is the "retention" section as written in the file.
type configFileRetention struct {
	KeepCommits int `json:"keep_commits"`
	KeepDays    int `json:"keep_days"`
}

// configFileTemplate is one template as written in the file.
type configFileTemplate struct {
	Description string          `json:"description"`
	Command     string          `json:"command"`
	Args        []string        `json:"args"`
	Policy      json.RawMessage `json:"policy"`
	Timeout     string          `json:"timeout"`
}

// configPath returns the config file to read: --config when given (it must exist), else
// <data-dir>/config.json when it exists, else "".
func configPath(cfg config) (string, error) {
	if cfg.configFile != "" {
		if _, err := os.Stat(cfg.configFile); err != nil {
			return "", fmt.Errorf("--config %s: %w", cfg.configFile, err)
		}
		return cfg.configFile, nil
	}
	p := filepath.Join(cfg.dataDir, defaultConfigFile)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("config %s: %w", p, err)
	}
	return "", nil
}

// loadOperatorConfig reads and checks the operator config of cfg (none: the defaults).
func loadOperatorConfig(cfg config) (operatorConfig, error) {
	path, err := configPath(cfg)
	if err != nil || path == "" {
		return operatorConfig{defaultPolicy: policies.Deny()}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return operatorConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	oc, err := parseOperatorConfig(b)
	if err != nil {
		return operatorConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	oc.path = path
	return oc, nil
}

// parseOperatorConfig decodes and checks a config file's content. Errors name the field
// ("templates.node.policy: …") or the line and column of a syntax error.
func parseOperatorConfig(b []byte) (operatorConfig, error) {
	oc := operatorConfig{defaultPolicy: policies.Deny()}
	var top map[string]json.RawMessage
	if err := decodeStrict(b, &top, ""); err != nil {
		return oc, err
	}
	if top == nil {
		return oc, errors.New("expected a JSON object with default_policy, max_policy and templates (each optional)")
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		switch k {
		case "default_policy", "max_policy", "templates", "egress", "provider", "vercel", "host_roots", "retention":
		default:
			return oc, fmt.Errorf("unknown field %q; the config takes default_policy, max_policy, templates, egress, provider, vercel, host_roots and retention", k)
		}
	}
	if raw, ok := top["retention"]; ok {
		var f configFileRetention
		if err := decodeStrict(raw, &f, "retention"); err != nil {
			return oc, err
		}
		r := engine.Retention{KeepCommits: f.KeepCommits, KeepDays: f.KeepDays}
		if err := r.Check(); err != nil {
			return oc, err
		}
		oc.retention = r
	}
	if raw, ok := top["host_roots"]; ok {
		var roots []string
		if err := decodeStrict(raw, &roots, "host_roots"); err != nil {
			return oc, err
		}
		for _, r := range roots {
			if !filepath.IsAbs(r) {
				return oc, fmt.Errorf("host_roots: %q is not an absolute path", r)
			}
		}
		clean, err := door.CleanHostRoots(roots)
		if err != nil {
			return oc, fmt.Errorf("host_roots: %w", err)
		}
		oc.hostRoots = clean
	}
	if raw, ok := top["provider"]; ok {
		if err := decodeStrict(raw, &oc.provider, "provider"); err != nil {
			return oc, err
		}
		if err := door.CheckProviderName(oc.provider); err != nil {
			return oc, fmt.Errorf("provider: %w", err)
		}
	}
	if raw, ok := top["vercel"]; ok {
		v, err := configVercel(raw)
		if err != nil {
			return oc, err
		}
		oc.vercel = v
	}
	if raw, ok := top["egress"]; ok {
		eg, err := configEgress(raw)
		if err != nil {
			return oc, err
		}
		oc.egress = eg
	}
	if raw, ok := top["max_policy"]; ok {
		p, err := configPolicy(raw, "max_policy")
		if err != nil {
			return oc, err
		}
		oc.maxPolicy = &p
	}
	if raw, ok := top["default_policy"]; ok {
		p, err := configPolicy(raw, "default_policy")
		if err != nil {
			return oc, err
		}
		if err := policies.Durable(p); err != nil {
			return oc, fmt.Errorf("default_policy: %w", err)
		}
		oc.defaultPolicy = p
	}
	if oc.maxPolicy != nil {
		if err := policies.Within(oc.defaultPolicy, *oc.maxPolicy); err != nil {
			what := "default_policy"
			if _, ok := top["default_policy"]; !ok {
				what = "default_policy (absent: deny-all)"
			}
			return oc, fmt.Errorf("%s is wider than max_policy: %w", what, err)
		}
	}
	if raw, ok := top["templates"]; ok {
		var byName map[string]json.RawMessage
		if err := decodeStrict(raw, &byName, "templates"); err != nil {
			return oc, err
		}
		oc.templates = map[string]engine.Template{}
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			t, err := configTemplate(byName[name], name)
			if err != nil {
				return oc, err
			}
			oc.templates[name] = t
		}
	}
	return oc, nil
}

// configEgress decodes the egress section: destinations the egress proxy may dial although
// they are refused by default (loopback, private, link-local, metadata, the host's own), and
// static name mappings.
func configEgress(raw json.RawMessage) (local.EgressOptions, error) {
	var f configFileEgress
	var eg local.EgressOptions
	if err := decodeStrict(raw, &f, "egress"); err != nil {
		return eg, err
	}
	for i, a := range f.AllowAddrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return eg, fmt.Errorf("egress.allow_addrs[%d]: %q is not an IP:port (e.g. \"10.0.0.5:443\" or \"[fd00::5]:443\"): %v", i, a, err)
		}
		eg.AllowAddrs = append(eg.AllowAddrs, ap)
	}
	for i, a := range f.AllowPrefixes {
		pf, err := netip.ParsePrefix(a)
		if err != nil {
			return eg, fmt.Errorf("egress.allow_prefixes[%d]: %q is not a CIDR prefix (e.g. \"10.0.0.0/8\"): %v", i, a, err)
		}
		eg.AllowPrefixes = append(eg.AllowPrefixes, pf.Masked())
	}
	for _, name := range slices.Sorted(maps.Keys(f.Resolve)) {
		host := strings.TrimSuffix(strings.ToLower(name), ".")
		if host == "" || len(f.Resolve[name]) == 0 {
			return eg, fmt.Errorf("egress.resolve.%s: give a host name and at least one IP address", name)
		}
		for i, a := range f.Resolve[name] {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return eg, fmt.Errorf("egress.resolve.%s[%d]: %q is not an IP address: %v", name, i, a, err)
			}
			if eg.Resolve == nil {
				eg.Resolve = map[string][]netip.Addr{}
			}
			eg.Resolve[host] = append(eg.Resolve[host], ip)
		}
	}
	return eg, nil
}

// configVercel decodes the vercel section.
func configVercel(raw json.RawMessage) (vercelSettings, error) {
	var f configFileVercel
	var v vercelSettings
	if err := decodeStrict(raw, &f, "vercel"); err != nil {
		return v, err
	}
	v.runtime, v.vcpus, v.apiURL = f.Runtime, f.VCPUs, f.APIURL
	if v.vcpus < 0 || v.vcpus > 1 && v.vcpus%2 != 0 {
		return v, fmt.Errorf("vercel.vcpus: %d; Vercel takes 1 or an even number of vCPUs", v.vcpus)
	}
	for _, d := range []struct {
		field string
		in    string
		out   *time.Duration
	}{{"max_lifetime", f.MaxLifetime, &v.maxLifetime}, {"default_lifetime", f.DefaultLifetime, &v.defaultLifetime}, {"snapshot_expiration", f.SnapshotExpiration, &v.snapshotExpiration}} {
		if d.in == "" {
			continue
		}
		x, err := time.ParseDuration(d.in)
		if err != nil || x < 0 {
			return v, fmt.Errorf("vercel.%s: %q is not a duration (e.g. \"45m\", \"24h\")", d.field, d.in)
		}
		*d.out = x
	}
	if v.snapshotExpiration != 0 && v.snapshotExpiration < 24*time.Hour {
		return v, fmt.Errorf("vercel.snapshot_expiration: %v is shorter than Vercel's minimum of 24h (\"0s\" keeps snapshots until sandkit deletes them)", v.snapshotExpiration)
	}
	if v.maxLifetime != 0 && v.defaultLifetime > v.maxLifetime {
		return v, fmt.Errorf("vercel.default_lifetime %v is longer than vercel.max_lifetime %v", v.defaultLifetime, v.maxLifetime)
	}
	if f.OIDCTokenFile != "" {
		if !filepath.IsAbs(f.OIDCTokenFile) {
			return v, fmt.Errorf("vercel.oidc_token_file: %q is not an absolute path (name the .env file `vercel env pull` writes, e.g. /home/me/app/.env.local)", f.OIDCTokenFile)
		}
		v.oidcTokenFile = filepath.Clean(f.OIDCTokenFile)
	}
	switch f.PolicyShape {
	case "", "auto":
		v.policyShape = vercel.PolicyAuto
	case "legacy":
		v.policyShape = vercel.PolicyLegacy
	case "v2":
		v.policyShape = vercel.PolicyV2
	default:
		return v, fmt.Errorf("vercel.policy_shape: %q; use \"auto\" (the default), \"v2\" or \"legacy\"", f.PolicyShape)
	}
	return v, nil
}

// configPolicy decodes and normalizes a policy of the config file at field.
func configPolicy(raw json.RawMessage, field string) (policies.Policy, error) {
	var p policies.Policy
	if err := decodeStrict(raw, &p, field); err != nil {
		return p, err
	}
	n, err := policies.Normalize(p)
	if err != nil {
		return n, fmt.Errorf("%s: %w", field, err)
	}
	return n, nil
}

// configTemplate decodes and checks the template name of the config file.
func configTemplate(raw json.RawMessage, name string) (engine.Template, error) {
	field := "templates." + name
	var ft configFileTemplate
	if err := decodeStrict(raw, &ft, field); err != nil {
		return engine.Template{}, err
	}
	t := engine.Template{Description: strings.TrimSpace(ft.Description), Command: ft.Command, Args: ft.Args}
	if len(ft.Policy) == 0 || string(ft.Policy) == "null" {
		return t, fmt.Errorf(`%s.policy is required: the setup's egress policy, e.g. {"mode": "deny-all"}, or {"mode": "allow", "services": [{"id": "npm"}]} to install npm packages`, field)
	}
	p, err := configPolicy(ft.Policy, field+".policy")
	if err != nil {
		return t, err
	}
	t.Policy = p
	if ft.Timeout != "" {
		d, err := time.ParseDuration(ft.Timeout)
		if err != nil {
			return t, fmt.Errorf("%s.timeout %q: give a duration such as \"20m\" or \"1h30m\"", field, ft.Timeout)
		}
		if d <= 0 {
			return t, fmt.Errorf("%s.timeout %q must be positive", field, ft.Timeout)
		}
		t.Timeout = d
	}
	c, err := engine.CheckTemplate(name, t)
	if err != nil {
		if strings.HasPrefix(err.Error(), "template name") {
			return t, fmt.Errorf("templates: %w", err)
		}
		return t, fmt.Errorf("%s: %w", field, err)
	}
	return c, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and trailing data. Errors
// name field (the path of raw in the file) and, for syntax errors, the offset.
func decodeStrict(raw []byte, v any, field string) error {
	at := func(msg string) error {
		if field == "" {
			return errors.New(msg)
		}
		return fmt.Errorf("%s: %s", field, msg)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if _, err := dec.Token(); err != io.EOF {
			return at("unexpected data after the JSON value")
		}
		return nil
	case errors.Is(err, io.EOF):
		return at("empty; expected a JSON value")
	case errors.As(err, &syn):
		line, col := position(raw, syn.Offset)
		return at(fmt.Sprintf("not valid JSON at line %d, column %d: %v", line, col, syn))
	case errors.As(err, &typ):
		where := field
		if typ.Field != "" {
			if where != "" {
				where += "."
			}
			where += typ.Field
		}
		if where == "" {
			return fmt.Errorf("expected %s, got a JSON %s", jsonType(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Errorf("%s: expected %s, got a JSON %s", where, jsonType(typ.Type.Kind().String()), typ.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return at("unknown field " + f)
	}
	return at(strings.TrimPrefix(err.Error(), "json: "))
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64":
		return "a whole number"
	}
	return "a " + kind
}

// describe summarizes the config for logs and bootstrap.
func (oc operatorConfig) describe() string {
	if oc.path == "" {
		return "no config file (default policy deny-all, no limit, no templates)"
	}
	limit := "no limit"
	if oc.maxPolicy != nil {
		limit = "max " + oc.maxPolicy.String()
	}
	return fmt.Sprintf("config %s: default policy %s, %s, %d template(s), retention %s", oc.path, oc.defaultPolicy.String(), limit, len(oc.templates), oc.retention.String())
}
