package vercelfake

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/local/localtest"
)

const (
	testToken   = "tok_0123456789abcdef"
	testTeam    = "team_fake123"
	testProject = "prj_fake123"
	testProjNm  = "fake-project"
)

// api is a fake served over HTTP on 127.0.0.1 with a real local (bubblewrap) backend.
type api struct {
	t       *testing.T
	url     string
	fake    *Server
	backend *local.Provider
	client  *http.Client
	// bodies holds every response body read through the helpers (to assert that no secret
	// ever appears in one); shared by the copies with() makes, guarded by mu.
	bodies *[]string
	mu     *sync.Mutex
}

// with returns a copy of a that reports to t (a subtest's).
func (a *api) with(t *testing.T) *api {
	c := *a
	c.t = t
	return &c
}

// newAPI starts a fake; opts.Backend and the credentials are filled in.
func newAPI(t *testing.T, opts Options) *api {
	t.Helper()
	return newAPIHome(t, opts, HomeDir)
}

// newAPIHome starts a fake whose backend mounts the sandbox user's home at home.
func newAPIHome(t *testing.T, opts Options, home string) *api {
	t.Helper()
	backend, err := local.New(local.Options{Dir: t.TempDir(), HomeDir: home})
	if err != nil {
		t.Fatalf("local backend: %v", err)
	}
	localtest.StopLiveAtCleanup(t, backend)
	opts.Backend = backend
	opts.Token, opts.TeamID, opts.ProjectID, opts.ProjectName = testToken, testTeam, testProject, testProjNm
	fake, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(func() {
		if err := fake.Close(); err != nil {
			t.Errorf("fake.Close: %v", err)
		}
		srv.CloseClientConnections()
		srv.Close()
		// Every backend sandbox the fake started has ended.
		if ids, err := backend.Sandboxes(t.Context()); err == nil && len(ids) > 0 {
			t.Errorf("backend sandboxes still live after Close: %v", ids)
		}
	})
	return &api{t: t, url: srv.URL, fake: fake, backend: backend, client: &http.Client{Timeout: 5 * time.Minute}, bodies: new([]string), mu: new(sync.Mutex)}
}

// u is the URL of path (with "/api") with teamId added.
func (a *api) u(path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return a.url + "/api" + path + sep + "teamId=" + testTeam
}

// request sends a request with the SDK's headers. body may be nil, []byte or a value to encode.
func (a *api) request(method, path string, body any, hdr map[string]string) *http.Response {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.u(path), r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// newRequest builds a request with the SDK's headers (body "" = none).
func newRequest(a *api, method, path, body string) (*http.Request, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.u(path), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// callAsync sends a request from a goroutine (no t.Fatal there) and returns the status and body.
func (a *api) callAsync(method, path, body string) (int, []byte, error) {
	req, err := newRequest(a, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// call sends a request, checks the status, and decodes the JSON answer into out (if not nil).
// It returns the raw body.
func (a *api) call(method, path string, body any, want int, out any) string {
	a.t.Helper()
	resp := a.request(method, path, body, nil)
	return a.read(resp, method+" "+path, want, out)
}

func (a *api) read(resp *http.Response, what string, want int, out any) string {
	a.t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s: reading the body: %v", what, err)
	}
	a.mu.Lock()
	*a.bodies = append(*a.bodies, string(data))
	a.mu.Unlock()
	if resp.StatusCode != want {
		a.t.Fatalf("%s: status %d, want %d; body %s", what, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s: decoding %s: %v", what, data, err)
		}
	}
	return string(data)
}

// wantError checks an error answer's status and code.
func (a *api) wantError(method, path string, body any, status int, code string) string {
	a.t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	a.call(method, path, body, status, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		a.t.Fatalf("%s %s: error %+v, want code %q with a message", method, path, e.Error, code)
	}
	return e.Error.Message
}

// Wire types as a client sees them (pointers where the field is optional).
type (
	tSession struct {
		ID                  string          `json:"id"`
		Memory              *int            `json:"memory"`
		VCPUs               *int            `json:"vcpus"`
		Region              string          `json:"region"`
		Timeout             *int64          `json:"timeout"`
		Status              string          `json:"status"`
		RequestedAt         int64           `json:"requestedAt"`
		StartedAt           int64           `json:"startedAt"`
		StoppedAt           int64           `json:"stoppedAt"`
		Duration            *int64          `json:"duration"`
		SourceSnapshotID    string          `json:"sourceSnapshotId"`
		SnapshottedAt       int64           `json:"snapshottedAt"`
		CreatedAt           int64           `json:"createdAt"`
		UpdatedAt           int64           `json:"updatedAt"`
		Cwd                 string          `json:"cwd"`
		NetworkPolicy       json.RawMessage `json:"networkPolicy"`
		ActiveCPUDurationMs *int64          `json:"activeCpuDurationMs"`
		NetworkTransfer     *struct {
			Ingress int64 `json:"ingress"`
			Egress  int64 `json:"egress"`
		} `json:"networkTransfer"`
	}
	tSandbox struct {
		Name              string            `json:"name"`
		Persistent        *bool             `json:"persistent"`
		CurrentSessionID  string            `json:"currentSessionId"`
		CurrentSnapshotID string            `json:"currentSnapshotId"`
		Status            string            `json:"status"`
		CreatedAt         int64             `json:"createdAt"`
		UpdatedAt         int64             `json:"updatedAt"`
		ExpiresAt         int64             `json:"expiresAt"`
		Tags              map[string]string `json:"tags"`
	}
	tRoute struct {
		URL       string `json:"url"`
		Subdomain string `json:"subdomain"`
		Port      int    `json:"port"`
	}
	tSandboxAndSession struct {
		Sandbox tSandbox `json:"sandbox"`
		Session tSession `json:"session"`
		Routes  []tRoute `json:"routes"`
		Resumed *bool    `json:"resumed"`
	}
	tCommand struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Args       []string `json:"args"`
		Cwd        string   `json:"cwd"`
		SessionID  string   `json:"sessionId"`
		ExitCode   *int     `json:"exitCode"`
		DurationMs *int64   `json:"durationMs"`
		StartedAt  int64    `json:"startedAt"`
	}
	tSnapshot struct {
		ID              string `json:"id"`
		SourceSessionID string `json:"sourceSessionId"`
		Region          string `json:"region"`
		Status          string `json:"status"`
		SizeBytes       *int64 `json:"sizeBytes"`
		ExpiresAt       int64  `json:"expiresAt"`
		CreatedAt       int64  `json:"createdAt"`
		UpdatedAt       int64  `json:"updatedAt"`
		CreationMethod  string `json:"creationMethod"`
		ParentID        string `json:"parentId"`
	}
)

// create creates a sandbox and checks that the answer is complete and running.
func (a *api) create(body map[string]any) tSandboxAndSession {
	a.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["projectId"]; !ok {
		body["projectId"] = testProject
	}
	var out tSandboxAndSession
	raw := a.call("POST", "/v3/sandboxes", body, 200, &out)
	checkSessionShape(a.t, raw, "session")
	if out.Session.Status != "running" || out.Sandbox.Status != "running" || out.Sandbox.CurrentSessionID != out.Session.ID {
		a.t.Fatalf("create: %s", raw)
	}
	return out
}

// checkSessionShape checks that the session object under key of raw has every field the SDK's
// validator requires (§4.1).
func checkSessionShape(t *testing.T, raw, key string) {
	t.Helper()
	var m map[string]json.RawMessage
	var s map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if err := json.Unmarshal(m[key], &s); err != nil {
		t.Fatalf("%s: %v: %s", key, err, raw)
	}
	for _, f := range []string{"id", "memory", "vcpus", "region", "timeout", "status", "requestedAt", "createdAt", "cwd", "updatedAt"} {
		if _, ok := s[f]; !ok {
			t.Fatalf("%s lacks the required field %q: %s", key, f, raw)
		}
	}
}

// stream is an NDJSON answer being read.
type stream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (a *api) stream(method, path string, body any) *stream {
	a.t.Helper()
	resp := a.request(method, path, body, nil)
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		resp.Body.Close()
		a.t.Fatalf("%s %s: content type %q, want exactly application/x-ndjson", method, path, ct)
	}
	a.t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 32<<20)
	return &stream{resp: resp, sc: sc}
}

