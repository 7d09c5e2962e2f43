package agent

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The wire protocol between the provider (host) and the agent (sandbox). The provider opens one
// stream connection per request to the agent's listening Unix socket. Each connection carries
// frames:
//
//	1 byte type | 4 bytes big-endian payload length | payload
//
// A request is one FrameRequest (JSON Request) optionally followed by blobs (file contents, a
// command's stdin). A blob is a run of FrameData frames ended by an empty FrameData frame. The
// agent answers with any number of FrameStdout/FrameStderr frames (exec only), then one
// FrameResult (JSON Result), then, for a read or a process status, one blob with the bytes. A
// port request that succeeds turns the connection into a raw byte relay after the result; an
// egress request turns it into a stream of passed descriptors (see egress.go).
//
// To cancel an exec, the provider shuts down its writing side; the agent sees EOF, kills the
// command's process tree and still sends the result. A process-status request that waits is
// cancelled the same way.
//
// The provider treats everything the agent says as untrusted input (the sandboxed user can take
// over the agent, which runs as the same user): every frame and blob has a size limit.
const (
	FrameRequest = 'Q'
	FrameResult  = 'R'
	FrameData    = 'D'
	FrameStdout  = 'O'
	FrameStderr  = 'E'

	// MaxFrame bounds one frame's payload; blobs are split into chunks of ChunkSize.
	MaxFrame  = 1 << 20
	ChunkSize = 256 << 10
	// MaxJSON bounds a JSON frame (a ListFiles result can be large).
	MaxJSON = 16 << 20
)

// Protocol names this version of the protocol. The agent reports it in every init and hello
// answer, and the string is part of every agent binary built from this source, so the provider
// can recognise a stale embedded agent without running it. Change it whenever a change to the
// protocol or to the agent's behaviour makes old agents and new providers disagree.
const Protocol = "sandkit-agent-protocol/4"

// Operations the agent serves.
const (
	// OpInit is the provider's first request: the sandbox environment; the agent exits if it
	// does not arrive within its boot timeout.
	OpInit = "init"
	// OpHello asks a running agent for its state (protocol, environment, deadline), e.g. after
	// a restart of the provider.
	OpHello = "hello"
	// OpDeadline moves the time at which the agent ends the sandbox.
	OpDeadline = "deadline"
	OpExec     = "exec"
	OpWrite    = "write"
	OpRead     = "read"
	OpList     = "list"
	// OpStart starts a background process; OpProcess reports one and its output; OpSignal
	// signals its process group.
	OpStart   = "start"
	OpProcess = "process"
	OpSignal  = "signal"
	// OpPort dials a TCP port inside the sandbox and relays bytes.
	OpPort = "port"
	// OpEgress subscribes to the egress forwarder: after the result, every connection accepted
	// on 127.0.0.1:EgressPort arrives as one EgressMark byte carrying the connection's
	// descriptor (SCM_RIGHTS). A newer subscription replaces an older one.
	OpEgress = "egress"
)

// Request is the JSON header of every request.
type Request struct {
	Op string `json:"op"`

	// exec, start (Env also for init: the sandbox's base environment)
	Argv      []string `json:"argv,omitempty"`
	Cwd       string   `json:"cwd,omitempty"`
	Env       []string `json:"env,omitempty"`
	TimeoutMs int64    `json:"timeout_ms,omitempty"`
	HasStdin  bool     `json:"has_stdin,omitempty"`

	// write: one blob follows per file, in order. Remove lists paths deleted in the same
	// request (directories only with Recursive); every path is checked before anything changes.
	Files     []FileMeta `json:"files,omitempty"`
	MaxSize   int64      `json:"max_size,omitempty"`
	Remove    []string   `json:"remove,omitempty"`
	Recursive bool       `json:"recursive,omitempty"`

	// write, read, list: the sandbox user's home directory, the second root paths may be in
	// (empty: only /workspace).
	Home string `json:"home,omitempty"`

	// read, list
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Max    int64  `json:"max,omitempty"`
	Depth  int    `json:"depth,omitempty"`
	Limit  int    `json:"limit,omitempty"`

	// init, deadline: Unix milliseconds.
	DeadlineMs int64 `json:"deadline_ms,omitempty"`

	// process, signal
	Proc   string `json:"proc,omitempty"`
	Since  int64  `json:"since,omitempty"`
	WaitMs int64  `json:"wait_ms,omitempty"`
	Signal int    `json:"signal,omitempty"`

	// port
	Port int `json:"port,omitempty"`
}

