package vercel

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
)

// vsandbox is one Vercel session seen through the provider contract.
type vsandbox struct {
	p        *Provider
	sid      string // Vercel session id: the sandbox's ID
	name     string // the named sandbox owning the session
	detached bool
	routes   map[int]string
	started  time.Time
	warnings []string

	mu       sync.Mutex
	deadline time.Time
	ended    bool
}

// ID implements sandbox.Sandbox.
func (s *vsandbox) ID() string { return s.sid }

// Warnings implements sandbox.Sandbox.
func (s *vsandbox) Warnings() []string { return s.warnings }

// check fails with ErrEnded once the sandbox was snapshotted or stopped through this handle, or
// its deadline has passed.
func (s *vsandbox) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return fmt.Errorf("%w: Vercel sandbox %s was snapshotted or stopped", sandbox.ErrEnded, s.sid)
	}
	if time.Now().After(s.deadline) {
		return fmt.Errorf("%w: Vercel sandbox %s reached its deadline %s", sandbox.ErrEnded, s.sid, s.deadline.Format(time.RFC3339))
	}
	return nil
}

// end marks the sandbox ended and reports whether it was running until now.
func (s *vsandbox) end() bool {
	s.mu.Lock()
	was := !s.ended
	s.ended = true
	s.mu.Unlock()
	s.p.forget(s.sid)
	return was
}

// api maps an API error for this sandbox: an ended session says so in the contract's terms.
func (s *vsandbox) api(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sandbox.ErrEnded) {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		s.p.forget(s.sid)
	}
	return err
}

// initWorkspace makes /workspace, owned by the sandbox user, in a fresh VM (Vercel's working
// directory is /vercel/sandbox; sandkit keeps every provider's workspace at /workspace).
func (s *vsandbox) initWorkspace(ctx context.Context) error {
	var out bytes.Buffer
	cmd, err := s.p.c.runCommand(ctx, s.sid, commandRequest{
		Command: "/bin/sh", Sudo: true, Cwd: "/",
		Args: []string{"-c", `[ -d /workspace ] && [ -w /workspace ] && exit 0
mkdir -p /workspace && chown "$(stat -c %u:%g /vercel/sandbox 2>/dev/null || echo 1000:1000)" /workspace`},
	}, &out, &out)
	if err != nil {
		return fmt.Errorf("vercel: preparing /workspace in a new sandbox: %w", err)
	}
	if cmd.ExitCode == nil || *cmd.ExitCode != 0 {
		return fmt.Errorf("%w: vercel: could not create /workspace in a new sandbox: %s", sandbox.ErrUnavailable, strings.TrimSpace(out.String()))
	}
	return nil
}

// Exec implements sandbox.Sandbox: the command runs attached (one NDJSON stream; a cut stream is
// recovered without running the command again).
func (s *vsandbox) Exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if err := s.check(); err != nil {
		return sandbox.ExecResult{}, err
	}
	creq, err := s.command(ctx, req)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if req.Timeout > 0 {
		creq.Timeout = req.Timeout
	}
	began := time.Now()
	cmd, err := s.p.c.runCommand(ctx, s.sid, creq, req.Stdout, req.Stderr)
	took := time.Since(began)
	if err != nil {
		if ctx.Err() != nil {
			return sandbox.ExecResult{}, ctx.Err()
		}
		return sandbox.ExecResult{}, s.api(err)
	}
	res := sandbox.ExecResult{ExitCode: -1, Duration: took}
	if cmd.DurationMs != nil {
		res.Duration = time.Duration(*cmd.DurationMs) * time.Millisecond
	}
	if cmd.ExitCode != nil {
		res.ExitCode = *cmd.ExitCode
	}
	if req.Timeout > 0 && took >= req.Timeout && (res.ExitCode == 128+int(syscall.SIGKILL) || res.ExitCode < 0) {
		res.TimedOut, res.ExitCode = true, -1
	}
	return res, nil
}

// command builds the API request for req, uploading its stdin to a file in the VM first.
func (s *vsandbox) command(ctx context.Context, req sandbox.ExecRequest) (commandRequest, error) {
	if req.Command == "" {
		return commandRequest{}, fmt.Errorf("%w: empty command", sandbox.ErrInvalid)
	}
	stdin := "-"
	if len(req.Stdin) > 0 {
		var b [12]byte
		_, _ = rand.Read(b[:])
		stdin = "/tmp/.sandkit-stdin-" + nameEncoding.EncodeToString(b[:])
		if err := s.p.c.writeFiles(ctx, s.sid, "/", []fileToWrite{{Path: stdin[1:], Content: req.Stdin, Mode: 0o600}}); err != nil {
			return commandRequest{}, s.api(err)
		}
	}
	name, args := wrapped(stdin, req.Command, req.Args)
	return commandRequest{Command: name, Args: args, Cwd: execCwd(req.Cwd), Env: req.Env}, nil
}