// next returns the next line decoded as a map, or nil at the end (err says how it ended).
func (s *stream) next() (map[string]json.RawMessage, error) {
	if !s.sc.Scan() {
		if err := s.sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(s.sc.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("line %q: %v", s.sc.Text(), err)
	}
	return m, nil
}

// runResult is an attached command's stream, read to its end.
type runResult struct {
	first, last    tCommand
	stdout, stderr string
	errLine        string // a {"stream":"error"} line's data
	lines          int
}

// run runs an attached command (wait:true, logs:true) and reads its whole stream.
func (a *api) run(sid string, body map[string]any) runResult {
	a.t.Helper()
	body["wait"] = true
	if _, ok := body["logs"]; !ok {
		body["logs"] = true
	}
	st := a.stream("POST", "/v2/sandboxes/sessions/"+sid+"/cmd", body)
	var res runResult
	for {
		m, err := st.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			a.t.Fatalf("run %v: %v", body, err)
		}
		res.lines++
		if c, ok := m["command"]; ok {
			var cmd tCommand
			if err := json.Unmarshal(c, &cmd); err != nil {
				a.t.Fatal(err)
			}
			if res.lines == 1 {
				res.first = cmd
			} else {
				res.last = cmd
			}
			continue
		}
		var stream, data string
		_ = json.Unmarshal(m["stream"], &stream)
		switch stream {
		case "stdout", "stderr":
			if err := json.Unmarshal(m["data"], &data); err != nil {
				a.t.Fatalf("log line data: %v", err)
			}
			if stream == "stdout" {
				res.stdout += data
			} else {
				res.stderr += data
			}
		case "error":
			res.errLine = string(m["data"])
		default:
			a.t.Fatalf("unexpected line %v", m)
		}
	}
	if res.first.ID == "" || res.first.ExitCode != nil {
		a.t.Fatalf("run %v: first line is not a running command: %+v", body, res.first)
	}
	return res
}

// sh runs a shell command attached and returns its result; it fails the test on a non-zero exit.
func (a *api) sh(sid, script string) runResult {
	a.t.Helper()
	r := a.run(sid, map[string]any{"command": "sh", "args": []string{"-c", script}})
	if r.last.ExitCode == nil || *r.last.ExitCode != 0 {
		a.t.Fatalf("sh %q: %+v stdout %q stderr %q err %s", script, r.last, r.stdout, r.stderr, r.errLine)
	}
	return r
}

// tarGz builds a gzip-compressed tar of regular files (name -> content), with modes.
func tarGz(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: mode, Size: int64(len(f.content)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarFile struct {
	name    string
	content []byte
	mode    int64
}

// yieldBriefly lets other goroutines run while polling a counter that has no signal of its own.
func yieldBriefly() { time.Sleep(5 * time.Millisecond) }
