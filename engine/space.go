package engine

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The disk reserve. One sandbox must not take the store down: when the free space of the file
// system holding the data directory (the store and the provider's layers) falls below
// Options.DiskReserve, runs, durable writes, imports and new sessions are refused with
// ErrStorage, and the runs in flight are stopped (recorded cancelled with the reason, nothing
// committed) while there is still room to record that. Open sessions are left alone: ending
// one would lose its work, and it commits only when asked.

// DefaultDiskReserve is the reserve the server uses unless told otherwise (--disk-reserve).
const DefaultDiskReserve = 1 << 30

// spaceCheckEvery is how often the free space is checked while runs are in flight.
const spaceCheckEvery = time.Second

// space holds the reserve's configuration.
type space struct {
	free    func() (int64, error)
	reserve int64
	dir     string

	mu     sync.Mutex
	warned bool // a failure to read the free space was logged
}

// FreeSpaceOf returns a function reporting the bytes an unprivileged user may still write on the
// file system holding dir (statfs's available blocks), for Options.FreeSpace.
func FreeSpaceOf(dir string) func() (int64, error) {
	return func() (int64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return int64(st.Bavail) * int64(st.Bsize), nil
	}
}

// checkSpace fails with ErrStorage when the free space is below the reserve; what is refused is
// named by doing ("run_command", "write_files", ...).
func (e *Engine) checkSpace(doing string) error {
	free, short := e.spaceShort()
	if !short {
		return nil
	}
	return errorf(ErrStorage, "%s refused: the server's data directory %s has %s free, below its reserve of %s; nothing was changed. Tell the user: free disk space there (delete_workspace removes workspaces no longer needed), or lower the server's --disk-reserve",
		doing, e.space.dir, HumanBytes(free), HumanBytes(e.space.reserve))
}

// spaceShort reports the free space and whether it is below the reserve (false when the reserve
// is off or the free space cannot be read).
func (e *Engine) spaceShort() (int64, bool) {
	if e.space.free == nil || e.space.reserve <= 0 {
		return 0, false
	}
	free, err := e.space.free()
	if err != nil {
		e.space.mu.Lock()
		first := !e.space.warned
		e.space.warned = true
		e.space.mu.Unlock()
		if first {
			e.log.Warn("cannot read the data directory's free space; the disk reserve is not enforced", "dir", e.space.dir, "err", err)
		}
		return 0, false
	}
	return free, free < e.space.reserve
}

// watchSpace stops the runs in flight when the free space falls below the reserve. It ends with
// the engine.
func (e *Engine) watchSpace() {
	defer e.workers.Done()
	t := time.NewTicker(spaceCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		runs := make([]*activeRun, 0, len(e.active))
		for _, ar := range e.active {
			runs = append(runs, ar)
		}
		e.mu.Unlock()
		if len(runs) == 0 {
			continue
		}
		free, short := e.spaceShort()
		if !short {
			continue
		}
		reason := fmt.Sprintf("the server's data directory %s fell to %s free, below its reserve of %s, so the run was stopped before the disk filled; free disk space there, then run it again",
			e.space.dir, HumanBytes(free), HumanBytes(e.space.reserve))
		for _, ar := range runs {
			e.log.Warn("run stopped: disk reserve reached", "run", ar.id, "free", free, "reserve", e.space.reserve)
			e.cancelRun(ar, reason)
		}
	}
}
