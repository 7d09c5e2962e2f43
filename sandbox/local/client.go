package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The provider side of the agent protocol (see protocol.go).

// cancelGrace is how long Exec waits, after its context was cancelled, for the agent to report
// that it killed the command.
const cancelGrace = 5 * time.Second

// dial opens a request connection to the agent.
func (s *localSandbox) dial() (*net.UnixConn, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	s.masterMu.Lock()
	_ = s.master.SetWriteDeadline(time.Now().Add(killTimeout))
	_, _, err = s.master.WriteMsgUnix([]byte{'c'}, unix.UnixRights(pair[1]), nil)
	s.masterMu.Unlock()
	unix.Close(pair[1])
	if err != nil {
		unix.Close(pair[0])
		return nil, s.lostAgent(err)
	}
	f := os.NewFile(uintptr(pair[0]), "agent-request")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// lostAgent turns a broken connection into ErrEnded when the sandbox is gone.
func (s *localSandbox) lostAgent(err error) error {
	select {
	case <-s.exited:
	case <-time.After(200 * time.Millisecond):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.exited:
		if s.state == stateRunning {
			return fmt.Errorf("%w: sandbox %s died", sandbox.ErrEnded, s.id)
		}
		return s.endedErrLocked()
	default:
	}
	if s.state != stateRunning {
		return s.endedErrLocked()
	}
	return fmt.Errorf("lost the connection to the agent of sandbox %s: %w", s.id, err)
}

// call sends one request (with blobs) and reads its result, plus a blob of at most blobMax
// bytes when blobMax > 0.
func (s *localSandbox) call(ctx context.Context, req request, blobs [][]byte, blobMax int64) (result, []byte, error) {
	if err := s.checkRunning(); err != nil {
		return result{}, nil, err
	}
	c, err := s.dial()
	if err != nil {
		return result{}, nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	res, data, err := roundTrip(c, req, blobs, blobMax)
	if err != nil {
		if ctx.Err() != nil {
			return result{}, nil, ctx.Err()
		}
		return result{}, nil, s.lostAgent(err)
	}
	if res.Err != nil {
		return res, nil, res.Err.toError()
	}
	return res, data, nil
}

func roundTrip(c *net.UnixConn, req request, blobs [][]byte, blobMax int64) (result, []byte, error) {
	w := bufio.NewWriterSize(c, 64<<10)
	if err := writeJSON(w, frameRequest, req); err != nil {
		return result{}, nil, err
	}
	for _, b := range blobs {
		if err := writeBlob(w, b); err != nil {
			return result{}, nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return result{}, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var res result
	if err := readJSON(r, frameResult, &res); err != nil {
		return result{}, nil, unexpectedEOF(err)
	}
	if blobMax <= 0 || res.Err != nil {
		return res, nil, nil
	}
	data, err := readBlob(r, blobMax)
	return res, data, err
}

// Exec implements sandbox.Sandbox.
func (s *localSandbox) Exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if req.Command == "" {
		return sandbox.ExecResult{}, fmt.Errorf("%w: empty command", sandbox.ErrInvalid)
	}
	if err := s.checkRunning(); err != nil {
		return sandbox.ExecResult{}, err
	}
	env, err := s.commandEnv(req.Env)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	cwd := req.Cwd
	switch {
	case cwd == "":
		cwd = sandbox.WorkspaceDir
	case !path.IsAbs(cwd):
		cwd = path.Join(sandbox.WorkspaceDir, cwd)
	}
	wreq := request{
		Op:        opExec,
		Argv:      append([]string{req.Command}, req.Args...),
		Cwd:       cwd,
		Env:       env,
		HasStdin:  req.Stdin != nil,
		TimeoutMs: req.Timeout.Milliseconds(),
	}
	if req.Timeout > 0 && wreq.TimeoutMs == 0 {
		wreq.TimeoutMs = 1
	}
	c, err := s.dial()
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	defer c.Close()

	// On cancellation: half-close so the agent kills the command tree and reports, and give it
	// cancelGrace to do so.
	stop := context.AfterFunc(ctx, func() {
		_ = c.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(cancelGrace))
	})
	defer stop()

	w := bufio.NewWriterSize(c, 64<<10)
	err = writeJSON(w, frameRequest, wreq)
	if err == nil && req.Stdin != nil {
		err = writeBlob(w, req.Stdin)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		if ctx.Err() != nil {
			return sandbox.ExecResult{}, ctx.Err()
		}
		return sandbox.ExecResult{}, s.lostAgent(err)
	}
	stdout := writerOrDiscard(req.Stdout)
	stderr := writerOrDiscard(req.Stderr)
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		typ, p, err := readFrame(r, maxFrame)
		if err != nil {
			if ctx.Err() != nil {
				return sandbox.ExecResult{}, ctx.Err()
			}
			return sandbox.ExecResult{}, s.lostAgent(unexpectedEOF(err))
		}
		switch typ {
		case frameStdout:
			stdout.write(p)
		case frameStderr:
			stderr.write(p)
		case frameResult:
			if ctx.Err() != nil {
				return sandbox.ExecResult{}, ctx.Err()
			}
			var res result
			if err := json.Unmarshal(p, &res); err != nil {
				return sandbox.ExecResult{}, fmt.Errorf("agent answered nonsense: %w", err)
			}
			if res.Err != nil {
				return sandbox.ExecResult{}, res.Err.toError()
			}
			return sandbox.ExecResult{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Duration: time.Duration(res.DurationNs)}, nil
		default:
			return sandbox.ExecResult{}, fmt.Errorf("agent protocol error: unexpected frame %q", typ)
		}
	}
}

// stickyWriter forwards writes until the first error, then drops the rest, so a failing
// caller-side writer does not stall the command.
type stickyWriter struct {
	w   io.Writer
	err error
}

func writerOrDiscard(w io.Writer) *stickyWriter {
	if w == nil {
		w = io.Discard
	}
	return &stickyWriter{w: w}
}

func (sw *stickyWriter) write(p []byte) {
	if sw.err == nil {
		_, sw.err = sw.w.Write(p)
	}
}

// WriteFiles implements sandbox.Sandbox.
func (s *localSandbox) WriteFiles(ctx context.Context, files []sandbox.File) error {
	if len(files) == 0 {
		return nil
	}
	req := request{Op: opWrite, MaxSize: s.p.opts.MaxFileSize}
	blobs := make([][]byte, len(files))
	for i, f := range files {
		if int64(len(f.Content)) > s.p.opts.MaxFileSize {
			return fmt.Errorf("%w: %s: %d bytes is more than the %d bytes a file may have", sandbox.ErrInvalid, f.Path, len(f.Content), s.p.opts.MaxFileSize)
		}
		if f.Mode&^os.ModePerm != 0 {
			return fmt.Errorf("%w: %s: mode %v has more than permission bits", sandbox.ErrInvalid, f.Path, f.Mode)
		}
		req.Files = append(req.Files, fileMeta{Path: f.Path, Mode: uint32(f.Mode.Perm())})
		blobs[i] = f.Content
	}
	_, _, err := s.call(ctx, req, blobs, 0)
	return err
}

// ReadFile implements sandbox.Sandbox.
func (s *localSandbox) ReadFile(ctx context.Context, p string, offset, max int64) (sandbox.FileContent, error) {
	limit := s.p.opts.MaxFileSize
	if max <= 0 || max > limit {
		max = limit
	}
	res, data, err := s.call(ctx, request{Op: opRead, Path: p, Offset: offset, Max: max}, nil, max)
	if err != nil {
		return sandbox.FileContent{}, err
	}
	if data == nil {
		data = []byte{}
	}
	return sandbox.FileContent{Data: data, Size: res.Size}, nil
}

// ListFiles implements sandbox.Sandbox.
func (s *localSandbox) ListFiles(ctx context.Context, dir string, depth int) ([]sandbox.FileEntry, error) {
	if dir == "" {
		dir = "."
	}
	res, _, err := s.call(ctx, request{Op: opList, Path: dir, Depth: depth}, nil, 0)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}
