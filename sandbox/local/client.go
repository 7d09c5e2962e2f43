//go:build linux

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

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// The provider side of the agent protocol (see package agent).

// cancelGrace is how long Exec waits, after its context was cancelled, for the agent to report
// that it killed the command.
const cancelGrace = 5 * time.Second

// dial opens a request connection to the agent.
func (s *localSandbox) dial() (*net.UnixConn, error) {
	if err := s.checkRunning(); err != nil {
		return nil, err
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: s.sock, Net: "unix"})
	if err != nil {
		return nil, s.lostAgent(err)
	}
	return c, nil
}

// guard calls onCancel when ctx is done, and cuts the connection off when the sandbox's
// processes are gone (bwrap may still hold the listening socket a moment after the agent died,
// so a connection can succeed that nobody will answer), until the returned stop is called. Once
// stop has returned, neither happens any more.
func (s *localSandbox) guard(ctx context.Context, c *net.UnixConn, onCancel func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			onCancel()
		case <-s.exited:
			_ = c.SetDeadline(time.Now())
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-finished
	}
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
		return s.stateErrLocked()
	default:
	}
	if s.state != stateRunning {
		return s.stateErrLocked()
	}
	return fmt.Errorf("lost the connection to the agent of sandbox %s: %w", s.id, err)
}

// call sends one request (with blobs) and reads its result, plus a blob of at most blobMax
// bytes when blobMax > 0.
func (s *localSandbox) call(ctx context.Context, req agent.Request, blobs [][]byte, blobMax int64) (agent.Result, []byte, error) {
	c, err := s.dial()
	if err != nil {
		return agent.Result{}, nil, err
	}
	defer c.Close()
	stop := s.guard(ctx, c, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	res, data, err := roundTrip(c, req, blobs, blobMax)
	if err != nil {
		if ctx.Err() != nil {
			return agent.Result{}, nil, ctx.Err()
		}
		return agent.Result{}, nil, s.lostAgent(err)
	}
	if res.Err != nil {
		return res, nil, res.Err.Err()
	}
	return res, data, nil
}

func roundTrip(c *net.UnixConn, req agent.Request, blobs [][]byte, blobMax int64) (agent.Result, []byte, error) {
	w := bufio.NewWriterSize(c, 64<<10)
	if err := agent.WriteJSON(w, agent.FrameRequest, req); err != nil {
		return agent.Result{}, nil, err
	}
	for _, b := range blobs {
		if err := agent.WriteBlob(w, b); err != nil {
			return agent.Result{}, nil, err
		}
	}
	if err := w.Flush(); err != nil {
		return agent.Result{}, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var res agent.Result
	if err := agent.ReadJSON(r, agent.FrameResult, &res); err != nil {
		return agent.Result{}, nil, agent.UnexpectedEOF(err)
	}
	if blobMax <= 0 || res.Err != nil {
		return res, nil, nil
	}
	data, err := agent.ReadBlob(r, blobMax)
	return res, data, err
}

// execRequest validates req and turns it into the agent's request.
func (s *localSandbox) execRequest(op string, req sandbox.ExecRequest) (agent.Request, error) {
	if req.Command == "" {
		return agent.Request{}, fmt.Errorf("%w: empty command", sandbox.ErrInvalid)
	}
	if err := s.checkRunning(); err != nil {
		return agent.Request{}, err
	}
	env, err := s.commandEnv(req.Env)
	if err != nil {
		return agent.Request{}, err
	}
	cwd := req.Cwd
	switch {
	case cwd == "":
		cwd = sandbox.WorkspaceDir
	case !path.IsAbs(cwd):
		cwd = path.Join(sandbox.WorkspaceDir, cwd)
	}
	wreq := agent.Request{
		Op:       op,
		Argv:     append([]string{req.Command}, req.Args...),
		Cwd:      cwd,
		Env:      env,
		HasStdin: req.Stdin != nil,
	}
	if op == agent.OpExec {
		wreq.TimeoutMs = req.Timeout.Milliseconds()
		if req.Timeout > 0 && wreq.TimeoutMs == 0 {
			wreq.TimeoutMs = 1
		}
	}
	return wreq, nil
}

// Exec implements sandbox.Sandbox.
func (s *localSandbox) Exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	wreq, err := s.execRequest(agent.OpExec, req)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	c, err := s.dial()
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	defer c.Close()

	// On cancellation: half-close so the agent kills the command tree and reports, and give it
	// cancelGrace to do so.
	stop := s.guard(ctx, c, func() {
		_ = c.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(cancelGrace))
	})
	defer stop()

	w := bufio.NewWriterSize(c, 64<<10)
	err = agent.WriteJSON(w, agent.FrameRequest, wreq)
	if err == nil && req.Stdin != nil {
		err = agent.WriteBlob(w, req.Stdin)
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
		typ, p, err := agent.ReadFrame(r, agent.MaxFrame)
		if err != nil {
			if ctx.Err() != nil {
				return sandbox.ExecResult{}, ctx.Err()
			}
			return sandbox.ExecResult{}, s.lostAgent(agent.UnexpectedEOF(err))
		}
		switch typ {
		case agent.FrameStdout:
			stdout.write(p)
		case agent.FrameStderr:
			stderr.write(p)
		case agent.FrameResult:
			if ctx.Err() != nil {
				return sandbox.ExecResult{}, ctx.Err()
			}
			var res agent.Result
			if err := json.Unmarshal(p, &res); err != nil {
				return sandbox.ExecResult{}, fmt.Errorf("agent answered nonsense: %w", err)
			}
			if res.Err != nil {
				return sandbox.ExecResult{}, res.Err.Err()
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
	return s.ChangeFiles(ctx, sandbox.FileChanges{Write: files})
}

// ChangeFiles implements sandbox.Sandbox: the agent checks every path (symlinks included)
// before it removes or writes anything.
func (s *localSandbox) ChangeFiles(ctx context.Context, c sandbox.FileChanges) error {
	if len(c.Write) == 0 && len(c.Remove) == 0 {
		return nil
	}
	req := agent.Request{Op: agent.OpWrite, MaxSize: s.p.opts.MaxFileSize, Home: s.p.opts.HomeDir, Remove: c.Remove, Recursive: c.Recursive}
	blobs := make([][]byte, len(c.Write))
	for i, f := range c.Write {
		if int64(len(f.Content)) > s.p.opts.MaxFileSize {
			return fmt.Errorf("%w: %s: %d bytes is more than the %d bytes a file may have", sandbox.ErrInvalid, f.Path, len(f.Content), s.p.opts.MaxFileSize)
		}
		if f.Mode&^os.ModePerm != 0 {
			return fmt.Errorf("%w: %s: mode %v has more than permission bits", sandbox.ErrInvalid, f.Path, f.Mode)
		}
		req.Files = append(req.Files, agent.FileMeta{Path: f.Path, Mode: uint32(f.Mode.Perm())})
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
	res, data, err := s.call(ctx, agent.Request{Op: agent.OpRead, Path: p, Offset: offset, Max: max, Home: s.p.opts.HomeDir}, nil, max)
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
	res, _, err := s.call(ctx, agent.Request{Op: agent.OpList, Path: dir, Depth: depth, Home: s.p.opts.HomeDir}, nil, 0)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}
