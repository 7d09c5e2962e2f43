package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// fence is a fenced code block of a Markdown file.
type fence struct {
	lang, body string
	line       int // of the opening fence
}

// fences returns the fenced code blocks of md (``` fences, not nested).
func fences(md string) []fence {
	var out []fence
	var cur *fence
	for i, l := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &fence{lang: strings.TrimSpace(strings.TrimPrefix(l, "```")), line: i + 1}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += l + "\n"
		}
	}
	return out
}

// TestReadmeSnippets keeps the README's setup true: the Go version is go.mod's, every JSON block
// parses, the client registrations run the installed sandkit-mcp in the formats their clients
// read (VS Code: "servers" with "type": "stdio"; Cursor: "mcpServers"; Codex: an
// [mcp_servers.sandkit] table with command and args), Claude Code's are user-scope, and no
// snippet holds a placeholder path.
func TestReadmeSnippets(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil || !strings.Contains(readme, "needs Go "+string(goVersion[1])+" or newer") {
		t.Errorf("the README does not say it needs Go %s or newer (go.mod's go line)", goVersion[1])
	}
	for _, placeholder := range []string{"/home/you", "~/.local/bin/sandkit-mcp", "/path/to"} {
		if strings.Contains(readme, placeholder) {
			t.Errorf("the README holds the placeholder path %q", placeholder)
		}
	}

	var vscode, cursor, codex int
	for _, f := range fences(readme) {
		switch f.lang {
		case "json":
			var v map[string]any
			if err := json.Unmarshal([]byte(f.body), &v); err != nil {
				t.Errorf("README line %d: the JSON block does not parse: %v\n%s", f.line, err, f.body)
				continue
			}
			if servers, ok := v["servers"].(map[string]any); ok {
				vscode++
				s, _ := servers["sandkit"].(map[string]any)
				if s["type"] != "stdio" || s["command"] != "sandkit-mcp" || !stringArray(s["args"]) {
					t.Errorf("README line %d: VS Code wants {\"servers\": {\"sandkit\": {\"type\": \"stdio\", \"command\": \"sandkit-mcp\", \"args\": [...]}}}: %s", f.line, f.body)
				}
			}
			if servers, ok := v["mcpServers"].(map[string]any); ok {
				cursor++
				s, _ := servers["sandkit"].(map[string]any)
				if s["command"] != "sandkit-mcp" || !stringArray(s["args"]) {
					t.Errorf("README line %d: Cursor wants {\"mcpServers\": {\"sandkit\": {\"command\": \"sandkit-mcp\", \"args\": [...]}}}: %s", f.line, f.body)
				}
			}
		case "toml":
			codex++
			checkCodexTOML(t, f)
		case "sh":
			for _, l := range strings.Split(f.body, "\n") {
				if !strings.Contains(l, "claude mcp add") {
					continue
				}
				if !strings.Contains(l, " -s user ") {
					t.Errorf("README line %d: %q is not user-scope (-s user; the default scope is one project)", f.line, l)
				}
			}
			if _, cmd, ok := strings.Cut(f.body, " -- "); ok && strings.Contains(f.body, "claude mcp add") && !strings.HasPrefix(cmd, "sandkit-mcp ") {
				t.Errorf("README line %d: the registration does not run the installed sandkit-mcp: %s", f.line, f.body)
			}
		}
	}
	if vscode != 1 || cursor != 1 || codex != 1 {
		t.Errorf("README: %d VS Code, %d Cursor and %d Codex snippets, want one each", vscode, cursor, codex)
	}
}

// checkCodexTOML checks the Codex snippet by hand (go.mod has no TOML parser): the table
// [mcp_servers.sandkit], command = "sandkit-mcp", args = an array of strings (TOML's basic
// strings and arrays are JSON's here), nothing else.
func checkCodexTOML(t *testing.T, f fence) {
	t.Helper()
	var table, command, args bool
	for _, l := range strings.Split(strings.TrimSpace(f.body), "\n") {
		key, value, _ := strings.Cut(l, " = ")
		switch {
		case l == "[mcp_servers.sandkit]" && !table:
			table = true
		case table && key == "command" && value == `"sandkit-mcp"`:
			command = true
		case table && key == "args" && json.Unmarshal([]byte(value), new([]string)) == nil:
			args = true
		default:
			t.Errorf("README line %d: unexpected line in the Codex snippet: %q", f.line, l)
		}
	}
	if !table || !command || !args {
		t.Errorf("README line %d: the Codex snippet needs [mcp_servers.sandkit], command = \"sandkit-mcp\" and args = [...]:\n%s", f.line, f.body)
	}
}

func stringArray(v any) bool {
	a, ok := v.([]any)
	for _, e := range a {
		if _, s := e.(string); !s {
			return false
		}
	}
	return ok
}
