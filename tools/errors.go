package tools

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// Errors are mapped once, here: an *engine.Error (or an error wrapping one of the engine's
// sentinels) becomes a failure whose kind, message, fields and next calls are the engine's, word
// for word. Anything else is a server fault ("internal") and is logged.

// fail is the tool result for err.
func (t *toolset) fail(tool string, err error) *mcp.CallToolResult {
	f, headline := failureOf(err)
	if f.Error.Kind == kindInternal {
		t.log.Error("tool failed with an unexpected error", "tool", tool, "err", err)
	}
	return failed(f, headline)
}

// failureOf maps an error to a failure and the headline of its text.
func failureOf(err error) (failure, string) {
	if e, ok := engine.AsError(err); ok {
		f := failure{Error: errorView{Kind: e.Code(), Message: e.Msg, ErrorFields: e.Fields}}
		f.Next = e.Next
		headline := e.Error()
		if errors.Is(err, engine.ErrClosed) {
			f.Error.Message = "the server is shutting down; retry once it is back (your MCP client may need to reconnect)"
			headline = f.Error.Message
		}
		return f, headline
	}
	var msg, kind string
	switch {
	case errors.Is(err, policies.ErrInvalid):
		kind, msg = "invalid_argument", err.Error()
	case errors.Is(err, context.Canceled):
		kind, msg = "cancelled", "the request was cancelled before it finished; nothing was committed by it"
	case errors.Is(err, context.DeadlineExceeded):
		kind, msg = "cancelled", "the request ran out of time before it finished; nothing was committed by it"
	case errors.Is(err, errNoConnection):
		var nc *noConnectionError
		if errors.As(err, &nc) {
			return failure{Error: errorView{Kind: kindNoConnection, Message: nc.Error()}}, nc.Error()
		}
		kind, msg = kindNoConnection, err.Error()
	default:
		msg = err.Error() + " (a server fault, not a problem with your arguments; retrying may help; the server log has details)"
		return failure{Error: errorView{Kind: kindInternal, Message: msg}}, "internal error: " + msg
	}
	return failure{Error: errorView{Kind: kind, Message: msg}}, kind + ": " + msg
}

// argError is the error for a bad argument: its name, what is wrong and how to fix it.
func argError(name, why string) error {
	return engine.ArgError(name, why)
}
