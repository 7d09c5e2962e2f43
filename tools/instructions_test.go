package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// TestInstructions pins the server instructions, as a client receives them at initialize, for a
// server with a default policy, a limit and a template (testdata/instructions.golden; regenerate
// with UPDATE_TOOLSNAPS=true go test ./tools/ -run TestInstructions and review the diff). Every
// tool the instructions name must exist.
func TestInstructions(t *testing.T) {
	limit := policies.Policy{Mode: policies.Allow, Domains: []string{"example.com"}}
	got := Instructions(ServerFacts{
		DefaultPolicy: policies.Deny(), MaxPolicy: &limit,
		Templates: []engine.TemplateStatus{{Name: "node", Description: "Node 20 with the repo's deps", Command: "npm", Args: []string{"ci"}}},
	})
	path := filepath.Join("testdata", "instructions.golden")
	if os.Getenv("UPDATE_TOOLSNAPS") == "true" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with UPDATE_TOOLSNAPS=true go test ./tools/ -run TestInstructions)", err)
	}
	if got+"\n" != string(want) {
		t.Errorf("the server instructions differ from %s (regenerate with UPDATE_TOOLSNAPS=true and review):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
	names := map[string]bool{}
	for _, tool := range registeredTools(t) {
		names[tool.Name] = true
	}
	for _, w := range strings.FieldsFunc(instructions, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) {
		if strings.Contains(w, "_") && strings.HasSuffix(w, "_") == false && !names[w] && !knownArgs[w] {
			t.Errorf("the instructions name %q, which is neither a tool nor a known argument", w)
		}
	}
	if !strings.Contains(got, "npm ci") || !strings.Contains(got, "example.com") {
		t.Errorf("the instructions miss the template or the limit:\n%s", got)
	}
}

// knownArgs are the arguments the instructions name.
var knownArgs = map[string]bool{"yield_ms": true, "from_host_dir": true}
