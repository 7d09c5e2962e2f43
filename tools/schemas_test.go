package tools

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// toolArguments is DESIGN §7's public contract for the tools of this package: each tool's
// argument names, with nested objects as "parent.child" (array items as "parent[].child").
// session_logs' offset is an addition to the table (reading on from next_offset), as are
// update_workspace, open_session's exposed_ports and session_url's wait_ms (issue 10).
var toolArguments = map[string][]string{
	"create_workspace":  append([]string{"name", "exposed_ports", "labels", "template", "from_host_dir", "with_git"}, policyArguments...),
	"list_workspaces":   {"label", "limit", "cursor"},
	"get_workspace":     {"workspace"},
	"update_workspace":  {"workspace", "name", "labels", "exposed_ports"},
	"delete_workspace":  {"workspace"},
	"set_policy":        append([]string{"workspace"}, policyArguments...),
	"run_command":       append([]string{"workspace", "command", "args", "cwd", "env", "stdin", "timeout_ms", "background", "idempotency_key", "yield_ms"}, policyArguments...),
	"get_run":           {"run_id", "wait_ms", "stdout_offset", "stderr_offset"},
	"cancel_run":        {"run_id"},
	"list_runs":         {"workspace", "status", "limit", "cursor"},
	"write_files":       {"workspace", "session_id", "files", "files[].path", "files[].content", "files[].encoding", "files[].mode", "delete", "recursive"},
	"edit_file":         {"workspace", "session_id", "path", "old_text", "new_text", "replace_all"},
	"read_file":         {"workspace", "session_id", "path", "encoding", "offset", "max_bytes", "commit"},
	"list_files":        {"workspace", "session_id", "path", "depth", "commit"},
	"workspace_history": {"workspace", "limit"},
	"workspace_diff":    {"workspace", "from", "to", "paths"},
	"restore_workspace": {"workspace", "commit_id"},
	"fork_workspace":    {"workspace", "commit_id", "name"},
	"export_workspace":  {"workspace", "commit_id", "host_dir", "as", "branch"},
	"open_session":      append([]string{"workspace", "timeout_ms", "exposed_ports"}, policyArguments...),
	"attach_session":    {"workspace"},
	"session_exec":      {"session_id", "command", "args", "cwd", "env", "stdin", "timeout_ms", "background", "yield_ms"},
	"session_logs":      {"session_id", "process_id", "wait_ms", "offset"},
	"session_kill":      {"session_id", "process_id", "signal"},
	"session_url":       {"session_id", "port", "wait_ms"},
	"extend_session":    {"session_id", "timeout_ms"},
	"commit_session":    {"session_id", "message"},
	"discard_session":   {"session_id"},
}

// policyArguments is the policy argument's compact grammar (policies.Spec): allow, credentials
// for presets, and custom header rules.
var policyArguments = []string{
	"policy", "policy.allow", "policy.credentials", "policy.headers",
	"policy.headers[].hosts", "policy.headers[].name", "policy.headers[].prefix", "policy.headers[].encoding",
	"policy.headers[].env", "policy.headers[].value",
}

// requiredArguments are the arguments a call cannot omit.
var requiredArguments = map[string][]string{
	"create_workspace":  nil,
	"list_workspaces":   nil,
	"get_workspace":     {"workspace"},
	"update_workspace":  {"workspace"},
	"delete_workspace":  {"workspace"},
	"set_policy":        {"workspace", "policy"},
	"run_command":       {"workspace", "command"},
	"get_run":           {"run_id"},
	"cancel_run":        {"run_id"},
	"write_files":       nil, // exactly one of workspace, session_id, and files or delete (checked by the handler)
	"list_runs":         {"workspace"},
	"edit_file":         {"path", "old_text", "new_text"},
	"read_file":         {"path"},
	"list_files":        nil,
	"workspace_history": {"workspace"},
	"workspace_diff":    {"workspace"},
	"restore_workspace": {"workspace", "commit_id"},
	"fork_workspace":    {"workspace"},
	"export_workspace":  {"workspace", "host_dir"},
	"open_session":      {"workspace"},
	"attach_session":    {"workspace"},
	"session_exec":      {"session_id", "command"},
	"session_logs":      {"session_id", "process_id"},
	"session_kill":      {"session_id", "process_id"},
	"session_url":       {"session_id", "port"},
	"extend_session":    {"session_id", "timeout_ms"},
	"commit_session":    {"session_id"},
	"discard_session":   {"session_id"},
}

func schemaOf(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("schema is not a JSON object: %v\n%s", err, raw)
	}
	return m
}

