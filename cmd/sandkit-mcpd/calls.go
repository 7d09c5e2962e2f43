package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// callDrainTimeout bounds how long a departing connection waits for its cancelled tool calls to
// return before the engine is told the connection is gone.
const callDrainTimeout = 10 * time.Second

// callTracker knows every tool call in flight and the connection (MCP session) it came from, so
// that the calls of a connection that went away can be cancelled. mcp-go cancels a call when its
// client sends notifications/cancelled, and on Streamable HTTP when the POST is dropped, but not
// when an SSE stream closes (its handlers run detached); this closes that gap on every transport.
type callTracker struct {
	mu        sync.Mutex
	bySession map[string]map[*trackedCall]struct{}
	inFlight  atomic.Int64
	lastDone  atomic.Int64 // unix nanos of the last call that ended
}

type trackedCall struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newCallTracker() *callTracker {
	t := &callTracker{bySession: map[string]map[*trackedCall]struct{}{}}
	t.lastDone.Store(time.Now().UnixNano())
	return t
}

// middleware wraps every tool handler: the call runs under a context the tracker can cancel.
func (t *callTracker) middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id := ""
		if s := server.ClientSessionFromContext(ctx); s != nil {
			id = s.SessionID()
		}
		ctx, cancel := context.WithCancel(ctx)
		c := &trackedCall{cancel: cancel, done: make(chan struct{})}
		t.mu.Lock()
		if t.bySession[id] == nil {
			t.bySession[id] = map[*trackedCall]struct{}{}
		}
		t.bySession[id][c] = struct{}{}
		t.mu.Unlock()
		t.inFlight.Add(1)
		defer func() {
			t.mu.Lock()
			delete(t.bySession[id], c)
			if len(t.bySession[id]) == 0 {
				delete(t.bySession, id)
			}
			t.mu.Unlock()
			t.lastDone.Store(time.Now().UnixNano())
			t.inFlight.Add(-1)
			cancel()
			close(c.done)
		}()
		return next(ctx, req)
	}
}

// cancelSession cancels the calls of one connection and waits up to wait for them to return.
func (t *callTracker) cancelSession(id string, wait time.Duration) {
	t.mu.Lock()
	var calls []*trackedCall
	for c := range t.bySession[id] {
		calls = append(calls, c)
	}
	t.mu.Unlock()
	t.cancelAndWait(calls, wait)
}

// cancelAll cancels every call in flight and waits up to wait for them to return.
func (t *callTracker) cancelAll(wait time.Duration) {
	t.mu.Lock()
	var calls []*trackedCall
	for _, m := range t.bySession {
		for c := range m {
			calls = append(calls, c)
		}
	}
	t.mu.Unlock()
	t.cancelAndWait(calls, wait)
}

func (t *callTracker) cancelAndWait(calls []*trackedCall, wait time.Duration) {
	for _, c := range calls {
		c.cancel()
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for _, c := range calls {
		select {
		case <-c.done:
		case <-deadline.C:
			return
		}
	}
}

// count is the number of tool calls in flight.
func (t *callTracker) count() int64 { return t.inFlight.Load() }

// idleSince is when the last call ended (meaningful when count is zero).
func (t *callTracker) idleSince() time.Time { return time.Unix(0, t.lastDone.Load()) }

// sessions lists the connections that have calls in flight.
func (t *callTracker) sessions() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.bySession))
	for id := range t.bySession {
		out = append(out, id)
	}
	return out
}
