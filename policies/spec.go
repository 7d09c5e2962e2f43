package policies

import (
	"slices"
	"sort"
	"strings"
)

// Spec is the compact form of a policy that agents write and read: one list of what the sandbox
// may reach, mixing preset ids and host patterns, plus credentials for presets and custom headers
// in small side members. It says everything a Policy can (FromSpec and ToSpec convert), in a
// shape cheap enough to describe once.
//
//	{}                                         deny-all: no network
//	{"allow": ["*"]}                           allow-all: any public host
//	{"allow": ["github", "npm", "*.example.com"]}
//	{"allow": ["openai"], "credentials": {"openai": {"env": "SANDKIT_CRED_OPENAI"}}}
//	{"headers": [{"hosts": ["api.example.com"], "name": "authorization", "prefix": "Bearer ", "env": "SANDKIT_CRED_EXAMPLE"}]}
//
// A header rule also allows its hosts. Custom header rules form one custom service, CustomID.
type Spec struct {
	// Allow lists preset ids ("github") and host patterns ("registry.example.com",
	// "*.example.com"); "*" alone allows every public host; empty allows nothing.
	Allow []string `json:"allow"`
	// Credentials overrides where a preset's credential comes from (preset id → source).
	Credentials map[string]Credential `json:"credentials,omitempty"`
	// Headers are custom header rules: requests to Hosts get Name: Prefix + credential.
	Headers []HeaderSpec `json:"headers,omitempty"`
}

// HeaderSpec is one custom header rule of a Spec.
type HeaderSpec struct {
	Hosts    []string `json:"hosts"`
	Name     string   `json:"name"`
	Prefix   string   `json:"prefix,omitempty"`
	Encoding string   `json:"encoding,omitempty"`
	Credential
}

// CustomID is the id of the custom service that a Spec's header rules become.
const CustomID = "custom"

// FromSpec converts a Spec into a Policy. It checks what only the compact form can get wrong
// (an entry that is neither a preset nor a host, "*" mixed with others, credentials for a preset
// not allowed); Normalize checks the rest.
func FromSpec(s Spec) (Policy, error) {
	var p Policy
	all := false
	presetIDs := map[string]bool{}
	for i, raw := range s.Allow {
		e := strings.TrimSpace(raw)
		switch {
		case e == "*":
			all = true
		case e == "":
			return Policy{}, invalid("allow[%d] is empty; give a preset id, a host name or \"*\"", i)
		case !strings.Contains(e, "."):
			pr := lookupPreset(strings.ToLower(e))
			if pr == nil {
				return Policy{}, invalid("allow[%d] %q is neither a preset (%s) nor a host name (a host has a dot, e.g. \"registry.example.com\" or \"*.example.com\")", i, e, presetNames())
			}
			if !presetIDs[pr.id] {
				presetIDs[pr.id] = true
				p.Services = append(p.Services, Service{ID: pr.id})
			}
		default:
			p.Domains = append(p.Domains, e)
		}
	}
	if all {
		if len(s.Allow) > 1 || len(s.Headers) > 0 || len(s.Credentials) > 0 {
			return Policy{}, invalid("\"*\" allows every public host and stands alone: remove the other allow entries, credentials and headers (credentials need the hosts named)")
		}
		return Policy{Mode: AllowAll}, nil
	}
	ids := make([]string, 0, len(s.Credentials))
	for id := range s.Credentials {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		pr := lookupPreset(strings.ToLower(strings.TrimSpace(id)))
		if pr == nil {
			return Policy{}, invalid("credentials: %q is not a preset (%s); for another service write a header rule under \"headers\"", id, presetNames())
		}
		if !presetIDs[pr.id] {
			return Policy{}, invalid("credentials: preset %q is not in allow; add %q to allow", id, pr.id)
		}
		c := s.Credentials[id]
		for j := range p.Services {
			if p.Services[j].ID == pr.id {
				p.Services[j].Credential = &c
			}
		}
	}
	if len(s.Headers) > 0 {
		custom := Service{ID: CustomID}
		for i, h := range s.Headers {
			if len(h.Hosts) == 0 {
				return Policy{}, invalid("headers[%d] has no hosts; give the hosts whose requests get header %q", i, h.Name)
			}
			custom.Domains = append(custom.Domains, h.Hosts...)
			custom.Headers = append(custom.Headers, Header{
				Domains: slices.Clone(h.Hosts), Name: h.Name, Prefix: h.Prefix, Encoding: h.Encoding, Credential: h.Credential,
			})
		}
		p.Services = append(p.Services, custom)
	}
	if len(p.Services) == 0 && len(p.Domains) == 0 {
		return Policy{Mode: DenyAll}, nil
	}
	p.Mode = Allow
	return p, nil
}

// ToSpec converts a Policy into its compact form (Redact it first when it may hold a secret).
// Every custom service's header rules become Headers; its domains without a rule, and plain
// domains, become host entries of Allow.
func ToSpec(p Policy) Spec {
	switch p.Mode {
	case AllowAll:
		return Spec{Allow: []string{"*"}}
	case Allow:
	default:
		return Spec{Allow: []string{}}
	}
	s := Spec{Allow: []string{}}
	for _, svc := range p.Services {
		if pr := lookupPreset(svc.ID); pr != nil && len(svc.Headers) == 0 && len(svc.Domains) == 0 {
			s.Allow = append(s.Allow, pr.id)
			if svc.Credential != nil {
				if s.Credentials == nil {
					s.Credentials = map[string]Credential{}
				}
				s.Credentials[pr.id] = *svc.Credential
			}
			continue
		}
		covered := map[string]bool{}
		for _, h := range svc.Headers {
			hosts := h.Domains
			if len(hosts) == 0 {
				hosts = svc.Domains
			}
			for _, d := range hosts {
				covered[d] = true
			}
			s.Headers = append(s.Headers, HeaderSpec{Hosts: slices.Clone(hosts), Name: h.Name, Prefix: h.Prefix, Encoding: h.Encoding, Credential: h.Credential})
		}
		for _, d := range svc.Domains {
			if !covered[d] {
				s.Allow = append(s.Allow, d)
			}
		}
	}
	s.Allow = append(s.Allow, p.Domains...)
	sort.Slice(s.Allow, func(i, j int) bool { return describeLess(s.Allow[i], s.Allow[j]) })
	s.Allow = slices.Compact(s.Allow)
	return s
}

// PresetSummary is one line per preset for agents: "github (github.com, api.github.com,
// *.githubusercontent.com; $GITHUB_TOKEN)".
func PresetSummary() string {
	parts := make([]string, 0, len(presets))
	for _, p := range presets {
		s := p.id + " (" + strings.Join(p.domains, ", ")
		if len(p.env) > 0 {
			s += "; $" + p.env[0]
		}
		if p.alias != "" {
			s += "; alias " + p.alias
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, ", ")
}
