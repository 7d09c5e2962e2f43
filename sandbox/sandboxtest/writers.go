package sandboxtest

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// recorder records when each chunk of output arrives, on either stream.
type recorder struct {
	mu     sync.Mutex
	start  time.Time
	chunks []chunk
}

type chunk struct {
	stream string
	data   string
	at     time.Duration
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

// writer returns the io.Writer for stream ("stdout" or "stderr").
func (r *recorder) writer(stream string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.chunks = append(r.chunks, chunk{stream: stream, data: string(p), at: time.Since(r.start)})
		return len(p), nil
	})
}

// text is everything stream received.
func (r *recorder) text(stream string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	for _, c := range r.chunks {
		if c.stream == stream {
			sb.WriteString(c.data)
		}
	}
	return sb.String()
}

// arrival is when stream had first received everything up to and including the end of substr,
// relative to the recorder's start; ok is false when substr never arrived.
func (r *recorder) arrival(stream, substr string) (at time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	for _, c := range r.chunks {
		if c.stream != stream {
			continue
		}
		sb.WriteString(c.data)
		if strings.Contains(sb.String(), substr) {
			return c.at, true
		}
	}
	return 0, false
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// zeroCounter counts bytes written, notes any non-zero byte and calls atMark when the count
// crosses each of marks.
type zeroCounter struct {
	mu      sync.Mutex
	n       int64
	largest int
	nonZero bool
	marks   []int64
	atMark  func()
}

func (z *zeroCounter) Write(p []byte) (int, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.n += int64(len(p))
	z.largest = max(z.largest, len(p))
	if !z.nonZero {
		for _, b := range p {
			if b != 0 {
				z.nonZero = true
				break
			}
		}
	}
	for len(z.marks) > 0 && z.n >= z.marks[0] {
		z.marks = z.marks[1:]
		z.atMark()
	}
	return len(p), nil
}
