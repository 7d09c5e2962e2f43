package main

import (
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// Connection kinds, from the MCP session ids each door hands out.
const (
	kindUnix       = "unix"
	kindStreamable = "streamable_http"
	kindSSE        = "sse"
	kindOther      = "other"
)

// Session id prefixes. mcp-go's Streamable HTTP ids start with "mcp-session-"; the SSE door and
// the Unix-socket door choose theirs.
const (
	unixSessionPrefix = "unix-"
	sseSessionPrefix  = "sse-"
	httpSessionPrefix = "mcp-session-"
)

func connKind(id string) string {
	switch {
	case strings.HasPrefix(id, unixSessionPrefix):
		return kindUnix
	case strings.HasPrefix(id, sseSessionPrefix):
		return kindSSE
	case strings.HasPrefix(id, httpSessionPrefix):
		return kindStreamable
	}
	return kindOther
}

// connCounter counts the MCP connections registered with the server, by door, and remembers
// when the last one left.
type connCounter struct {
	mu       sync.Mutex
	byKind   map[string]int
	lastLeft time.Time
}

func newConnCounter() *connCounter {
	return &connCounter{byKind: map[string]int{}, lastLeft: time.Now()}
}

func (c *connCounter) add(s server.ClientSession) {
	if s == nil {
		return
	}
	c.mu.Lock()
	c.byKind[connKind(s.SessionID())]++
	c.mu.Unlock()
}

func (c *connCounter) remove(s server.ClientSession) {
	if s == nil {
		return
	}
	c.mu.Lock()
	k := connKind(s.SessionID())
	if c.byKind[k] > 0 {
		c.byKind[k]--
	}
	c.lastLeft = time.Now()
	c.mu.Unlock()
}

// snapshot returns the counts by kind and their total.
func (c *connCounter) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{kindUnix: 0, kindStreamable: 0, kindSSE: 0}
	total := 0
	for k, n := range c.byKind {
		out[k] += n
		total += n
	}
	return out, total
}

// idleSince is when the last connection left (meaningful when there are none).
func (c *connCounter) idleSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastLeft
}
