//go:build linux

package local

import (
	"encoding/json"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Squashing off the run's path. A commit only appends its layer; when a chain grows past
// Options.MaxLayers, commit wakes the squasher and returns. The squasher (one goroutine per
// provider) takes the longest chain over the limit and merges its oldest MaxLayers layers into
// one squashed layer (squash.go), then rewrites, atomically, every snapshot whose chain starts
// with those layers to start with the squashed one instead: the same merged view, a shorter
// chain. A snapshot ref never changes, so the engine sees nothing. The old layers stay while an
// older snapshot (or a running sandbox) still uses them and are collected with the last one.
// A sandbox started before the squash commits a chain with the old prefix; commit replaces the
// prefix by the squashed layer when it is still there (squashedPrefix).
//
// Only a chain that outgrows the hard limit (four times MaxLayers, at most maxHardLayers: what one
// overlay mount still takes) before the squasher gets to it is squashed inline, on the commit's
// path, as before: with runs every ~20 ms, that leaves a squash of a big tree seconds to finish.

// maxHardLayers bounds the chain one overlay mount takes: its lower directories are named
// /proc/self/fd/N in mount data limited to one page (4096 bytes), about 17 bytes each.
const maxHardLayers = 128

// squasher is the background squash state of a store.
type squasher struct {
	soft, hard int
	wake       chan struct{}
	stop       chan struct{}
	done       chan struct{}
	// prefixes maps a squashed prefix (its layer ids joined by "/") to the squashed layer.
	prefixes map[string]string
	// busy counts squashes in flight, for tests (idleSquasher waits for none).
	busy int
}

// startSquasher starts the background squasher of chains longer than soft layers.
func (s *store) startSquasher(soft int) {
	s.sq = &squasher{soft: soft, hard: max(soft+1, min(4*soft, maxHardLayers)), wake: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), prefixes: map[string]string{}}
	go s.squashLoop()
	s.wakeSquasher() // chains a previous process left long
}

// stopSquasher ends the background squasher, waiting for a squash in flight.
func (s *store) stopSquasher() {
	if s.sq == nil {
		return
	}
	select {
	case <-s.sq.stop:
	default:
		close(s.sq.stop)
	}
	<-s.sq.done
}

func (s *store) wakeSquasher() {
	select {
	case s.sq.wake <- struct{}{}:
	default:
	}
}

// idleThread runs functions, one at a time, on an OS thread of its own at a low CPU priority
// (nice 10: Linux's nice is per thread), so a squash takes little of the CPU the runs want (on 2
// cores, a squash at normal priority made the slowest of 100 commits 2.5–3× the median). Not the
// lowest: at nice 19 a machine kept busy starved the squasher outright (nothing squashed in 30 s
// of a loaded CI run), leaving long chains to the inline squash on a run's path. The thread is locked for good and its goroutine never ends: a locked goroutine's
// thread dies with it, and every child forked earlier from that thread (sandbox helpers carry a
// parent-death signal, which follows the forking thread) would be killed with it. One per
// process, shared by every provider's squasher; nothing run there forks.
var idleThread = sync.OnceValue(func() chan<- func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread()
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
		for f := range ch {
			f()
		}
	}()
	return ch
})

// atIdle runs f on idleThread and waits for it.
func atIdle(f func()) {
	done := make(chan struct{})
	idleThread() <- func() {
		defer close(done)
		f()
	}
	<-done
}

func (s *store) squashLoop() {
	defer close(s.sq.done)
	for {
		select {
		case <-s.sq.stop:
			return
		case <-s.sq.wake:
		}
		for {
			select {
			case <-s.sq.stop:
				return
			default:
			}
			more := false
			atIdle(func() { more = s.squashOne() })
			if !more {
				break
			}
		}
	}
}