// TestToolDefinitions checks what every client and model relies on: a description, a title, all
// four annotations, and an inline object schema (no "$ref", no "$defs") whose every property is
// described.
func TestToolDefinitions(t *testing.T) {
	tools := registeredTools(t)
	if len(tools) != len(toolArguments) {
		var names []string
		for _, tool := range tools {
			names = append(names, tool.Name)
		}
		t.Errorf("registered %d tools %v, want the %d of DESIGN §7 for this package", len(tools), names, len(toolArguments))
	}
	for _, tool := range tools {
		t.Run(tool.Name, func(t *testing.T) {
			if len(tool.Description) < 60 {
				t.Errorf("description is missing or too short to guide a model: %q", tool.Description)
			}
			if tool.Title == "" || tool.Annotations.Title != tool.Title {
				t.Errorf("title %q / annotations.title %q: want both set and equal", tool.Title, tool.Annotations.Title)
			}
			a := tool.Annotations
			if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
				t.Errorf("annotations must set all four hints: %+v", a)
			} else if *a.ReadOnlyHint && *a.DestructiveHint {
				t.Errorf("a read-only tool cannot be destructive")
			}
			if tool.InputSchema.Type != "" {
				t.Errorf("InputSchema.Type is %q alongside RawInputSchema: tools/list would fail to marshal", tool.InputSchema.Type)
			}
			raw := string(tool.RawInputSchema)
			for _, bad := range []string{`"$ref"`, `"$defs"`, `"definitions"`, `"$schema"`, `"$id"`} {
				if strings.Contains(raw, bad) {
					t.Errorf("schema contains %s; it must be inline and self-contained:\n%s", bad, raw)
				}
			}
			s := schemaOf(t, tool.RawInputSchema)
			if s["type"] != "object" {
				t.Errorf(`schema's top-level type is %v, want "object"`, s["type"])
			}
			walkProperties(s, "", func(path string, prop map[string]any) {
				// The policy grammar is described once, on the policy argument itself.
				if d, _ := prop["description"].(string); d == "" && !strings.HasSuffix(path, "[]") && !strings.HasPrefix(path, "policy.") {
					t.Errorf("argument %s has no description", path)
				}
			})
			if m := placeholder.FindString(tool.Description + raw + string(tool.RawOutputSchema)); m != "" {
				t.Errorf("placeholder %s was not expanded", m)
			}
			out := schemaOf(t, tool.RawOutputSchema)
			if out["type"] != "object" {
				t.Errorf("outputSchema's top-level type is %v, want \"object\"", out["type"])
			}
			if props, _ := out["properties"].(map[string]any); props["error"] == nil || props["next"] == nil {
				t.Errorf("outputSchema lacks the error and next members every result may carry: %s", tool.RawOutputSchema)
			}
		})
	}
}

// TestToolAnnotations pins the behaviour hints that clients use to decide on confirmation and
// retries.
func TestToolAnnotations(t *testing.T) {
	type h struct{ readOnly, destructive, idempotent, openWorld bool }
	want := map[string]h{
		"create_workspace":  {false, false, false, true},
		"list_workspaces":   {true, false, true, false},
		"get_workspace":     {true, false, true, false},
		"update_workspace":  {false, false, true, false},
		"delete_workspace":  {false, true, true, false},
		"set_policy":        {false, false, true, false},
		"run_command":       {false, false, false, true},
		"get_run":           {true, false, true, false},
		"cancel_run":        {false, true, true, false},
		"list_runs":         {true, false, true, false},
		"write_files":       {false, false, false, false},
		"edit_file":         {false, false, false, false},
		"read_file":         {true, false, true, false},
		"list_files":        {true, false, true, false},
		"workspace_history": {true, false, true, false},
		"workspace_diff":    {true, false, true, false},
		"restore_workspace": {false, false, false, false},
		"fork_workspace":    {false, false, false, false},
		"export_workspace":  {false, false, false, true},
		"open_session":      {false, false, false, true},
		"attach_session":    {false, false, true, false},
		"session_exec":      {false, false, false, true},
		"session_logs":      {true, false, true, false},
		"session_kill":      {false, true, false, false},
		"session_url":       {true, false, true, false},
		"extend_session":    {false, false, false, false},
		"commit_session":    {false, false, false, false},
		"discard_session":   {false, true, true, false},
	}
	tools := registeredTools(t)
	if len(tools) != len(want) {
		t.Errorf("%d tools registered, %d have pinned hints", len(tools), len(want))
	}
	for _, tool := range tools {
		a := tool.Annotations
		got := h{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
		if w, ok := want[tool.Name]; !ok || got != w {
			t.Errorf("%s: hints (readOnly, destructive, idempotent, openWorld) = %v, want %v", tool.Name, got, want[tool.Name])
		}
	}
}

// TestToolArgumentNames checks that each schema names exactly DESIGN §7's arguments.
func TestToolArgumentNames(t *testing.T) {
	for _, tool := range registeredTools(t) {
		want, ok := toolArguments[tool.Name]
		if !ok {
			t.Errorf("tool %s is not in DESIGN §7's list for this package", tool.Name)
			continue
		}
		s := schemaOf(t, tool.RawInputSchema)
		var got []string
		walkProperties(s, "", func(path string, _ map[string]any) {
			if !strings.HasSuffix(path, "[]") {
				got = append(got, path)
			}
		})
		sort.Strings(got)
		want = slices.Clone(want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema arguments %v, want %v", tool.Name, got, want)
		}
		var req []string
		if r, ok := s["required"].([]any); ok {
			for _, v := range r {
				req = append(req, v.(string))
			}
		}
		sort.Strings(req)
		wantReq := slices.Clone(requiredArguments[tool.Name])
		sort.Strings(wantReq)
		if !slices.Equal(req, wantReq) {
			t.Errorf("%s: required %v, want %v", tool.Name, req, wantReq)
		}
	}
}

// walkProperties calls fn for every property of an object schema, recursing into nested objects
// and array items.
func walkProperties(s map[string]any, prefix string, fn func(path string, prop map[string]any)) {
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		prop, _ := p.(map[string]any)
		path := prefix + name
		fn(path, prop)
		walkProperties(prop, path+".", fn)
		if items, ok := prop["items"].(map[string]any); ok {
			walkProperties(items, path+"[].", fn)
		}
	}
}

