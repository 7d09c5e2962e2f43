package vercelfake

import "sync"

// The fake's state is three stores, each with its own lock:
//
//   - sandboxState: the named sandboxes by name, and every field of a namedSandbox;
//   - sessionState: the sessions by id, every field of a session (unless noted there) and of
//     its commands;
//   - snapshotState: the snapshots by id, and every field of a snapshot.
//
// An operation that touches several takes their locks in this order, sandboxes → sessions →
// snapshots (Server.lock does), and never takes a lock while it holds a later one. The locks of
// lifecycle and of the request log are leaves, taken under any of the three; a named sandbox's
// resumeMu comes before all of them. A method named ...Locked is called with the locks of the
// state it touches held. Fixed once an object is shared, and read without a lock: a sandbox's name, a
// session's id and sandbox, a snapshot's id and ref, the channels a session or command is
// created with.

// registry is objects by key under one lock, which guards the map and the objects' fields.
type registry[T any] struct {
	mu  sync.Mutex
	all map[string]T
}

// get returns the object of key, or the zero T.
func (r *registry[T]) get(key string) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[key]
}

// sandboxState is the named sandboxes, by name.
type sandboxState struct{ registry[*namedSandbox] }

// sessionState is the sessions by id, stopped ones included, and their commands.
type sessionState struct{ registry[*session] }

// snapshotState is the snapshots by id, deleted ones included.
type snapshotState struct{ registry[*snapshot] }

// states names the stores whose locks Server.lock takes.
type states uint8

const (
	onSandboxes states = 1 << iota
	onSessions
	onSnapshots
)

// lock takes the locks of the stores in which, in the lock order, and returns what releases
// them.
func (s *Server) lock(which states) (unlock func()) {
	var held []*sync.Mutex
	for _, st := range []struct {
		on states
		mu *sync.Mutex
	}{{onSandboxes, &s.sandboxes.mu}, {onSessions, &s.sessions.mu}, {onSnapshots, &s.snapshots.mu}} {
		if which&st.on != 0 {
			st.mu.Lock()
			held = append(held, st.mu)
		}
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
}

// lifecycle is whether the server has been closed, and the background goroutines Close waits
// for. Its lock is a leaf: it may be taken under any other, and nothing is taken under it.
type lifecycle struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// isClosed reports whether Close has begun.
func (l *lifecycle) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close marks the server closed; it reports false when it already was.
func (l *lifecycle) close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	return true
}

// goUnlessClosed runs f in a goroutine Close waits for; it does nothing (and reports false)
// once the server is closed.
func (l *lifecycle) goUnlessClosed(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}