// squashOne squashes the oldest soft layers of the longest chain over the limit; false when no
// chain needs it (or a squash failed: the next commit wakes the squasher again).
func (s *store) squashOne() bool {
	s.mu.Lock()
	var longest []string
	for _, chain := range s.index {
		if len(chain) > s.sq.soft && len(chain) > len(longest) {
			longest = chain
		}
	}
	if longest == nil {
		s.mu.Unlock()
		return false
	}
	prefix := slices.Clone(longest[:s.sq.soft])
	for _, l := range prefix {
		s.refs[l]++ // held while the squash reads them
	}
	s.sq.busy++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.sq.busy--
		s.mu.Unlock()
	}()
	defer s.release(prefix)

	id, err := s.squash(prefix)
	if err == nil {
		err = syncFS(s.layers)
	}
	if err != nil {
		if id != "" {
			_ = removeTree(filepath.Join(s.layers, id))
		}
		s.log.Warn("local: background squash failed; chains stay long until the next try", "layers", len(prefix), "err", err)
		return false
	}
	// The snapshots that start with prefix, each rewritten to start with id.
	s.mu.Lock()
	type rewrite struct {
		ref   sandbox.SnapshotRef
		old   []string
		chain []string
		tmp   string
	}
	var todo []rewrite
	for ref, chain := range s.index {
		if len(chain) >= len(prefix) && slices.Equal(chain[:len(prefix)], prefix) {
			todo = append(todo, rewrite{ref: ref, old: chain, chain: append([]string{id}, chain[len(prefix):]...)})
		}
	}
	s.mu.Unlock()
	var tmps []string
	for i := range todo {
		sf, err := s.readSnapshot(todo[i].ref)
		if err != nil {
			continue // deleted meanwhile
		}
		sf.Layers = todo[i].chain
		if todo[i].tmp, err = s.snapshotTemp(todo[i].ref, sf); err != nil {
			s.log.Warn("local: background squash: cannot write a snapshot file", "snapshot", todo[i].ref, "err", err)
			continue
		}
		tmps = append(tmps, todo[i].tmp)
	}
	if err := syncAll(tmps); err != nil {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
		_ = removeTree(filepath.Join(s.layers, id))
		s.log.Warn("local: background squash: cannot sync the snapshot files", "err", err)
		return false
	}
	// Swap under the lock, so that no snapshot deleted or changed meanwhile comes back.
	s.mu.Lock()
	var dead []string
	swapped := 0
	for _, r := range todo {
		if r.tmp == "" {
			continue
		}
		if cur, ok := s.index[r.ref]; !ok || !slices.Equal(cur, r.old) {
			_ = os.Remove(r.tmp)
			continue
		}
		if err := os.Rename(r.tmp, filepath.Join(s.snaps, string(r.ref)+".json")); err != nil {
			_ = os.Remove(r.tmp)
			continue
		}
		s.index[r.ref] = r.chain
		for _, l := range r.chain {
			s.refs[l]++
		}
		dead = append(dead, s.unrefLocked(r.old)...)
		swapped++
	}
	if swapped > 0 {
		s.sq.prefixes[strings.Join(prefix, "/")] = id
	}
	for k, sq := range s.sq.prefixes {
		if s.refs[sq] == 0 {
			delete(s.sq.prefixes, k) // its squashed layer is gone: nothing can commit onto it
		}
	}
	s.mu.Unlock()
	if swapped == 0 {
		_ = removeTree(filepath.Join(s.layers, id))
		return true // the snapshots went away; look again
	}
	_ = syncDir(s.snaps)
	s.removeLayers(dead)
	s.log.Debug("local: squashed a chain in the background", "layers", len(prefix), "into", id, "snapshots", swapped)
	return true
}

// squashedPrefix replaces, in a chain about to be committed, a prefix the squasher has squashed
// by its squashed layer, when that layer is still there. Called with s.mu held.
func (s *store) squashedPrefix(chain []string) []string {
	if s.sq == nil || len(s.sq.prefixes) == 0 {
		return chain
	}
	for k := min(len(chain), s.sq.hard); k >= 2; k-- {
		id, ok := s.sq.prefixes[strings.Join(chain[:k], "/")]
		if !ok {
			continue
		}
		if s.refs[id] == 0 {
			delete(s.sq.prefixes, strings.Join(chain[:k], "/"))
			return chain
		}
		return append([]string{id}, chain[k:]...)
	}
	return chain
}

// idleSquasher waits until no chain is over the limit and no background squash runs (tests).
func (s *store) idleSquasher() {
	for {
		s.mu.Lock()
		over := s.sq.busy > 0
		for _, chain := range s.index {
			over = over || len(chain) > s.sq.soft
		}
		s.mu.Unlock()
		if !over {
			return
		}
		s.wakeSquasher()
		time.Sleep(10 * time.Millisecond)
	}
}

// readSnapshot reads a snapshot file.
func (s *store) readSnapshot(ref sandbox.SnapshotRef) (snapshotFile, error) {
	var sf snapshotFile
	b, err := os.ReadFile(filepath.Join(s.snaps, string(ref)+".json"))
	if err == nil {
		err = json.Unmarshal(b, &sf)
	}
	return sf, err
}
