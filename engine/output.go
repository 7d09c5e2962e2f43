package engine

import (
	"bytes"
	"sync"

	"github.com/sandkit/sandkit-mcp/store"
)

// capture keeps a bounded copy of one output stream: its first keep bytes, its last keep bytes,
// and a count of what lies between. It is what a run stores; memory stays O(keep) whatever the
// command prints.
type capture struct {
	mu    sync.Mutex
	keep  int
	head  []byte
	tail  []byte // last bytes after head; trimmed to keep when it grows past 2*keep
	total int64
	lines *lineWatch
	// onWrite, when set (before the first write), is called after each write.
	onWrite func()
}

func newCapture(keep int, lines *lineWatch) *capture {
	return &capture{keep: keep, lines: lines}
}

func (c *capture) Write(p []byte) (int, error) {
	orig := p
	c.mu.Lock()
	n := len(p)
	c.total += int64(n)
	if room := c.keep - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > 0 {
		c.tail = append(c.tail, p...)
		if len(c.tail) > 2*c.keep {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-c.keep:]...)
		}
	}
	c.mu.Unlock()
	if c.lines != nil {
		c.lines.write(orig)
	}
	if c.onWrite != nil {
		c.onWrite()
	}
	return n, nil
}

// output returns a copy of what is kept so far.
func (c *capture) output() store.Output {
	c.mu.Lock()
	defer c.mu.Unlock()
	tail := c.tail
	if len(tail) > c.keep {
		tail = tail[len(tail)-c.keep:]
	}
	return store.Output{
		Head:    bytes.Clone(c.head),
		Tail:    bytes.Clone(tail),
		Omitted: c.total - int64(len(c.head)) - int64(len(tail)),
		Total:   c.total,
	}
}

// lineWatch reports the latest complete output line (of either stream) to a callback.
type lineWatch struct {
	mu      sync.Mutex
	partial []byte
	notify  func(string)
}

const maxLine = 512

// stop makes the watch report nothing more (the call it reported to has returned).
func (l *lineWatch) stop() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.notify = nil
	l.mu.Unlock()
}

func (l *lineWatch) write(p []byte) {
	if l == nil || len(p) == 0 {
		return
	}
	l.mu.Lock()
	if l.notify == nil {
		l.mu.Unlock()
		return
	}
	notify := l.notify
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		if len(l.partial) < maxLine {
			l.partial = append(l.partial, p[:min(len(p), maxLine-len(l.partial))]...)
		}
		l.mu.Unlock()
		return
	}
	// The last complete line ends at i; it starts after the previous newline in p, or continues
	// the partial line if p has only this one newline.
	j := bytes.LastIndexByte(p[:i], '\n')
	var line []byte
	if j < 0 {
		line = append(l.partial, p[:i]...)
	} else {
		line = p[j+1 : i]
	}
	if len(line) > maxLine {
		line = line[len(line)-maxLine:]
	}
	s := string(bytes.TrimRight(line, "\r"))
	rest := p[i+1:]
	l.partial = append(l.partial[:0], rest[:min(len(rest), maxLine)]...)
	l.mu.Unlock()
	if s != "" {
		notify(s)
	}
}

// pulse wakes waiters on every fire: a waiter takes the channel (wait) before it looks at the
// state it waits on, and sleeps on it only if nothing has changed; fire closes it.
type pulse struct {
	mu sync.Mutex
	ch chan struct{}
}

func (p *pulse) wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	return p.ch
}

func (p *pulse) fire() {
	p.mu.Lock()
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
	p.mu.Unlock()
}
