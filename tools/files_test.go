package tools

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/engine"
)

func TestFileContentView(t *testing.T) {
	euro := "€" // 3 bytes: e2 82 ac
	tests := []struct {
		name         string
		fc           engine.FileContent
		encoding     string
		wantEncoding string
		wantContent  string
		wantOffset   int64
		wantNext     int64 // 0: not truncated
		wantReplaced bool
	}{
		{name: "text", fc: engine.FileContent{Path: "a.txt", Data: []byte("hi\n"), Size: 3},
			wantEncoding: "utf8", wantContent: "hi\n"},
		{name: "empty file", fc: engine.FileContent{Path: "e", Size: 0}, wantEncoding: "utf8", wantContent: ""},
		{name: "binary", fc: engine.FileContent{Path: "b", Data: []byte{0xff, 0x00, 0x01}, Size: 3},
			wantEncoding: "base64", wantContent: base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0x01})},
		{name: "base64 asked for", fc: engine.FileContent{Path: "a", Data: []byte("hi"), Size: 2}, encoding: "base64",
			wantEncoding: "base64", wantContent: "aGk="},
		{name: "utf8 asked for on binary", fc: engine.FileContent{Path: "b", Data: []byte("a\xffb"), Size: 3}, encoding: "utf8",
			wantEncoding: "utf8", wantContent: "a\uFFFDb", wantReplaced: true},
		{name: "window cuts a character at its end", fc: engine.FileContent{Path: "u", Data: []byte("ab" + euro)[:4], Size: 5},
			wantEncoding: "utf8", wantContent: "ab", wantNext: 2},
		{name: "window starts inside a character", fc: engine.FileContent{Path: "u", Data: []byte(euro + "cd")[1:], Size: 5, Offset: 1},
			wantEncoding: "utf8", wantContent: "cd", wantOffset: 3},
		{name: "truncated text window", fc: engine.FileContent{Path: "big", Data: []byte("0123456789"), Size: 100, Offset: 10},
			wantEncoding: "utf8", wantContent: "0123456789", wantOffset: 10, wantNext: 20},
		{name: "binary in the middle stays base64", fc: engine.FileContent{Path: "b", Data: []byte("a\xffb"), Size: 10},
			wantEncoding: "base64", wantContent: base64.StdEncoding.EncodeToString([]byte("a\xffb")), wantNext: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := fileContentView(tc.fc, tc.encoding)
			if v.Encoding != tc.wantEncoding || v.Content != tc.wantContent || v.Offset != tc.wantOffset || v.Replaced != tc.wantReplaced {
				t.Errorf("got encoding %q content %q offset %d replaced %v, want %q %q %d %v",
					v.Encoding, v.Content, v.Offset, v.Replaced, tc.wantEncoding, tc.wantContent, tc.wantOffset, tc.wantReplaced)
			}
			if v.Size != tc.fc.Size {
				t.Errorf("size = %d, want the file's size %d", v.Size, tc.fc.Size)
			}
			switch {
			case tc.wantNext == 0 && v.NextOffset != nil:
				t.Errorf("next_offset %v, want the whole rest", *v.NextOffset)
			case tc.wantNext != 0 && (v.NextOffset == nil || *v.NextOffset != tc.wantNext):
				t.Errorf("next_offset=%v, want %d", v.NextOffset, tc.wantNext)
			}
			if v.NextOffset != nil && !strings.Contains(v.text(), "offset") {
				t.Errorf("text does not say where the rest starts: %q", v.text())
			}
		})
	}
}

func TestDecodeBase64(t *testing.T) {
	want := []byte("hello, world\x00\xff")
	enc := base64.StdEncoding.EncodeToString(want)
	for _, in := range []string{enc, strings.TrimRight(enc, "="), enc[:8] + "\n" + enc[8:], " " + enc + "\r\n"} {
		got, err := decodeBase64(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("decodeBase64(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := decodeBase64("not base64!"); err == nil {
		t.Error("decodeBase64 accepted garbage")
	}
}

func TestDecodeFiles(t *testing.T) {
	files, err := decodeFiles([]fileArg{
		{Path: "a.sh", Content: "#!/bin/sh\n", Mode: "0755"},
		{Path: "b.bin", Content: "AP8=", Encoding: "base64"},
		{Path: "c", Content: "", Mode: "600"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Mode != 0o755 || string(files[0].Content) != "#!/bin/sh\n" {
		t.Errorf("file 0 = %+v", files[0])
	}
	if !bytes.Equal(files[1].Content, []byte{0x00, 0xff}) || files[1].Mode != 0 {
		t.Errorf("file 1 = %+v", files[1])
	}
	if files[2].Mode != 0o600 || len(files[2].Content) != 0 {
		t.Errorf("file 2 = %+v", files[2])
	}
}

func TestProgressMessage(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := map[string]string{
		"  building target\t1/3  ": "building target 1/3",
		"\x1b[32mok\x1b[0m  pkg":   "ok  pkg",
		"bad \xff byte":            "bad \uFFFD byte",
		long:                       strings.Repeat("é", progressMessageMax-1) + "…",
		"carriage\rreturn":         "carriagereturn",
		"":                         "",
	}
	for in, want := range tests {
		if got := progressMessage(in); got != want {
			t.Errorf("progressMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
