package vercel

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// networkPolicy is the egress policy sent on create and to a session's network-policy endpoint.
// How it is serialized depends on the shape in force (Config.PolicyShape; PolicyAuto starts
// with V2):
//
//	Mode "allow-all" / "deny-all", both shapes: {"mode":"allow-all"}
//	Mode "custom", PolicyLegacy:
//	  {"mode":"custom","allowedDomains":[...],"allowedCIDRs":[...],"deniedCIDRs":[...],
//	   "injectionRules":[{"domain":d,"headers":{name:value}}]}          (empty lists omitted)
//	Mode "custom", PolicyV2 without injection rules:
//	  {"allow":[domains...],"subnets":{"allow":[...],"deny":[...]}}      ("subnets" and its empty lists omitted)
//	Mode "custom", PolicyV2 with injection rules:
//	  {"allow":{domain:[] | [{"transform":[{"headers":{...}}]}]},"subnets":{...}}
//
// In the V2 record form every AllowedDomains entry is a key; each injection domain is a key
// too (so it is reachable, as the legacy shape implies) whose single rule sets the headers of
// all the rules for that domain, later rules winning. Header values are secrets: they are sent
// to the API but never logged, and the API echoes only their names (PolicyResponse).
type networkPolicy struct {
	// Mode is "allow-all", "deny-all" or "custom".
	Mode string
	// AllowedDomains may use "*.example.com" wildcards.
	AllowedDomains []string
	// AllowedCIDRs bypass the domain list; DeniedCIDRs take precedence over everything.
	AllowedCIDRs []string
	DeniedCIDRs  []string
	// Injection adds headers to requests to a domain (credential brokering).
	Injection []injectionRule
}

// injectionRule sets Headers on every request the sandbox makes to Domain.
type injectionRule struct {
	Domain  string
	Headers map[string]string
}

// PolicyResponse is the policy as the API reports it: header names only, never values.
type PolicyResponse struct {
	Mode           string   `json:"mode"`
	AllowedDomains []string `json:"allowedDomains,omitempty"`
	AllowedCIDRs   []string `json:"allowedCIDRs,omitempty"`
	DeniedCIDRs    []string `json:"deniedCIDRs,omitempty"`
	InjectionRules []struct {
		Domain      string   `json:"domain"`
		HeaderNames []string `json:"headerNames"`
	} `json:"injectionRules,omitempty"`
}

// legacyPolicy is the legacy request shape.
type legacyPolicy struct {
	Mode           string                `json:"mode"`
	AllowedDomains []string              `json:"allowedDomains,omitempty"`
	AllowedCIDRs   []string              `json:"allowedCIDRs,omitempty"`
	DeniedCIDRs    []string              `json:"deniedCIDRs,omitempty"`
	InjectionRules []legacyInjectionRule `json:"injectionRules,omitempty"`
}

type legacyInjectionRule struct {
	Domain  string            `json:"domain"`
	Headers map[string]string `json:"headers"`
}

// v2Policy is the V2 request shape; Allow is a []string or a map[string][]v2Rule.
type v2Policy struct {
	Allow   any        `json:"allow"`
	Subnets *v2Subnets `json:"subnets,omitempty"`
}

type v2Subnets struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

type v2Rule struct {
	Transform []v2Transform `json:"transform"`
}

type v2Transform struct {
	Headers map[string]string `json:"headers"`
}

