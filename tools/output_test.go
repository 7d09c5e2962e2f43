package tools

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/engine"
)

// whole is an engine.Output holding a whole stream (nothing dropped by the engine).
func whole(s string) engine.Output {
	return engine.Output{Head: []byte(s), Total: int64(len(s))}
}

func lines(n int, width int) string {
	var b strings.Builder
	for i := range n {
		line := fmt.Sprintf("line %06d ", i)
		b.WriteString(line + strings.Repeat("x", max(0, width-len(line)-1)) + "\n")
	}
	return b.String()
}

var markerRE = regexp.MustCompile(`(?m)^\[… (\d+) bytes omitted(.*) …\]\n`)

func TestBoundOutput(t *testing.T) {
	long := lines(1000, 64) // 64000 bytes
	tests := []struct {
		name       string
		out        engine.Output
		head, tail int
		// want* describe the result; wantText is checked only when set.
		wantText      string
		wantTruncated bool
		wantOmitted   int64
		wantTotal     int64
		wantReplaced  bool
		wantPrefix    string
		wantSuffix    string
	}{
		{name: "empty", out: engine.Output{}, head: 8, tail: 8, wantText: ""},
		{name: "short", out: whole("hello\n"), head: 8, tail: 8, wantText: "hello\n", wantTotal: 6},
		{name: "exactly at limit", out: whole("0123456789abcdef"), head: 8, tail: 8,
			wantText: "0123456789abcdef", wantTotal: 16},
		{name: "at limit split between head and tail", out: engine.Output{Head: []byte("01234567"), Tail: []byte("89abcdef"), Total: 16},
			head: 8, tail: 8, wantText: "0123456789abcdef", wantTotal: 16},
		{name: "one byte over", out: whole("0123456789abcdefg"), head: 8, tail: 8,
			wantText: "01234567\n[… 1 bytes omitted …]\n9abcdefg", wantTruncated: true, wantOmitted: 1, wantTotal: 17},
		{name: "long lines snap to line breaks", out: whole(long), head: 8 << 10, tail: 8 << 10,
			wantTruncated: true, wantTotal: 64000, wantPrefix: "line 000000 ", wantSuffix: "line 000999 " + strings.Repeat("x", 51) + "\n"},
		{name: "engine dropped the middle", out: engine.Output{
			Head: []byte(strings.Repeat("h", 1000)), Tail: []byte(strings.Repeat("t", 1000)), Omitted: 5_000_000, Total: 5_002_000},
			head: 100, tail: 100, wantText: strings.Repeat("h", 100) + "\n[… 5001800 bytes omitted …]\n" + strings.Repeat("t", 100),
			wantTruncated: true, wantOmitted: 5_001_800, wantTotal: 5_002_000},
		{name: "engine dropped the middle, budget larger than kept", out: engine.Output{
			Head: []byte("abc\n"), Tail: []byte("xyz\n"), Omitted: 10, Total: 18},
			head: 100, tail: 100, wantText: "abc\n[… 10 bytes omitted …]\nxyz\n", wantTruncated: true, wantOmitted: 10, wantTotal: 18},
		{name: "invalid UTF-8 is replaced", out: whole("ok \xff\xfe done\n"), head: 8 << 10, tail: 8 << 10,
			wantText: "ok \uFFFD done\n", wantReplaced: true, wantTotal: 11},
		{name: "cut inside multi-byte characters", out: whole(strings.Repeat("é", 20)), head: 5, tail: 5,
			wantText: "éé\n[… 32 bytes omitted …]\néé", wantTruncated: true, wantOmitted: 32, wantTotal: 40},
		{name: "head budget zero", out: whole(long), head: 0, tail: 100, wantTruncated: true, wantTotal: 64000,
			wantPrefix: "[… "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := boundOutput(tc.out, tc.head, tc.tail)
			if !utf8.ValidString(got.Text) {
				t.Errorf("text is not valid UTF-8: %q", got.Text)
			}
			if tc.wantText != "" || tc.name == "empty" {
				if got.Text != tc.wantText {
					t.Errorf("text =\n%q\nwant\n%q", got.Text, tc.wantText)
				}
			}
			if got.Truncated != tc.wantTruncated || got.Total != tc.wantTotal || got.Replaced != tc.wantReplaced {
				t.Errorf("truncated=%v total=%d replaced=%v, want %v %d %v", got.Truncated, got.Total, got.Replaced, tc.wantTruncated, tc.wantTotal, tc.wantReplaced)
			}
			if tc.wantOmitted != 0 && got.Omitted != tc.wantOmitted {
				t.Errorf("omitted = %d, want %d", got.Omitted, tc.wantOmitted)
			}
			if !strings.HasPrefix(got.Text, tc.wantPrefix) || !strings.HasSuffix(got.Text, tc.wantSuffix) {
				t.Errorf("text does not start with %q and end with %q:\n%.200q … %.200q", tc.wantPrefix, tc.wantSuffix, got.Text, got.Text[max(0, len(got.Text)-200):])
			}
			// The marker is present exactly when truncated, with the exact count, and the counts
			// add up: shown head + omitted + shown tail = total (when nothing was replaced).
			m := markerRE.FindAllStringSubmatchIndex(got.Text, -1)
			if !got.Truncated {
				if len(m) != 0 {
					t.Errorf("marker in an untruncated stream: %q", got.Text)
				}
				return
			}
			if len(m) != 1 {
				t.Fatalf("want exactly one marker line, found %d in %q", len(m), got.Text)
			}
			n, _ := strconv.ParseInt(got.Text[m[0][2]:m[0][3]], 10, 64)
			if n != got.Omitted {
				t.Errorf("marker says %d bytes omitted, result says %d", n, got.Omitted)
			}
			if !got.Replaced {
				before := got.Text[:m[0][0]]
				after := got.Text[m[0][1]:]
				shownHead := int64(len(before))
				if strings.HasSuffix(before, "\n") && !bytes.HasPrefix(allBytes(tc.out), []byte(before)) {
					shownHead-- // the newline added before the marker is not stream content
				}
				if shownHead+got.Omitted+int64(len(after)) != got.Total {
					t.Errorf("shown head %d + omitted %d + shown tail %d != total %d", shownHead, got.Omitted, len(after), got.Total)
				}
				if shownHead > int64(tc.head) || int64(len(after)) > int64(tc.tail) {
					t.Errorf("shown %d+%d bytes exceed the budget %d+%d", shownHead, len(after), tc.head, tc.tail)
				}
			}
		})
	}
}

func allBytes(o engine.Output) []byte { return append(bytes.Clone(o.Head), o.Tail...) }

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 8 << 10: "8 KiB", 65536: "64 KiB", 1536 << 10: "1.5 MiB", 16 << 20: "16 MiB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
