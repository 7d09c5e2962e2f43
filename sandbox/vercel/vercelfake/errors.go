package vercelfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes the fake answers with (reference §3.2).
const (
	codeBadRequest       = "bad_request"
	codeForbidden        = "forbidden"
	codeNotFound         = "not_found"
	codeConflict         = "conflict"
	codeTimeoutInvalid   = "sandbox_timeout_invalid"
	codeStopped          = "sandbox_stopped"
	codeStopping         = "sandbox_stopping"
	codeSnapshotting     = "sandbox_snapshotting"
	codeSnapshotNotFound = "snapshot_not_found"
	codeInternal         = "internal_server_error"
	codeUnavailable      = "service_unavailable"
	codeRateLimited      = "rate_limited"
)

// apiError is an error answer: an HTTP status and the {error:{code,message}} body. Extra holds
// additional members of the error object (e.g. invalidToken:true on a bad token).
type apiError struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// badRequest is a validation failure in the API's words: "Invalid request: <what>."
func badRequest(format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return &apiError{Status: http.StatusBadRequest, Code: codeBadRequest, Message: "Invalid request: " + msg}
}

func notFound(format string, args ...any) *apiError {
	return newError(http.StatusNotFound, codeNotFound, format, args...)
}

func internalError(err error) *apiError {
	return newError(http.StatusInternalServerError, codeInternal, "An unexpected error occurred: %v", err)
}

// body is the JSON body of the error.
func (e *apiError) body() map[string]any {
	obj := map[string]any{"code": e.Code, "message": e.Message}
	for k, v := range e.Extra {
		obj[k] = v
	}
	return map[string]any{"error": obj}
}

// writeError answers err: an *apiError as it is, anything else as a 500.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = internalError(err)
	}
	writeJSON(w, ae.Status, ae.body())
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal_server_error","message":"cannot encode the response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
