package vercel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// errStreamCut is wrapped when an NDJSON stream broke (EOF or reset) before its final line and
// the client could not recover the rest.
var errStreamCut = errors.New("stream ended early")

// APIError is a non-2xx answer of the API, or an NDJSON {"stream":"error"} line (Status 0).
type APIError struct {
	// Op names the client call: "create sandbox", "run command", ...
	Op string
	// Status is the HTTP status; 0 for an error line inside a stream.
	Status int
	// Code is the body's error.code ("sandbox_stopped", "snapshot_not_found", ...) or "".
	Code string
	// Message is the body's error.message, or a short excerpt of a body that is not the usual
	// JSON error object.
	Message string
	// RetryAfter is the delay a 429 asked for in its Retry-After header (0 when absent).
	RetryAfter time.Duration
}

// Error reads like "vercel: run command: 410 sandbox_stopped: Sandbox has stopped"; a stream
// error line reads "vercel: run command: stream error sandbox_stopped: ...".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("vercel: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Status == 0 {
		b.WriteString("stream error")
	} else {
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	msg := e.Message
	if msg == "" && e.Status != 0 {
		msg = http.StatusText(e.Status)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap maps the error to the provider contract's sentinels (package sandbox):
//
//	404                                      -> sandbox.ErrNotFound
//	410 snapshot_not_found                   -> sandbox.ErrNotFound
//	410 (any other code)                     -> sandbox.ErrEnded
//	422 sandbox_stopping, sandbox_snapshotting -> sandbox.ErrEnded
//	400                                      -> sandbox.ErrInvalid
//	401, 402, 403, 429, 5xx                  -> sandbox.ErrUnavailable
//	stream error sandbox_stopped, sandbox_stream_closed -> sandbox.ErrEnded
//
// Anything else unwraps to nil.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == 0:
		if e.Code == "sandbox_stopped" || e.Code == "sandbox_stream_closed" {
			return sandbox.ErrEnded
		}
	case e.Status == http.StatusNotFound:
		return sandbox.ErrNotFound
	case e.Status == http.StatusGone:
		if e.Code == "snapshot_not_found" {
			return sandbox.ErrNotFound
		}
		return sandbox.ErrEnded
	case e.Status == http.StatusUnprocessableEntity:
		if e.Code == "sandbox_stopping" || e.Code == "sandbox_snapshotting" {
			return sandbox.ErrEnded
		}
	case e.Status == http.StatusBadRequest:
		return sandbox.ErrInvalid
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusPaymentRequired,
		e.Status == http.StatusForbidden, e.Status == http.StatusTooManyRequests,
		e.Status >= 500 && e.Status <= 599:
		return sandbox.ErrUnavailable
	}
	return nil
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// errorExcerptLen is how much of a non-JSON error body becomes the message.
const errorExcerptLen = 200

// apiErrorFromResponse reads (and closes) a non-2xx response's body into an *APIError.
func apiErrorFromResponse(op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	e := &APIError{Op: op, Status: resp.StatusCode}
	e.Code, e.Message = parseErrorBody(body)
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// parseErrorBody extracts code and message from {"error":{"code","message"}}, tolerating
// {"error":"text"}, {"message":"text"} and bodies that are not JSON (the message is then the
// first bytes of the body on one line).
func parseErrorBody(body []byte) (code, message string) {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil {
		var obj struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var text string
		switch {
		case len(env.Error) > 0 && json.Unmarshal(env.Error, &obj) == nil && (obj.Code != "" || obj.Message != ""):
			return obj.Code, obj.Message
		case len(env.Error) > 0 && json.Unmarshal(env.Error, &text) == nil && text != "":
			return "", text
		case env.Message != "":
			return "", env.Message
		}
	}
	return "", bodyExcerpt(body)
}

// bodyExcerpt is the first errorExcerptLen bytes of b as valid UTF-8 on one line, trimmed.
func bodyExcerpt(b []byte) string {
	if len(b) > errorExcerptLen {
		b = b[:errorExcerptLen]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1] // do not end inside a rune
		}
	}
	b = bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, bytes.ToValidUTF8(b, nil))
	return strings.TrimSpace(string(b))
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		n = min(n, 1e6) // still "too long", without overflowing
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// streamLineError turns the data of a {"stream":"error"} line ({"code","message"}, or a plain
// string) into an *APIError with Status 0.
func streamLineError(op string, data any) *APIError {
	e := &APIError{Op: op}
	switch d := data.(type) {
	case map[string]any:
		e.Code, _ = d["code"].(string)
		e.Message, _ = d["message"].(string)
	case string:
		e.Message = d
	}
	if e.Code == "" && e.Message == "" {
		e.Message = "error line without details"
	}
	return e
}
