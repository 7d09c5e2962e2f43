package tools

import (
	"context"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// A session's holder is the MCP connection that opened or attached it (DESIGN §2, §8). The
// connection's identity is mcp-go's client session, which every handler's ctx carries:
//
//   - stdio: the one session of the process, "stdio" (one stdio door = one connection);
//   - SSE: a UUID per GET /sse stream;
//   - Streamable HTTP: "mcp-session-<uuid>", created at initialize;
//   - the daemon's Unix-socket door: an id of its own per accepted connection.
//
// Requests of the sessionless protocol era (2026-07-28) carry a session whose id is "": they have
// no connection identity, so they cannot hold a lease, and the session tools refuse them.
//
// When a connection ends, mcp-go unregisters its session; the hook from Hooks tells the engine,
// which marks the sessions that connection held as detached, so another connection may attach.

// unknownClient names a holder whose client did not say who it is.
const unknownClient = "unknown client"

// errNoConnection is returned by HolderFromContext when ctx identifies no MCP connection.
var errNoConnection = errors.New("this request carries no MCP connection identity")

// HolderFromContext derives the lease holder of a tool call from its ctx: Conn is the MCP
// session id of the connection (unique per connection for the life of the process), Client the
// name and version the client reported at initialize ("claude-code 1.2.3"), or "unknown client".
// It fails when ctx carries no MCP session, or one without an id (a sessionless protocol era).
func HolderFromContext(ctx context.Context) (engine.Holder, error) {
	cs := server.ClientSessionFromContext(ctx)
	if cs == nil {
		return engine.Holder{}, errNoConnection
	}
	conn := cs.SessionID()
	if conn == "" {
		return engine.Holder{}, errNoConnection
	}
	client := ""
	if ci, ok := cs.(server.SessionWithClientInfo); ok {
		client = clientName(ci.GetClientInfo())
	}
	if client == "" {
		client = unknownClient
	}
	return engine.Holder{Conn: conn, Client: client}, nil
}

// clientName renders a client's self-description as "name version", trimmed and kept short (it is
// shown to other agents in lease errors).
func clientName(info mcp.Implementation) string {
	clean := func(s string) string {
		s = strings.Join(strings.Fields(s), " ")
		if r := []rune(s); len(r) > 64 {
			s = string(r[:64])
		}
		return s
	}
	name, version := clean(info.Name), clean(info.Version)
	switch {
	case name == "":
		return ""
	case version == "":
		return name
	}
	return name + " " + version
}

// noConnectionError is why a session tool cannot act for a request without a connection identity.
type noConnectionError struct{ tool string }

func (e *noConnectionError) Error() string {
	return e.tool + " needs an MCP connection that has a session identity, and this request has none " +
		"(the client speaks a sessionless protocol version such as 2026-07-28, or the call did not come through an MCP transport). " +
		"A live session belongs to the connection that opened it, so reconnect with a session-bearing protocol version " +
		"(2025-11-25 or earlier) or through the stdio command; run_command and the other workspace tools work without one"
}

func (e *noConnectionError) Unwrap() error { return errNoConnection }

// holder is HolderFromContext for a handler: the holder, or the error to fail with.
func (t *toolset) holder(ctx context.Context, tool string) (engine.Holder, error) {
	h, err := HolderFromContext(ctx)
	if err != nil {
		return h, &noConnectionError{tool: tool}
	}
	return h, nil
}

// Hooks returns the mcp-go hooks the session tools need: when an MCP connection starts
// (OnRegisterSession) or ends (OnUnregisterSession), the engine is told. When one ends, and the sessions that connection held become
// detached, so that a new connection can take them over with attach_session. Without them a
// session whose holder went away stays attached until it expires. They also make a read of a
// missing workspace or run, or of a path outside /workspace, a resource-not-found error
// (refuseMissing in resources.go), and carry the resource subscriptions (subscriptions.go).
//
// The caller must install them on the server that serves the tools:
//
//	s := server.NewMCPServer(name, version, server.WithHooks(tools.Hooks(eng)), …)
//	tools.Register(s, eng, opts)
//
// The result is a fresh *server.Hooks; add the caller's own hooks to it before passing it on
// (server.WithHooks takes one).
func Hooks(e *engine.Engine) *server.Hooks {
	h := &server.Hooks{}
	subs := installSubscriptions(h, e)
	h.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		if s != nil && s.SessionID() != "" {
			e.Connect(s.SessionID())
		}
	})
	h.AddOnUnregisterSession(func(ctx context.Context, s server.ClientSession) {
		if s == nil || s.SessionID() == "" {
			return
		}
		subs.drop(server.ServerFromContext(ctx), s.SessionID())
		e.Disconnect(s.SessionID())
	})
	h.AddBeforeReadResource(refuseMissing(e))
	return h
}
