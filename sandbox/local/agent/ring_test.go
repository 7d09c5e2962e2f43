package agent

import (
	"bytes"
	"testing"
)

// TestRing writes a stream in chunks of several sizes into small rings and checks every read
// against the stream itself: what is kept, where it starts, and that offsets only grow.
func TestRing(t *testing.T) {
	stream := make([]byte, 1000)
	for i := range stream {
		stream[i] = byte(i*7 + i/13)
	}
	for _, size := range []int{1, 3, 16, 64, 100, 250} {
		for _, chunk := range []int{1, 5, 63, 64, 65, 300} {
			r := newRing(size)
			var total int64
			for off := 0; off < len(stream); off += chunk {
				p := stream[off:min(off+chunk, len(stream))]
				r.write(p)
				total += int64(len(p))
				if r.total != total {
					t.Fatalf("size %d chunk %d: total %d, want %d", size, chunk, r.total, total)
				}
				wantStart := max(total-int64(size), 0)
				if r.start() != wantStart {
					t.Fatalf("size %d chunk %d after %d bytes: start %d, want %d", size, chunk, total, r.start(), wantStart)
				}
				for _, since := range []int64{0, wantStart, total - 1, total, (wantStart + total) / 2} {
					if since < 0 {
						continue
					}
					got, from := r.readFrom(since)
					wantFrom := max(since, wantStart)
					if from != wantFrom || !bytes.Equal(got, stream[wantFrom:total]) {
						t.Fatalf("size %d chunk %d total %d readFrom(%d) = %d bytes from %d, want %d bytes from %d", size, chunk, total, since, len(got), from, total-wantFrom, wantFrom)
					}
				}
			}
		}
	}
}

// TestRingGrowsOnDemand: a ring holds only what was written until it is full.
func TestRingGrowsOnDemand(t *testing.T) {
	r := newRing(MaxLog)
	r.write([]byte("hello"))
	if cap(r.buf) > 64 {
		t.Fatalf("a 5-byte log allocated %d bytes", cap(r.buf))
	}
	r.write(make([]byte, 3*MaxLog))
	if len(r.buf) != MaxLog || r.start() != r.total-MaxLog {
		t.Fatalf("after 3 MiB: len %d start %d total %d", len(r.buf), r.start(), r.total)
	}
}
