package vercelfake

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFiles: fs/write extracts a gzip tar relative to x-cwd (parent directories created, modes
// honoured, /vercel/sandbox mapped onto the backend's workspace, paths outside it written too);
// fs/read returns the raw bytes as application/octet-stream (binary-safe) and 404 for a missing
// file; fs/mkdir is non-recursive unless asked.
func TestFiles(t *testing.T) {
	a := newAPI(t, Options{})
	sid := a.create(map[string]any{"persistent": false}).Session.ID
	fs := "/v2/sandboxes/sessions/" + sid + "/fs/"
	binary := make([]byte, 300_000)
	for i := range binary {
		binary[i] = byte(i*7 + i/256) // every byte value, NULs and invalid UTF-8 included
	}

	t.Run("write as the SDK does: x-cwd / and paths relative to it", func(t *testing.T) {
		a := a.with(t)
		body := tarGz(t, []tarFile{
			{name: "vercel/sandbox/hello.txt", content: []byte("hello, world\n")},
			{name: "vercel/sandbox/deep/er/bin.dat", content: binary},
			{name: "vercel/sandbox/run.sh", content: []byte("#!/bin/sh\necho ran\n"), mode: 0o755},
			{name: "tmp/outside.txt", content: []byte("outside\n")},
		})
		resp := a.request("POST", fs+"write", body, map[string]string{"Content-Type": "application/gzip", "X-Cwd": "/"})
		a.read(resp, "fs/write", 200, nil)
		r := a.sh(sid, "cat hello.txt; ./run.sh; stat -c '%a %n' run.sh hello.txt; cat /tmp/outside.txt")
		if r.stdout != "hello, world\nran\n755 run.sh\n644 hello.txt\noutside\n" {
			t.Fatalf("in the VM: %q", r.stdout)
		}
	})

	t.Run("write relative to another x-cwd", func(t *testing.T) {
		a := a.with(t)
		body := tarGz(t, []tarFile{{name: "nested/file.txt", content: []byte("nested\n")}})
		resp := a.request("POST", fs+"write", body, map[string]string{"Content-Type": "application/gzip", "X-Cwd": "/vercel/sandbox/sub"})
		a.read(resp, "fs/write", 200, nil)
		if got := a.readFile(fs, map[string]any{"path": "sub/nested/file.txt"}); got != "nested\n" {
			t.Fatalf("read back %q", got)
		}
	})

	t.Run("read is binary-safe and octet-stream", func(t *testing.T) {
		a := a.with(t)
		resp := a.request("POST", fs+"read", map[string]any{"path": "deep/er/bin.dat"}, nil)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Equal(data, binary) {
			t.Fatalf("read %d bytes, they differ from the %d written", len(data), len(binary))
		}
		// Absolute, relative to a cwd, and an empty file.
		if got := a.readFile(fs, map[string]any{"path": "/vercel/sandbox/hello.txt"}); got != "hello, world\n" {
			t.Fatalf("absolute: %q", got)
		}
		if got := a.readFile(fs, map[string]any{"path": "er/bin.dat", "cwd": "/vercel/sandbox/deep"}); got != string(binary) {
			t.Fatal("relative to cwd differs")
		}
		a.sh(sid, ": > empty")
		if got := a.readFile(fs, map[string]any{"path": "empty"}); got != "" {
			t.Fatalf("empty: %q", got)
		}
	})

	t.Run("read errors", func(t *testing.T) {
		a := a.with(t)
		msg := a.wantError("POST", fs+"read", map[string]any{"path": "missing.txt"}, 404, "not_found")
		if !strings.Contains(msg, "/vercel/sandbox/missing.txt") {
			t.Fatalf("message %q does not name the path", msg)
		}
		a.wantError("POST", fs+"read", map[string]any{"path": "deep"}, 400, "bad_request")
		a.wantError("POST", fs+"read", map[string]any{}, 400, "bad_request")
	})

	t.Run("mkdir", func(t *testing.T) {
		a := a.with(t)
		a.call("POST", fs+"mkdir", map[string]any{"path": "made"}, 200, nil)
		a.call("POST", fs+"mkdir", map[string]any{"path": "inner", "cwd": "/vercel/sandbox/made"}, 200, nil)
		a.wantError("POST", fs+"mkdir", map[string]any{"path": "a/b/c"}, 400, "bad_request") // not recursive by default
		a.wantError("POST", fs+"mkdir", map[string]any{"path": "made"}, 400, "bad_request")  // exists
		a.call("POST", fs+"mkdir", map[string]any{"path": "a/b/c", "recursive": true}, 200, nil)
		if r := a.sh(sid, "test -d made/inner && test -d a/b/c && echo ok"); r.stdout != "ok\n" {
			t.Fatalf("%q", r.stdout)
		}
	})

	t.Run("write rejects what is not a gzip tar", func(t *testing.T) {
		a := a.with(t)
		resp := a.request("POST", fs+"write", []byte("not gzip"), map[string]string{"Content-Type": "application/gzip", "X-Cwd": "/"})
		a.read(resp, "fs/write", http.StatusBadRequest, nil)
	})
}

// readFile reads a file through fs/read and fails unless it answers 200 octet-stream.
func (a *api) readFile(fs string, body map[string]any) string {
	a.t.Helper()
	resp := a.request("POST", fs+"read", body, nil)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		a.t.Fatalf("fs/read %v: %d %q %s", body, resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	return string(data)
}

// TestHomeDir: the VM user's home is HomeDir, as on Vercel's runtimes: commands see it as $HOME
// and cwd, fs/* reach it; over a backend whose home is elsewhere, fs/* and cwd map HomeDir onto
// that home.
func TestHomeDir(t *testing.T) {
	for _, backendHome := range []string{HomeDir, "/home/sandbox"} {
		t.Run(backendHome, func(t *testing.T) {
			a := newAPIHome(t, Options{}, backendHome)
			sid := a.create(map[string]any{"persistent": false}).Session.ID
			fs := "/v2/sandboxes/sessions/" + sid + "/fs/"
			body := tarGz(t, []tarFile{{name: "notes/n.txt", content: []byte("note\n")}})
			a.read(a.request("POST", fs+"write", body, map[string]string{"Content-Type": "application/gzip", "X-Cwd": HomeDir}), "fs/write", 200, nil)
			if got := a.readFile(fs, map[string]any{"path": HomeDir + "/notes/n.txt"}); got != "note\n" {
				t.Errorf("fs/read of %s/notes/n.txt = %q", HomeDir, got)
			}
			if got := a.readFile(fs, map[string]any{"path": "notes/n.txt", "cwd": HomeDir}); got != "note\n" {
				t.Errorf("fs/read of notes/n.txt with cwd %s = %q", HomeDir, got)
			}
			r := a.run(sid, map[string]any{"command": "sh", "args": []string{"-c", `cat "$HOME/notes/n.txt"; pwd`}, "cwd": HomeDir + "/notes"})
			if want := "note\n" + backendHome + "/notes\n"; r.stdout != want {
				t.Errorf("a command in cwd %s/notes: %q, want %q", HomeDir, r.stdout, want)
			}
			if backendHome == HomeDir {
				if got := a.sh(sid, `printf %s "$HOME"`).stdout; got != HomeDir {
					t.Errorf("$HOME = %q, want %q", got, HomeDir)
				}
			}
		})
	}
}
