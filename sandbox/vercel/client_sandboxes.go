package vercel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Named sandboxes, sessions and snapshots.

// createRequest describes a new named sandbox. Its first session is ephemeral: persistent:false
// is always sent, so stopping it never makes a (billed) automatic snapshot.
type createRequest struct {
	// Name is required: our own unique name, which lets a create whose answer was lost be
	// looked up with a GET instead of being sent again (see createSandbox).
	Name string
	// SnapshotID, when set, restores the session from that snapshot (source
	// {"type":"snapshot","snapshotId":...}); Runtime is then not sent.
	SnapshotID string
	// Runtime is a legacy runtime ("node24", ...), used only when SnapshotID is "". Set, the
	// request goes to POST /v2/sandboxes; "" omits it and uses POST /v3/sandboxes (the default
	// image).
	Runtime string
	// Ports to expose; always sent, as [] when empty.
	Ports []int
	// Timeout is the session's lifetime (ms on the wire); 0 leaves the API's default (5 min).
	Timeout time.Duration
	// VCPUs is the number of vCPUs (1 or even); 0 omits "resources" (the API's default, 2).
	VCPUs int
	// Env is the default environment of every command; Tags label the sandbox (at most 5).
	Env  map[string]string
	Tags map[string]string
	// NetworkPolicy is the egress policy; nil leaves the API's default (allow-all).
	NetworkPolicy *networkPolicy
}

