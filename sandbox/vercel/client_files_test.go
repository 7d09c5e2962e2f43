package vercel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

const ctFsPath = "/api/v2/sandboxes/sessions/" + ctSession + "/fs/"

func TestClientWriteFilesArchive(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctFsPath+"write", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctJSON(w, 200, map[string]any{}) })
	c, _ := ctClient(t, s, nil)
	long := strings.Repeat("d/", 60) + "deep.txt" // longer than ustar's 100-byte name field
	files := []fileToWrite{
		{Path: "hello.txt", Content: []byte("hello\n")},
		{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: 0o755},
		{Path: "empty", Content: nil, Mode: 0o600},
		{Path: long, Content: []byte("x")},
	}
	if err := c.writeFiles(context.Background(), ctSession, "/vercel/sandbox", files); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	reqs := s.requests("POST", ctFsPath+"write")
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if ct := r.Header.Get("Content-Type"); ct != "application/gzip" {
		t.Errorf("content-type = %q", ct)
	}
	if cwd := r.Header.Get("X-Cwd"); cwd != "/vercel/sandbox" {
		t.Errorf("x-cwd = %q", cwd)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("body is not gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	// Plain ustar: the first block is the first file's own header (no pax extended header).
	if len(raw) < 512 || string(raw[257:263]) != "ustar\x00" || raw[156] != tar.TypeReg || string(raw[:9]) != "hello.txt" {
		t.Errorf("the first block is not a ustar header of hello.txt: magic %q type %q name %q", raw[257:263], raw[156], raw[:9])
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var got []fileToWrite
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			t.Errorf("entry %q has type %q, want a regular file", hdr.Name, hdr.Typeflag)
		}
		if hdr.ModTime.IsZero() || time.Since(hdr.ModTime) > time.Hour {
			t.Errorf("entry %q mtime %v", hdr.Name, hdr.ModTime)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		got = append(got, fileToWrite{Path: hdr.Name, Content: content, Mode: fs.FileMode(hdr.Mode)})
	}
	want := []fileToWrite{
		{Path: "hello.txt", Content: []byte("hello\n"), Mode: 0o644},
		{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: 0o755},
		{Path: "empty", Content: []byte{}, Mode: 0o600},
		{Path: long, Content: []byte("x"), Mode: 0o644},
	}
	if len(got) != len(want) {
		t.Fatalf("entries = %+v, want %d entries (no directories)", got, len(want))
	}
	for i := range want {
		if got[i].Path != want[i].Path || !bytes.Equal(got[i].Content, want[i].Content) || got[i].Mode != want[i].Mode {
			t.Errorf("entry %d = %q %q %v, want %q %q %v", i, got[i].Path, got[i].Content, got[i].Mode, want[i].Path, want[i].Content, want[i].Mode)
		}
	}
}

func TestClientWriteFilesRejectsBadPaths(t *testing.T) {
	s := ctNewServer(t)
	c, _ := ctClient(t, s, nil)
	for _, p := range []string{"", "/etc/passwd", "../up", "a/../../b", "a//b", "./a", ".", "a/"} {
		err := c.writeFiles(context.Background(), ctSession, "/", []fileToWrite{{Path: "ok", Content: []byte("1")}, {Path: p}})
		if !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("path %q: err = %v, want ErrInvalid", p, err)
		}
	}
	if err := c.writeFiles(context.Background(), ctSession, "/", nil); err != nil {
		t.Errorf("no files: %v", err)
	}
	if n := s.count("", ""); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

func TestClientWriteFilesRetried(t *testing.T) {
	s := ctNewServer(t)
	var n atomic.Int32
	s.handle("POST", ctFsPath+"write", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n.Add(1) == 1 {
			ctErr(w, 500, "", "oops")
			return
		}
		ctJSON(w, 200, map[string]any{})
	})
	c, _ := ctClient(t, s, nil)
	if err := c.writeFiles(context.Background(), ctSession, "/", []fileToWrite{{Path: "a", Content: []byte("a")}}); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	var bodies [][]byte
	for _, r := range s.requests("POST", "") {
		bodies = append(bodies, r.Body)
	}
	if len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) || len(bodies[1]) == 0 {
		t.Errorf("the retry did not resend the same archive (%d bodies)", len(bodies))
	}
}

func TestClientReadFile(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctFsPath+"read", func(w http.ResponseWriter, _ *http.Request, body []byte) {
		switch {
		case strings.Contains(string(body), "missing"):
			ctErr(w, 404, "not_found", "File not found")
		case strings.Contains(string(body), "json"):
			ctErr(w, 200, "weird", "an error with a 200")
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "file content")
		}
	})
	c, _ := ctClient(t, s, nil)
	ctx := context.Background()

	rc, err := c.readFile(ctx, ctSession, "dist/out.txt", "/vercel/sandbox")
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "file content" {
		t.Errorf("content %q, %v", b, err)
	}
	if body := string(s.requests("POST", "")[0].Body); body != `{"path":"dist/out.txt","cwd":"/vercel/sandbox"}` {
		t.Errorf("body = %s", body)
	}

	_, err = c.readFile(ctx, ctSession, "missing.txt", "")
	var ae *APIError
	if !errors.Is(err, sandbox.ErrNotFound) || !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("missing file: err = %v, want a 404 unwrapping to ErrNotFound", err)
	}
	if n := s.count("", ""); n != 2 {
		t.Errorf("a 404 was retried: %d requests", n)
	}
	if body := string(s.requests("POST", "")[1].Body); body != `{"path":"missing.txt"}` {
		t.Errorf("body = %s", body)
	}

	if _, err = c.readFile(ctx, ctSession, "json", ""); err == nil || !strings.Contains(err.Error(), "application/octet-stream") {
		t.Errorf("JSON with a 200: err = %v, want a content-type error", err)
	}
}

func TestClientMkdir(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctFsPath+"mkdir", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctJSON(w, 200, map[string]any{}) })
	c, _ := ctClient(t, s, nil)
	if err := c.mkdir(context.Background(), ctSession, "a/b", "/vercel/sandbox"); err != nil {
		t.Fatal(err)
	}
	if err := c.mkdir(context.Background(), ctSession, "/tmp/x", ""); err != nil {
		t.Fatal(err)
	}
	r := s.requests("POST", "")
	if string(r[0].Body) != `{"path":"a/b","cwd":"/vercel/sandbox"}` || string(r[1].Body) != `{"path":"/tmp/x"}` {
		t.Errorf("bodies %s %s", r[0].Body, r[1].Body)
	}
}