// fsOp runs vmScript with op and args and returns its stdout; exit statuses become the
// contract's errors, naming what.
func (s *vsandbox) fsOp(ctx context.Context, what string, op string, args ...string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out, errb bytes.Buffer
	cmd, err := s.p.c.runCommand(ctx, s.sid, commandRequest{
		Command: "/bin/sh", Args: append([]string{"-c", vmScript, fsName, op}, args...), Cwd: "/",
	}, &out, &errb)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.api(err)
	}
	code := -1
	if cmd.ExitCode != nil {
		code = *cmd.ExitCode
	}
	detail := strings.TrimSpace(out.String())
	if detail == "" {
		detail = what
	} else if code != 0 {
		detail = s.p.display(detail)
	}
	switch code {
	case 0:
		return out.Bytes(), nil
	case 10:
		return nil, fmt.Errorf("%w: %s (it resolves, through a symbolic link, outside its root, /workspace or %s)", sandbox.ErrPathEscape, detail, s.p.opts.HomeDir)
	case 11:
		return nil, fmt.Errorf("%w: %s is a directory", sandbox.ErrInvalid, detail)
	case 12:
		return nil, fmt.Errorf("%w: %s: no such file or directory", sandbox.ErrNotFound, detail)
	case 13:
		return nil, fmt.Errorf("%w: %s is not a regular file or directory where one is needed", sandbox.ErrInvalid, detail)
	case 15:
		return nil, fmt.Errorf("%w: %s is a root directory itself, which cannot be removed; remove the entries inside it instead", sandbox.ErrInvalid, detail)
	case 16:
		return nil, fmt.Errorf("%w: %s is a directory; remove it with recursive set", sandbox.ErrInvalid, detail)
	}
	return nil, fmt.Errorf("vercel: %s failed in sandbox %s (exit %d): %s", what, s.sid, code, strings.TrimSpace(errb.String()))
}

// WriteFiles implements sandbox.Sandbox.
func (s *vsandbox) WriteFiles(ctx context.Context, files []sandbox.File) error {
	return s.ChangeFiles(ctx, sandbox.FileChanges{Write: files})
}

// ChangeFiles implements sandbox.Sandbox: one script in the VM checks every path (symlinks
// included), removes what is to be removed and answers the resolved targets of the writes; the
// files then travel as one gzip tar to those targets. Vercel has no endpoint to delete files (the
// SDK runs rm too, reference §8).
func (s *vsandbox) ChangeFiles(ctx context.Context, c sandbox.FileChanges) error {
	if len(c.Write) == 0 && len(c.Remove) == 0 {
		return s.check()
	}
	rec := "0"
	if c.Recursive {
		rec = "1"
	}
	args := []string{rec, strconv.Itoa(len(c.Remove))}
	removed := make([]vmPath, len(c.Remove))
	for i, r := range c.Remove {
		v, err := s.p.split(r)
		if err != nil {
			return err
		}
		if v.rel == "." {
			return fmt.Errorf("%w: %q is a root directory itself, which cannot be removed; remove the entries inside it instead", sandbox.ErrInvalid, r)
		}
		removed[i] = v
		args = append(args, v.arg())
	}
	for _, f := range c.Write {
		if int64(len(f.Content)) > s.p.opts.MaxFileSize {
			return fmt.Errorf("%w: %s: %d bytes is more than the %d bytes a file may have", sandbox.ErrInvalid, f.Path, len(f.Content), s.p.opts.MaxFileSize)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("%w: %s: mode %v has more than permission bits", sandbox.ErrInvalid, f.Path, f.Mode)
		}
		v, err := s.p.split(f.Path)
		if err != nil {
			return err
		}
		if v.rel == "." || strings.HasSuffix(f.Path, "/") {
			return fmt.Errorf("%w: %q is a directory, not a file path", sandbox.ErrInvalid, f.Path)
		}
		for i, r := range removed {
			if r.root == v.root && (sandbox.Within(v.rel, r.rel) || sandbox.Within(r.rel, v.rel)) {
				return fmt.Errorf("%w: %s is written and %s removed in the same call; write and remove in separate calls", sandbox.ErrInvalid, f.Path, c.Remove[i])
			}
		}
		args = append(args, v.arg())
	}
	out, err := s.fsOp(ctx, "checking the paths", "change", args...)
	if err != nil || len(c.Write) == 0 {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(out)))
	if err != nil {
		return fmt.Errorf("vercel: writing files: the checked paths came back damaged: %v", err)
	}
	targets := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	if len(targets) != len(c.Write) {
		return fmt.Errorf("vercel: writing files: the sandbox checked %d paths, not %d", len(targets), len(c.Write))
	}
	files := make([]fileToWrite, len(c.Write))
	for i, f := range c.Write {
		t := path.Clean(targets[i])
		if !path.IsAbs(t) || t == "/" {
			return fmt.Errorf("vercel: writing %s: the sandbox resolved it to %q", f.Path, clip([]byte(t)))
		}
		files[i] = fileToWrite{Path: t[1:], Content: f.Content, Mode: f.Mode.Perm()}
	}
	return s.api(s.p.c.writeFiles(ctx, s.sid, "/", files))
}

