package vercel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Files: fs/write (a gzip-compressed tar), fs/read (raw bytes), fs/mkdir.

// fileToWrite is one file for writeFiles.
type fileToWrite struct {
	// Path is relative to the cwd given to writeFiles, with forward slashes and no leading "/",
	// "." or ".." elements.
	Path string
	// Content is the file's complete content.
	Content []byte
	// Mode holds the permission bits; 0 means 0644.
	Mode fs.FileMode
}

// writeFiles creates or replaces files: POST fs/write with content-type application/gzip,
// header x-cwd: cwd (always sent, as the SDK does; "" sends "/", the SDK's own choice), and as body a gzip-compressed tar (ustar, or pax
// for a name ustar cannot hold) with one regular-file entry per file, named by its path
// relative to cwd. No directory entries are sent; the server creates parent directories. The
// archive is built in memory, so the call is retried like any idempotent one. A path that is
// not a clean relative path fails with an error wrapping sandbox.ErrInvalid before anything is
// sent; an empty list sends nothing.
func (c *Client) writeFiles(ctx context.Context, sessionID, cwd string, files []fileToWrite) error {
	const op = "write files"
	if len(files) == 0 {
		return nil
	}
	body, err := writeFilesArchive(files, time.Now())
	if err != nil {
		return fmt.Errorf("vercel: %s: %w", op, err)
	}
	if cwd == "" {
		cwd = "/"
	}
	return c.doJSON(ctx, &apiCall{
		op: op, method: http.MethodPost, path: apiSessionPath(sessionID) + "/fs/write",
		body: body, contentType: "application/gzip", cwd: cwd, idempotent: true,
	}, nil)
}

// writeFilesArchive builds the fs/write body.
func writeFilesArchive(files []fileToWrite, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := now.Truncate(time.Second) // ustar keeps whole seconds
	for _, f := range files {
		if err := checkArchivePath(f.Path); err != nil {
			return nil, err
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Path,
			Mode:     int64(mode),
			Size:     int64(len(f.Content)),
			ModTime:  mtime,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkArchivePath accepts clean relative slash paths that stay below their base.
func checkArchivePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("a file has an empty path: %w", sandbox.ErrInvalid)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must be relative to the cwd: %w", p, sandbox.ErrInvalid)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not a clean relative path: %w", p, sandbox.ErrInvalid)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q contains a NUL byte: %w", p, sandbox.ErrInvalid)
	}
	return nil
}

// readFile opens a file for reading: POST fs/read {"path": path, "cwd": cwd} (cwd omitted when
// ""; a relative path resolves against it, or against the session's cwd). The caller must
// close the returned body. A missing file is a 404 *APIError (errors.Is(err,
// sandbox.ErrNotFound)). A 200 whose content-type is not application/octet-stream is an error,
// since its body would be something else than the file. Failures before the body is returned
// are retried.
func (c *Client) readFile(ctx context.Context, sessionID, path, cwd string) (io.ReadCloser, error) {
	const op = "read file"
	resp, err := c.send(ctx, &apiCall{
		op: op, method: http.MethodPost, path: apiSessionPath(sessionID) + "/fs/read",
		body: marshalBody(fsBody{Path: path, Cwd: cwd}), idempotent: true,
	})
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != "application/octet-stream" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("vercel: %s: the response has content-type %q, not application/octet-stream", op, ct)
	}
	return resp.Body, nil
}

// fsBody is the body of fs/read and fs/mkdir, as the SDK sends it.
type fsBody struct {
	Path string `json:"path"`
	Cwd  string `json:"cwd,omitempty"`
}

// mkdir creates a directory: POST fs/mkdir {"path", "cwd"?} (cwd omitted when ""), as the SDK
// sends it. The parent must exist (the SDK's recursive mkdir runs `mkdir -p` instead; the REST
// reference's "recursive" flag is not relied on).
func (c *Client) mkdir(ctx context.Context, sessionID, path, cwd string) error {
	return c.doJSON(ctx, &apiCall{
		op: "mkdir", method: http.MethodPost, path: apiSessionPath(sessionID) + "/fs/mkdir",
		body: marshalBody(fsBody{Path: path, Cwd: cwd}), idempotent: true,
	}, nil)
}
