package engine

import "errors"

// Sentinel errors. Every error the engine returns wraps exactly one of these (match with
// errors.Is); the message around it says what happened and what to do next, in words an agent can
// act on. The tools layer turns them into tool errors without rewording.
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
)