// ReadFile implements sandbox.Sandbox.
func (s *vsandbox) ReadFile(ctx context.Context, p string, offset, max int64) (sandbox.FileContent, error) {
	if offset < 0 {
		return sandbox.FileContent{}, fmt.Errorf("%w: negative offset %d", sandbox.ErrInvalid, offset)
	}
	if max <= 0 || max > s.p.opts.MaxFileSize {
		max = s.p.opts.MaxFileSize
	}
	v, err := s.p.split(p)
	if err != nil {
		return sandbox.FileContent{}, err
	}
	out, err := s.fsOp(ctx, p, "read", v.arg(), strconv.FormatInt(offset, 10), strconv.FormatInt(max, 10))
	if err != nil {
		return sandbox.FileContent{}, err
	}
	sizeLine, data, _ := bytes.Cut(out, []byte("\n"))
	size, err := strconv.ParseInt(string(sizeLine), 10, 64)
	if err != nil {
		return sandbox.FileContent{}, fmt.Errorf("vercel: reading %s: unexpected answer from the sandbox: %q", p, clip(out))
	}
	dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return sandbox.FileContent{}, fmt.Errorf("vercel: reading %s: the content came back damaged: %v", p, err)
	}
	return sandbox.FileContent{Data: dec, Size: size}, nil
}

