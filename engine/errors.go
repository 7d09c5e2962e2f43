package engine

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error the engine returns for a domain failure is an *Error whose Kind is
// one of these (match with errors.Is); its message says what happened and what to do next, in
// words an agent can act on. The tools layer maps an *Error once into a tool error result (kind,
// message, fields, next steps) without rewording it.
var (
	// ErrNotFound: an unknown workspace, commit, run or file.
	ErrNotFound = errors.New("not found")
	// ErrExists: a name that is already taken.
	ErrExists = errors.New("already exists")
	// ErrInvalid: bad input (empty command, bad path, timeout out of range, bad encoding, ...).
	ErrInvalid = errors.New("invalid argument")
	// ErrPolicy: a policy that is malformed or not allowed.
	ErrPolicy = errors.New("policy error")
	// ErrBusy: the operation conflicts with work in progress (e.g. the workspace moved on while a
	// command ran, or a run is already final).
	ErrBusy = errors.New("busy")
	// ErrLeased: a live session holds the workspace.
	ErrLeased = errors.New("workspace is leased by a session")
	// ErrNotHolder: the caller does not hold the session.
	ErrNotHolder = errors.New("not the session holder")
	// ErrExpired: the session or snapshot has expired.
	ErrExpired = errors.New("expired")
	// ErrProvider: the sandbox backend failed.
	ErrProvider = errors.New("sandbox provider error")
	// ErrCancelled: the caller cancelled the operation.
	ErrCancelled = errors.New("cancelled")
	// ErrClosed: the engine is shutting down.
	ErrClosed = errors.New("engine is shutting down")
	// ErrSetup: a template's setup command failed (non-zero exit, timeout, or its sandbox
	// failed); nothing was saved and the next use of the template runs it again.
	ErrSetup = errors.New("template setup failed")
	// ErrStorage: the server's data directory is full (below its reserve) or its store failed;
	// what was asked was refused or could not be recorded, and head did not move.
	ErrStorage = errors.New("storage failure")
)

// kinds names each sentinel with a stable machine-readable code, the "kind" of a tool error.
var kinds = []struct {
	err  error
	code string
}{
	{ErrNotFound, "not_found"},
	{ErrExists, "exists"},
	{ErrInvalid, "invalid_argument"},
	{ErrPolicy, "policy"},
	{ErrBusy, "busy"},
	{ErrLeased, "leased"},
	{ErrNotHolder, "not_holder"},
	{ErrExpired, "expired"},
	{ErrProvider, "provider"},
	{ErrCancelled, "cancelled"},
	{ErrClosed, "shutting_down"},
	{ErrSetup, "setup_failed"},
	{ErrStorage, "storage"},
}

// ErrorKinds lists every kind code an *Error can carry, for schemas.
func ErrorKinds() []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.code)
	}
	return out
}

// Error is the engine's error: a kind (one of the sentinels above), a message that is complete on
// its own (what happened, what to do), the facts an agent may act on as fields, and the calls
// that would resolve it. errors.Is(err, ErrLeased) matches the kind; errors.Is and errors.As also
// see the cause, when there is one.
type Error struct {
	// Kind is one of the sentinel errors of this package.
	Kind error
	// Msg is the message without the kind's own words in front.
	Msg string
	// Fields are the facts behind the message.
	Fields ErrorFields
	// Next lists calls that would resolve the failure, most useful first.
	Next  []Call
	cause error
	// whole is set when Msg already holds the whole text, kind included (an error that only
	// wraps a sentinel).
	whole bool
}

// ErrorFields are the facts an error is about; unset fields are omitted.
type ErrorFields struct {
	Workspace string `json:"workspace,omitempty"`
	Session   string `json:"session_id,omitempty"`
	Run       string `json:"run_id,omitempty"`
	Commit    string `json:"commit_id,omitempty"`
	Process   string `json:"process_id,omitempty"`
	// Holder is the client holding a session ("claude-code 1.2.3"); HolderIsYou says whether that
	// is the caller's own connection.
	Holder      string     `json:"holder,omitempty"`
	HolderIsYou *bool      `json:"holder_is_you,omitempty"`
	State       string     `json:"state,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	// Argument names the argument at fault; Limit is the bound it broke, Got what was given.
	Argument string `json:"argument,omitempty"`
	Limit    *int64 `json:"limit,omitempty"`
	Got      *int64 `json:"got,omitempty"`
	Path     string `json:"path,omitempty"`
}

// Call is a tool call an agent could make next: the tool and the arguments that matter.
type Call struct {
	Tool string         `json:"tool"`
	Args map[string]any `json:"args,omitempty"`
	// Why says in a few words what the call achieves.
	Why string `json:"why,omitempty"`
}

// Error renders "kind: message", as the sentinel-wrapping errors of earlier versions did.
func (e *Error) Error() string {
	if e.whole {
		return e.Msg
	}
	if e.Msg == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Msg
}

// Is matches the kind's sentinel.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// Code is the kind's machine-readable code ("leased", "invalid_argument", ...).
func (e *Error) Code() string { return kindCode(e.Kind) }

func kindCode(kind error) string {
	for _, k := range kinds {
		if k.err == kind {
			return k.code
		}
	}
	return "internal"
}

// errorf makes an *Error of kind with a message formatted as by fmt.Errorf: a %w verb keeps its
// operand as the cause.
func errorf(kind error, format string, args ...any) *Error {
	w := fmt.Errorf(format, args...)
	e := &Error{Kind: kind, Msg: w.Error()}
	switch u := w.(type) {
	case interface{ Unwrap() error }:
		e.cause = u.Unwrap()
	case interface{ Unwrap() []error }:
		e.cause = errors.Join(u.Unwrap()...)
	}
	return e
}

// with sets the error's fields.
func (e *Error) with(f ErrorFields) *Error {
	e.Fields = f
	return e
}

// then adds a next call.
func (e *Error) then(tool, why string, args map[string]any) *Error {
	e.Next = append(e.Next, Call{Tool: tool, Args: args, Why: why})
	return e
}

// AsError returns err's *Error, if it is or wraps one. An error that only wraps a sentinel (from
// older code paths or other packages) is reported with that kind and its whole text as message.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return &Error{Kind: k.err, Msg: err.Error(), cause: err, whole: true}, true
		}
	}
	return nil, false
}

func ptr[T any](v T) *T { return &v }

// note adds a sentence in parentheses to the message.
func (e *Error) note(s string) *Error {
	e.Msg += " (" + s + ")"
	return e
}

// noted adds a note to err's message when err is an *Error, and returns err.
func noted(err error, s string) error {
	var e *Error
	if errors.As(err, &e) {
		e.note(s)
	}
	return err
}

// ArgError is an ErrInvalid error about one argument, for callers that check the shape of their
// input before it reaches the engine (the tools layer decoding JSON). why says what is wrong and
// how to fix it.
func ArgError(arg, why string) *Error {
	return errorf(ErrInvalid, "%s: %s", arg, why).with(ErrorFields{Argument: arg})
}
