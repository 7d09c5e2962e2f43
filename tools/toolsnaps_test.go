package tools

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The agent-facing surface is pinned by golden files, one per tool, in testdata/toolsnaps/: the
// full tool definition as tools/list sends it. A change to a name, description, annotation or
// schema fails this test until the golden files are regenerated on purpose:
//
//	UPDATE_TOOLSNAPS=true go test ./tools/
//
// and the diff is reviewed like any other change to a public contract.

const toolsnapsDir = "../testdata/toolsnaps"

// registeredTools returns the tools exactly as a client sees them: registered on a real server
// and listed.
func registeredTools(t *testing.T) []mcp.Tool {
	t.Helper()
	s := server.NewMCPServer("test", "0", server.WithToolCapabilities(false))
	Register(s, nil, Options{})
	var tools []mcp.Tool
	for _, st := range s.ListTools() {
		tools = append(tools, st.Tool)
	}
	sort.Slice(tools, func(i, j int) bool { return tools[i].Name < tools[j].Name })
	return tools
}

func toolsnap(t *testing.T, tool mcp.Tool) []byte {
	t.Helper()
	b, err := json.MarshalIndent(tool, "", "  ")
	if err != nil {
		t.Fatalf("marshal %s: %v", tool.Name, err)
	}
	return append(b, '\n')
}

func TestToolsnaps(t *testing.T) {
	update := os.Getenv("UPDATE_TOOLSNAPS") == "true"
	tools := registeredTools(t)
	want := map[string]bool{}
	for _, tool := range tools {
		name := tool.Name + ".snap"
		want[name] = true
		path := filepath.Join(toolsnapsDir, name)
		got := toolsnap(t, tool)
		if update {
			if err := os.MkdirAll(toolsnapsDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			t.Errorf("tool %s has no golden file %s; review the new tool, then run UPDATE_TOOLSNAPS=true go test ./tools/ to create it", tool.Name, path)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old, got) {
			t.Errorf("tool %s differs from its golden file %s: the agent-facing surface changed.\n"+
				"Review the change (it is a public contract), then regenerate with UPDATE_TOOLSNAPS=true go test ./tools/\n%s",
				tool.Name, path, lineDiff(string(old), string(got)))
		}
	}
	// Golden files of tools that no longer exist.
	files, err := filepath.Glob(filepath.Join(toolsnapsDir, "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if want[filepath.Base(f)] {
			continue
		}
		if update {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("golden file %s belongs to no registered tool; if the tool was removed on purpose, run UPDATE_TOOLSNAPS=true go test ./tools/ to delete it", f)
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(old, cur string) string {
	a, b := strings.Split(old, "\n"), strings.Split(cur, "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < max(len(a), len(b)) && shown < 10; i++ {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			out.WriteString("  line " + strconv.Itoa(i+1) + ":\n    golden: " + la + "\n    now:    " + lb + "\n")
			shown++
		}
	}
	return out.String()
}
