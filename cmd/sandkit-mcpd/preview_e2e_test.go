package main_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The preview transport as its users meet it: a page with an absolute asset path, fetched through
// the URL session_url hands out by the HTTP clients agents and their tools use; refused to other
// users of the machine; never a trusted origin for the HTTP door; gone when the session ends.

const (
	previewPage  = `<html><script src="/app.js"></script><h1>preview page</h1></html>` + "\n"
	previewAsset = "console.log('preview asset');\n"
)

// previewFetchers are the HTTP clients a preview URL must work with. Each gets the page's URL and
// the asset's (resolved against it, as a browser resolves "/app.js") and prints both bodies.
func previewFetchers(t *testing.T) map[string]func(ctx context.Context, page, asset string) *exec.Cmd {
	node := func(ctx context.Context, page, asset string) *exec.Cmd {
		return exec.CommandContext(ctx, filepath.Join(nodeTools(t), "node_modules/.bin/node"), "-e", `(async () => {
			for (const u of process.argv.slice(1)) {
				const r = await fetch(u);
				if (!r.ok) throw new Error(u + ": " + r.status);
				process.stdout.write(await r.text());
			}
		})().catch(e => { console.error(e); process.exit(1); });`, page, asset)
	}
	return map[string]func(ctx context.Context, page, asset string) *exec.Cmd{
		"curl": func(ctx context.Context, page, asset string) *exec.Cmd {
			return exec.CommandContext(ctx, tool(t, "curl"), "-fsS", "--noproxy", "*", page, asset)
		},
		"wget": func(ctx context.Context, page, asset string) *exec.Cmd {
			return exec.CommandContext(ctx, tool(t, "wget"), "-q", "--no-proxy", "-O", "-", page, asset)
		},
		"python urllib": func(ctx context.Context, page, asset string) *exec.Cmd {
			return exec.CommandContext(ctx, tool(t, "python3"), "-c", `import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for u in sys.argv[1:]:
    sys.stdout.write(opener.open(u, timeout=30).read().decode())`, page, asset)
		},
		"node fetch": node,
	}
}

// tool finds a program the test needs: missing, it fails under CI=true (scripts/setup.sh installs
// it) and skips elsewhere.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing and CI=true (scripts/setup.sh installs it): %v", name, err)
		}
		t.Skipf("%s is missing: %v", name, err)
	}
	return p
}

func TestPreviewTransport(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := startServe(t, dir, nil, "--http", "127.0.0.1:0")
	c := connectHTTP(t, s.info.HTTP, "agent", "")
	c.ok("create_workspace", map[string]any{"name": "web", "exposed_ports": []any{8000}})
	sid := openSession(t, c, "web")
	c.ok("write_files", map[string]any{"session_id": sid, "files": []any{
		map[string]any{"path": "index.html", "content": previewPage},
		map[string]any{"path": "app.js", "content": previewAsset},
	}})
	c.needsLive("session_exec", map[string]any{"session_id": sid, "command": "python3",
		"args": []any{"-m", "http.server", "8000", "--bind", "127.0.0.1"}, "background": true})
	page := sessionURL(t, c, sid)
	u, err := url.Parse(page)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Path != "/" {
		t.Fatalf("session_url %q: want http://127.0.0.1:PORT/", page)
	}
	asset := u.ResolveReference(&url.URL{Path: "/app.js"}).String()
	if again := sessionURL(t, c, sid); again != page {
		t.Fatalf("session_url asked again: %s, then %s", page, again)
	}
	want := previewPage + previewAsset

	// Go's net/http with the system resolver, nothing configured.
	var got bytes.Buffer
	for _, u := range []string{page, asset} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("Go net/http GET %s: %v", u, err)
		}
		_, _ = io.Copy(&got, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("Go net/http GET %s: %d", u, resp.StatusCode)
		}
	}
	if got.String() != want {
		t.Fatalf("Go net/http got %q, want %q", got.String(), want)
	}
	for name, cmd := range previewFetchers(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := cmd(ctx, page, asset).CombinedOutput()
			if err != nil || string(out) != want {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
		})
	}

	// Another user of the machine is refused, and the daemon says so in its log.
	t.Run("another uid", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to run curl as another uid")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, tool(t, "curl"), "-sS", "--noproxy", "*", "--max-time", "20", page)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "preview page") {
			t.Fatalf("curl as uid 65534 got the page: %v\n%s", err, out)
		}
		var ee *exec.ExitError
		// The daemon resets the connection as soon as it has accepted it: curl reports an empty
		// reply (52), a reset (56), or, when the reset comes before it sees the handshake end, a
		// failed connect (7).
		if !errors.As(err, &ee) || !slices.Contains([]int{7, 52, 56}, ee.ExitCode()) {
			t.Fatalf("curl as uid 65534: %v, want an empty reply (52), a reset (56) or a refused connect (7)\n%s", err, out)
		}
		waitFor(t, 5*time.Second, "the daemon to log the refusal", func() bool {
			return strings.Contains(s.stderr.String(), "refused a connection from another user")
		})
	})

	// A preview page's origin cannot drive the HTTP door; other loopback origins still can.
	origin := "http://" + u.Host
	door := func(origin string) int {
		return statusFrom(t, "http://"+s.info.HTTP+"/mcp", origin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"page","version":"1"}}}`)
	}
	for _, o := range []string{origin, "http://localhost:" + u.Port()} {
		if code := door(o); code != http.StatusForbidden {
			t.Fatalf("POST /mcp with Origin %s (the preview's): %d, want 403", o, code)
		}
	}
	// Nor can a page on any other ephemeral port (another daemon's preview, or one from before a
	// restart); the ports dev tools use still can.
	if code := door("http://127.0.0.1:40000"); code != http.StatusForbidden {
		t.Fatalf("POST /mcp with Origin http://127.0.0.1:40000 (an ephemeral port): %d, want 403", code)
	}
	if code := door("http://127.0.0.1:5173"); code != http.StatusOK {
		t.Fatalf("POST /mcp with Origin http://127.0.0.1:5173: %d, want 200", code)
	}

	// The session ends: the URL stops working for every client, and its origin stays refused (a
	// page it served may still be open in a browser).
	c.ok("discard_session", map[string]any{"session_id": sid})
	previewGone(t, page)
	out, err := exec.Command(tool(t, "curl"), "-sS", "--noproxy", "*", page).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("curl after the session ended: %v, want exit 7 (could not connect)\n%s", err, out)
	}
	if code := door(origin); code != http.StatusForbidden {
		t.Fatalf("POST /mcp with Origin %s after its session ended: %d, want 403", origin, code)
	}
}
