package agent

// ring keeps the last max bytes of a stream and numbers every byte ever written: offset o is
// the o-th byte since the start of the stream. It grows on demand up to max, so a quiet process
// costs little memory.
type ring struct {
	max   int
	buf   []byte // len(buf) < max: holds offsets [0, total); len(buf) == max: offset o at o % max
	total int64  // bytes ever written
}

func newRing(max int) ring { return ring{max: max} }

// start is the oldest offset still kept.
func (r *ring) start() int64 { return r.total - int64(min(int64(len(r.buf)), r.total)) }

func (r *ring) write(p []byte) {
	if len(r.buf) < r.max && len(r.buf)+len(p) <= r.max {
		r.buf = append(r.buf, p...)
		r.total += int64(len(p))
		return
	}
	if len(r.buf) < r.max {
		// Switch to the wrapping layout: offsets [0, total) already sit at o % max.
		full := make([]byte, r.max)
		copy(full, r.buf)
		r.buf = full
	}
	if len(p) > r.max {
		r.total += int64(len(p) - r.max)
		p = p[len(p)-r.max:]
	}
	for len(p) > 0 {
		pos := int(r.total % int64(r.max))
		n := copy(r.buf[pos:], p)
		r.total += int64(n)
		p = p[n:]
	}
}

// readFrom returns the bytes kept from offset since on (or from start() when since is older),
// and the offset the returned bytes begin at.
func (r *ring) readFrom(since int64) ([]byte, int64) {
	from := max(since, r.start())
	if from >= r.total {
		return []byte{}, r.total
	}
	n := int(r.total - from)
	out := make([]byte, n)
	if len(r.buf) < r.max {
		copy(out, r.buf[from:])
		return out, from
	}
	pos := int(from % int64(r.max))
	k := copy(out, r.buf[pos:])
	copy(out[k:], r.buf[:n-k])
	return out, from
}
