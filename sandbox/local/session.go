//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
)

// The live-sandbox part of the contract: reconnecting, deadlines, background processes and
// ports. Background processes and their output live in the agent (package agent), so they
// survive a restart of the provider like the sandbox itself.

// Reconnect implements sandbox.Provider. It returns the handle of a live (Detached) sandbox this
// provider started or adopted when it was opened (New adopts every live sandbox it finds in its
// directory); the same handle each time. An adopted sandbox's agent is asked for its
// environment and deadline on the first Reconnect.
func (p *Provider) Reconnect(ctx context.Context, id string) (sandbox.Sandbox, error) {
	notFound := fmt.Errorf("%w: no live sandbox %q in the local provider (it ended, was not started with Detached, or belongs to another data directory)", sandbox.ErrNotFound, id)
	if !idRe.MatchString(id) {
		return nil, notFound
	}
	p.mu.Lock()
	s := p.running[id]
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: local provider is closed", sandbox.ErrUnavailable)
	}
	if s == nil || !s.detached {
		return nil, notFound
	}
	if err := s.checkRunning(); err != nil {
		return nil, fmt.Errorf("%w: sandbox %s: %v", sandbox.ErrNotFound, id, err)
	}
	if err := s.hello(ctx); err != nil {
		if errors.Is(err, sandbox.ErrEnded) {
			return nil, fmt.Errorf("%w: sandbox %s: %v", sandbox.ErrNotFound, id, err)
		}
		return nil, fmt.Errorf("reconnect to sandbox %s: %w", id, err)
	}
	return s, nil
}