type createBody struct {
	ProjectID     string            `json:"projectId"`
	Name          string            `json:"name"`
	Source        *snapshotSource   `json:"source,omitempty"`
	Runtime       string            `json:"runtime,omitempty"`
	Ports         []int             `json:"ports"`
	Timeout       int64             `json:"timeout,omitempty"`
	Resources     *createResources  `json:"resources,omitempty"`
	Persistent    bool              `json:"persistent"`
	NetworkPolicy json.RawMessage   `json:"networkPolicy,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
}

type snapshotSource struct {
	Type       string `json:"type"`
	SnapshotID string `json:"snapshotId"`
}

type createResources struct {
	VCPUs int `json:"vcpus"`
}

// createSandbox makes a named sandbox and returns it with its running first session.
//
// The network policy goes in the shape in force (see PolicyShape: under PolicyAuto a 400 naming
// the shape is sent once more in the other shape; nothing was created by the refused call). It
// sends POST /v3/sandboxes (POST /v2/sandboxes when req.Runtime is used) with the project in
// the body. A 429 (within MaxRetryAfter) and failures before the request was sent are retried.
// After a 5xx, or a connection that failed once the request was sent, the POST is NOT sent
// again blindly: createSandbox asks GET /v2/sandboxes/{name}; if the sandbox exists it was
// created and is returned, and only a 404 lets the POST be sent again (counting as an
// attempt). A session still "pending" is polled every 250ms until it runs (bounded by ctx); one
// that ends in any status other than "running" yields an error wrapping sandbox.ErrEnded.
func (c *Client) createSandbox(ctx context.Context, req createRequest) (sandboxAndSession, error) {
	const op = "create sandbox"
	if req.Name == "" {
		return sandboxAndSession{}, fmt.Errorf("vercel: %s: a name is required: %w", op, sandbox.ErrInvalid)
	}
	body := createBody{
		ProjectID:  c.project,
		Name:       req.Name,
		Ports:      req.Ports,
		Timeout:    req.Timeout.Milliseconds(),
		Persistent: false,
		Env:        req.Env,
		Tags:       req.Tags,
	}
	if body.Ports == nil {
		body.Ports = []int{}
	}
	path := "/v3/sandboxes"
	switch {
	case req.SnapshotID != "":
		body.Source = &snapshotSource{Type: "snapshot", SnapshotID: req.SnapshotID}
	case req.Runtime != "":
		body.Runtime = req.Runtime
		path = "/v2/sandboxes"
	}
	if req.VCPUs > 0 {
		body.Resources = &createResources{VCPUs: req.VCPUs}
	}
	var out sandboxAndSession
	err := c.withPolicy(req.NetworkPolicy, func(pol json.RawMessage) error {
		body.NetworkPolicy = pol
		var err error
		out, err = c.create(ctx, req.Name, &apiCall{op: op, method: http.MethodPost, path: path, body: marshalBody(body)})
		return err
	})
	return out, err
}

// create sends a create call with createSandbox's recovery from lost answers.
func (c *Client) create(ctx context.Context, name string, call *apiCall) (sandboxAndSession, error) {
	op := call.op
	for attempt := 0; ; attempt++ {
		var last error
		delay, ambiguous := time.Duration(0), false
		resp, sent, err := c.once(ctx, call)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return sandboxAndSession{}, fmt.Errorf("vercel: %s: %w", op, ctx.Err())
			}
			if isCredentials(err) {
				return sandboxAndSession{}, err
			}
			last = &transportError{op: op, err: err}
			ambiguous = sent
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			var out sandboxAndSession
			err := c.decodeJSON(ctx, op, resp, &out)
			if err == nil {
				return c.awaitRunning(ctx, out)
			}
			var te *transportError
			if !errors.As(err, &te) {
				return sandboxAndSession{}, err
			}
			last, ambiguous = err, true // created, but the answer was cut
		default:
			apiErr := apiErrorFromResponse(op, resp)
			last = apiErr
			switch {
			case apiErr.Status == http.StatusTooManyRequests && apiErr.RetryAfter <= c.maxRetryAfter:
				delay = apiErr.RetryAfter
			case apiErr.Status >= 500:
				ambiguous = true
			default:
				return sandboxAndSession{}, apiErr
			}
		}
		if ambiguous {
			got, gerr := c.getSandbox(ctx, name)
			if gerr == nil {
				c.log.Debug("vercel: create answered badly but the sandbox exists", "name", name, "error", last.Error())
				return c.awaitRunning(ctx, got)
			}
			var ae *APIError
			if !errors.As(gerr, &ae) || ae.Status != http.StatusNotFound {
				return sandboxAndSession{}, fmt.Errorf("%w; whether sandbox %q was created is unknown: %w", last, name, gerr)
			}
		}
		if attempt >= c.retries {
			return sandboxAndSession{}, last
		}
		delay = max(delay, c.backoff(attempt))
		c.log.Debug("vercel: retrying", "op", op, "attempt", attempt+1, "delay", delay, "error", last.Error())
		if err := c.sleepFn(ctx, delay); err != nil {
			return sandboxAndSession{}, fmt.Errorf("vercel: %s: %w (after %v)", op, err, last)
		}
	}
}

// awaitRunning polls a pending session until it runs.
func (c *Client) awaitRunning(ctx context.Context, out sandboxAndSession) (sandboxAndSession, error) {
	for out.Session.Status == "pending" {
		if err := c.sleepFn(ctx, c.pollInterval); err != nil {
			return sandboxAndSession{}, fmt.Errorf("vercel: create sandbox: waiting for session %s to start: %w", out.Session.ID, err)
		}
		s, routes, err := c.GetSession(ctx, out.Session.ID)
		if err != nil {
			return sandboxAndSession{}, err
		}
		out.Session = s
		if len(routes) > 0 {
			out.Routes = routes
		}
	}
	if out.Session.Status != "running" {
		return sandboxAndSession{}, fmt.Errorf("vercel: create sandbox: session %s of %q is %s, not running: %w",
			out.Session.ID, out.Sandbox.Name, out.Session.Status, sandbox.ErrEnded)
	}
	return out, nil
}

// getSandbox returns a named sandbox with its current session (even a stopped one) and routes:
// GET /v2/sandboxes/{name}?projectId=. An unknown name is an *APIError unwrapping to
// sandbox.ErrNotFound.
func (c *Client) getSandbox(ctx context.Context, name string) (sandboxAndSession, error) {
	var out sandboxAndSession
	err := c.doJSON(ctx, &apiCall{
		op: "get sandbox", method: http.MethodGet, path: "/v2/sandboxes/" + url.PathEscape(name),
		query: [][2]string{{"projectId", c.project}}, idempotent: true,
	}, &out)
	return out, err
}

// deleteSandbox stops a named sandbox's session and removes the name: DELETE
// /v2/sandboxes/{name}?projectId=. A 404 is returned as an error (unwrapping to
// sandbox.ErrNotFound), not swallowed.
func (c *Client) deleteSandbox(ctx context.Context, name string) error {
	return c.doJSON(ctx, &apiCall{
		op: "delete sandbox", method: http.MethodDelete, path: "/v2/sandboxes/" + url.PathEscape(name),
		query: [][2]string{{"projectId", c.project}}, idempotent: true, long: true,
	}, nil)
}

// ListSandboxes lists the project's named sandboxes, following the pagination cursors to the
// end. tag is one "key:value" filter ("" for none), sent as ?tags= like the SDK does; status
// ("running", "stopping", "stopped"; "" for any) filters on the current session's status here,
// not in the query: the SDK sends no status parameter (the REST reference's, valid only with
// sortBy=createdAt, is not relied on).
func (c *Client) ListSandboxes(ctx context.Context, tag, status string) ([]NamedSandbox, error) {
	query := [][2]string{{"project", c.project}}
	if tag != "" {
		query = append(query, [2]string{"tags", tag})
	}
	var all []NamedSandbox
	err := c.paginate(ctx, "list sandboxes", "/v2/sandboxes", query, func(raw []byte) (wirePagination, error) {
		var page struct {
			Sandboxes  []NamedSandbox `json:"sandboxes"`
			Pagination wirePagination `json:"pagination"`
		}
		err := json.Unmarshal(raw, &page)
		for _, sb := range page.Sandboxes {
			if status == "" || sb.Status == status {
				all = append(all, sb)
			}
		}
		return page.Pagination, err
	})
	return all, err
}

// paginate GETs path page by page, adding cursor=<next> until a page has no next cursor.
func (c *Client) paginate(ctx context.Context, op, path string, query [][2]string, page func([]byte) (wirePagination, error)) error {
	seen := map[string]bool{}
	cursor := ""
	for {
		q := query
		if cursor != "" {
			q = append(q[:len(q):len(q)], [2]string{"cursor", cursor})
		}
		var raw json.RawMessage
		if err := c.doJSON(ctx, &apiCall{op: op, method: http.MethodGet, path: path, query: q, idempotent: true}, &raw); err != nil {
			return err
		}
		p, err := page(raw)
		if err != nil {
			return fmt.Errorf("vercel: %s: the response is not the expected JSON: %v", op, err)
		}
		cursor = p.nextCursor()
		if cursor == "" {
			return nil
		}
		if seen[cursor] {
			return fmt.Errorf("vercel: %s: the API returned the cursor %q twice", op, cursor)
		}
		seen[cursor] = true
	}
}

// sessionAnswer is {session, routes}.
type sessionAnswer struct {
	Session Session `json:"session"`
	Routes  []Route `json:"routes"`
}

// GetSession returns a session (also a stopped one) and its routes: GET
// /v2/sandboxes/sessions/{id}.
func (c *Client) GetSession(ctx context.Context, id string) (Session, []Route, error) {
	var out sessionAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "get session", method: http.MethodGet, path: apiSessionPath(id), idempotent: true,
	}, &out)
	return out.Session, out.Routes, err
}

// stopSession stops a session and returns it: POST /v2/sandboxes/sessions/{id}/stop, which
// blocks until the VM has stopped. It is retried like any idempotent call. A session that has
// already stopped may answer 410; that *APIError is returned (unwrapping to sandbox.ErrEnded)
// and callers treat it as stopped.
func (c *Client) stopSession(ctx context.Context, id string) (Session, error) {
	var out sessionAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "stop session", method: http.MethodPost, path: apiSessionPath(id) + "/stop", idempotent: true, long: true,
	}, &out)
	return out.Session, err
}

// extendTimeout adds d to the session's timeout: POST extend-timeout {"duration": ms}. It is
// not retried after a 5xx or a failure once the request was sent (it could extend twice); 429
// and failures before sending are retried. Going past the plan's maximum is a 400
// (sandbox_timeout_invalid, unwrapping to sandbox.ErrInvalid).
func (c *Client) extendTimeout(ctx context.Context, id string, d time.Duration) (Session, error) {
	var out sessionAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "extend timeout", method: http.MethodPost, path: apiSessionPath(id) + "/extend-timeout",
		body: marshalBody(map[string]int64{"duration": d.Milliseconds()}),
	}, &out)
	return out.Session, err
}

// setNetworkPolicy replaces the running session's egress policy: POST network-policy with the
// policy itself as the body, in the shape in force (Config.PolicyShape; under PolicyAuto a 400
// naming the shape is retried once in the other). A full replacement is idempotent, so it is
// retried.
func (c *Client) setNetworkPolicy(ctx context.Context, id string, p networkPolicy) (Session, error) {
	var out sessionAnswer
	err := c.withPolicy(&p, func(body json.RawMessage) error {
		return c.doJSON(ctx, &apiCall{
			op: "set network policy", method: http.MethodPost, path: apiSessionPath(id) + "/network-policy",
			body: body, idempotent: true,
		}, &out)
	})
	return out.Session, err
}

// snapshot saves the session's disk and stops the session: POST snapshot, which blocks until
// the snapshot exists. expiration nil sends no body (the API's default expiration); otherwise
// {"expiration": ms}, where 0 means never. Any 2xx is accepted. It is not retried after a 5xx
// or a failure once the request was sent.
func (c *Client) snapshot(ctx context.Context, sessionID string, expiration *time.Duration) (snapshot, Session, error) {
	var body []byte
	if expiration != nil {
		body = marshalBody(map[string]int64{"expiration": expiration.Milliseconds()})
	}
	var out struct {
		Snapshot snapshot `json:"snapshot"`
		Session  Session  `json:"session"`
	}
	err := c.doJSON(ctx, &apiCall{
		op: "snapshot", method: http.MethodPost, path: apiSessionPath(sessionID) + "/snapshot",
		body: body, long: true,
	}, &out)
	return out.Snapshot, out.Session, err
}

// snapshotAnswer is {snapshot}.
type snapshotAnswer struct {
	Snapshot snapshot `json:"snapshot"`
}

// getSnapshot returns a snapshot: GET /v2/sandboxes/snapshots/{id} (404 for an unknown one).
func (c *Client) getSnapshot(ctx context.Context, id string) (snapshot, error) {
	var out snapshotAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "get snapshot", method: http.MethodGet, path: "/v2/sandboxes/snapshots/" + url.PathEscape(id), idempotent: true,
	}, &out)
	return out.Snapshot, err
}

// deleteSnapshot deletes a snapshot and returns it (status "deleted"): DELETE
// /v2/sandboxes/snapshots/{id}.
func (c *Client) deleteSnapshot(ctx context.Context, id string) (snapshot, error) {
	var out snapshotAnswer
	err := c.doJSON(ctx, &apiCall{
		op: "delete snapshot", method: http.MethodDelete, path: "/v2/sandboxes/snapshots/" + url.PathEscape(id), idempotent: true,
	}, &out)
	return out.Snapshot, err
}

// listSnapshots lists the snapshots of one named sandbox, or of the whole project when
// sandboxName is "", following the pagination cursors to the end.
func (c *Client) listSnapshots(ctx context.Context, sandboxName string) ([]snapshot, error) {
	query := [][2]string{{"project", c.project}}
	if sandboxName != "" {
		query = append(query, [2]string{"name", sandboxName})
	}
	var all []snapshot
	err := c.paginate(ctx, "list snapshots", "/v2/sandboxes/snapshots", query, func(raw []byte) (wirePagination, error) {
		var page struct {
			Snapshots  []snapshot     `json:"snapshots"`
			Pagination wirePagination `json:"pagination"`
		}
		err := json.Unmarshal(raw, &page)
		all = append(all, page.Snapshots...)
		return page.Pagination, err
	})
	return all, err
}

// apiSessionPath is /v2/sandboxes/sessions/{id}.
func apiSessionPath(id string) string { return "/v2/sandboxes/sessions/" + url.PathEscape(id) }
