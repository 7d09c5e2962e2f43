package tools

import (
	"encoding/json"

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

// inputSchema reflects A into an inline JSON Schema for a tool's inputSchema.
func inputSchema[A any]() (json.RawMessage, error) {
	s := reflector.Reflect(new(A))
	s.Version = ""
	return json.Marshal(s)
}
