package agent

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
	big := bytes.Repeat([]byte("x"), 3*ChunkSize+17)
	if err := WriteJSON(&buf, FrameRequest, Request{Op: OpExec, Argv: []string{"echo", "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteBlob(&buf, big); err != nil {
		t.Fatal(err)
	}
	if err := WriteBlob(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameStdout, []byte("out")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	var req Request
	if err := ReadJSON(r, FrameRequest, &req); err != nil {
		t.Fatal(err)
	}
	if req.Op != OpExec || strings.Join(req.Argv, " ") != "echo hi" {
		t.Fatalf("request = %+v", req)
	}
	got, err := ReadBlob(r, int64(len(big)))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("blob: %d bytes, err %v", len(got), err)
	}
	empty, err := ReadBlob(r, 10)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty blob: %q, %v", empty, err)
	}
	typ, p, err := ReadFrame(r, MaxFrame)
	if err != nil || typ != FrameStdout || string(p) != "out" {
		t.Fatalf("frame %q %q %v", typ, p, err)
	}
}

func TestFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteBlob(&buf, bytes.Repeat([]byte("y"), 100))
	if _, err := ReadBlob(bufio.NewReader(&buf), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized blob: err = %v, want ErrFrameTooLarge", err)
	}
	buf.Reset()
	_ = WriteFrame(&buf, FrameData, bytes.Repeat([]byte("z"), 1000))
	if _, _, err := ReadFrame(bufio.NewReader(&buf), 999); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: err = %v", err)
	}
	// A truncated frame is an error, not a short read.
	buf.Reset()
	_ = WriteFrame(&buf, FrameData, []byte("abcdef"))
	trunc := bufio.NewReader(bytes.NewReader(buf.Bytes()[:8]))
	if _, _, err := ReadFrame(trunc, MaxFrame); err == nil {
		t.Fatal("truncated frame read without error")
	}
}

func TestSplit(t *testing.T) {
	const home = "/home/sandbox"
	cases := []struct {
		in, root, want string
		kind           string
	}{
		{"a.txt", "/workspace", "a.txt", ""},
		{"src/../b", "/workspace", "b", ""},
		{"./c/", "/workspace", "c", ""},
		{"/workspace", "/workspace", ".", ""},
		{"/workspace/", "/workspace", ".", ""},
		{"//workspace//x", "/workspace", "x", ""},
		{"/workspace/x/y", "/workspace", "x/y", ""},
		{".", "/workspace", ".", ""},
		{"/home/sandbox", home, ".", ""},
		{"/home/sandbox/.bashrc", home, ".bashrc", ""},
		{"/home/sandbox/a/../.profile", home, ".profile", ""},
		{"", "", "", KindInvalid},
		{"a\x00b", "", "", KindInvalid},
		{"..", "", "", KindEscape},
		{"../x", "", "", KindEscape},
		{"a/../../x", "", "", KindEscape},
		{"/etc/passwd", "", "", KindEscape},
		{"/workspace/../etc/passwd", "", "", KindEscape},
		{"/home/sandbox/../other", "", "", KindEscape},
		{"/home/sandboxx/a", "", "", KindEscape},
		{"/workspacex/a", "", "", KindEscape},
		{"/", "", "", KindEscape},
		{"~/x", "/workspace", "~/x", ""}, // the engine expands ~; to a provider it is a name
	}
	for _, c := range cases {
		root, got, werr := split(c.in, home)
		if c.kind != "" {
			if werr == nil || werr.Kind != c.kind {
				t.Errorf("split(%q) = %q, %q, %v; want kind %s", c.in, root, got, werr, c.kind)
			}
			continue
		}
		if werr != nil || root != c.root || got != c.want {
			t.Errorf("split(%q) = %q, %q, %v; want %q, %q", c.in, root, got, werr, c.root, c.want)
		}
	}
}

func TestWireErrorsMapToSentinels(t *testing.T) {
	for kind, want := range map[string]error{KindEscape: sandbox.ErrPathEscape, KindInvalid: sandbox.ErrInvalid, KindNotFound: sandbox.ErrNotFound, KindRefused: sandbox.ErrRefused} {
		err := (&WireError{Kind: kind, Message: "p: boom"}).Err()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "p: boom") {
			t.Errorf("%s -> %v", kind, err)
		}
	}
}
