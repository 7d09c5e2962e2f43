package engine

import (
	"bytes"
	"testing"
)

// TestWindow cuts windows of kept output (head "abcd", a dropped middle, tail "wxyz") from every
// offset: each is exact, and reading on from Next covers the stream with nothing twice.
func TestWindow(t *testing.T) {
	t.Parallel()
	gap := Output{Head: []byte("abcd"), Tail: []byte("wxyz"), Omitted: 10, Total: 18}
	whole := Output{Head: []byte("abcd"), Tail: []byte("ef"), Total: 6}
	cases := []struct {
		name         string
		o            Output
		from         int64
		data         string
		offset, next int64
		omitted, tot int64
	}{
		{"empty", Output{}, 0, "", 0, 0, 0, 0},
		{"gap, from 0: the head only", gap, 0, "abcd", 0, 4, 0, 18},
		{"gap, inside the head", gap, 2, "cd", 2, 4, 0, 18},
		{"gap, at its start", gap, 4, "wxyz", 14, 18, 10, 18},
		{"gap, inside it", gap, 9, "wxyz", 14, 18, 5, 18},
		{"gap, inside the tail", gap, 16, "yz", 16, 18, 0, 18},
		{"gap, at the end", gap, 18, "", 18, 18, 0, 18},
		{"no gap, from 0: all", whole, 0, "abcdef", 0, 6, 0, 6},
		{"no gap, inside the head", whole, 3, "def", 3, 6, 0, 6},
		{"no gap, inside the tail", whole, 5, "f", 5, 6, 0, 6},
	}
	for _, c := range cases {
		w := window(c.o, c.from)
		if string(w.Data) != c.data || w.Offset != c.offset || w.Next != c.next || w.Omitted != c.omitted || w.Total != c.tot {
			t.Errorf("%s: got %+v (data %q)", c.name, w, w.Data)
		}
		if w.Offset+int64(len(w.Data)) != w.Next || c.from+w.Omitted != w.Offset {
			t.Errorf("%s: inexact window %+v", c.name, w)
		}
	}
	// Reading on from 0 to the end returns head and tail once, and counts the middle.
	var got []byte
	var omitted, off int64
	for off < gap.Total {
		w := window(gap, off)
		got, omitted, off = append(got, w.Data...), omitted+w.Omitted, w.Next
	}
	if !bytes.Equal(got, []byte("abcdwxyz")) || omitted != 10 {
		t.Fatalf("read on: %q omitted %d", got, omitted)
	}
	// A window never aliases the kept output when it joins head and tail.
	w := window(whole, 0)
	w.Data[0] = 'X'
	if whole.Head[0] != 'a' {
		t.Fatal("window changed the kept head")
	}
}
