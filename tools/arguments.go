package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

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

// policyArg is the agent-facing shape of an egress policy (policies.Policy).
type policyArg struct {
	Mode    string   `json:"mode" jsonschema:"required,enum=deny-all,enum=allow-all,enum=allow" jsonschema_description:"deny-all: no network at all. allow-all: any public host. allow: only the hosts listed in domains."`
	Domains []string `json:"domains,omitempty" jsonschema_description:"With mode allow: the hosts the sandbox may reach, exact (\"registry.npmjs.org\") or a wildcard for subdomains (\"*.githubusercontent.com\"). Host names only: no scheme, port or path. Empty for the other modes."`
}

// policy validates p (nil: none given) and returns the normalized policy, or an error message.
func (p *policyArg) policy(argName string) (*policies.Policy, string) {
	if p == nil {
		return nil, ""
	}
	n, err := policies.Normalize(policies.Policy{Mode: policies.Mode(p.Mode), Domains: p.Domains})
	if err != nil {
		// The policies message starts with "invalid policy: " and says what to change.
		return nil, fmt.Sprintf("invalid argument %q: %s", argName, err.Error())
	}
	return &n, ""
}
