package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Results are the model's view. Claude Code and Codex hand the model a successful result's
// structuredContent (as JSON) and drop its text; for an error result Claude Code passes only the
// text. So every result carries the same facts and next steps twice, each complete:
//
//   - structuredContent is the tool's result type R (a Go struct reflected into the tool's
//     outputSchema), or, for a failure, {"error": {kind, message, fields…}, "next": […]}. Every
//     output schema admits both shapes, so a client that validates error results too (the
//     TypeScript SDK does) accepts them.
//   - the text is a few readable lines rendered from the same value (R.text), followed by the
//     same next steps.
//
// Next steps have one convention for all tools: "next" is a short list of concrete calls
// ({tool, args, why}), most useful first; the text renders each as a line "next: tool {args} — why".

// view is what a tool's result type implements: its text, and its next steps (from Steps).
type view interface {
	text() string
	nextCalls() []engine.Call
}

// Steps is embedded in every result type: the calls that usually come next.
type Steps struct {
	Next []engine.Call `json:"next,omitempty" jsonschema_description:"Calls that usually come next, with their arguments, most useful first."`
}

func (s Steps) nextCalls() []engine.Call { return s.Next }

// then adds a next call.
func (s *Steps) then(tool, why string, args map[string]any) {
	s.Next = append(s.Next, engine.Call{Tool: tool, Args: args, Why: why})
}

// failing is implemented by result types that can describe an outcome the call must report as a
// failure (isError) while still being a full result, e.g. a foreground run that was cancelled.
type failing interface{ failed() bool }

// errorView is the "error" member of a failed call's structuredContent.
type errorView struct {
	// Kind is a stable code: one of engine.ErrorKinds(), "no_connection" or "internal".
	Kind    string `json:"kind" jsonschema:"required"`
	Message string `json:"message" jsonschema:"required"`
	engine.ErrorFields
}

// JSONSchemaExtend lists the kinds.
func (errorView) JSONSchemaExtend(s *jsonschema.Schema) {
	if p, ok := s.Properties.Get("kind"); ok {
		for _, k := range errorKinds() {
			p.Enum = append(p.Enum, k)
		}
	}
}

// Kinds of tool errors that do not come from the engine.
const (
	kindInternal     = "internal"
	kindNoConnection = "no_connection"
)

func errorKinds() []string {
	return append(engine.ErrorKinds(), kindNoConnection, kindInternal)
}

// failure is a failed call's structuredContent.
type failure struct {
	Error errorView `json:"error"`
	Steps
}

// hints are a tool's behaviour annotations; every tool states all four.
type hints struct {
	readOnly, destructive, idempotent, openWorld bool
}

// toolDef describes one tool whose arguments decode into A and whose result is R.
type toolDef[A any, R view] struct {
	name, title, description string
	hints                    hints
	// handle does the work: a result, or an error (an *engine.Error, or any error, which then
	// reads as an internal fault).
	handle func(ctx context.Context, req mcp.CallToolRequest, args *A) (R, error)
}

// define builds the MCP tool (input and output schemas reflected from A and R, title,
// annotations) and its handler, which decodes the arguments, tells the engine who calls, recovers
// from panics, and renders the result or the failure. It never returns a Go error.
func define[A any, R view](t *toolset, d toolDef[A, R]) server.ServerTool {
	in, err := inputSchema[A](t.limits)
	if err != nil {
		panic(fmt.Sprintf("tools: input schema for %s: %v", d.name, err)) // a programming error, caught by tests
	}
	out, err := outputSchema[R]()
	if err != nil {
		panic(fmt.Sprintf("tools: output schema for %s: %v", d.name, err))
	}
	tool := mcp.NewToolWithRawSchema(d.name, t.limits.expand(d.description), in)
	tool.RawOutputSchema = out
	tool.Title = d.title
	tool.Annotations = mcp.ToolAnnotation{
		Title:           d.title,
		ReadOnlyHint:    mcp.ToBoolPtr(d.hints.readOnly),
		DestructiveHint: mcp.ToBoolPtr(d.hints.destructive),
		IdempotentHint:  mcp.ToBoolPtr(d.hints.idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(d.hints.openWorld),
	}
	handler := func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		defer func() {
			if p := recover(); p != nil {
				t.log.Error("tool handler panicked", "tool", d.name, "panic", p, "stack", string(debug.Stack()))
				msg := "the server failed while handling " + d.name + "; this is a server fault, not a problem with your arguments; the server log has details"
				res = failed(failure{Error: errorView{Kind: kindInternal, Message: msg}}, "internal error: "+msg)
				err = nil
			}
		}()
		args := new(A)
		if e := decodeArgs(req, args); e != nil {
			return t.fail(d.name, e), nil
		}
		if h, err := HolderFromContext(ctx); err == nil {
			ctx = engine.WithCaller(ctx, h)
		}
		ctx = t.withHostRoots(ctx)
		r, herr := d.handle(ctx, req, args)
		if herr != nil {
			return t.fail(d.name, herr), nil
		}
		return rendered(r), nil
	}
	return server.ServerTool{Tool: tool, Handler: handler}
}

// rendered is the tool result of a successful call (or of a failing outcome, see failing).
func rendered(v view) *mcp.CallToolResult {
	var b strings.Builder
	b.WriteString(strings.TrimRight(v.text(), "\n"))
	writeNext(&b, v.nextCalls())
	res := mcp.NewToolResultStructured(v, b.String())
	if f, ok := v.(failing); ok && f.failed() {
		res.IsError = true
	}
	return res
}

// failed is the tool result of a failure; headline is the text's first line (the message with the
// kind in words in front).
func failed(f failure, headline string) *mcp.CallToolResult {
	var b strings.Builder
	b.WriteString(headline)
	if fields := fieldsJSON(f.Error.ErrorFields); fields != "" {
		b.WriteString("\ndetails: " + fields)
	}
	writeNext(&b, f.Next)
	res := mcp.NewToolResultStructured(f, b.String())
	res.IsError = true
	return res
}

// writeNext renders next calls as text lines: "next: tool {"arg":…} — why".
func writeNext(b *strings.Builder, calls []engine.Call) {
	for _, c := range calls {
		b.WriteString("\nnext: " + c.Tool)
		if len(c.Args) > 0 {
			if j, err := json.Marshal(c.Args); err == nil {
				b.WriteString(" " + string(j))
			}
		}
		if c.Why != "" {
			b.WriteString(" — " + c.Why)
		}
	}
}

// fieldsJSON renders an error's fields as compact JSON, or "" when there are none.
func fieldsJSON(f engine.ErrorFields) string {
	j, err := json.Marshal(f)
	if err != nil || string(j) == "{}" {
		return ""
	}
	return string(j)
}
