package sandboxtest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Ports the PortRelay scenario uses inside its sandbox.
const (
	httpPort   = 8123 // python3 -m http.server, bound to 127.0.0.1
	closedPort = 8124 // nothing listens there
	echoPort   = 8125 // echoServer, bound to 0.0.0.0
)

// afterDial explains failures of a connection that worked when DialPort returned.
const afterDial = " (if this is an i/o timeout or a closed connection: the context given to DialPort ended right after it returned; like net.Dialer's, that context must bound the dialing only, never the connection)"

// echoServer is a TCP echo server: it sends back what it receives, and when the client has
// half-closed its side it sends "<eof seen>" and closes. One thread per connection.
const echoServer = `import socket, sys, threading

def serve(c):
    with c:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.sendall(b"<eof seen>")

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

// testPortRelay: DialPort reaches servers inside the sandbox: a real HTTP server answers GETs
// over it, on several connections at once, with bodies intact; bytes pass through unchanged both
// ways, and a half-close travels in and the server's answer after it travels out; a port with
// nothing listening fails with ErrRefused naming the port, also once its server has exited; the
// connection stays usable after the context given to DialPort ends, and ends when the sandbox
// does. The sandbox must offer python3.
func (s *suite) testPortRelay(t *testing.T) {
	p := s.provider(t)
	if p.Capabilities().PortURLs {
		s.testPortURLs(t, p)
		return
	}
	sb := startLive(t, p, sandbox.StartOptions{})
	if _, err := sb.PortURL(opCtx(t), httpPort); !errors.Is(err, sandbox.ErrUnsupported) {
		t.Errorf("PortURL on a provider without Capabilities.PortURLs: %v, want ErrUnsupported", err)
	}
	if r := run(t, sb, "command -v python3"); r.ExitCode != 0 {
		t.Fatalf("python3 is not available in the sandbox (`command -v python3`: %v). This scenario serves HTTP with `python3 -m http.server`: providers must offer python3 to pass the conformance suite", r)
	}
	index := "<!doctype html><title>sandboxtest</title>served from sandbox " + sb.ID() + "\n"
	big := randomBytes(2<<20, 5)
	write(t, sb, file("index.html", index), sandbox.File{Path: "big.bin", Content: big}, file("echo.py", echoServer))
	unbuffered := map[string]string{"PYTHONUNBUFFERED": "1"}

	wantRefused(t, sb, httpPort) // before the server starts
	srv := startProcess(t, sb, sandbox.ExecRequest{Command: "python3", Args: []string{"-m", "http.server", strconv.Itoa(httpPort), "--bind", "127.0.0.1"}, Env: unbuffered})
	dialWhenListening(t, sb, httpPort, srv, 15*time.Second).Close()
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return sb.DialPort(ctx, httpPort)
			},
			DisableKeepAlives: true,
		},
	}
	url := fmt.Sprintf("http://sandbox.invalid:%d/", httpPort)

	t.Run("HTTP GET", func(t *testing.T) {
		if got := httpGet(t, client, url+"index.html"); got != index {
			t.Errorf("GET /index.html = %q, want %q", clip(got), index)
		}
		if got := httpGet(t, client, url+"big.bin"); got != string(big) {
			t.Errorf("GET /big.bin: %d bytes, want the %d bytes of the file (equal: %v)", len(got), len(big), got == string(big))
		}
		waitOutput(t, sb, srv, `"GET /index.html HTTP/1.1" 200`, 30*time.Second)
	})

	t.Run("two connections at once", func(t *testing.T) {
		a := dial(t, sb, httpPort)
		closeAfter(t, a, 60*time.Second)
		if _, err := io.WriteString(a, "GET /index.html HTTP/1.0\r\nHost: sandbox\r\n"); err != nil {
			t.Fatalf("write to the first connection: %v%s", err, afterDial)
		}
		// The first request is unfinished; a second connection is served meanwhile.
		if got := httpGet(t, client, url+"index.html"); got != index {
			t.Errorf("GET /index.html on a second connection = %q, want %q", clip(got), index)
		}
		if _, err := io.WriteString(a, "\r\n"); err != nil {
			t.Fatalf("write to the first connection: %v%s", err, afterDial)
		}
		resp, err := http.ReadResponse(bufio.NewReader(a), nil)
		if err != nil {
			t.Fatalf("reading the response on the first connection: %v%s", err, afterDial)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != index {
			t.Errorf("first connection: status %d, body %q, err %v; want 200 and %q", resp.StatusCode, clip(string(body)), err, index)
		}
	})

	t.Run("bytes pass through both ways, with half-close", func(t *testing.T) {
		echo := startProcess(t, sb, sandbox.ExecRequest{Command: "python3", Args: []string{"echo.py", strconv.Itoa(echoPort)}, Env: unbuffered})
		c1 := dialWhenListening(t, sb, echoPort, echo, 15*time.Second)
		c2 := dial(t, sb, echoPort)
		closeAfter(t, c1, 60*time.Second)
		closeAfter(t, c2, 60*time.Second)

		for i, msg := range [][]byte{allBytes(), []byte("hello"), {0}, []byte("\r\n\x00\xff\x1b[0m"), randomBytes(100000, 6), randomBytes(4<<20, 7)} {
			for _, c := range []net.Conn{c1, c2} { // interleaved on the two connections
				got, err := echoRoundTrip(c, msg)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("message %d (%d bytes) through the echo server: err %v, came back equal: %v%s", i, len(msg), err, bytes.Equal(got, msg), afterDial)
				}
			}
		}

		cw, ok := c1.(interface{ CloseWrite() error })
		if !ok {
			t.Fatalf("DialPort returned a %T, which has no CloseWrite method: a relay cannot pass on a half-close (e.g. an HTTP client that shuts down its sending side and waits for the response)", c1)
		}
		if _, err := io.WriteString(c1, "last words"); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := cw.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		rest, err := io.ReadAll(c1)
		if err != nil || string(rest) != "last words<eof seen>" {
			t.Errorf("after CloseWrite, read %q (err %v); want \"last words<eof seen>\" then EOF: the server must see the half-close and its answer must still come back", rest, err)
		}
		// The other connection is unaffected.
		if got, err := echoRoundTrip(c2, []byte("still here")); err != nil || string(got) != "still here" {
			t.Errorf("the second connection after the first was closed: %q, %v", got, err)
		}
	})

	t.Run("connections outlive DialPort's context", func(t *testing.T) {
		// Each connection is dialed with a context that ends as soon as DialPort returns (see
		// dialOnce); some time later, every one must still carry bytes both ways. Many
		// connections, in batches, so that a race between the two is likely to show.
		const batches, perBatch = 3, 64
		failed := 0
		var first error
		for b := range batches {
			conns := make([]net.Conn, perBatch)
			for i := range conns {
				conns[i] = dial(t, sb, echoPort)
				closeAfter(t, conns[i], 60*time.Second)
			}
			time.Sleep(100 * time.Millisecond)
			for i, c := range conns {
				msg := []byte(fmt.Sprintf("batch %d connection %d", b, i))
				if got, err := echoRoundTrip(c, msg); err != nil || !bytes.Equal(got, msg) {
					failed++
					first = cmp.Or(first, fmt.Errorf("batch %d connection %d: got %q, err %v", b, i, got, err))
				}
				c.Close()
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d connections failed once the context given to DialPort had ended; first: %v%s", failed, batches*perBatch, first, afterDial)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		wantRefused(t, sb, closedPort)
		for _, port := range []int{0, -1, 65536} {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			c, err := sb.DialPort(ctx, port)
			cancel()
			if err == nil {
				c.Close()
				t.Errorf("DialPort(%d) connected; want an error for a port that cannot exist", port)
			}
		}
	})

	t.Run("the port closes with its server", func(t *testing.T) {
		signal(t, sb, srv, syscall.SIGTERM)
		waitExit(t, sb, srv, 30*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := dialOnce(t.Context(), sb, httpPort)
			if err != nil {
				wantRefused(t, sb, httpPort)
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("DialPort(%d) still connects 10s after the server listening there exited", httpPort)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("connections end with the sandbox", func(t *testing.T) {
		c := dial(t, sb, echoPort) // the echo server still runs
		if got, err := echoRoundTrip(c, []byte("ping")); err != nil || string(got) != "ping" {
			t.Fatalf("echo: %q, %v%s", got, err, afterDial)
		}
		expired := closeAfter(t, c, 15*time.Second)
		if err := sb.Stop(opCtx(t)); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		io.Copy(io.Discard, c) // until EOF, an error, or closeAfter
		if expired() {
			t.Errorf("a connection made by DialPort was still open 15s after its sandbox was stopped")
		}
	})
}

// dialOnce calls DialPort with a context that ends as soon as DialPort returns: like
// net.Dialer.DialContext, the context bounds the dialing only, not the connection.
func dialOnce(ctx context.Context, sb sandbox.Sandbox, port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := sb.DialPort(ctx, port)
	if err == nil && c == nil {
		err = fmt.Errorf("DialPort(%d) returned a nil connection and no error", port)
	}
	return c, err
}

// dial connects to port inside sb and closes the connection when the test ends.
func dial(t *testing.T, sb sandbox.Sandbox, port int) net.Conn {
	t.Helper()
	c, err := dialOnce(t.Context(), sb, port)
	if err != nil {
		t.Fatalf("DialPort(%d): %v", port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialWhenListening polls DialPort until something listens on port (a server the background
// process srv is starting) and returns the connection, closed when the test ends. It fails the
// test when srv exits first or within passes.
func dialWhenListening(t *testing.T, sb sandbox.Sandbox, port int, srv string, within time.Duration) net.Conn {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := dialOnce(t.Context(), sb, port)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		st, perr := callProcess(t.Context(), sb, srv, 0, 0)
		if perr != nil {
			t.Fatalf("DialPort(%d): %v; Process(%q) of the server: %v", port, err, srv, perr)
		}
		if !st.Running {
			t.Fatalf("the server process %s before it listened on port %d; its output: %q", describe(st), port, clip(string(st.Output)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("DialPort(%d) did not connect within %v of starting the server: %v (want ErrRefused until it listens); server output: %q", port, within, err, clip(string(st.Output)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantRefused checks that DialPort(port) fails promptly with ErrRefused, in a message naming the
// port.
func wantRefused(t *testing.T, sb sandbox.Sandbox, port int) {
	t.Helper()
	begin := time.Now()
	c, err := dialOnce(t.Context(), sb, port)
	took := time.Since(begin)
	if err == nil {
		c.Close()
		t.Errorf("DialPort(%d) with nothing listening on it connected; want an error wrapping ErrRefused", port)
		return
	}
	wantErr(t, fmt.Sprintf("DialPort(%d) with nothing listening", port), err, sandbox.ErrRefused)
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("DialPort(%d): the message %q does not name the port", port, err)
	}
	if took > 10*time.Second {
		t.Errorf("DialPort(%d) with nothing listening took %v; want ErrRefused at once", port, took)
	}
}

// httpGet GETs url with client and returns the body of a 200 response.
func httpGet(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s through DialPort: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %q", url, resp.Status, clip(string(body)))
	}
	return string(body)
}

// echoRoundTrip writes msg to c while reading as many bytes back.
func echoRoundTrip(c net.Conn, msg []byte) ([]byte, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		werr <- err
	}()
	got := make([]byte, len(msg))
	n, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		return got[:n], fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return got[:n], fmt.Errorf("read after %d of %d bytes: %w", n, len(msg), rerr)
	}
	return got, nil
}

// closeAfter closes c when d has passed, so that a relay that hangs fails the test instead of
// blocking it (whatever deadlines the connection supports); expired reports whether it did.
func closeAfter(t *testing.T, c net.Conn, d time.Duration) (expired func() bool) {
	var fired atomic.Bool
	timer := time.AfterFunc(d, func() {
		fired.Store(true)
		c.Close()
	})
	t.Cleanup(func() {
		if timer.Stop() {
			return
		}
		if fired.Load() && !t.Failed() {
			t.Errorf("a connection through DialPort did not finish within %v and was closed", d)
		}
	})
	return fired.Load
}

// testPortURLs is PortRelay for providers that serve exposed ports at their own URLs
// (Capabilities.PortURLs): a real HTTP server inside answers GETs at PortURL, on several
// connections at once, with bodies intact; only ports given at Start get a URL; DialPort is
// unsupported; the URL stops serving when the sandbox ends.
func (s *suite) testPortURLs(t *testing.T, p sandbox.Provider) {
	sb := startLive(t, p, sandbox.StartOptions{Ports: []int{httpPort, echoPort}})
	if r := run(t, sb, "command -v python3"); r.ExitCode != 0 {
		t.Fatalf("python3 is not available in the sandbox (`command -v python3`: %v). This scenario serves HTTP with `python3 -m http.server`: providers must offer python3 to pass the conformance suite", r)
	}
	index := "<!doctype html><title>sandboxtest</title>served from sandbox " + sb.ID() + "\n"
	big := randomBytes(2<<20, 5)
	write(t, sb, file("index.html", index), sandbox.File{Path: "big.bin", Content: big})

	if c, err := sb.DialPort(opCtx(t), httpPort); !errors.Is(err, sandbox.ErrUnsupported) {
		if c != nil {
			c.Close()
		}
		t.Errorf("DialPort on a provider with Capabilities.PortURLs: %v, want ErrUnsupported", err)
	}
	if u, err := sb.PortURL(opCtx(t), closedPort); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("PortURL(%d), a port not given at Start: %q, %v; want ErrInvalid", closedPort, u, err)
	}
	url, err := sb.PortURL(opCtx(t), httpPort)
	if err != nil || !strings.HasPrefix(url, "http") {
		t.Fatalf("PortURL(%d) = %q, %v; want an http(s) URL", httpPort, url, err)
	}
	if other, err := sb.PortURL(opCtx(t), echoPort); err != nil || other == url {
		t.Errorf("PortURL(%d) = %q, %v; want a URL of its own (PortURL(%d) = %q)", echoPort, other, err, httpPort, url)
	}
	url = strings.TrimSuffix(url, "/") + "/"

	srv := startProcess(t, sb, sandbox.ExecRequest{Command: "python3", Args: []string{"-m", "http.server", strconv.Itoa(httpPort), "--bind", "0.0.0.0"}, Env: map[string]string{"PYTHONUNBUFFERED": "1"}})
	waitOutput(t, sb, srv, "Serving HTTP", 15*time.Second)
	client := &http.Client{Timeout: 30 * time.Second}

	if got := httpGet(t, client, url+"index.html"); got != index {
		t.Errorf("GET %sindex.html = %q, want %q", url, clip(got), index)
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url + "big.bin")
			if err != nil {
				bad.Add(1)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(body, big) {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of 4 concurrent GETs of big.bin (%d bytes) at %s failed or came back different", n, len(big), url)
	}
	waitOutput(t, sb, srv, `"GET /index.html HTTP/1.1" 200`, 30*time.Second)

	if err := sb.Stop(opCtx(t)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url + "index.html")
		if err != nil {
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still serves the sandbox's files 10s after Stop", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