// TestInputSchemaInline checks the reflection helper on its own: nested structs and pointers are
// inlined, maps become objects, required comes only from the tag.
func TestInputSchemaInline(t *testing.T) {
	type inner struct {
		X string `json:"x" jsonschema:"required" jsonschema_description:"x, with commas, and more"`
	}
	type args struct {
		A string            `json:"a" jsonschema:"required" jsonschema_description:"a"`
		B *inner            `json:"b,omitempty" jsonschema_description:"b"`
		C []inner           `json:"c,omitempty" jsonschema_description:"c"`
		D map[string]string `json:"d,omitempty" jsonschema_description:"d"`
		E int               `json:"e" jsonschema_description:"e is not required: no tag"`
	}
	raw, err := inputSchema[args](newLimits(Options{}.withDefaults()))
	if err != nil {
		t.Fatal(err)
	}
	s := schemaOf(t, raw)
	if s["type"] != "object" || strings.Contains(string(raw), "$") {
		t.Fatalf("schema is not inline:\n%s", raw)
	}
	if req, _ := s["required"].([]any); len(req) != 1 || req[0] != "a" {
		t.Errorf("required = %v, want [a]", s["required"])
	}
	props := s["properties"].(map[string]any)
	b := props["b"].(map[string]any)
	if b["type"] != "object" || b["properties"].(map[string]any)["x"].(map[string]any)["description"] != "x, with commas, and more" {
		t.Errorf("pointer to struct not inlined with its description: %v", b)
	}
	if c := props["c"].(map[string]any); c["items"].(map[string]any)["type"] != "object" {
		t.Errorf("slice of structs not inlined: %v", c)
	}
	if d := props["d"].(map[string]any); d["type"] != "object" {
		t.Errorf("map is not an object: %v", d)
	}
	if s["additionalProperties"] != false {
		t.Errorf("additionalProperties = %v, want false", s["additionalProperties"])
	}
}

// toolListBudget bounds the model-facing part of tools/list (name, title, description,
// inputSchema, annotations) in bytes of compact JSON: every conversation pays for it in tokens.
const toolListBudget = 32000

// TestToolListBudget measures the model-facing tool definitions and fails above the budget.
func TestToolListBudget(t *testing.T) {
	total := 0
	for _, tool := range registeredTools(t) {
		b, err := json.Marshal(map[string]any{
			"name": tool.Name, "title": tool.Title, "description": tool.Description,
			"inputSchema": tool.RawInputSchema, "annotations": tool.Annotations,
		})
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
	}
	t.Logf("model-facing tool definitions: %d bytes of compact JSON for %d tools (budget %d)", total, len(registeredTools(t)), toolListBudget)
	fmt.Printf("tool list budget: %d of %d bytes\n", total, toolListBudget)
	if total > toolListBudget {
		t.Errorf("the model-facing tool definitions take %d bytes, more than the budget of %d: shorten descriptions or schemas", total, toolListBudget)
	}
}
