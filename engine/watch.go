package engine

import "sync"

// headWatchers are the functions WatchHeads registered.
type headWatchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(workspaceID string)
}

// WatchHeads calls fn with a workspace's id each time its head moves (a commit of a run, a
// write or edit, a session commit, a restore), after the transaction that moved it. fn runs on
// the goroutine that committed and must not block. The returned stop ends the calls.
func (e *Engine) WatchHeads(fn func(workspaceID string)) (stop func()) {
	w := &e.watchers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(string){}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

// headMoved tells the watchers that wsID's head moved.
func (e *Engine) headMoved(wsID string) {
	w := &e.watchers
	w.mu.Lock()
	fns := make([]func(string), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(wsID)
	}
}
