package tools

import (
	"github.com/sandkit/sandkit-mcp/policies"
)

// policyArg is the agent-facing egress policy: the compact grammar of policies.Spec. Its nested
// members carry no descriptions of their own; policyGrammar (set_policy's policy argument) says
// the whole grammar once, and the other tools refer to it.
type policyArg struct {
	Allow       []string                 `json:"allow,omitempty"`
	Credentials map[string]credentialArg `json:"credentials,omitempty"`
	Headers     []headerArg              `json:"headers,omitempty"`
}

// credentialArg is where a secret comes from: a server environment variable, or (per run or
// session only) the secret itself.
type credentialArg struct {
	Env   string `json:"env,omitempty"`
	Value string `json:"value,omitempty"`
}

// headerArg is a custom header rule.
type headerArg struct {
	Hosts    []string `json:"hosts" jsonschema:"required"`
	Name     string   `json:"name" jsonschema:"required"`
	Prefix   string   `json:"prefix,omitempty"`
	Encoding string   `json:"encoding,omitempty" jsonschema:"enum=basic-x-access-token"`
	Env      string   `json:"env,omitempty"`
	Value    string   `json:"value,omitempty"`
}

// policyGrammar describes policyArg; {presets} is expanded to the preset list.
const policyGrammar = `Network egress policy. {} (or "allow": []): no network. {"allow": ["*"]}: any public host. ` +
	`Otherwise "allow" lists preset ids and hosts ("registry.example.com"; "*.example.com" = its subdomains). ` +
	`Presets: {presets}. A preset with a $VARIABLE injects that server-side secret as its auth header (the secret never enters the sandbox); ` +
	`"credentials": {"PRESET": {"env": "SANDKIT_CRED_X"}} takes it from another server variable (such names must start with SANDKIT_CRED_). ` +
	`"headers": [{"hosts": ["api.example.com"], "name": "authorization", "prefix": "Bearer ", "env": "SANDKIT_CRED_X"}] sets a header on requests to those hosts and allows them ` +
	`(encoding "basic-x-access-token" sends base64("x-access-token:"+secret), for git to GitHub with prefix "Basic "). ` +
	`A literal secret {"value": "…"} in place of "env" is accepted only in run_command's and open_session's policy: used for that run or session, never stored or shown. ` +
	`It must lie within the operator's limit.`

// model converts the argument into the policy model (not yet normalized).
func (p *policyArg) model() (policies.Policy, error) {
	s := policies.Spec{Allow: p.Allow}
	if len(p.Credentials) > 0 {
		s.Credentials = map[string]policies.Credential{}
		for id, c := range p.Credentials {
			s.Credentials[id] = policies.Credential{Env: c.Env, Value: c.Value}
		}
	}
	for _, h := range p.Headers {
		s.Headers = append(s.Headers, policies.HeaderSpec{
			Hosts: h.Hosts, Name: h.Name, Prefix: h.Prefix, Encoding: h.Encoding,
			Credential: policies.Credential{Env: h.Env, Value: h.Value},
		})
	}
	return policies.FromSpec(s)
}

// policy converts p (nil: none given) for the engine, which validates it; a policy that the
// compact grammar already rejects is an error about argName.
func (p *policyArg) policy(argName string) (*policies.Policy, error) {
	if p == nil {
		return nil, nil
	}
	m, err := p.model()
	if err != nil {
		return nil, argError(argName, err.Error())
	}
	return &m, nil
}

// policyView shows a policy in the grammar agents write (redacted: literal secrets read
// {"redacted": true}).
func policyView(p policies.Policy) policies.Spec {
	return policies.ToSpec(policies.Redact(p))
}
