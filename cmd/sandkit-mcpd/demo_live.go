package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// liveStory is the demo's second half: a live session with a web server, its preview URL
// fetched over HTTP, the lease that keeps durable commands out meanwhile, and the commit.
func (d *demoRun) liveStory(ctx context.Context) error {
	d.say("\n--- live session: a dev server and its preview URL ---")
	if _, err := d.call(ctx, "create a workspace that may publish port 8000", "create_workspace",
		map[string]any{"name": "demo-site", "exposed_ports": []int{8000}}); err != nil {
		return err
	}
	s, err := d.call(ctx, "open a live session on it", "open_session", map[string]any{"workspace": "demo-site"})
	if err != nil {
		return err
	}
	if d.failed {
		d.say("   (skipping the live part: %s)", firstLine(d.failText))
		return nil
	}
	sid, _ := s["session_id"].(string)
	steps := []struct {
		title, tool string
		args        map[string]any
	}{
		{"write a page into the session (no commit yet)", "write_files", map[string]any{"session_id": sid,
			"files": []map[string]any{{"path": "index.html", "content": "<h1>hello from a sandkit session</h1>\n"}}}},
		// 0.0.0.0: a Vercel sandbox's port is reached from outside the VM; locally the sandbox's
		// network is its loopback anyway.
		{"start a web server in the background", "session_exec", map[string]any{"session_id": sid, "command": "python3",
			"args": []string{"-m", "http.server", "8000", "--bind", "0.0.0.0"}, "background": true}},
	}
	for _, st := range steps {
		if _, err := d.call(ctx, st.title, st.tool, st.args); err != nil {
			return err
		}
		if d.failed {
			return fmt.Errorf("%s: %s", st.tool, d.failText)
		}
	}
	// Asked right away: session_url waits until the server listens.
	out, err := d.call(ctx, "ask for the preview URL of port 8000 at once (session_url waits until the server listens)", "session_url",
		map[string]any{"session_id": sid, "port": 8000})
	if err != nil {
		return err
	}
	if d.failed {
		return fmt.Errorf("session_url: %s", d.failText)
	}
	// listening is absent when the provider serves the port itself (Vercel) and cannot tell:
	// then the page is asked for until the server answers.
	if out["listening"] == false {
		return fmt.Errorf("session_url: the server did not listen: %v", out["note"])
	}
	url, _ := out["url"].(string)
	d.n++
	d.say("\n%d. fetch the page through the preview URL (what a browser would do)\n   GET %s", d.n, url)
	code, body, err := fetchPreview(ctx, url)
	for deadline := time.Now().Add(30 * time.Second); out["listening"] == nil && (err != nil || code != http.StatusOK) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		code, body, err = fetchPreview(ctx, url)
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	d.say("   %d %s", code, strings.TrimSpace(body))
	if _, err := d.call(ctx, "while the session is open, durable commands are refused, saying who holds the lease", "run_command",
		map[string]any{"workspace": "demo-site", "command": "ls"}); err != nil {
		return err
	}
	for _, st := range []struct {
		title, tool string
		args        map[string]any
	}{
		{"commit the session: one commit with everything it changed", "commit_session", map[string]any{"session_id": sid, "message": "the landing page"}},
		{"the page is now in the workspace's durable history", "read_file", map[string]any{"workspace": "demo-site", "path": "index.html"}},
	} {
		if _, err := d.call(ctx, st.title, st.tool, st.args); err != nil {
			return err
		}
		if d.failed {
			return fmt.Errorf("%s: %s", st.tool, d.failText)
		}
	}
	return nil
}

// fetchPreview GETs a preview URL (never through the host's HTTP_PROXY).
func fetchPreview(ctx context.Context, url string) (int, string, error) {
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
