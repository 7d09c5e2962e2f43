package store

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit. A durable run writes three small transactions (queued, running, ended), each
// waiting for its fsync; runs of several workspaces at once would queue behind each other's
// fsyncs. Group runs write transactions that arrive while another is committing together, in
// one transaction and one fsync; a call that arrives when the store is idle commits at once,
// alone, so nothing waits for company.

// groups is the group-commit state of a Store.
type groups struct {
	mu      sync.Mutex
	pending []*groupCall
	running bool
	commits int // transactions committed by groups, for tests
}

type groupCall struct {
	fn   func(tx *Tx) error
	done chan groupResult
}

type groupResult struct {
	err      error
	panicked any // the value fn panicked with, re-raised in the caller
	hasPanic bool
}

// Group runs fn in a write transaction, like Update, that may be shared with other Group calls
// made at the same time. fn's writes commit together or not at all, as with Update; fn must be
// safe to run more than once: when any function of a shared transaction fails (or panics), the
// transaction is rolled back and each function runs again in a transaction of its own. A panic in
// fn is raised again in the caller.
func (s *Store) Group(fn func(tx *Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan groupResult, 1)}
	s.groups.mu.Lock()
	s.groups.pending = append(s.groups.pending, c)
	if !s.groups.running {
		s.groups.running = true
		go s.commitGroups()
	}
	s.groups.mu.Unlock()
	r := <-c.done
	if r.hasPanic {
		panic(r.panicked)
	}
	return r.err
}

// commitGroups commits what is pending, again and again, until nothing is.
func (s *Store) commitGroups() {
	for {
		s.groups.mu.Lock()
		batch := s.groups.pending
		s.groups.pending = nil
		if len(batch) == 0 {
			s.groups.running = false
			s.groups.mu.Unlock()
			return
		}
		s.groups.mu.Unlock()
		s.commitGroup(batch)
	}
}

// errGroupFailed rolls back a shared transaction one of whose functions failed.
var errGroupFailed = fmt.Errorf("store: a function of the group failed")

// commitGroup commits batch in one transaction. A function that fails (or panics) is taken out
// and the rest is tried again together; the ones taken out then run each in a transaction of its
// own, which gives them their own result.
func (s *Store) commitGroup(batch []*groupCall) {
	var alone []*groupCall
	for len(batch) > 1 {
		failed := -1
		err := s.db.Update(func(btx *bolt.Tx) error {
			tx := &Tx{tx: btx}
			for i, c := range batch {
				if r := call(c.fn, tx); r.err != nil || r.hasPanic {
					failed = i
					return errGroupFailed
				}
			}
			return nil
		})
		if err == nil {
			s.countCommit()
			for _, c := range batch {
				c.done <- groupResult{}
			}
			batch = nil
			break
		}
		if failed < 0 {
			break // the commit itself failed: everyone on their own
		}
		alone = append(alone, batch[failed])
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
	for _, c := range append(alone, batch...) {
		var r groupResult
		err := s.db.Update(func(btx *bolt.Tx) error {
			r = call(c.fn, &Tx{tx: btx})
			if r.hasPanic {
				return errGroupFailed
			}
			return r.err
		})
		if !r.hasPanic {
			r.err = err
			if err == nil {
				s.countCommit()
			}
		}
		c.done <- r
	}
}

func (s *Store) countCommit() {
	s.groups.mu.Lock()
	s.groups.commits++
	s.groups.mu.Unlock()
}

// call runs fn, turning a panic into a result.
func call(fn func(tx *Tx) error, tx *Tx) (r groupResult) {
	defer func() {
		if v := recover(); v != nil {
			r = groupResult{panicked: v, hasPanic: true}
		}
	}()
	return groupResult{err: fn(tx)}
}
