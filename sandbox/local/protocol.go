package local

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// The provider talks to the in-sandbox agent over one stream connection per request (a socketpair
// whose far end the provider hands to the agent with SCM_RIGHTS over the master socket, so the
// agent never has to create a socket itself). Each connection carries frames:
//
//	1 byte type | 4 bytes big-endian payload length | payload
//
// A request is one frameRequest (JSON request) optionally followed by blobs (file contents, the
// command's stdin). A blob is a run of frameData frames ended by an empty frameData frame. The
// agent answers with any number of frameStdout/frameStderr frames (exec only), then one
// frameResult (JSON result), then, for a read, one blob with the bytes.
//
// To cancel an exec, the provider shuts down its writing side; the agent sees EOF, kills the
// command's process tree and still sends the result.
//
// The provider treats everything the agent says as untrusted input (the sandboxed user can take
// over the agent, which runs as the same user): every frame and blob has a size limit.
const (
	frameRequest = 'Q'
	frameResult  = 'R'
	frameData    = 'D'
	frameStdout  = 'O'
	frameStderr  = 'E'

	// maxFrame bounds one frame's payload; blobs are split into chunks of chunkSize.
	maxFrame  = 1 << 20
	chunkSize = 256 << 10
	// maxJSON bounds a JSON frame (a ListFiles result can be large).
	maxJSON = 16 << 20
)

// Operations the agent serves.
const (
	opPing  = "ping"
	opExec  = "exec"
	opWrite = "write"
	opRead  = "read"
	opList  = "list"
)

// request is the JSON header of every request.
type request struct {
	Op string `json:"op"`

	// exec
	Argv      []string `json:"argv,omitempty"`
	Cwd       string   `json:"cwd,omitempty"`
	Env       []string `json:"env,omitempty"`
	TimeoutMs int64    `json:"timeout_ms,omitempty"`
	HasStdin  bool     `json:"has_stdin,omitempty"`

	// write: one blob follows per file, in order.
	Files   []fileMeta `json:"files,omitempty"`
	MaxSize int64      `json:"max_size,omitempty"`

	// read, list
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Max    int64  `json:"max,omitempty"`
	Depth  int    `json:"depth,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

type fileMeta struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// result is the JSON answer to every request.
type result struct {
	Err *wireError `json:"err,omitempty"`

	// exec
	ExitCode   int   `json:"exit_code"`
	TimedOut   bool  `json:"timed_out,omitempty"`
	DurationNs int64 `json:"duration_ns,omitempty"`

	// read: a blob with the bytes follows the result.
	Size int64 `json:"size,omitempty"`

	// list
	Entries []sandbox.FileEntry `json:"entries,omitempty"`
}

// Error kinds on the wire; the provider maps them to the sandbox sentinel errors.
const (
	kindEscape   = "escape"
	kindInvalid  = "invalid"
	kindNotFound = "notfound"
	kindIO       = "io"
)

type wireError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *wireError) Error() string { return e.Message }

// toError turns a wire error into an error wrapping the matching sandbox sentinel.
func (e *wireError) toError() error {
	switch e.Kind {
	case kindEscape:
		return fmt.Errorf("%w: %s", sandbox.ErrPathEscape, e.Message)
	case kindInvalid:
		return fmt.Errorf("%w: %s", sandbox.ErrInvalid, e.Message)
	case kindNotFound:
		return fmt.Errorf("%w: %s", sandbox.ErrNotFound, e.Message)
	default:
		return errors.New(e.Message)
	}
}

var errFrameTooLarge = errors.New("frame too large")

func writeFrame(w io.Writer, typ byte, p []byte) error {
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

func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if int64(n) > int64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes (limit %d)", errFrameTooLarge, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, unexpectedEOF(err)
	}
	return hdr[0], p, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func writeJSON(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, typ, b)
}

// readJSON reads one frame of type typ and decodes it into v.
func readJSON(r *bufio.Reader, typ byte, v any) error {
	t, p, err := readFrame(r, maxJSON)
	if err != nil {
		return err
	}
	if t != typ {
		return fmt.Errorf("protocol error: got frame %q, want %q", t, typ)
	}
	return json.Unmarshal(p, v)
}

func writeBlob(w io.Writer, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), chunkSize)
		if err := writeFrame(w, frameData, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return writeFrame(w, frameData, nil)
}

// readBlob reads a blob of at most max bytes.
func readBlob(r *bufio.Reader, max int64) ([]byte, error) {
	var out []byte
	for {
		t, p, err := readFrame(r, maxFrame)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if t != frameData {
			return nil, fmt.Errorf("protocol error: got frame %q inside a blob", t)
		}
		if len(p) == 0 {
			return out, nil
		}
		if int64(len(out))+int64(len(p)) > max {
			return nil, fmt.Errorf("%w: blob exceeds %d bytes", errFrameTooLarge, max)
		}
		out = append(out, p...)
	}
}
