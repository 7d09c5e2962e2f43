package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestGroupCommit: concurrent Group calls share transactions (fewer commits than calls), each
// call's writes land or not as a whole, a failing call fails alone (the others of its group
// commit), and a panic reaches its own caller with nothing of its writes stored.
func TestGroupCommit(t *testing.T) {
	s := openStore(t)
	const n = 64
	failing := errors.New("this one fails")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Group(func(tx *Tx) error {
				if err := tx.PutMeta(fmt.Sprintf("k%02d", i), []byte("v")); err != nil {
					return err
				}
				if i%16 == 5 {
					return failing
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%16 == 5 {
			if !errors.Is(err, failing) {
				t.Errorf("call %d: %v, want its own error", i, err)
			}
		} else if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	mustView(t, s, func(tx *Tx) error {
		for i := 0; i < n; i++ {
			_, err := tx.GetMeta(fmt.Sprintf("k%02d", i))
			if got, want := err == nil, i%16 != 5; got != want {
				t.Errorf("k%02d stored: %v, want %v (%v)", i, got, want, err)
			}
		}
		return nil
	})
	s.groups.mu.Lock()
	commits := s.groups.commits
	s.groups.mu.Unlock()
	if commits >= n-n/16 {
		t.Errorf("%d calls took %d commits: no group shared a transaction", n, commits)
	}
	t.Logf("%d calls, %d commits", n, commits)

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the call's own panic", v)
			}
		}()
		_ = s.Group(func(tx *Tx) error {
			_ = tx.PutMeta("panicked", []byte("x"))
			panic("boom")
		})
		t.Error("Group returned after its function panicked")
	}()
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.GetMeta("panicked"); !isNotFound(err) {
			t.Errorf("the panicking call's write was stored: %v", err)
		}
		return nil
	})
}