// ListFiles implements sandbox.Sandbox.
func (s *vsandbox) ListFiles(ctx context.Context, dir string, depth int) ([]sandbox.FileEntry, error) {
	if dir == "" {
		dir = "."
	}
	if depth < 1 {
		depth = 1
	}
	v, err := s.p.split(dir)
	if err != nil {
		return nil, err
	}
	out, err := s.fsOp(ctx, dir, "list", v.arg(), strconv.Itoa(depth))
	if err != nil {
		return nil, err
	}
	resolved, data, _ := bytes.Cut(out, []byte("\n"))
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("vercel: listing %s: the listing came back damaged: %v", dir, err)
	}
	// Entries in /workspace are named relative to it, those in the home absolutely (the
	// contract's FileEntry.Path).
	base := strings.TrimPrefix(string(resolved), "/")
	if v.root == 'h' {
		base = path.Join(s.p.opts.HomeDir, base)
	}
	entries := []sandbox.FileEntry{}
	for rec := range bytes.SplitSeq(raw, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		f := strings.SplitN(string(rec), "\t", 6)
		if len(f) != 6 {
			return nil, fmt.Errorf("vercel: listing %s: unexpected entry %q", dir, clip(rec))
		}
		e := sandbox.FileEntry{Path: path.Join(base, f[4])}
		switch f[0] {
		case "f":
			e.Type = "file"
			e.Size, _ = strconv.ParseInt(f[1], 10, 64)
		case "d":
			e.Type = "dir"
		case "l":
			e.Type, e.Target = "symlink", f[5]
		default:
			e.Type = "other"
		}
		if m, err := strconv.ParseUint(f[2], 8, 32); err == nil {
			e.Mode = fs.FileMode(m) & fs.ModePerm
		}
		if sec, err := strconv.ParseFloat(f[3], 64); err == nil {
			e.ModTime = time.Unix(0, int64(sec*1e9)).UTC()
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// Snapshot implements sandbox.Sandbox: Vercel stops the VM as it snapshots it. When the answer
// is lost, the snapshot is looked up by the session it came from rather than taken twice. Vercel
// cannot tell what changed, so there is always a new snapshot and Changes.Known is false.
func (s *vsandbox) Snapshot(ctx context.Context) (sandbox.SnapshotInfo, error) {
	if err := s.check(); err != nil {
		return sandbox.SnapshotInfo{}, err
	}
	var exp *time.Duration
	e := s.p.opts.SnapshotExpiration
	exp = &e
	snap, _, err := s.p.c.snapshot(ctx, s.sid, exp)
	if err != nil && !errors.Is(err, sandbox.ErrInvalid) && !errors.Is(err, sandbox.ErrNotFound) && ctx.Err() == nil {
		// The request may have been carried out: find a snapshot of this session.
		if snaps, lerr := s.p.c.listSnapshots(ctx, s.name); lerr == nil {
			for _, c := range snaps {
				if c.SourceSessionID == s.sid && c.Status == "created" {
					snap, err = c, nil
					break
				}
			}
		}
	}
	s.end()
	if err != nil {
		_ = s.stopRemote(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return sandbox.SnapshotInfo{}, ctx.Err()
		}
		return sandbox.SnapshotInfo{}, err
	}
	return sandbox.SnapshotInfo{Ref: sandbox.SnapshotRef(snap.ID)}, nil
}

// Stop implements sandbox.Sandbox: the session is stopped and its named sandbox deleted.
func (s *vsandbox) Stop(ctx context.Context) error {
	if !s.end() {
		return nil
	}
	return s.stopRemote(ctx)
}

// stopRemote stops the session and deletes its named sandbox; both already gone is fine.
func (s *vsandbox) stopRemote(ctx context.Context) error {
	if _, err := s.p.c.stopSession(ctx, s.sid); err != nil && !ended(err) {
		return err
	}
	if err := s.p.c.deleteSandbox(ctx, s.name); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return err
	}
	return nil
}

// Deadline implements sandbox.Sandbox.
func (s *vsandbox) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Extend implements sandbox.Sandbox. Vercel only extends: an earlier deadline fails with
// ErrUnsupported (Capabilities.FixedDeadline), one past the plan limit with ErrInvalid.
func (s *vsandbox) Extend(ctx context.Context, until time.Time) error {
	if err := s.check(); err != nil {
		return err
	}
	if !until.After(time.Now()) {
		return fmt.Errorf("%w: deadline %s is in the past", sandbox.ErrInvalid, until.Format(time.RFC3339))
	}
	cur := s.Deadline()
	if until.Before(cur) {
		return fmt.Errorf("%w: a Vercel sandbox's deadline can only move later (it is %s)", sandbox.ErrUnsupported, cur.Format(time.RFC3339))
	}
	if until.Sub(s.started) > s.p.opts.MaxLifetime {
		return fmt.Errorf("%w: until %s would make Vercel sandbox %s live %v, more than the %v its plan allows", sandbox.ErrInvalid, until.Format(time.RFC3339), s.sid, until.Sub(s.started).Round(time.Second), s.p.opts.MaxLifetime)
	}
	d := until.Sub(cur).Round(time.Millisecond)
	if d < time.Second {
		d = time.Second // Vercel's smallest extension
	}
	sess, err := s.p.c.extendTimeout(ctx, s.sid, d)
	if err != nil {
		return s.api(err)
	}
	s.mu.Lock()
	s.deadline = sess.deadline()
	s.mu.Unlock()
	return nil
}

// StartProcess implements sandbox.Sandbox: a detached command; its id is the process id.
func (s *vsandbox) StartProcess(ctx context.Context, req sandbox.ExecRequest) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	creq, err := s.command(ctx, req)
	if err != nil {
		return "", err
	}
	cmd, err := s.p.c.startCommand(ctx, s.sid, creq)
	if err != nil {
		return "", s.api(err)
	}
	return cmd.ID, nil
}