// hello asks the agent of an adopted sandbox for its environment and deadline, once.
func (s *localSandbox) hello(ctx context.Context) error {
	s.mu.Lock()
	known := s.env != nil
	s.mu.Unlock()
	if known {
		return nil
	}
	res, _, err := s.call(ctx, agent.Request{Op: agent.OpHello}, nil, 0)
	if err != nil {
		return err
	}
	if res.Protocol != agent.Protocol {
		return fmt.Errorf("%w: the agent of sandbox %s speaks %q, this provider %q; stop the sandbox (it was started by another version)", sandbox.ErrUnavailable, s.id, res.Protocol, agent.Protocol)
	}
	env := map[string]string{}
	for _, kv := range res.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if len(env) == 0 {
		env = baseEnv(s.p.opts.HomeDir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env == nil {
		s.env = env
	}
	if res.DeadlineMs > 0 {
		if d := time.UnixMilli(res.DeadlineMs); !d.Equal(s.deadline) {
			s.deadline = d
			if s.state == stateRunning {
				s.armTimerLocked()
			}
		}
	}
	return nil
}

// Sandboxes implements sandbox.Provider: the live (Detached) sandboxes that still run, started
// by this provider or adopted when it was opened.
func (p *Provider) Sandboxes(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	all := make([]*localSandbox, 0, len(p.running))
	for _, s := range p.running {
		all = append(all, s)
	}
	p.mu.Unlock()
	ids := []string{}
	for _, s := range all {
		if s.detached && s.checkRunning() == nil {
			ids = append(ids, s.id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Deadline implements sandbox.Sandbox.
func (s *localSandbox) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Extend implements sandbox.Sandbox. The new deadline is recorded (meta.json) before the agent
// enforces it, so a provider that crashes in between errs on the side of the longer life: the
// agent still ends the sandbox at the deadline it knows.
func (s *localSandbox) Extend(ctx context.Context, until time.Time) error {
	if !until.After(time.Now()) {
		return fmt.Errorf("%w: cannot move the deadline of sandbox %s to %s: that is in the past", sandbox.ErrInvalid, s.id, until.Format(time.RFC3339))
	}
	if err := s.checkRunning(); err != nil {
		return err
	}
	s.endMu.Lock() // no Snapshot or Stop meanwhile, and one Extend at a time
	defer s.endMu.Unlock()
	if err := s.checkRunning(); err != nil {
		return err
	}
	if s.detached {
		m := s.meta
		m.Deadline = until.UTC()
		if err := writeMeta(s.dir, m); err != nil {
			return fmt.Errorf("extend sandbox %s: record the deadline: %w", s.id, err)
		}
	}
	if _, _, err := s.call(ctx, agent.Request{Op: agent.OpDeadline, DeadlineMs: until.UnixMilli()}, nil, 0); err != nil {
		if s.detached {
			_ = writeMeta(s.dir, s.meta)
		}
		return fmt.Errorf("extend sandbox %s: %w", s.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta.Deadline = until.UTC()
	s.deadline = until
	if s.state == stateRunning {
		s.armTimerLocked()
	}
	return nil
}

// StartProcess implements sandbox.Sandbox.
func (s *localSandbox) StartProcess(ctx context.Context, req sandbox.ExecRequest) (string, error) {
	wreq, err := s.execRequest(agent.OpStart, req)
	if err != nil {
		return "", err
	}
	var blobs [][]byte
	if req.Stdin != nil {
		blobs = [][]byte{req.Stdin}
	}
	res, _, err := s.call(ctx, wreq, blobs, 0)
	if err != nil {
		return "", err
	}
	if res.Proc == "" {
		return "", fmt.Errorf("start process in sandbox %s: the agent returned no process id", s.id)
	}
	return res.Proc, nil
}

// Process implements sandbox.Sandbox. A since past the end of the output is invalid.
func (s *localSandbox) Process(ctx context.Context, id string, since int64, wait time.Duration) (sandbox.ProcessStatus, error) {
	if since < 0 {
		return sandbox.ProcessStatus{}, fmt.Errorf("%w: negative output offset %d", sandbox.ErrInvalid, since)
	}
	req := agent.Request{Op: agent.OpProcess, Proc: id, Since: since}
	if wait > 0 {
		req.WaitMs = max(wait.Milliseconds(), 1)
	}
	res, data, err := s.call(ctx, req, nil, agent.MaxLog)
	if err != nil {
		return sandbox.ProcessStatus{}, err
	}
	pi := res.Process
	if pi == nil || len(pi.Argv) == 0 || pi.Offset < since {
		return sandbox.ProcessStatus{}, fmt.Errorf("process %s in sandbox %s: the agent answered nonsense", id, s.id)
	}
	if data == nil {
		data = []byte{}
	}
	st := sandbox.ProcessStatus{
		ID:       pi.ID,
		Command:  pi.Argv[0],
		Args:     pi.Argv[1:],
		Running:  pi.Running,
		ExitCode: pi.ExitCode,
		Started:  time.Unix(0, pi.StartedNs),
		Output:   data,
		Offset:   pi.Offset,
		Dropped:  pi.Dropped,
		Next:     pi.Offset + int64(len(data)),
	}
	if pi.EndedNs != 0 {
		st.Ended = time.Unix(0, pi.EndedNs)
	}
	return st, nil
}

// Signal implements sandbox.Sandbox.
func (s *localSandbox) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	if sig < 0 || sig > 64 {
		return fmt.Errorf("%w: %d is not a signal number", sandbox.ErrInvalid, int(sig))
	}
	_, _, err := s.call(ctx, agent.Request{Op: agent.OpSignal, Proc: id, Signal: int(sig)}, nil, 0)
	return err
}

// PortURL implements sandbox.Sandbox: the local provider relays ports through DialPort, and the
// server hands out URLs on its own preview listener.
func (s *localSandbox) PortURL(context.Context, int) (string, error) {
	return "", fmt.Errorf("%w: the local provider relays ports through DialPort; it serves no URLs itself", sandbox.ErrUnsupported)
}

// DialPort implements sandbox.Sandbox: the agent connects to 127.0.0.1:port (or [::1]:port)
// inside the sandbox and relays bytes over a connection to its socket. The returned connection
// supports CloseWrite (half-close), which reaches the server in the sandbox as an EOF.
func (s *localSandbox) DialPort(ctx context.Context, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d is not a TCP port (1-65535)", sandbox.ErrInvalid, port)
	}
	c, err := s.dial()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	stop := s.guard(ctx, c, func() { _ = c.SetDeadline(time.Now()) })
	err = agent.WriteJSON(c, agent.FrameRequest, agent.Request{Op: agent.OpPort, Port: port})
	var res agent.Result
	if err == nil {
		// Unbuffered: the relayed bytes follow the result on the same connection.
		err = agent.ReadJSON(c, agent.FrameResult, &res)
	}
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.lostAgent(agent.UnexpectedEOF(err))
	}
	// ctx bounds the dialing only: undo a cancellation that raced the answer.
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", s.id, res.Err.Err())
	}
	ok = true
	return &portConn{UnixConn: c, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, sandbox: s.id}, nil
}

// portConn is a relayed connection to a port inside a sandbox.
type portConn struct {
	*net.UnixConn
	remote  *net.TCPAddr
	sandbox string
}

// RemoteAddr is the address inside the sandbox.
func (c *portConn) RemoteAddr() net.Addr { return c.remote }

func (c *portConn) String() string {
	return "sandbox " + c.sandbox + " port " + strconv.Itoa(c.remote.Port)
}
