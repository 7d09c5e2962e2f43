package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// One HTTP exchange with the API, and the retry policy around it.
//
// Idempotent calls (every GET and DELETE, stop, network-policy, kill, fs/*) are retried on
// network errors, on any 5xx and on 429. Non-idempotent calls (create, cmd, extend-timeout,
// snapshot) are retried only on 429 and when the request provably never left (it failed before
// its headers were written, e.g. a dial error): anything else could run them twice. A 429 whose
// Retry-After exceeds MaxRetryAfter is returned at once; otherwise the delay before the next
// attempt is max(Retry-After, backoff).

const (
	contentTypeJSON   = "application/json"
	contentTypeNDJSON = "application/x-ndjson"
	// maxBackoff caps any single backoff delay.
	maxBackoff = 10 * time.Second
	// maxJSONBody bounds a JSON response body.
	maxJSONBody = 16 << 20
)

// errNoHeaders is the cause of a request abandoned because its response headers were late.
var errNoHeaders = errors.New("no response headers in time")

// apiCall describes one API request.
type apiCall struct {
	op     string // for errors: "get sandbox"
	method string
	path   string      // under the base URL, segments already escaped: "/v2/sandboxes/x"
	query  [][2]string // parameters after teamId, in this order
	body   []byte      // nil: an empty body
	// contentType defaults to application/json (sent on every request, GETs included).
	contentType string
	cwd         string // x-cwd header, when set
	idempotent  bool
	// long exempts the call from the response-header timeout (streams, waits, stops, snapshots).
	long bool
}

// transportError is a failure to get an answer at all (connection refused or reset, timeout,
// a body cut while being read). It wraps the cause and sandbox.ErrUnavailable.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string   { return "vercel: " + e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() []error { return []error{e.err, sandbox.ErrUnavailable} }

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// requestURL is base + path + "?teamId=…" followed by the call's own parameters.
func (c *Client) requestURL(call *apiCall) string {
	var b strings.Builder
	b.WriteString(c.base)
	b.WriteString(call.path)
	b.WriteString("?teamId=")
	b.WriteString(url.QueryEscape(c.team))
	for _, kv := range call.query {
		b.WriteString("&")
		b.WriteString(url.QueryEscape(kv[0]))
		b.WriteString("=")
		b.WriteString(url.QueryEscape(kv[1]))
	}
	return b.String()
}

// once makes one attempt. sent reports whether the request may have reached the server (its
// headers were written); a response means it did. A returned response has its own context,
// released when its body is closed.
//
// The token is the credentials' current one (an OIDC token is renewed first when it nears its
// exp). A 401 or 403 of an OIDC token is sent once more with a renewed token when there is one
// (the refused request did nothing); when there is none, the refusal is returned as err (an
// *APIError), or, when the token has expired, a *TokenExpiredError wrapping it. Callers return
// such credentials errors as they are (isCredentials), like an expired token that could not be
// renewed before sending.
func (c *Client) once(ctx context.Context, call *apiCall) (*http.Response, bool, error) {
	tok, err := c.creds.current(ctx)
	if err != nil {
		return nil, false, err
	}
	resp, sent, err := c.attempt(ctx, call, tok)
	if err != nil || !c.creds.oidc || resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return resp, sent, err
	}
	refusal := apiErrorFromResponse(call.op, resp)
	fresh, err := c.creds.renew(ctx, tok, refusal)
	if err != nil {
		return nil, true, err
	}
	if fresh == "" {
		return nil, true, refusal
	}
	c.log.Debug("vercel: the API refused the OIDC token; sending again with a renewed one", "op", call.op, "status", refusal.Status)
	return c.attempt(ctx, call, fresh)
}

// isCredentials reports whether err, returned by once, is a credentials failure that retries
// cannot help: an expired token, or the API's refusal of an OIDC token (401, 403).
func isCredentials(err error) bool {
	if errors.Is(err, ErrCredentials) {
		return true
	}
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}

