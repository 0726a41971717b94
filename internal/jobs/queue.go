// Package jobs runs the service's background work: a Queue of tasks (run a job, deliver
// its webhook) implemented on River for both databases (riverpgxv5 on Postgres,
// riversqlite on the embedded store), and the Processor that executes a task against
// the store and the proving Engine.
//
// Durability comes from River: a task is a row in river_job, inserted uniquely per job,
// retried with backoff, rescued when the worker holding it dies, and timed out per
// task. Exactly-once completion comes from the store: every run claims the job under
// its attempt number and only the current attempt may finish it.
package jobs

import (
	"context"
	"errors"
	"time"
)

// TaskKind says what a task does.
type TaskKind string

// Task kinds.
const (
	TaskRun     TaskKind = "run"     // run the pipeline step of a job
	TaskWebhook TaskKind = "webhook" // deliver a finished job's webhook
)

// Task is one unit of queued work; at most one live task exists per (Kind, JobID, Gen).
type Task struct {
	Kind    TaskKind
	JobID   string
	Timeout time.Duration // 0: the queue default
	// Gen tells the tasks of one job apart: the job's hand-overs from lost workers
	// (run tasks) or its manual redeliveries (webhook tasks).
	Gen int
}

// Attempt numbers a task's runs from 1.
type Attempt struct {
	N, Max int
}

// Last reports whether no retry follows a failure of this attempt.
func (a Attempt) Last() bool { return a.N >= a.Max }

// Handler executes a task. Returning nil completes it; an error wrapped with
// Permanent ends it without retry; any other error retries it with backoff until the
// attempts run out. ctx is cancelled on timeout and on forced shutdown.
type Handler func(ctx context.Context, t Task, a Attempt) error

// Queue stores and dispatches tasks.
type Queue interface {
	// Enqueue inserts t unless a live task with the same kind and job exists.
	Enqueue(ctx context.Context, t Task) error
	// Start begins working tasks (a queue without a Handler only inserts).
	Start(ctx context.Context) error
	// Stop waits for running tasks until ctx is done, then cancels them; cancelled
	// tasks are retried later, by this process or another.
	Stop(ctx context.Context) error
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Backoff is the delay before retry n (n >= 1): base * 2^(n-1), capped at max.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
