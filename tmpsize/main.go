package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/mark3labs/mcp-go/server"
	"github.com/sandkit/sandkit-mcp/tools"
)

func main() {
	s := server.NewMCPServer("t", "0", server.WithToolCapabilities(false))
	tools.Register(s, nil, tools.Options{})
	total := 0
	for name, st := range s.ListTools() {
		t := st.Tool
		m := map[string]any{"name": t.Name, "title": t.Title, "description": t.Description, "inputSchema": json.RawMessage(t.RawInputSchema), "annotations": t.Annotations}
		b, _ := json.Marshal(m)
		total += len(b)
		fmt.Printf("%6d %s (desc %d, in %d, out %d)\n", len(b), name, len(t.Description), len(t.RawInputSchema), len(t.RawOutputSchema))
		if len(os.Args) > 1 && os.Args[1] == name {
			fmt.Println(string(t.RawInputSchema))
			fmt.Println(string(t.RawOutputSchema))
		}
	}
	fmt.Println("total", total)
}
