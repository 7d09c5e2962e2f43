package main_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestResourcesE2E reads resources and asks for completions over the stdio door with the real
// daemon and bubblewrap: text and binary files written by a run, a file at an older commit, a
// run, bad URIs, and completions of workspace names, commit ids and paths.
func TestResourcesE2E(t *testing.T) {
	t.Parallel()
	c := connect(t, dataDir(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.ok("create_workspace", map[string]any{"name": "resws"})
	first := c.ok("run_command", map[string]any{"workspace": "resws", "command": "printf 'v1\\n' > notes.md"})
	run := c.ok("run_command", map[string]any{"workspace": "resws", "command": "printf 'v2 ünï\\n' > notes.md && head -c 300 /dev/urandom > data.bin && echo ran"})
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }

	read := func(uri string) *mcp.ResourceContents {
		t.Helper()
		res, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil || len(res.Contents) != 1 {
			t.Fatalf("read %s: %v %+v", uri, err, res)
		}
		return res.Contents[0]
	}
	lr, err := c.cs.ListResources(ctx, nil)
	if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "sandkit://workspaces" {
		t.Fatalf("resources/list: %v %+v", err, lr)
	}
	tl, err := c.cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tl.ResourceTemplates) != 4 {
		t.Fatalf("resources/templates/list: %v %+v", err, tl)
	}
	if txt := read("sandkit://workspaces").Text; !strings.Contains(txt, `"name":"resws"`) || !strings.Contains(txt, str(run, "commit_id")) {
		t.Errorf("workspaces: %s", txt)
	}
	if txt := read("sandkit://workspaces/resws").Text; !strings.Contains(txt, str(first, "commit_id")) || !strings.Contains(txt, `"history"`) {
		t.Errorf("workspace: %s", txt)
	}
	if got := read("sandkit://workspaces/resws/files/notes.md"); got.Text != "v2 ünï\n" || got.Blob != nil {
		t.Errorf("text file: %+v", got)
	}
	// The binary file's bytes, as read_file gives them (base64 there too).
	bin := read("sandkit://workspaces/resws/files/data.bin")
	rf := c.ok("read_file", map[string]any{"workspace": "resws", "path": "data.bin", "encoding": "base64"})
	if len(bin.Blob) != 300 || bin.Text != "" || bin.MIMEType != "application/octet-stream" || base64.StdEncoding.EncodeToString(bin.Blob) != str(rf, "content") {
		t.Errorf("binary file: %d bytes, mime %q, read_file %v", len(bin.Blob), bin.MIMEType, rf["content"] != nil)
	}
	if got := read("sandkit://workspaces/resws/commits/" + str(first, "commit_id") + "/files/notes.md"); got.Text != "v1\n" {
		t.Errorf("at the first commit: %+v", got)
	}
	if txt := read("sandkit://runs/" + str(run, "run_id")).Text; !strings.Contains(txt, `"stdout":"ran\n"`) {
		t.Errorf("run: %s", txt)
	}
	for uri, want := range map[string]string{
		"sandkit://workspaces/nope":                         "list_workspaces",
		"sandkit://workspaces/resws/files/../../etc/passwd": "leaves /workspace",
		"sandkit://runs/run_nothere":                        "list_runs",
	} {
		_, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != -32002 || !strings.Contains(rpcErr.Message, want) {
			t.Errorf("read %s: %v, want -32002 saying %q", uri, err, want)
		}
	}

	complete := func(uri, arg, value string, args map[string]string) []string {
		t.Helper()
		res, err := c.cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/resource", URI: uri},
			Argument: mcp.CompleteParamsArgument{Name: arg, Value: value}, Context: &mcp.CompleteContext{Arguments: args}})
		if err != nil {
			t.Fatalf("complete %s: %v", arg, err)
		}
		return res.Completion.Values
	}
	if got := complete("sandkit://workspaces/{workspace}", "workspace", "res", nil); !slices.Equal(got, []string{"resws"}) {
		t.Errorf("workspace completion: %v", got)
	}
	if got := complete("sandkit://workspaces/{workspace}/commits/{commit}/files/{+path}", "commit", "", map[string]string{"workspace": "resws"}); len(got) != 3 || got[0] != str(run, "commit_id") {
		t.Errorf("commit completion: %v", got)
	}
	if got := complete("sandkit://workspaces/{workspace}/files/{+path}", "path", "", map[string]string{"workspace": "resws"}); !slices.Equal(got, []string{"data.bin", "notes.md"}) {
		t.Errorf("path completion: %v", got)
	}
}

// TestResourceSubscriptionE2E: a connection subscribed to a workspace through the stdio door
// hears notifications/resources/updated when a run on another connection commits, and no more
// after unsubscribing.
func TestResourceSubscriptionE2E(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	worker := connect(t, dir)
	worker.ok("create_workspace", map[string]any{"name": "watched"})

	updated := make(chan string, 10)
	cl := mcp.NewClient(&mcp.Implementation{Name: "watcher", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := cl.Connect(ctx, &mcp.CommandTransport{Command: doorCommand(t, dir)}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	uri := "sandkit://workspaces/watched"
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	worker.ok("run_command", map[string]any{"workspace": "watched", "command": "echo x > x"})
	select {
	case got := <-updated:
		if got != uri {
			t.Errorf("updated %q, want %q", got, uri)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notifications/resources/updated after a run committed")
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	worker.ok("run_command", map[string]any{"workspace": "watched", "command": "echo y > y"})
	select {
	case got := <-updated:
		t.Errorf("an update after unsubscribe: %s", got)
	case <-time.After(500 * time.Millisecond):
	}
}
