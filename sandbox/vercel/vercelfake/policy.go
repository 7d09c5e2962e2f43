package vercelfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/sandkit/sandkit-mcp/policies"
)

// netPolicy is a validated network policy in the service's internal (legacy "custom") form. It
// keeps header values, which are never echoed: response() shows header names only.
type netPolicy struct {
	mode      string // allow-all, deny-all or custom
	domains   []string
	allowCIDR []string
	denyCIDR  []string
	inject    []injectionRule
	forward   []forwardRule
	respond   []responseRule
}

type injectionRule struct {
	domain  string
	headers map[string]string // values are secrets: never echoed
	match   *ruleMatch
}

type forwardRule struct {
	domain     string
	forwardURL string
	match      *ruleMatch
}

type responseRule struct {
	domain string
	match  *ruleMatch
	resp   directResponse
}

// Request shapes (§4.7). Unknown properties are rejected by the strict decoder.

type ruleMatcher struct {
	Exact      *string `json:"exact,omitempty"`
	StartsWith *string `json:"startsWith,omitempty"`
	Regex      *string `json:"regex,omitempty"`
}

type keyValueMatcher struct {
	Key   *ruleMatcher `json:"key,omitempty"`
	Value *ruleMatcher `json:"value,omitempty"`
}

type ruleMatch struct {
	Path        *ruleMatcher      `json:"path,omitempty"`
	Method      []string          `json:"method,omitempty"`
	QueryString []keyValueMatcher `json:"queryString,omitempty"`
	Headers     []keyValueMatcher `json:"headers,omitempty"`
}

type transform struct {
	Headers map[string]string `json:"headers,omitempty"`
}

