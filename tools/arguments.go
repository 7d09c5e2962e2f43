package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sandkit/sandkit-mcp/policies"
)

// decodeArgs decodes a call's arguments into args (a pointer to an argument struct). It rejects
// unknown arguments and wrong JSON types with a message that names the argument and lists the
// ones the tool takes. It returns "" on success.
func decodeArgs(req mcp.CallToolRequest, args any) string {
	raw := req.Params.RawArguments
	if len(raw) == 0 && req.Params.Arguments != nil {
		var err error
		if raw, err = json.Marshal(req.Params.Arguments); err != nil {
			return "invalid arguments: they are not a JSON object: " + err.Error()
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(args)
	if err == nil {
		return ""
	}
	names := argumentNames(args)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return fmt.Sprintf("invalid arguments: expected a JSON object with the arguments %s, got a JSON %s", names, typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("invalid argument %q: expected %s, got a JSON %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return "invalid arguments: not valid JSON: " + err.Error()
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown argument %s; %s takes only %s", field, req.Params.Name, names)
	}
	return "invalid arguments: " + strings.TrimPrefix(err.Error(), "json: ")
}

// argumentNames lists the top-level JSON names of an argument struct, for error messages.
func argumentNames(args any) string {
	t := reflect.TypeOf(args)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value of type " + t.String()
}

// invalidArg is the message for a bad argument: "invalid argument <name>: <why>".
func invalidArg(name, why string) string {
	return fmt.Sprintf("invalid argument %q: %s", name, why)
}

// workspaceRef checks the workspace argument every workspace tool takes.
func workspaceRef(ref string) string {
	if strings.TrimSpace(ref) == "" {
		return invalidArg("workspace", "missing; give a workspace id (ws_…) or name; list_workspaces lists them, create_workspace makes one")
	}
	return ""
}

// policyArg is the agent-facing shape of an egress policy (policies.Policy). Its schema lists the
// presets (JSONSchemaExtend), so a model learns them from the tool list.
type policyArg struct {
	Mode     string       `json:"mode" jsonschema:"required,enum=deny-all,enum=allow-all,enum=allow" jsonschema_description:"deny-all: no network at all. allow-all: any public host. allow: only the hosts that services and domains name."`
	Domains  []string     `json:"domains,omitempty" jsonschema_description:"With mode allow: hosts the sandbox may reach without any credential, exact (\"registry.example.com\") or a wildcard for subdomains only (\"*.example.com\" matches a.example.com, not example.com). Host names only: no scheme, port or path; a wildcard only as the whole first label. Empty for the other modes."`
	Services []serviceArg `json:"services,omitempty" jsonschema_description:"With mode allow: services the sandbox may reach. A preset is just {\"id\": \"github\"}: it brings its domains and, where it needs one, injects its credential (read from an environment variable of the server) as a request header, so the secret never enters the sandbox. A custom service gives its own id, domains and headers."`
}

// JSONSchemaExtend lists the presets in the description of services.
func (policyArg) JSONSchemaExtend(s *jsonschema.Schema) {
	prop, ok := s.Properties.Get("services")
	if !ok {
		return
	}
	var b strings.Builder
	b.WriteString(prop.Description)
	b.WriteString(" Presets (id: what it opens):")
	for _, p := range policies.Presets() {
		fmt.Fprintf(&b, " %q: %s", p.ID, p.Description)
	}
	prop.Description = b.String()
}

// serviceArg is a preset or a custom service (policies.Service).
type serviceArg struct {
	ID         string         `json:"id" jsonschema:"required" jsonschema_description:"A preset's id (listed under services), or a name of your choice for a custom service (lower-case letters, digits and '-')."`
	Domains    []string       `json:"domains,omitempty" jsonschema_description:"Custom service only (presets bring theirs): its host patterns, as in the policy's domains."`
	Headers    []headerArg    `json:"headers,omitempty" jsonschema_description:"Custom service only: headers the egress proxy sets on requests to the service's domains, e.g. an Authorization header carrying a credential."`
	Credential *credentialArg `json:"credential,omitempty" jsonschema_description:"Preset only: where its credential comes from instead of its default environment variable."`
}

// headerArg is a header transform of a custom service (policies.Header).
type headerArg struct {
	Name       string        `json:"name" jsonschema:"required" jsonschema_description:"Header name, e.g. \"authorization\" or \"x-api-key\"."`
	Domains    []string      `json:"domains,omitempty" jsonschema_description:"Only for requests to these of the service's domains; omit for all of them."`
	Prefix     string        `json:"prefix,omitempty" jsonschema_description:"Text before the credential, e.g. \"Bearer \" (with the space)."`
	Encoding   string        `json:"encoding,omitempty" jsonschema:"enum=basic-x-access-token" jsonschema_description:"How the credential is encoded: omit for as it is; \"basic-x-access-token\" for base64(\"x-access-token:\" + credential), as git over HTTPS to GitHub wants (with prefix \"Basic \")."`
	Credential credentialArg `json:"credential" jsonschema:"required" jsonschema_description:"Where the header's secret comes from."`
}

// credentialArg is where a secret comes from (policies.Credential).
type credentialArg struct {
	Env   string `json:"env,omitempty" jsonschema_description:"Name of an environment variable of the server (not of the sandbox) holding the secret, read when a sandbox starts. It must start with SANDKIT_CRED_ (the operator exports secrets meant for agents under that prefix), except a preset's own default variable (e.g. GITHUB_TOKEN for github). The only kind a workspace's default policy (create_workspace, set_policy) accepts."`
	Value string `json:"value,omitempty" jsonschema_description:"The secret itself. Accepted only in run_command's and open_session's policy: it is used for that run or session and never stored or shown (records say \"redacted\")."`
}

func (c *credentialArg) credential() policies.Credential {
	return policies.Credential{Env: c.Env, Value: c.Value}
}

// model converts the argument into the policy model.
func (p *policyArg) model() policies.Policy {
	out := policies.Policy{Mode: policies.Mode(p.Mode), Domains: p.Domains}
	for _, s := range p.Services {
		svc := policies.Service{ID: s.ID, Domains: s.Domains}
		if s.Credential != nil {
			c := s.Credential.credential()
			svc.Credential = &c
		}
		for _, h := range s.Headers {
			svc.Headers = append(svc.Headers, policies.Header{
				Domains: h.Domains, Name: h.Name, Prefix: h.Prefix, Encoding: h.Encoding, Credential: h.Credential.credential(),
			})
		}
		out.Services = append(out.Services, svc)
	}
	return out
}

// policy validates p (nil: none given) and returns the normalized policy, or an error message.
// Where it may be used (durable or not, within the operator's limit) is the engine's to check.
func (p *policyArg) policy(argName string) (*policies.Policy, string) {
	if p == nil {
		return nil, ""
	}
	n, err := policies.Normalize(p.model())
	if err != nil {
		// The policies message starts with "invalid policy: " and says what to change.
		return nil, fmt.Sprintf("invalid argument %q: %s", argName, err.Error())
	}
	return &n, ""
}
