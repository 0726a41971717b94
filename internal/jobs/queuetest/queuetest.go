// Package queuetest is the behaviour suite every jobs.Queue must pass, run by the
// tests of each backend (River on SQLite, River on Postgres).
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkml/zkml/internal/jobs"
)

// NewQueue returns a queue on a database shared by every queue the same Backend
// returns; the suite stops the queues it starts.
type NewQueue func(opts jobs.Options) jobs.Queue

// Backend returns a NewQueue on a fresh, empty database.
type Backend func(t *testing.T) NewQueue

func fast(h jobs.Handler) jobs.Options {
	return jobs.Options{Handler: h, Workers: 4, PollInterval: 50 * time.Millisecond, RetryBase: 20 * time.Millisecond,
		RetryMax: 100 * time.Millisecond, Timeout: 10 * time.Second, MaxAttempts: 3, Logger: QuietLogger()}
}

// QuietLogger logs warnings and errors only, keeping River's chatter out of test output.
func QuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func start(t *testing.T, q jobs.Queue) jobs.Queue {
	t.Helper()
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
	return q
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Run runs the suite.
func Run(t *testing.T, backend Backend) {
	ctx := context.Background()

	t.Run("DuplicateEnqueueRunsOnce", func(t *testing.T) {
		newQ := backend(t)
		var calls atomic.Int32
		q := start(t, newQ(fast(func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			calls.Add(1)
			time.Sleep(100 * time.Millisecond)
			return nil
		})))
		for range 5 {
			if err := q.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_a"}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "one run", 10*time.Second, func() bool { return calls.Load() == 1 })
		// Completed tasks stay unique too: enqueueing again is a no-op.
		if err := q.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_a"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler ran %d times, want 1", n)
		}
	})

	t.Run("RetriesWithBackoff", func(t *testing.T) {
		newQ := backend(t)
		var attempts []int
		var mu sync.Mutex
		done := make(chan struct{})
		q := start(t, newQ(fast(func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, a.N)
			if a.N < 3 {
				return errors.New("transient")
			}
			close(done)
			return nil
		})))
		if err := q.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_r"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("task never succeeded")
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Fatalf("attempts = %v, want [1 2 3]", attempts)
		}
	})

	t.Run("PermanentErrorStops", func(t *testing.T) {
		newQ := backend(t)
		var calls atomic.Int32
		q := start(t, newQ(fast(func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			calls.Add(1)
			return jobs.Permanent(errors.New("bad input"))
		})))
		if err := q.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_p"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first run", 10*time.Second, func() bool { return calls.Load() == 1 })
		time.Sleep(500 * time.Millisecond)
		if n := calls.Load(); n != 1 {
			t.Fatalf("permanent failure ran %d times", n)
		}
	})

	t.Run("TaskTimeout", func(t *testing.T) {
		newQ := backend(t)
		got := make(chan error, 1)
		q := start(t, newQ(fast(func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			<-ctx.Done()
			select {
			case got <- ctx.Err():
			default:
			}
			return jobs.Permanent(ctx.Err())
		})))
		if err := q.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_t", Timeout: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("ctx.Err() = %v, want DeadlineExceeded", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("task context never timed out")
		}
	})

	t.Run("StopCancelsAndAnotherWorkerFinishes", func(t *testing.T) {
		newQ := backend(t)
		started := make(chan struct{}, 1)
		a := newQ(fast(func(ctx context.Context, task jobs.Task, at jobs.Attempt) error {
			started <- struct{}{}
			<-ctx.Done() // a proof that outlives the shutdown grace period
			return ctx.Err()
		}))
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: "job_s"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("task never started")
		}
		stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := a.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		var finished atomic.Int32
		start(t, newQ(fast(func(ctx context.Context, task jobs.Task, at jobs.Attempt) error {
			finished.Add(1)
			return nil
		})))
		waitFor(t, "the other worker to finish the task", 15*time.Second, func() bool { return finished.Load() == 1 })
	})

	t.Run("ManyTasksTwoWorkersExactlyOnce", func(t *testing.T) {
		newQ := backend(t)
		var mu sync.Mutex
		runs := map[string]int{}
		h := func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			mu.Lock()
			runs[task.JobID]++
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			return nil
		}
		q1 := start(t, newQ(fast(h)))
		start(t, newQ(fast(h)))
		const n = 60
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("job_%03d", i%(n/2)) // every task enqueued twice
				if err := q1.Enqueue(ctx, jobs.Task{Kind: jobs.TaskRun, JobID: id}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		waitFor(t, "all tasks", 30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(runs) == n/2
		})
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		for id, c := range runs {
			if c != 1 {
				t.Errorf("%s ran %d times", id, c)
			}
		}
	})

	t.Run("WebhookTasksAreSeparate", func(t *testing.T) {
		newQ := backend(t)
		var mu sync.Mutex
		seen := map[jobs.TaskKind]int{}
		q := start(t, newQ(fast(func(ctx context.Context, task jobs.Task, a jobs.Attempt) error {
			mu.Lock()
			seen[task.Kind]++
			mu.Unlock()
			return nil
		})))
		for _, k := range []jobs.TaskKind{jobs.TaskRun, jobs.TaskWebhook} {
			if err := q.Enqueue(ctx, jobs.Task{Kind: k, JobID: "job_w"}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "both tasks", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen[jobs.TaskRun] == 1 && seen[jobs.TaskWebhook] == 1
		})
	})
}
