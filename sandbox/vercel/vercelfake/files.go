package vercelfake

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The file endpoints (§8). They work through commands in the VM (tar, cat, mkdir run as the
// VM's user), so any path that user may touch works, not only the backend's /workspace, and
// contents are binary-safe.

// maxUpload bounds an fs/write body.
const maxUpload = 512 << 20

// resolvePath makes p absolute in the VM's terms: a relative p is resolved against cwd (itself
// resolved against the session's cwd).
func resolvePath(p, cwd string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	if cwd == "" {
		cwd = sessionCwd
	}
	if !path.IsAbs(cwd) {
		cwd = path.Join(sessionCwd, cwd)
	}
	return path.Join(cwd, p)
}

// backendPath maps a VM path onto the backend: the VM's working directory /vercel/sandbox (and
// everything under it) is the backend's durable /workspace, and the VM user's home HomeDir is the
// backend's home (when the backend declares one); other paths are unchanged.
func (s *Server) backendPath(p string) string {
	for _, m := range s.pathMap() {
		if p == m[0] {
			return m[1]
		}
		if rest, ok := strings.CutPrefix(p, m[0]+"/"); ok {
			return m[1] + "/" + rest
		}
	}
	return p
}

// pathMap lists the VM directories the fake maps and the backend directories they are.
func (s *Server) pathMap() [][2]string {
	m := [][2]string{{sessionCwd, sandbox.WorkspaceDir}}
	if s.home != "" && s.home != HomeDir {
		m = append(m, [2]string{HomeDir, s.home})
	}
	return m
}

// vmText rewrites backend paths in a message back into the VM's terms.
func (s *Server) vmText(text string) string {
	for _, m := range s.pathMap() {
		text = strings.ReplaceAll(text, m[1]+"/", m[0]+"/")
	}
	return strings.TrimSpace(text)
}

// run runs a helper command in the session's VM and collects its stderr.
func (s *Server) run(ctx context.Context, ss *session, req sandbox.ExecRequest) (sandbox.ExecResult, string, error) {
	s.sessions.mu.Lock()
	backend := ss.backend
	s.sessions.mu.Unlock()
	var stderr bytes.Buffer
	req.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	res, err := backend.Exec(context.WithoutCancel(ctx), req)
	if err != nil {
		return res, "", s.backendError(ss, err)
	}
	return res, s.vmText(stderr.String()), nil
}

func (s *Server) handleWriteFiles(w http.ResponseWriter, r *http.Request) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cwd := sessionCwd
	if h := r.Header.Get("X-Cwd"); h != "" {
		cwd = resolvePath(h, sessionCwd)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxUpload+1))
	if err != nil {
		writeError(w, badRequest("cannot read the request body: %v", err))
		return
	}
	if len(body) > maxUpload {
		writeError(w, badRequest("the archive is larger than %d bytes", maxUpload))
		return
	}
	archive, err := s.rewriteArchive(body, cwd)
	if err != nil {
		writeError(w, err)
		return
	}
	if archive == nil {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	// -m: files get the current time; -p: modes as given, not masked by the umask.
	res, stderr, err := s.run(r.Context(), ss, sandbox.ExecRequest{
		Command: "tar", Args: []string{"-x", "-p", "-m", "-f", "-", "-C", "/"}, Stdin: archive,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	if res.ExitCode != 0 {
		writeError(w, badRequest("cannot write the files: %s", strings.ReplaceAll(stderr, "tar: ", "")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// rewriteArchive reads the request's gzip-compressed tar and returns an uncompressed tar whose
// entries are the backend paths of cwd + entry name (relative to /), or nil when it is empty.
// Regular files, directories and symbolic links are accepted.
func (s *Server) rewriteArchive(body []byte, cwd string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, badRequest("the body must be a gzip-compressed tar archive: %v", err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, badRequest("the body must be a gzip-compressed tar archive: %v", err)
		}
		target := strings.TrimPrefix(s.backendPath(resolvePath(strings.TrimPrefix(h.Name, "/"), cwd)), "/")
		if target == "" || target == "." {
			continue
		}
		mode := h.Mode & 0o7777
		nh := &tar.Header{Name: target, Mode: mode, ModTime: time.Now(), Format: tar.FormatPAX}
		switch h.Typeflag {
		case tar.TypeReg:
			if nh.Mode == 0 {
				nh.Mode = 0o644
			}
			nh.Typeflag, nh.Size = tar.TypeReg, h.Size
		case tar.TypeDir:
			if nh.Mode == 0 {
				nh.Mode = 0o755
			}
			nh.Typeflag = tar.TypeDir
		case tar.TypeSymlink:
			nh.Typeflag, nh.Linkname = tar.TypeSymlink, h.Linkname
			if nh.Mode == 0 {
				nh.Mode = 0o777
			}
		default:
			return nil, badRequest("archive entry %q: only regular files, directories and symbolic links can be written", h.Name)
		}
		if err := tw.WriteHeader(nh); err != nil {
			return nil, badRequest("archive entry %q: %v", h.Name, err)
		}
		if nh.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return nil, badRequest("archive entry %q: %v", h.Name, err)
			}
		}
		n++
	}
	if err := tw.Close(); err != nil {
		return nil, internalError(err)
	}
	if n == 0 {
		return nil, nil
	}
	return out.Bytes(), nil
}

// readScript prints the file or says why it cannot: 2 = missing, 3 = a directory,
// 4 = unreadable.
const readScript = `if [ -d "$1" ]; then exit 3; fi
if [ ! -e "$1" ]; then exit 2; fi
if [ ! -r "$1" ]; then exit 4; fi
exec cat -- "$1"`

// pathRequest is the part of a file route's body that names a path: relative to cwd, or to the
// session's working directory without one.
type pathRequest struct {
	Path *string `json:"path"`
	Cwd  *string `json:"cwd"`
}

// sessionPath decodes into body (a *pathRequest, or a struct embedding pr) the body of a file
// route on a live session, and returns the session and the path in the VM; on an error it has
// answered it and returns false.
func (s *Server) sessionPath(w http.ResponseWriter, r *http.Request, body any, pr *pathRequest) (*session, string, bool) {
	ss, err := s.liveSession(r)
	if err != nil {
		writeError(w, err)
		return nil, "", false
	}
	if err := decodeBody(r, body, false); err != nil {
		writeError(w, err)
		return nil, "", false
	}
	if pr.Path == nil || *pr.Path == "" {
		writeError(w, badRequest("should have required property `path`"))
		return nil, "", false
	}
	cwd := sessionCwd
	if pr.Cwd != nil && *pr.Cwd != "" {
		cwd = *pr.Cwd
	}
	return ss, resolvePath(*pr.Path, cwd), true
}

func (s *Server) handleReadFile(w http.ResponseWriter, r *http.Request) {
	var req pathRequest
	ss, vmPath, ok := s.sessionPath(w, r, &req, &req)
	if !ok {
		return
	}
	out := &lazyBody{w: w}
	res, stderr, err := s.run(r.Context(), ss, sandbox.ExecRequest{
		Command: "sh", Args: []string{"-c", readScript, "sh", s.backendPath(vmPath)}, Stdout: out,
	})
	switch {
	case err != nil && !out.started:
		writeError(w, err)
	case err != nil || (res.ExitCode != 0 && out.started):
		// The content was cut short: break the answer so the client cannot take it as whole.
		panic(http.ErrAbortHandler)
	case res.ExitCode == 0:
		out.begin()
	case res.ExitCode == 2:
		writeError(w, notFound("File not found: %s", vmPath))
	case res.ExitCode == 3:
		writeError(w, badRequest("%s is a directory", vmPath))
	case res.ExitCode == 4:
		writeError(w, newError(http.StatusForbidden, codeForbidden, "Permission denied: %s", vmPath))
	default:
		writeError(w, badRequest("cannot read %s: %s", vmPath, stderr))
	}
}

// lazyBody answers 200 application/octet-stream on the first byte of content.
type lazyBody struct {
	w       http.ResponseWriter
	started bool
	err     error
}

func (l *lazyBody) begin() {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", "application/octet-stream")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyBody) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	l.begin()
	_, l.err = l.w.Write(p)
	return len(p), l.err
}

func (s *Server) handleMkdir(w http.ResponseWriter, r *http.Request) {
	var req struct {
		pathRequest
		Recursive bool `json:"recursive"`
	}
	ss, vmPath, ok := s.sessionPath(w, r, &req, &req.pathRequest)
	if !ok {
		return
	}
	args := []string{"--", s.backendPath(vmPath)}
	if req.Recursive {
		args = append([]string{"-p"}, args...)
	}
	res, stderr, err := s.run(r.Context(), ss, sandbox.ExecRequest{Command: "mkdir", Args: args})
	if err != nil {
		writeError(w, err)
		return
	}
	if res.ExitCode != 0 {
		msg := strings.TrimPrefix(stderr, "mkdir: ")
		if bp := s.backendPath(vmPath); bp != vmPath {
			msg = strings.ReplaceAll(msg, bp, vmPath)
		}
		writeError(w, badRequest("cannot create the directory %s: %s", vmPath, msg))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