// encodeNetworkPolicy serializes p in the given shape. An unknown mode, or an injection rule
// without a domain, is an error wrapping sandbox.ErrInvalid.
func encodeNetworkPolicy(shape PolicyShape, p networkPolicy) (json.RawMessage, error) {
	switch p.Mode {
	case "allow-all", "deny-all":
		return marshalBody(map[string]string{"mode": p.Mode}), nil
	case "custom":
	default:
		return nil, fmt.Errorf("vercel: network policy mode %q (want allow-all, deny-all or custom): %w", p.Mode, sandbox.ErrInvalid)
	}
	for _, r := range p.Injection {
		if r.Domain == "" {
			return nil, fmt.Errorf("vercel: network policy: an injection rule has no domain: %w", sandbox.ErrInvalid)
		}
	}
	if shape == PolicyLegacy {
		lp := legacyPolicy{
			Mode:           "custom",
			AllowedDomains: p.AllowedDomains,
			AllowedCIDRs:   p.AllowedCIDRs,
			DeniedCIDRs:    p.DeniedCIDRs,
		}
		for _, r := range p.Injection {
			h := r.Headers
			if h == nil {
				h = map[string]string{}
			}
			lp.InjectionRules = append(lp.InjectionRules, legacyInjectionRule{Domain: r.Domain, Headers: h})
		}
		return marshalBody(lp), nil
	}

	var vp v2Policy
	if len(p.AllowedCIDRs) > 0 || len(p.DeniedCIDRs) > 0 {
		vp.Subnets = &v2Subnets{Allow: p.AllowedCIDRs, Deny: p.DeniedCIDRs}
	}
	if len(p.Injection) == 0 {
		allow := p.AllowedDomains
		if allow == nil {
			allow = []string{} // an empty allow-list: no domain is reachable
		}
		vp.Allow = allow
		return marshalBody(vp), nil
	}
	record := map[string][]v2Rule{}
	for _, d := range p.AllowedDomains {
		record[d] = []v2Rule{}
	}
	merged := map[string]map[string]string{}
	var order []string
	for _, r := range p.Injection {
		h, ok := merged[r.Domain]
		if !ok {
			h = map[string]string{}
			merged[r.Domain] = h
			order = append(order, r.Domain)
		}
		for k, v := range r.Headers {
			h[k] = v
		}
	}
	for _, d := range order {
		record[d] = []v2Rule{{Transform: []v2Transform{{Headers: merged[d]}}}}
	}
	vp.Allow = record
	return marshalBody(vp), nil
}

// policyShapes holds the network-policy shape a client sends: a forced one, or, under
// PolicyAuto, V2 until the API refuses it and the legacy shape is accepted (or back again).
type policyShapes struct {
	forced bool
	mu     sync.Mutex
	cur    PolicyShape // PolicyV2 or PolicyLegacy
}

func newPolicyShapes(s PolicyShape) *policyShapes {
	if s == PolicyLegacy || s == PolicyV2 {
		return &policyShapes{forced: true, cur: s}
	}
	return &policyShapes{cur: PolicyV2}
}

func (ps *policyShapes) current() PolicyShape {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.cur
}

func (ps *policyShapes) set(s PolicyShape) {
	ps.mu.Lock()
	ps.cur = s
	ps.mu.Unlock()
}

func otherShape(s PolicyShape) PolicyShape {
	if s == PolicyLegacy {
		return PolicyV2
	}
	return PolicyLegacy
}

// shapeProperties are the top-level properties only one request shape has: a validator that does
// not know that shape names one of them as an "additional property".
var shapeProperties = map[PolicyShape][]string{
	PolicyV2:     {"allow", "subnets"},
	PolicyLegacy: {"allowedDomains", "allowedCIDRs", "deniedCIDRs", "injectionRules", "forwardRules"},
}

// refusesShape reports whether err is a 400 whose message names a property only the given shape
// has, as in "`networkPolicy` should NOT have additional property `allow`" (production's words,
// with backticks or quotes).
func refusesShape(err error, shape PolicyShape) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return false
	}
	msg := ae.Message
	if !strings.Contains(msg, "additional propert") {
		return false
	}
	for _, prop := range shapeProperties[shape] {
		for _, q := range []string{"`", "'", "\""} {
			if strings.Contains(msg, q+prop+q) {
				return true
			}
		}
	}
	return false
}

// withPolicy runs send with p encoded in the shape in force. When p is custom (where the shapes
// differ), the shape is not forced, and the API answers a 400 naming the shape sent, it runs
// send once more with the other shape; if that call succeeds, that shape is used first from then
// on. p nil runs send with a nil policy.
func (c *Client) withPolicy(p *networkPolicy, send func(policy json.RawMessage) error) error {
	if p == nil {
		return send(nil)
	}
	shape := c.shapes.current()
	body, err := encodeNetworkPolicy(shape, *p)
	if err != nil {
		return err
	}
	err = send(body)
	if p.Mode != "custom" || c.shapes.forced || !refusesShape(err, shape) {
		return err
	}
	other := otherShape(shape)
	c.log.Info("vercel: the API refused the network-policy shape sent; trying the other one",
		"refused", shape.String(), "trying", other.String(), "api", c.base)
	body, err2 := encodeNetworkPolicy(other, *p)
	if err2 != nil {
		return err2
	}
	err2 = send(body)
	switch {
	case err2 == nil:
		c.shapes.set(other)
	case refusesShape(err2, other):
		return fmt.Errorf("%w (the %s shape was refused too: %v); set the provider's policy shape explicitly", err2, shape, err)
	}
	return err2
}
