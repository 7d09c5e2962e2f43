package tools

import (
	"context"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// errorCategories are the engine's sentinel errors (and the policy model's) in matching order.
// The engine's message already says what happened and what to do next; the tools layer keeps it
// word for word and adds the category in front only when the message does not already carry it.
var errorCategories = []error{
	engine.ErrNotFound,
	engine.ErrExists,
	engine.ErrInvalid,
	engine.ErrPolicy,
	engine.ErrBusy,
	engine.ErrLeased,
	engine.ErrNotHolder,
	engine.ErrExpired,
	engine.ErrProvider,
	engine.ErrCancelled,
	engine.ErrClosed,
	engine.ErrSetup,
	policies.ErrInvalid,
}

const internalPrefix = "internal error: "

// errorMessage turns an error from the engine into the text of a tool error.
func errorMessage(err error) string {
	msg := strings.TrimSpace(err.Error())
	for _, sentinel := range errorCategories {
		if errors.Is(err, sentinel) {
			// A provider error wrapped into the engine's category of the same name reads
			// "not found: not found: …"; say it once.
			p := sentinel.Error() + ": "
			msg = strings.ReplaceAll(msg, p+p, p)
			if errors.Is(sentinel, engine.ErrClosed) {
				return withCategory(msg, sentinel.Error()) + "; retry once the server is back (your MCP client may need to reconnect)"
			}
			return withCategory(msg, sentinel.Error())
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled: the request was cancelled before it finished; nothing was committed by it"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out: the request ran out of time before it finished; nothing was committed by it"
	}
	return internalPrefix + msg + " (a server fault, not a problem with your arguments; retrying may help; the server log has details)"
}

// withCategory prefixes msg with "category: " unless msg already names the category.
func withCategory(msg, category string) string {
	if strings.Contains(strings.ToLower(msg), strings.ToLower(category)) {
		return msg
	}
	return category + ": " + msg
}

// fail is the tool result for an error from the engine. Errors outside the known categories are
// server faults and are logged.
func (t *toolset) fail(tool string, err error) *mcp.CallToolResult {
	msg := errorMessage(err)
	if strings.HasPrefix(msg, internalPrefix) {
		t.log.Error("tool failed with an unexpected error", "tool", tool, "err", err)
	}
	return errorText(msg)
}

// errorText is a tool error result carrying msg.
func errorText(msg string) *mcp.CallToolResult {
	return mcp.NewToolResultError(msg)
}