// FileMeta describes one file of a write request.
type FileMeta struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// Result is the JSON answer to every request.
type Result struct {
	Err *WireError `json:"err,omitempty"`

	// exec
	ExitCode   int   `json:"exit_code"`
	TimedOut   bool  `json:"timed_out,omitempty"`
	DurationNs int64 `json:"duration_ns,omitempty"`

	// read: a blob with the bytes follows the result.
	Size int64 `json:"size,omitempty"`

	// list
	Entries []sandbox.FileEntry `json:"entries,omitempty"`

	// init, hello
	Protocol   string   `json:"protocol,omitempty"`
	Env        []string `json:"env,omitempty"`
	DeadlineMs int64    `json:"deadline_ms,omitempty"`

	// start
	Proc string `json:"proc,omitempty"`

	// process: a blob with the output from Process.Offset follows the result.
	Process *ProcessInfo `json:"process,omitempty"`
}

// ProcessInfo describes a background process (see sandbox.ProcessStatus).
type ProcessInfo struct {
	ID        string   `json:"id"`
	Argv      []string `json:"argv"`
	Running   bool     `json:"running"`
	ExitCode  *int     `json:"exit_code,omitempty"`
	StartedNs int64    `json:"started_ns"`
	EndedNs   int64    `json:"ended_ns,omitempty"`
	Offset    int64    `json:"offset"`
	Dropped   int64    `json:"dropped,omitempty"`
}

// Error kinds on the wire; WireError.Err maps them to the sandbox sentinel errors.
const (
	KindEscape   = "escape"
	KindInvalid  = "invalid"
	KindNotFound = "notfound"
	KindRefused  = "refused"
	KindIO       = "io"
)

// WireError is an error the agent reports.
type WireError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *WireError) Error() string { return e.Message }

// Err turns a wire error into an error wrapping the matching sandbox sentinel.
func (e *WireError) Err() error {
	switch e.Kind {
	case KindEscape:
		return fmt.Errorf("%w: %s", sandbox.ErrPathEscape, e.Message)
	case KindInvalid:
		return fmt.Errorf("%w: %s", sandbox.ErrInvalid, e.Message)
	case KindNotFound:
		return fmt.Errorf("%w: %s", sandbox.ErrNotFound, e.Message)
	case KindRefused:
		return fmt.Errorf("%w: %s", sandbox.ErrRefused, e.Message)
	default:
		return errors.New(e.Message)
	}
}

// ErrFrameTooLarge is returned for a frame or blob over its limit.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, typ byte, p []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if len(p) <= 64<<10 {
		// One write keeps small frames atomic on the socket and saves a syscall.
		buf := make([]byte, 0, 5+len(p))
		buf = append(append(buf, hdr[:]...), p...)
		_, err := w.Write(buf)
		return err
	}
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// ReadFrame reads one frame whose payload is at most max bytes. It never reads past the frame,
// so r may be an unbuffered connection that carries raw bytes afterwards.
func ReadFrame(r io.Reader, max int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if int64(n) > int64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrFrameTooLarge, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, UnexpectedEOF(err)
	}
	return hdr[0], p, nil
}

// UnexpectedEOF turns io.EOF into io.ErrUnexpectedEOF: the peer hung up mid-answer.
func UnexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteJSON writes v as one frame of type typ.
func WriteJSON(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, typ, b)
}

// ReadJSON reads one frame of type typ and decodes it into v.
func ReadJSON(r io.Reader, typ byte, v any) error {
	t, p, err := ReadFrame(r, MaxJSON)
	if err != nil {
		return err
	}
	if t != typ {
		return fmt.Errorf("protocol error: got frame %q, want %q", t, typ)
	}
	return json.Unmarshal(p, v)
}

// WriteBlob writes data as a blob.
func WriteBlob(w io.Writer, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), ChunkSize)
		if err := WriteFrame(w, FrameData, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return WriteFrame(w, FrameData, nil)
}

// ReadBlob reads a blob of at most max bytes.
func ReadBlob(r *bufio.Reader, max int64) ([]byte, error) {
	var out []byte
	for {
		t, p, err := ReadFrame(r, MaxFrame)
		if err != nil {
			return nil, UnexpectedEOF(err)
		}
		if t != FrameData {
			return nil, fmt.Errorf("protocol error: got frame %q inside a blob", t)
		}
		if len(p) == 0 {
			return out, nil
		}
		if int64(len(out))+int64(len(p)) > max {
			return nil, fmt.Errorf("%w: blob exceeds %d bytes", ErrFrameTooLarge, max)
		}
		out = append(out, p...)
	}
}
