package tools

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Command output is bounded for a model: a stream longer than head+tail bytes is shown as its
// first head bytes, a marker line saying exactly how many bytes were left out and how to read
// more, and its last tail bytes. Cuts snap to a nearby line break (or at least to a UTF-8
// character boundary), and the counts always add up: len(first)+omitted+len(last) == total,
// counted in bytes of the original stream.

// boundedStream is one output stream as a tool returns it.
type boundedStream struct {
	// Text is valid UTF-8: the stream, or its head and tail around a marker line.
	Text string
	// Truncated is true when Text leaves part of the stream out.
	Truncated bool
	// Omitted counts the stream's bytes that are not in Text.
	Omitted int64
	// Total is the stream's full length in bytes.
	Total int64
	// Replaced is true when invalid UTF-8 in the shown bytes was replaced with U+FFFD.
	Replaced bool
}

// lineSnap is how far (in bytes) a cut may move to land on a line break.
const lineSnap = 512

// boundOutput bounds out to at most head bytes from its start and tail bytes from its end (how to
// read more is the result's next step).
func boundOutput(out engine.Output, head, tail int) boundedStream {
	head, tail = max(head, 0), max(tail, 0)
	kept := int64(len(out.Head) + len(out.Tail))
	total := max(out.Total, kept+max(out.Omitted, 0))

	var first, last []byte
	cut := false
	lastAtLineStart := false
	if out.Omitted <= 0 {
		// Head and Tail are contiguous: the whole stream is here.
		all := append(bytes.Clone(out.Head), out.Tail...)
		if len(all) <= head+tail {
			first = all
		} else {
			cut = true
			first = all[:head]
			start := len(all) - tail
			last = all[start:]
			lastAtLineStart = start == 0 || all[start-1] == '\n'
		}
	} else {
		// The engine already dropped the middle; show what we can of each end.
		cut = true
		first = out.Head[:min(head, len(out.Head))]
		last = out.Tail[max(0, len(out.Tail)-tail):]
	}

	if !cut {
		s, replaced := validUTF8(first)
		return boundedStream{Text: s, Total: total, Replaced: replaced}
	}
	first = trimHead(first)
	if !lastAtLineStart {
		last = trimTail(last)
	}
	omitted := total - int64(len(first)) - int64(len(last))
	firstText, r1 := validUTF8(first)
	lastText, r2 := validUTF8(last)

	var b strings.Builder
	b.WriteString(firstText)
	if firstText != "" && !strings.HasSuffix(firstText, "\n") {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "[… %d bytes omitted …]\n", omitted)
	b.WriteString(lastText)
	return boundedStream{Text: b.String(), Truncated: true, Omitted: omitted, Total: total, Replaced: r1 || r2}
}

// trimHead shortens the head part so it ends at a line break near its end, or at least on a
// character boundary.
func trimHead(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 && len(b)-1-i <= lineSnap {
		return b[:i+1]
	}
	// Drop a trailing incomplete UTF-8 sequence (at most 3 bytes).
	for k := 1; k <= 3 && k <= len(b); k++ {
		if utf8.RuneStart(b[len(b)-k]) {
			if !utf8.FullRune(b[len(b)-k:]) {
				return b[:len(b)-k]
			}
			break
		}
	}
	return b
}

// trimTail shortens the tail part so it starts after a line break near its start, or at least on
// a character boundary.
func trimTail(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 && i < lineSnap && i < len(b)-1 {
		return b[i+1:]
	}
	for k := 0; k < 3 && k < len(b); k++ {
		if utf8.RuneStart(b[k]) {
			return b[k:]
		}
	}
	return b
}

// validUTF8 returns b as a string with invalid UTF-8 replaced by U+FFFD, and whether it had any.
func validUTF8(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), true
}

// sizeText renders a byte count for people: "512 bytes", "8 KiB", "1.5 MiB".
func sizeText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return trimZero(float64(n)/(1<<10)) + " KiB"
	case n < 1<<30:
		return trimZero(float64(n)/(1<<20)) + " MiB"
	}
	return trimZero(float64(n)/(1<<30)) + " GiB"
}

func trimZero(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0")
}
