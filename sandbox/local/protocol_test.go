package local

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	big := bytes.Repeat([]byte("x"), 3*chunkSize+17)
	if err := writeJSON(&buf, frameRequest, request{Op: opExec, Argv: []string{"echo", "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := writeBlob(&buf, big); err != nil {
		t.Fatal(err)
	}
	if err := writeBlob(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&buf, frameStdout, []byte("out")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	var req request
	if err := readJSON(r, frameRequest, &req); err != nil {
		t.Fatal(err)
	}
	if req.Op != opExec || strings.Join(req.Argv, " ") != "echo hi" {
		t.Fatalf("request = %+v", req)
	}
	got, err := readBlob(r, int64(len(big)))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("blob: %d bytes, err %v", len(got), err)
	}
	empty, err := readBlob(r, 10)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty blob: %q, %v", empty, err)
	}
	typ, p, err := readFrame(r, maxFrame)
	if err != nil || typ != frameStdout || string(p) != "out" {
		t.Fatalf("frame %q %q %v", typ, p, err)
	}
}

func TestFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	_ = writeBlob(&buf, bytes.Repeat([]byte("y"), 100))
	if _, err := readBlob(bufio.NewReader(&buf), 99); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized blob: err = %v, want errFrameTooLarge", err)
	}
	buf.Reset()
	_ = writeFrame(&buf, frameData, bytes.Repeat([]byte("z"), 1000))
	if _, _, err := readFrame(bufio.NewReader(&buf), 999); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized frame: err = %v", err)
	}
	// A truncated frame is an error, not a short read.
	buf.Reset()
	_ = writeFrame(&buf, frameData, []byte("abcdef"))
	trunc := bufio.NewReader(bytes.NewReader(buf.Bytes()[:8]))
	if _, _, err := readFrame(trunc, maxFrame); err == nil {
		t.Fatal("truncated frame read without error")
	}
}

func TestWsRel(t *testing.T) {
	cases := []struct {
		in, want string
		kind     string
	}{
		{"a.txt", "a.txt", ""},
		{"src/../b", "b", ""},
		{"./c/", "c", ""},
		{"/workspace", ".", ""},
		{"/workspace/", ".", ""},
		{"/workspace/x/y", "x/y", ""},
		{".", ".", ""},
		{"", "", kindInvalid},
		{"a\x00b", "", kindInvalid},
		{"..", "", kindEscape},
		{"../x", "", kindEscape},
		{"a/../../x", "", kindEscape},
		{"/etc/passwd", "", kindEscape},
		{"/workspace/../etc/passwd", "", kindEscape},
		{"/workspacex/a", "", kindEscape},
		{"/", "", kindEscape},
	}
	for _, c := range cases {
		got, werr := wsRel(c.in)
		if c.kind != "" {
			if werr == nil || werr.Kind != c.kind {
				t.Errorf("wsRel(%q) = %q, %v; want kind %s", c.in, got, werr, c.kind)
			}
			continue
		}
		if werr != nil || got != c.want {
			t.Errorf("wsRel(%q) = %q, %v; want %q", c.in, got, werr, c.want)
		}
	}
}

func TestWireErrorsMapToSentinels(t *testing.T) {
	for kind, want := range map[string]error{kindEscape: sandbox.ErrPathEscape, kindInvalid: sandbox.ErrInvalid, kindNotFound: sandbox.ErrNotFound} {
		err := (&wireError{Kind: kind, Message: "p: boom"}).toError()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "p: boom") {
			t.Errorf("%s -> %v", kind, err)
		}
	}
}

func TestSeccompProgramShape(t *testing.T) {
	if !seccompSupported() {
		t.Fatal("no seccomp filter for this architecture; the provider supports amd64 and arm64")
	}
	prog := seccompProgram()
	if len(prog)%8 != 0 || len(prog)/8 < 10 || len(prog)/8 > 64 {
		t.Fatalf("program of %d bytes", len(prog))
	}
}
