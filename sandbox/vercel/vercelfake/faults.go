package vercelfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fault is an injected misbehaviour of the API, for testing a client's retries and stream
// handling. It applies to the next Times requests (0 means 1) whose method is Method ("" = any)
// and whose path, without "/api" and without the query, matches the regular expression Path.
// Faults are consumed in the order they were injected; a request takes at most one.
type Fault struct {
	Method string
	Path   string
	// Status is the injected answer's HTTP status (0: no injected status). The body is Body, or
	// {error:{code,message}} when Body is empty. RetryAfter, when positive, is sent as the
	// Retry-After header in whole seconds (rounded up).
	Status     int
	RetryAfter time.Duration
	Body       string
	// Cut aborts the connection. On a streaming answer (POST cmd with wait:true, GET cmd logs,
	// GET cmd ?wait=true) the connection is aborted after CutAfterLines NDJSON lines have been
	// sent (0: right after the response headers, before any body); the operation itself goes
	// on (a command keeps running). On any other answer the connection is closed without a
	// response: before the operation, or after it when AfterHandling is set.
	CutAfterLines int
	Cut           bool
	// AfterHandling performs the real operation first, discards its answer, and only then
	// answers Status (or cuts the connection): "a 5xx after the command really started". On a
	// streaming endpoint the operation's stream is consumed to its end first.
	AfterHandling bool
	// Times is how many matching requests the fault applies to (0 = 1).
	Times int
}

type faultState struct {
	Fault
	re   *regexp.Regexp
	left int
}

// Inject adds a fault. A Path that is not a valid regular expression panics (it is a bug in
// the test).
func (s *Server) Inject(f Fault) {
	fs := &faultState{Fault: f, re: regexp.MustCompile(f.Path), left: max(f.Times, 1)}
	s.traffic.mu.Lock()
	s.traffic.faults = append(s.traffic.faults, fs)
	s.traffic.mu.Unlock()
}

// takeFaultLocked consumes and returns the first fault matching the request, or nil.
func (l *requestLog) takeFaultLocked(method, path string) *faultState {
	for i, f := range l.faults {
		if (f.Method == "" || strings.EqualFold(f.Method, method)) && f.re.MatchString(path) {
			f.left--
			if f.left <= 0 {
				l.faults = append(l.faults[:i:i], l.faults[i+1:]...)
			}
			return f
		}
	}
	return nil
}

// isStreaming says whether r asks for a streaming (NDJSON or held) answer. It may read and
// restore r's body.
func isStreaming(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/logs") && strings.Contains(p, "/cmd/"):
		return true
	case r.Method == http.MethodGet && strings.Contains(p, "/cmd/") && r.URL.Query().Get("wait") == "true":
		return true
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/cmd"):
		data, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
		r.Body = io.NopCloser(bytes.NewReader(data))
		if err != nil {
			return false
		}
		var probe struct {
			Wait bool `json:"wait"`
		}
		_ = json.Unmarshal(data, &probe)
		return probe.Wait
	}
	return false
}

// answerFault answers a fault before (or instead of) the operation.
func (s *Server) answerFault(w http.ResponseWriter, r *http.Request, f *faultState) {
	if f.Status == 0 {
		cutConnection(w)
		return
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	if f.Body != "" {
		if json.Valid([]byte(f.Body)) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	code := codeInternal
	msg := "Injected failure."
	switch {
	case f.Status == http.StatusTooManyRequests:
		code, msg = codeRateLimited, "Too many requests: the concurrency limit has been exceeded."
	case f.Status >= 500:
		code, msg = codeInternal, "An unexpected error occurred (injected)."
	case f.Status == http.StatusForbidden:
		code = codeForbidden
	case f.Status == http.StatusNotFound:
		code = codeNotFound
	case f.Status == http.StatusBadRequest:
		code = codeBadRequest
	}
	writeError(w, newError(f.Status, code, "%s", msg))
}

// serveWithFault runs the real handler under a fault that acts after or during it.
func (s *Server) serveWithFault(w http.ResponseWriter, r *http.Request, h http.Handler, f *faultState) {
	if f.AfterHandling {
		h.ServeHTTP(&discardWriter{header: http.Header{}}, r)
		s.answerFault(w, r, f)
		return
	}
	// A streaming answer cut after CutAfterLines lines.
	cw := &cutWriter{ResponseWriter: w, after: f.CutAfterLines}
	h.ServeHTTP(cw, r)
	if cw.cut && !cw.hijacked {
		panic(http.ErrAbortHandler)
	}
}

// cutConnection closes the client's connection without an answer (or, once headers or lines
// went out, in the middle of the answer).
func cutConnection(w http.ResponseWriter) bool {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	if buf != nil {
		_ = buf.Flush()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, like a proxy dropping the stream
	}
	_ = conn.Close()
	return true
}

var errCut = errors.New("vercelfake: connection cut by an injected fault")

// cutWriter passes an answer through and cuts the connection once `after` NDJSON lines have
// been sent (after == 0: right after the headers).
type cutWriter struct {
	http.ResponseWriter
	after    int
	lines    int
	cut      bool
	hijacked bool
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *cutWriter) doCut() {
	_ = http.NewResponseController(c.ResponseWriter).Flush()
	c.cut = true
	c.hijacked = cutConnection(c.ResponseWriter)
}

func (c *cutWriter) WriteHeader(code int) {
	if c.cut {
		return
	}
	c.ResponseWriter.WriteHeader(code)
	if c.after <= 0 {
		c.doCut()
	}
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.cut {
		return 0, errCut
	}
	if c.after <= 0 {
		c.WriteHeader(http.StatusOK)
		return 0, errCut
	}
	n, err := c.ResponseWriter.Write(p)
	c.lines += bytes.Count(p[:n], []byte("\n"))
	if c.lines >= c.after {
		c.doCut()
	}
	return n, err
}

func (c *cutWriter) Flush() {
	if !c.cut {
		_ = http.NewResponseController(c.ResponseWriter).Flush()
	}
}

// discardWriter swallows an answer (AfterHandling).
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      {}
