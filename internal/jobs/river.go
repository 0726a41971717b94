package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
)

// River queue names: proving is CPU-bound and gets few workers; webhooks are I/O.
const (
	queueRun     = "zkml_run"
	queueWebhook = "zkml_webhook"
)

type runArgs struct {
	JobID     string `json:"job_id" river:"unique"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	Gen       int    `json:"gen,omitempty" river:"unique"`
}

func (runArgs) Kind() string { return "zkml_run" }

type webhookArgs struct {
	JobID string `json:"job_id" river:"unique"`
	Gen   int    `json:"gen,omitempty" river:"unique"`
}

func (webhookArgs) Kind() string { return "zkml_webhook" }

// Options configure a River queue. Zero values take the defaults shown.
type Options struct {
	// Handler works tasks; nil makes an insert-only queue (an API process).
	Handler Handler
	// Workers is how many run tasks work at once (default 1: proofs use every core).
	Workers int
	// WebhookWorkers is how many webhooks are delivered at once (default 4).
	WebhookWorkers int
	// MaxAttempts bounds runs of a run task (default 3).
	MaxAttempts int
	// WebhookWindow is how long a webhook is retried while its receiver fails
	// (default 24h): attempts back off from RetryBase, doubling up to WebhookRetryMax
	// (default 1h) between two attempts. WebhookAttempts, when set, bounds the
	// attempts instead.
	WebhookWindow, WebhookRetryMax time.Duration
	WebhookAttempts                int
	// RetryBase and RetryMax shape the exponential backoff (default 1s, 5m).
	RetryBase, RetryMax time.Duration
	// Timeout is the default per-task timeout (default 1h).
	Timeout time.Duration
	// RescueAfter is how long a task may stay running before River considers its worker
	// dead and retries it elsewhere (default Timeout + 5m; must exceed every timeout).
	RescueAfter time.Duration
	// PollInterval is how often workers look for new tasks without a notification
	// (default 1s; SQLite always polls).
	PollInterval time.Duration
	// Schema is the Postgres schema of River's tables ("" for the search path).
	Schema string
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.WebhookWorkers <= 0 {
		o.WebhookWorkers = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.WebhookWindow <= 0 {
		o.WebhookWindow = 24 * time.Hour
	}
	if o.WebhookRetryMax <= 0 {
		o.WebhookRetryMax = time.Hour
	}
	if o.WebhookAttempts <= 0 {
		o.WebhookAttempts = WebhookAttempts(o.RetryBase, o.WebhookRetryMax, o.WebhookWindow)
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Hour
	}
	if o.RescueAfter <= o.Timeout {
		o.RescueAfter = o.Timeout + 5*time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// River is a Queue on a River client over any River driver.
type River[TTx any] struct {
	client *river.Client[TTx]
	opts   Options
}

var _ Queue = (*River[any])(nil)

// NewRiver returns a queue on driver. River's tables must exist (MigrateRiver).
func NewRiver[TTx any](driver riverdriver.Driver[TTx], opts Options) (*River[TTx], error) {
	opts.defaults()
	q := &River[TTx]{opts: opts}
	cfg := &river.Config{
		FetchPollInterval:    opts.PollInterval,
		FetchCooldown:        min(opts.PollInterval, 100*time.Millisecond),
		JobTimeout:           opts.Timeout,
		RescueStuckJobsAfter: opts.RescueAfter,
		Schema:               opts.Schema,
		Logger:               opts.Logger.With("component", "river"),
		MaxAttempts:          opts.MaxAttempts,
	}
	if opts.Handler != nil {
		workers := river.NewWorkers()
		river.AddWorker(workers, &runWorker{q: q})
		river.AddWorker(workers, &webhookWorker{q: q})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{
			queueRun:     {MaxWorkers: opts.Workers},
			queueWebhook: {MaxWorkers: opts.WebhookWorkers},
		}
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: river client: %w", err)
	}
	q.client = c
	return q, nil
}

// MigrateRiver creates or upgrades River's tables.
func MigrateRiver[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], schema string) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("jobs: river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("jobs: river migrate: %w", err)
	}
	return nil
}

// Enqueue implements Queue.
func (q *River[TTx]) Enqueue(ctx context.Context, t Task) error {
	var (
		args river.JobArgs
		opts = &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByQueue: true}}
	)
	switch t.Kind {
	case TaskRun:
		args = runArgs{JobID: t.JobID, TimeoutMS: t.Timeout.Milliseconds(), Gen: t.Gen}
		opts.Queue, opts.MaxAttempts = queueRun, q.opts.MaxAttempts
	case TaskWebhook:
		args = webhookArgs{JobID: t.JobID, Gen: t.Gen}
		opts.Queue, opts.MaxAttempts = queueWebhook, q.opts.WebhookAttempts
	default:
		return fmt.Errorf("jobs: unknown task kind %q", t.Kind)
	}
	if _, err := q.client.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("jobs: enqueue %s %s: %w", t.Kind, t.JobID, err)
	}
	return nil
}

// Start implements Queue.
func (q *River[TTx]) Start(ctx context.Context) error {
	if q.opts.Handler == nil {
		return nil
	}
	return q.client.Start(ctx)
}

// Stop implements Queue.
func (q *River[TTx]) Stop(ctx context.Context) error {
	if q.opts.Handler == nil {
		return nil
	}
	err := q.client.Stop(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	q.opts.Logger.Warn("shutdown grace period over; cancelling running tasks so they are retried")
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return q.client.StopAndCancel(cctx)
}

// Client exposes the River client (tests, admin tooling).
func (q *River[TTx]) Client() *river.Client[TTx] { return q.client }

func (q *River[TTx]) work(ctx context.Context, t Task, attempt, max int) error {
	err := q.opts.Handler(ctx, t, Attempt{N: attempt, Max: max})
	if err != nil && IsPermanent(err) {
		return river.JobCancel(err)
	}
	return err
}

func (q *River[TTx]) nextRetry(attempt int) time.Time {
	return time.Now().Add(Backoff(attempt, q.opts.RetryBase, q.opts.RetryMax))
}

func (q *River[TTx]) nextWebhookRetry(attempt int) time.Time {
	return time.Now().Add(Backoff(attempt, q.opts.RetryBase, q.opts.WebhookRetryMax))
}

// WebhookAttempts is the number of attempts whose backoff delays (base doubling up to
// max) add up to window: the first attempt, then retries until the window is spent.
func WebhookAttempts(base, max, window time.Duration) int {
	n, spent := 1, time.Duration(0)
	for spent < window {
		spent += Backoff(n, base, max)
		n++
	}
	return n
}

type runWorker struct {
	river.WorkerDefaults[runArgs]
	q interface {
		work(context.Context, Task, int, int) error
		nextRetry(int) time.Time
	}
}

func (w *runWorker) Work(ctx context.Context, job *river.Job[runArgs]) error {
	t := Task{Kind: TaskRun, JobID: job.Args.JobID, Timeout: time.Duration(job.Args.TimeoutMS) * time.Millisecond, Gen: job.Args.Gen}
	return w.q.work(ctx, t, job.Attempt, job.MaxAttempts)
}

func (w *runWorker) Timeout(job *river.Job[runArgs]) time.Duration {
	return time.Duration(job.Args.TimeoutMS) * time.Millisecond // 0: client default
}

func (w *runWorker) NextRetry(job *river.Job[runArgs]) time.Time { return w.q.nextRetry(job.Attempt) }

type webhookWorker struct {
	river.WorkerDefaults[webhookArgs]
	q interface {
		work(context.Context, Task, int, int) error
		nextWebhookRetry(int) time.Time
	}
}

func (w *webhookWorker) Work(ctx context.Context, job *river.Job[webhookArgs]) error {
	return w.q.work(ctx, Task{Kind: TaskWebhook, JobID: job.Args.JobID, Gen: job.Args.Gen}, job.Attempt, job.MaxAttempts)
}

func (w *webhookWorker) Timeout(*river.Job[webhookArgs]) time.Duration { return 30 * time.Second }

func (w *webhookWorker) NextRetry(job *river.Job[webhookArgs]) time.Time {
	return w.q.nextWebhookRetry(job.Attempt)
}
