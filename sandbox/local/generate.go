package local

// The in-sandbox agent is a static Linux binary whatever GOOS go generate runs with: sandboxes
// are Linux. GOARCH is the build's (go generate passes it on), so the agent matches the binary
// that embeds it; only Linux builds embed it (agentbin.go).
//
//go:generate env GOOS=linux CGO_ENABLED=0 go build -trimpath "-ldflags=-s -w" -o agentbin/sandkit-agent github.com/sandkit/sandkit-mcp/cmd/sandkit-agent
