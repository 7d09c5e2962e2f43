package tools

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
)

// reflector turns an argument struct into the tool's input schema:
//
//   - inline (DoNotReference + ExpandedStruct): the root is {"type":"object", "properties":…}
//     with no "$ref" and no "$defs", which every client accepts (the TS SDK rejects the whole
//     tools/list when a root is a "$ref");
//   - no "$id" (Anonymous) and no "$schema" (removed below; MCP's default dialect is 2020-12);
//   - required only where a field says `jsonschema:"required"`, so optional-ness is explicit;
//   - "additionalProperties": false, so a model sees exactly which arguments exist.
//
// Descriptions come from `jsonschema_description` tags (free text, commas allowed).
var reflector = jsonschema.Reflector{
	DoNotReference:             true,
	ExpandedStruct:             true,
	Anonymous:                  true,
	RequiredFromJSONSchemaTags: true,
}

// inputSchema reflects A into an inline JSON Schema for a tool's inputSchema, with the limits'
// placeholders in its descriptions expanded.
func inputSchema[A any](l *limits) (json.RawMessage, error) {
	s := reflector.Reflect(new(A))
	s.Version = ""
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(l.expandJSON(string(b))), nil
}

// outputSchema reflects R into a tool's outputSchema. Every result may instead be a failure
// ({"error": …, "next": …}): the schema declares "error" beside R's members, and requires
// either R's required members or "error".
func outputSchema[R any]() (json.RawMessage, error) {
	s := reflector.Reflect(new(R))
	s.Version = ""
	e := reflector.Reflect(new(errorView))
	e.Version = ""
	e.Description = "Set instead of the result's members when the call failed (isError): what failed, the facts, and next says how to recover."
	if _, taken := s.Properties.Get("error"); taken {
		return nil, fmt.Errorf("the result type has a member \"error\", which every result reserves for failures")
	}
	s.Properties.Set("error", e)
	if req := s.Required; len(req) > 0 {
		s.Required = nil
		s.AnyOf = []*jsonschema.Schema{{Required: req}, {Required: []string{"error"}}}
	}
	return json.Marshal(s)
}