type directResponse struct {
	StatusCode  *int              `json:"statusCode"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        *string           `json:"body,omitempty"`
	ContentType *string           `json:"contentType,omitempty"`
}

type v2Rule struct {
	Match        *ruleMatch      `json:"match,omitempty"`
	Transform    []transform     `json:"transform,omitempty"`
	ForwardURL   *string         `json:"forwardURL,omitempty"`
	Response     *directResponse `json:"response,omitempty"`
	hasTransform bool            // Transform was present (even empty)
}

type legacyInjection struct {
	Domain  *string           `json:"domain"`
	Headers map[string]string `json:"headers,omitempty"`
	Match   *ruleMatch        `json:"match,omitempty"`
}

type legacyForward struct {
	Domain     *string    `json:"domain"`
	ForwardURL *string    `json:"forwardURL"`
	Match      *ruleMatch `json:"match,omitempty"`
}

type legacyPolicy struct {
	Mode           string            `json:"mode"`
	AllowedDomains []string          `json:"allowedDomains,omitempty"`
	AllowedCIDRs   []string          `json:"allowedCIDRs,omitempty"`
	DeniedCIDRs    []string          `json:"deniedCIDRs,omitempty"`
	InjectionRules []legacyInjection `json:"injectionRules,omitempty"`
	ForwardRules   []legacyForward   `json:"forwardRules,omitempty"`
}

type v2Subnets struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

type v2Policy struct {
	Allow   json.RawMessage `json:"allow,omitempty"`
	Subnets *v2Subnets      `json:"subnets,omitempty"`
}

// parsePolicy validates a network policy in either request shape (§4.7): {mode:"allow-all"},
// {mode:"deny-all"}, the legacy {mode:"custom",...}, or the V2 object {allow, subnets} (no
// mode). where names the policy in error messages ("networkPolicy", or "" for a body that is
// the policy itself).
func parsePolicy(raw json.RawMessage, where string) (*netPolicy, error) {
	field := func(f string) string {
		if where == "" {
			return f
		}
		if f == "" {
			return where
		}
		return where + "." + f
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil || probe == nil {
		return nil, badRequest("`%s` should be object", field(""))
	}
	if modeRaw, ok := probe["mode"]; ok {
		var mode string
		if err := json.Unmarshal(modeRaw, &mode); err != nil {
			return nil, badRequest("`%s` should be string", field("mode"))
		}
		switch mode {
		case "allow-all", "deny-all":
			for k := range probe {
				if k != "mode" {
					return nil, badRequest("`%s` should NOT have additional property `%s` with mode %q", field(""), k, mode)
				}
			}
			return &netPolicy{mode: mode}, nil
		case "custom":
			var lp legacyPolicy
			if err := decodeJSON(raw, &lp, false); err != nil {
				return nil, prefixError(err, where)
			}
			return parseLegacy(lp, field)
		default:
			return nil, badRequest("`%s` should be equal to one of the allowed values: allow-all, deny-all, custom", field("mode"))
		}
	}
	var vp v2Policy
	if err := decodeJSON(raw, &vp, false); err != nil {
		return nil, prefixError(err, where)
	}
	return parseV2(vp, field)
}

// prefixError puts the policy's name in front of a decoder message.
func prefixError(err error, where string) error {
	ae, ok := err.(*apiError)
	if !ok || where == "" {
		return err
	}
	ae.Message = strings.Replace(ae.Message, "Invalid request: ", "Invalid request: `"+where+"` ", 1)
	ae.Message = strings.Replace(ae.Message, "` `", ".", 1)
	return ae
}

func parseLegacy(lp legacyPolicy, field func(string) string) (*netPolicy, error) {
	p := &netPolicy{mode: "custom"}
	var err error
	if p.domains, err = checkDomains(lp.AllowedDomains, field("allowedDomains")); err != nil {
		return nil, err
	}
	if p.allowCIDR, err = checkCIDRs(lp.AllowedCIDRs, field("allowedCIDRs")); err != nil {
		return nil, err
	}
	if p.denyCIDR, err = checkCIDRs(lp.DeniedCIDRs, field("deniedCIDRs")); err != nil {
		return nil, err
	}
	for i, r := range lp.InjectionRules {
		at := fmt.Sprintf("%s[%d]", field("injectionRules"), i)
		if r.Domain == nil {
			return nil, badRequest("`%s` should have required property `domain`", at)
		}
		d, err := checkDomain(*r.Domain, at+".domain")
		if err != nil {
			return nil, err
		}
		if err := checkMatch(r.Match, at+".match"); err != nil {
			return nil, err
		}
		if err := checkHeaders(r.Headers, at+".headers"); err != nil {
			return nil, err
		}
		p.inject = append(p.inject, injectionRule{domain: d, headers: r.Headers, match: r.Match})
	}
	for i, r := range lp.ForwardRules {
		at := fmt.Sprintf("%s[%d]", field("forwardRules"), i)
		if r.Domain == nil || r.ForwardURL == nil {
			return nil, badRequest("`%s` should have required properties `domain` and `forwardURL`", at)
		}
		d, err := checkDomain(*r.Domain, at+".domain")
		if err != nil {
			return nil, err
		}
		if err := checkMatch(r.Match, at+".match"); err != nil {
			return nil, err
		}
		if err := checkForwardURL(*r.ForwardURL, at+".forwardURL"); err != nil {
			return nil, err
		}
		p.forward = append(p.forward, forwardRule{domain: d, forwardURL: *r.ForwardURL, match: r.Match})
	}
	return p, nil
}

func parseV2(vp v2Policy, field func(string) string) (*netPolicy, error) {
	p := &netPolicy{mode: "custom"}
	var err error
	if vp.Subnets != nil {
		if p.allowCIDR, err = checkCIDRs(vp.Subnets.Allow, field("subnets.allow")); err != nil {
			return nil, err
		}
		if p.denyCIDR, err = checkCIDRs(vp.Subnets.Deny, field("subnets.deny")); err != nil {
			return nil, err
		}
	}
	allow := bytes.TrimSpace(vp.Allow)
	switch {
	case len(allow) == 0 || string(allow) == "null":
		p.domains = []string{}
	case allow[0] == '[':
		var list []string
		if err := json.Unmarshal(allow, &list); err != nil {
			return nil, badRequest("`%s` should be array of strings or object", field("allow"))
		}
		if p.domains, err = checkDomains(list, field("allow")); err != nil {
			return nil, err
		}
	case allow[0] == '{':
		// Keep the record's order: the SDK's record is written in a meaningful order.
		keys, values, err := orderedObject(allow)
		if err != nil {
			return nil, badRequest("`%s` should be object: %v", field("allow"), err)
		}
		p.domains = []string{}
		for i, key := range keys {
			at := fmt.Sprintf("%s[%q]", field("allow"), key)
			d, err := checkDomain(key, at)
			if err != nil {
				return nil, err
			}
			p.domains = append(p.domains, d)
			var rules []json.RawMessage
			if err := json.Unmarshal(values[i], &rules); err != nil {
				return nil, badRequest("`%s` should be array", at)
			}
			for j, raw := range rules {
				if err := p.addV2Rule(d, raw, fmt.Sprintf("%s[%d]", at, j)); err != nil {
					return nil, err
				}
			}
		}
	default:
		return nil, badRequest("`%s` should be array of strings or object", field("allow"))
	}
	return p, nil
}

// addV2Rule validates one rule of the record form and files it under domain.
func (p *netPolicy) addV2Rule(domain string, raw json.RawMessage, at string) error {
	var r v2Rule
	if err := decodeJSON(raw, &r, false); err != nil {
		return prefixError(err, at)
	}
	var probe map[string]json.RawMessage
	_ = json.Unmarshal(raw, &probe)
	_, r.hasTransform = probe["transform"]
	n := 0
	for _, present := range []bool{r.hasTransform, r.ForwardURL != nil, r.Response != nil} {
		if present {
			n++
		}
	}
	if n != 1 {
		return badRequest("`%s` must have exactly one of `transform`, `forwardURL` or `response` (got %d)", at, n)
	}
	if err := checkMatch(r.Match, at+".match"); err != nil {
		return err
	}
	switch {
	case r.hasTransform:
		headers := map[string]string{}
		for i, t := range r.Transform {
			if err := checkHeaders(t.Headers, fmt.Sprintf("%s.transform[%d].headers", at, i)); err != nil {
				return err
			}
			for k, v := range t.Headers {
				headers[k] = v
			}
		}
		p.inject = append(p.inject, injectionRule{domain: domain, headers: headers, match: r.Match})
	case r.ForwardURL != nil:
		if err := checkForwardURL(*r.ForwardURL, at+".forwardURL"); err != nil {
			return err
		}
		p.forward = append(p.forward, forwardRule{domain: domain, forwardURL: *r.ForwardURL, match: r.Match})
	default:
		if err := checkResponse(r.Response, at+".response"); err != nil {
			return err
		}
		p.respond = append(p.respond, responseRule{domain: domain, match: r.Match, resp: *r.Response})
	}
	return nil
}

// orderedObject splits a JSON object into its keys and raw values, in order.
func orderedObject(data []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var keys []string
	var values []json.RawMessage
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if seen[k] {
			return nil, nil, fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values, nil
}

var labelRe = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// checkDomain validates a domain pattern: "*", "*.<host>" or a host name (or IP address).
func checkDomain(d, at string) (string, error) {
	d = strings.ToLower(strings.TrimSpace(d))
	if d == "*" {
		return d, nil
	}
	host := strings.TrimPrefix(d, "*.")
	if _, err := netip.ParseAddr(host); err == nil && host == d {
		return d, nil
	}
	if host == "" || len(host) > 253 {
		return "", badRequest("`%s` is not a valid domain: %q", at, d)
	}
	for _, l := range strings.Split(host, ".") {
		if !labelRe.MatchString(l) {
			return "", badRequest("`%s` is not a valid domain: %q (a host name, \"*.\" followed by one, or \"*\")", at, d)
		}
	}
	return d, nil
}

func checkDomains(in []string, at string) ([]string, error) {
	out := []string{}
	for i, d := range in {
		n, err := checkDomain(d, fmt.Sprintf("%s[%d]", at, i))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func checkCIDRs(in []string, at string) ([]string, error) {
	var out []string
	for i, c := range in {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, badRequest("`%s[%d]` is not a valid CIDR: %q", at, i, c)
		}
		out = append(out, pfx.String())
	}
	return out, nil
}

// checkMatcher: exactly one of exact, startsWith, regex (an RE2 expression).
func checkMatcher(m *ruleMatcher, at string) error {
	if m == nil {
		return nil
	}
	n := 0
	for _, v := range []*string{m.Exact, m.StartsWith, m.Regex} {
		if v != nil {
			n++
		}
	}
	if n != 1 {
		return badRequest("`%s` must have exactly one of `exact`, `startsWith` or `regex`", at)
	}
	if m.Regex != nil {
		if _, err := regexp.Compile(*m.Regex); err != nil {
			return badRequest("`%s.regex` is not a valid RE2 expression: %v", at, err)
		}
	}
	return nil
}

func checkMatch(m *ruleMatch, at string) error {
	if m == nil {
		return nil
	}
	if err := checkMatcher(m.Path, at+".path"); err != nil {
		return err
	}
	for i, meth := range m.Method {
		if !policies.IsToken(meth) {
			return badRequest("`%s.method[%d]` is not an HTTP method: %q", at, i, meth)
		}
	}
	for name, list := range map[string][]keyValueMatcher{"queryString": m.QueryString, "headers": m.Headers} {
		for i, kv := range list {
			where := fmt.Sprintf("%s.%s[%d]", at, name, i)
			if kv.Key == nil && kv.Value == nil {
				return badRequest("`%s` must have `key` or `value`", where)
			}
			if err := checkMatcher(kv.Key, where+".key"); err != nil {
				return err
			}
			if err := checkMatcher(kv.Value, where+".value"); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHeaders validates header names (HTTP tokens, no repeats ignoring case) and values (no
// control characters but tab).
func checkHeaders(h map[string]string, at string) error {
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !policies.IsToken(name) {
			return badRequest("`%s` has an invalid header name %q", at, name)
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return badRequest("`%s` names the header %q twice", at, lower)
		}
		seen[lower] = true
		for _, c := range h[name] {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return badRequest("`%s` has an invalid value for the header %q", at, name)
			}
		}
	}
	return nil
}

// checkForwardURL: an https URL with a host and no userinfo, query or fragment.
func checkForwardURL(s, at string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return badRequest("`%s` is not a valid URL: %q", at, s)
	case u.Scheme != "https":
		return badRequest("`%s` must be an https URL: %q", at, s)
	case u.Host == "":
		return badRequest("`%s` must name a host: %q", at, s)
	case u.User != nil:
		return badRequest("`%s` must not contain credentials (userinfo)", at)
	case u.RawQuery != "" || u.ForceQuery:
		return badRequest("`%s` must not contain a query string: %q", at, s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return badRequest("`%s` must not contain a fragment: %q", at, s)
	}
	return nil
}

// checkResponse applies the direct-response rules of SDK 3.5.
func checkResponse(r *directResponse, at string) error {
	if r.StatusCode == nil {
		return badRequest("`%s` should have required property `statusCode`", at)
	}
	if *r.StatusCode < 200 || *r.StatusCode > 599 {
		return badRequest("`%s.statusCode` must be between 200 and 599", at)
	}
	if r.Body != nil && r.ContentType == nil {
		return badRequest("`%s.contentType` must be provided when `body` is set", at)
	}
	if r.Body != nil && (*r.StatusCode == 204 || *r.StatusCode == 205 || *r.StatusCode == 304) {
		return badRequest("`%s.body` is not allowed on status codes 204, 205, and 304", at)
	}
	if err := checkHeaders(r.Headers, at+".headers"); err != nil {
		return err
	}
	for name := range r.Headers {
		switch strings.ToLower(name) {
		case "connection", "content-length", "transfer-encoding":
			return badRequest("`%s.headers` cannot set the proxy-managed header %q", at, strings.ToLower(name))
		}
	}
	return nil
}

// --- response shape ----------------------------------------------------------------------------

type respInjection struct {
	Domain      string     `json:"domain"`
	HeaderNames []string   `json:"headerNames"`
	Match       *ruleMatch `json:"match,omitempty"`
}

type respForward struct {
	Domain     string     `json:"domain"`
	ForwardURL string     `json:"forwardURL"`
	Match      *ruleMatch `json:"match,omitempty"`
}

type respDirect struct {
	StatusCode  int      `json:"statusCode"`
	HeaderNames []string `json:"headerNames,omitempty"`
	ContentType string   `json:"contentType,omitempty"`
	HasBody     bool     `json:"hasBody,omitempty"`
}

type respResponseRule struct {
	Domain   string     `json:"domain"`
	Match    *ruleMatch `json:"match,omitempty"`
	Response respDirect `json:"response"`
}

type respPolicy struct {
	Mode           string             `json:"mode"`
	AllowedDomains []string           `json:"allowedDomains,omitempty"`
	AllowedCIDRs   []string           `json:"allowedCIDRs,omitempty"`
	DeniedCIDRs    []string           `json:"deniedCIDRs,omitempty"`
	InjectionRules []respInjection    `json:"injectionRules,omitempty"`
	ForwardRules   []respForward      `json:"forwardRules,omitempty"`
	ResponseRules  []respResponseRule `json:"responseRules,omitempty"`
}

// response is the policy in the response shape (§4.7): the legacy shape, header NAMES only.
// Direct-response rules, which the legacy shape cannot express, are echoed as responseRules
// (status, content type and header names; not the body or header values) — an inferred shape
// the SDK's validator passes through.
func (p *netPolicy) response() any {
	if p == nil {
		return nil
	}
	if p.mode != "custom" {
		return map[string]string{"mode": p.mode}
	}
	out := respPolicy{Mode: "custom", AllowedDomains: append([]string{}, p.domains...),
		AllowedCIDRs: p.allowCIDR, DeniedCIDRs: p.denyCIDR}
	if len(out.AllowedDomains) == 0 {
		out.AllowedDomains = nil
	}
	for _, r := range p.inject {
		names := []string{}
		for _, k := range slices.Sorted(maps.Keys(r.headers)) {
			names = append(names, strings.ToLower(k))
		}
		out.InjectionRules = append(out.InjectionRules, respInjection{Domain: r.domain, HeaderNames: names, Match: r.match})
	}
	for _, r := range p.forward {
		out.ForwardRules = append(out.ForwardRules, respForward{Domain: r.domain, ForwardURL: r.forwardURL, Match: r.match})
	}
	for _, r := range p.respond {
		d := respDirect{StatusCode: *r.resp.StatusCode, HasBody: r.resp.Body != nil}
		if r.resp.ContentType != nil {
			d.ContentType = *r.resp.ContentType
		}
		for _, k := range slices.Sorted(maps.Keys(r.resp.Headers)) {
			d.HeaderNames = append(d.HeaderNames, strings.ToLower(k))
		}
		out.ResponseRules = append(out.ResponseRules, respResponseRule{Domain: r.domain, Match: r.match, Response: d})
	}
	return out
}

// backendPolicy maps the policy onto the backend's model where it maps cleanly: allow-all,
// deny-all, and the allowed domains of a custom policy (every domain a rule names is allowed;
// "*" means any domain, i.e. allow-all; no domain at all is deny-all). Subnets and the rules'
// header injection, forwarding and direct responses are not enforced.
func (p *netPolicy) backendPolicy() (policies.Policy, error) {
	if p == nil || p.mode == "allow-all" {
		return policies.Policy{Mode: policies.AllowAll}, nil
	}
	if p.mode == "deny-all" {
		return policies.Deny(), nil
	}
	seen := map[string]bool{}
	var domains []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	for _, d := range p.domains {
		add(d)
	}
	for _, r := range p.inject {
		add(r.domain)
	}
	for _, r := range p.forward {
		add(r.domain)
	}
	for _, r := range p.respond {
		add(r.domain)
	}
	if seen["*"] {
		return policies.Policy{Mode: policies.AllowAll}, nil
	}
	if len(domains) == 0 {
		return policies.Deny(), nil
	}
	pol, err := policies.Normalize(policies.Policy{Mode: policies.Allow, Domains: domains})
	if err != nil {
		return policies.Policy{}, badRequest("the network policy cannot be applied: %v", err)
	}
	return pol, nil
}

// refusePolicyShape answers the 400 of Options.RejectPolicyShape when raw is a policy of the
// refused shape: production's words for the V2 shape on create ("`networkPolicy` should NOT have
// additional property `allow`"), and the same words for the first legacy-only property of a
// refused legacy policy. allow-all and deny-all, the same in both shapes, always pass.
func (s *Server) refusePolicyShape(raw json.RawMessage, where string) error {
	if s.opts.RejectPolicyShape == "" {
		return nil
	}
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return nil // parsePolicy reports it
	}
	var props []string
	switch s.opts.RejectPolicyShape {
	case "v2":
		props = []string{"allow", "subnets"}
	case "legacy":
		if string(probe["mode"]) != `"custom"` {
			return nil
		}
		props = []string{"allowedDomains", "allowedCIDRs", "deniedCIDRs", "injectionRules", "forwardRules"}
	}
	for _, prop := range props {
		if _, ok := probe[prop]; !ok {
			continue
		}
		if where == "" {
			return badRequest("should NOT have additional property `%s`", prop)
		}
		return badRequest("`%s` should NOT have additional property `%s`", where, prop)
	}
	return nil
}