// attempt sends call once with the bearer token tok.
func (c *Client) attempt(ctx context.Context, call *apiCall, tok string) (resp *http.Response, sent bool, err error) {
	var wrote atomic.Bool
	rctx, cancel := context.WithCancelCause(ctx)
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	var body io.Reader = http.NoBody
	if call.body != nil {
		body = bytes.NewReader(call.body)
	}
	req, err := http.NewRequestWithContext(rctx, call.method, c.requestURL(call), body)
	if err != nil {
		cancel(nil)
		return nil, false, err
	}
	ct := call.contentType
	if ct == "" {
		ct = contentTypeJSON
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", c.userAgent)
	if call.cwd != "" {
		req.Header.Set("X-Cwd", call.cwd)
	}

	var timer *time.Timer
	if !call.long && c.headerTimeout > 0 {
		timer = time.AfterFunc(c.headerTimeout, func() { cancel(errNoHeaders) })
	}
	resp, err = c.http.Do(req)
	if timer != nil && !timer.Stop() {
		// The timer fired: whatever Do returned, the request's context is gone.
		if err == nil {
			_ = resp.Body.Close()
		}
		cancel(nil)
		return nil, wrote.Load(), fmt.Errorf("%w within %s", errNoHeaders, c.headerTimeout)
	}
	if err != nil {
		cancel(nil)
		return nil, wrote.Load(), err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, true, nil
}

// send performs call with the retry policy and returns a 2xx response (the caller closes its
// body). Failures are an *APIError (non-2xx), a *transportError, or ctx's error.
func (c *Client) send(ctx context.Context, call *apiCall) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, sent, err := c.once(ctx, call)
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return resp, nil
		}
		var last error
		retry, delay := false, time.Duration(0)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("vercel: %s: %w", call.op, ctx.Err())
			}
			if isCredentials(err) {
				return nil, err
			}
			last = &transportError{op: call.op, err: err}
			retry = call.idempotent || !sent
		} else {
			apiErr := apiErrorFromResponse(call.op, resp)
			last = apiErr
			retry, delay = c.retryableStatus(apiErr, call.idempotent)
		}
		if !retry || attempt >= c.retries {
			return nil, last
		}
		delay = max(delay, c.backoff(attempt))
		c.log.Debug("vercel: retrying", "op", call.op, "attempt", attempt+1, "delay", delay, "error", last.Error())
		if err := c.sleepFn(ctx, delay); err != nil {
			return nil, fmt.Errorf("vercel: %s: %w (after %v)", call.op, err, last)
		}
	}
}

// retryableStatus decides whether a non-2xx answer is worth another attempt, and the least
// delay before it: 429 when its Retry-After is within MaxRetryAfter; 5xx for idempotent calls.
func (c *Client) retryableStatus(e *APIError, idempotent bool) (bool, time.Duration) {
	switch {
	case e.Status == http.StatusTooManyRequests:
		if e.RetryAfter > c.maxRetryAfter {
			return false, 0
		}
		return true, e.RetryAfter
	case e.Status >= 500:
		return idempotent, 0
	}
	return false, 0
}

// transient reports whether err, returned by an idempotent call, was a passing failure that a
// later attempt may get past: a transport error, a 5xx, or a 429 within MaxRetryAfter. Errors
// after ctx ended are not.
func (c *Client) transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status != 0 {
		retry, _ := c.retryableStatus(ae, true)
		return retry
	}
	return false
}

// backoff is the delay before retry n (0-based): MinBackoff·2ⁿ times a random factor in [1, 2),
// capped at maxBackoff.
func (c *Client) backoff(n int) time.Duration {
	d := c.minBackoff << min(n, 20)
	d = time.Duration(float64(d) * (1 + rand.Float64()))
	return min(d, maxBackoff)
}

// loopDelay is the pause before another round of a loop that does not give up on transient
// failures (waitCommand, followLogs): the backoff for the number of failures so far, or longer
// when the last failure was a 429 asking for more.
func (c *Client) loopDelay(failures int, err error) time.Duration {
	d := c.backoff(failures)
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > d {
		d = ae.RetryAfter
	}
	return d
}

// doJSON sends call and decodes a 2xx JSON answer into out (nil: the body is discarded).
func (c *Client) doJSON(ctx context.Context, call *apiCall, out any) error {
	resp, err := c.send(ctx, call)
	if err != nil {
		return err
	}
	return c.decodeJSON(ctx, call.op, resp, out)
}

// decodeJSON decodes resp's body into out and closes it. A body that breaks off while being
// read is a *transportError; one that is not the expected JSON is a plain error.
func (c *Client) decodeJSON(ctx context.Context, op string, resp *http.Response, out any) error {
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSONBody))
		return nil
	}
	err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONBody)).Decode(out)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("vercel: %s: %w", op, ctx.Err())
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return fmt.Errorf("vercel: %s: the response is not the expected JSON: %v", op, err)
	}
	return &transportError{op: op, err: fmt.Errorf("reading the response: %w", err)}
}

// marshalBody marshals values built by this package (maps of strings, structs of plain fields),
// which cannot fail.
func marshalBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("vercel: marshal request body: " + err.Error())
	}
	return b
}
