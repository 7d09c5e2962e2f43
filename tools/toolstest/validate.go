// Package toolstest checks tool results against the output schemas their tools declare, with an
// independent JSON Schema validator (santhosh-tekuri/jsonschema, draft 2020-12, formats
// asserted). Tests of the tools package and the end-to-end tests of the built binary use it on
// every result they receive, error results included.
package toolstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator holds the compiled output schemas of a tool list.
type Validator struct {
	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
	checked map[string]int
}

// NewValidator compiles each tool's outputSchema (tool name → raw JSON schema). A tool without
// one is an error: every tool of sandkit-mcp declares one.
func NewValidator(outputSchemas map[string]json.RawMessage) (*Validator, error) {
	v := &Validator{schemas: map[string]*jsonschema.Schema{}, checked: map[string]int{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for name, raw := range outputSchemas {
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			return nil, fmt.Errorf("tool %s declares no outputSchema", name)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("tool %s: outputSchema is not JSON: %v", name, err)
		}
		url := "mem://tools/" + name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("tool %s: %v", name, err)
		}
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("tool %s: outputSchema does not compile: %v", name, err)
		}
		v.schemas[name] = s
	}
	return v, nil
}

// Check validates one result's structuredContent (any JSON-encodable value; nil counts as
// missing) against its tool's outputSchema.
func (v *Validator) Check(tool string, structured any) error {
	v.mu.Lock()
	s := v.schemas[tool]
	v.mu.Unlock()
	if s == nil {
		return fmt.Errorf("no outputSchema known for tool %s", tool)
	}
	if structured == nil {
		return fmt.Errorf("%s: result has no structuredContent", tool)
	}
	b, err := json.Marshal(structured)
	if err != nil {
		return fmt.Errorf("%s: structuredContent does not marshal: %v", tool, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: structuredContent is not JSON: %v", tool, err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%s: structuredContent %s does not match the outputSchema: %v", tool, b, err)
	}
	v.mu.Lock()
	v.checked[tool]++
	v.mu.Unlock()
	return nil
}

// Checked reports how many results of each tool passed Check.
func (v *Validator) Checked() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int, len(v.checked))
	for k, n := range v.checked {
		out[k] = n
	}
	return out
}

// ForSession lists the tools over an official Go SDK client session and compiles their output
// schemas.
func ForSession(ctx context.Context, cs *sdk.ClientSession) (*Validator, error) {
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tools/list: %w", err)
	}
	raw := map[string]json.RawMessage{}
	for _, tool := range lt.Tools {
		b, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			return nil, err
		}
		raw[tool.Name] = b
	}
	return NewValidator(raw)
}
