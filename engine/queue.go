package engine

import (
	"context"
	"sync"
)

// queues serializes durable operations per workspace, in arrival order (rule 2). Each workspace
// with pending work has one worker goroutine that runs its jobs one after another and exits when
// the queue is empty.
type queues struct {
	mu sync.Mutex
	m  map[string]*wsQueue
}

type wsQueue struct {
	jobs []*job
}

// job is one durable operation. run is called by the worker with a context that is cancelled when
// the job is cancelled or the engine closes; run must check that context first, since a job whose
// engine closed while it waited still runs (to record what happened).
type job struct {
	run     func(ctx context.Context)
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started bool // the worker has called run (guarded by queues.mu)
	skipped bool // withdrawn before it started: run is never called (guarded by queues.mu)
}

func (q *queues) init() { q.m = map[string]*wsQueue{} }

// enqueue appends a job to the workspace's queue and starts a worker if none runs. parent bounds
// the job's context (the engine's lifetime context).
func (e *Engine) enqueue(wsID string, fn func(ctx context.Context)) *job {
	j, _ := e.enqueueFirst(wsID, fn)
	return j
}

// enqueueFirst is enqueue that also reports whether the job is first in its workspace's queue:
// then nothing else of the workspace runs before it, and it starts at once.
func (e *Engine) enqueueFirst(wsID string, fn func(ctx context.Context)) (*job, bool) {
	ctx, cancel := context.WithCancel(e.ctx)
	j := &job{run: fn, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	q := &e.queues
	q.mu.Lock()
	wq := q.m[wsID]
	start := wq == nil
	if start {
		wq = &wsQueue{}
		q.m[wsID] = wq
	}
	wq.jobs = append(wq.jobs, j)
	q.mu.Unlock()
	if start {
		e.workers.Add(1)
		go e.work(wsID)
	}
	return j, start
}

func (e *Engine) work(wsID string) {
	defer e.workers.Done()
	q := &e.queues
	for {
		q.mu.Lock()
		wq := q.m[wsID]
		if len(wq.jobs) == 0 {
			delete(q.m, wsID)
			q.mu.Unlock()
			return
		}
		j := wq.jobs[0]
		wq.jobs = wq.jobs[1:]
		skip := j.skipped
		j.started = !skip
		q.mu.Unlock()
		if !skip {
			j.run(j.ctx)
		}
		j.cancel()
		close(j.done)
	}
}

// withdraw takes a job that has not started out of consideration: the worker will not run it.
// It reports whether the job was withdrawn (false: it has already started).
func (e *Engine) withdraw(j *job) bool {
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	if j.started {
		return false
	}
	j.skipped = true
	return true
}