// Process implements sandbox.Sandbox. Vercel's log stream replays a command's whole output and
// then follows it, so each call reads it from the start and keeps the window asked for. The
// replay is over once the stream ends (the process exited) or falls quiet for logQuiet; with
// wait, the call then goes on until output past since arrives or wait has passed.
func (s *vsandbox) Process(ctx context.Context, id string, since int64, wait time.Duration) (sandbox.ProcessStatus, error) {
	if err := s.check(); err != nil {
		return sandbox.ProcessStatus{}, err
	}
	since = max(since, 0)
	var (
		mu      sync.Mutex
		total   int64
		buf     []byte // output from since on, at most MaxProcessLog bytes (the newest)
		dropped int64
		last    = time.Now()
		news    time.Time // when the first output past since arrived
	)
	collect := func(_ string, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		last = time.Now()
		start := total
		total += int64(len(data))
		if total <= since {
			return
		}
		if start < since {
			data = data[since-start:]
		}
		if news.IsZero() {
			news = time.Now()
		}
		buf = append(buf, data...)
		if over := len(buf) - sandbox.MaxProcessLog; over > 0 {
			dropped += int64(over)
			buf = buf[over:]
		}
	}
	// A process that has exited: its stream ends by itself once replayed.
	pre, err := s.p.c.getCommand(ctx, s.sid, id)
	if err != nil {
		return sandbox.ProcessStatus{}, s.api(err)
	}
	exited := pre.ExitCode != nil
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		if exited {
			return
		}
		t := time.NewTicker(logNews / 4)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			quiet, got := time.Since(last) >= logQuiet, !news.IsZero()
			fresh := got && time.Since(news) >= logNews
			mu.Unlock()
			// Stop once there is news (what follows it closely comes along), or once the
			// replay is done (quiet) and wait is over.
			if fresh || quiet && time.Since(began) >= wait {
				cancel()
				return
			}
		}
	}()
	_, err = s.p.c.readLogs(lctx, s.sid, id, 0, collect)
	cancel()
	<-watch
	if err != nil && ctx.Err() == nil && lctx.Err() != nil {
		err = nil // our own end of the read
	}
	if err != nil {
		if ctx.Err() != nil {
			return sandbox.ProcessStatus{}, ctx.Err()
		}
		return sandbox.ProcessStatus{}, s.api(err)
	}
	cmd, err := s.p.c.getCommand(ctx, s.sid, id)
	if err != nil {
		return sandbox.ProcessStatus{}, s.api(err)
	}
	name, args := unwrap(cmd.Name, cmd.Args)
	st := sandbox.ProcessStatus{
		ID: id, Command: name, Args: args, Running: cmd.ExitCode == nil, ExitCode: cmd.ExitCode,
		Started: time.UnixMilli(cmd.StartedAt).UTC(), Output: buf,
	}
	if cmd.ExitCode != nil && cmd.DurationMs != nil {
		st.Ended = st.Started.Add(time.Duration(*cmd.DurationMs) * time.Millisecond)
	}
	if st.Output == nil {
		st.Output = []byte{}
	}
	st.Offset, st.Dropped = since+dropped, dropped
	if total < since {
		st.Offset, st.Dropped = total, 0
	}
	st.Next = st.Offset + int64(len(st.Output))
	return st, nil
}

// logQuiet is how long a log stream must bring nothing before Process takes its replay as done;
// logNews how long Process reads on once output past since has come.
const (
	logQuiet = 150 * time.Millisecond
	logNews  = 100 * time.Millisecond
)

// Signal implements sandbox.Sandbox.
func (s *vsandbox) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	if sig < 1 || sig > 64 {
		return fmt.Errorf("%w: %d is not a signal number", sandbox.ErrInvalid, int(sig))
	}
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.p.c.killCommand(ctx, s.sid, id, int(sig))
	if err != nil && !errors.Is(err, sandbox.ErrEnded) {
		// Signalling a process that has exited is not an error.
		if cmd, gerr := s.p.c.getCommand(ctx, s.sid, id); gerr == nil && cmd.ExitCode != nil {
			return nil
		}
	}
	return s.api(err)
}

// DialPort implements sandbox.Sandbox: Vercel serves ports at public URLs only (PortURL).
func (s *vsandbox) DialPort(context.Context, int) (net.Conn, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: Vercel sandboxes serve ports at public URLs (PortURL), not through raw connections", sandbox.ErrUnsupported)
}

// PortURL implements sandbox.Sandbox: the route Vercel made for the port at Start.
func (s *vsandbox) PortURL(ctx context.Context, port int) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	u, ok := s.routes[port]
	if !ok {
		ports := make([]int, 0, len(s.routes))
		for p := range s.routes {
			ports = append(ports, p)
		}
		sort.Ints(ports)
		return "", fmt.Errorf("%w: port %d was not exposed when Vercel sandbox %s started (exposed: %v)", sandbox.ErrInvalid, port, s.sid, ports)
	}
	return u, nil
}

// SetPolicy implements sandbox.Sandbox.
func (s *vsandbox) SetPolicy(ctx context.Context, p policies.Policy) error {
	if err := s.check(); err != nil {
		return err
	}
	np, _, err := compilePolicy(p, s.p.opts.Getenv)
	if err != nil {
		return err
	}
	_, err = s.p.c.setNetworkPolicy(ctx, s.sid, np)
	return s.api(err)
}

// clip shortens b for an error message.
func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
