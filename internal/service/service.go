package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/artifact"
	"github.com/zkml/zkml/internal/jobs"
	"github.com/zkml/zkml/internal/store"
	"github.com/zkml/zkml/internal/store/postgres"
	"github.com/zkml/zkml/internal/store/sqlite"
)

// App is an opened service: store, queue, processor and HTTP handler. Serve and Work
// are thin loops around it; tests use it directly.
type App struct {
	cfg       Config
	Store     store.Store
	Queue     jobs.Queue
	Processor *jobs.Processor
	API       *api.Server
	Blobs     artifact.Store
	worker    bool
	qopts     jobs.Options
	stopping  atomic.Bool
	stopLoops context.CancelFunc // ends the sweeper and the reaper
	closers   []func() error
}

// Open connects to the database (migrating it), opens the artifact store and builds
// the queue. With worker true the queue also works jobs once Start is called.
func Open(ctx context.Context, cfg Config, worker bool) (*App, error) {
	cfg.defaults()
	if cfg.Engine == nil {
		return nil, errors.New("service: Config.Engine is required")
	}
	a := &App{cfg: cfg, worker: worker}
	blobs, err := artifact.NewDisk(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	a.Blobs = blobs
	a.Processor = &jobs.Processor{
		Engine: cfg.Engine, Blobs: blobs, Workspaces: jobs.Workspaces{Root: filepath.Join(cfg.DataDir, "work"), Blobs: blobs},
		Timeouts: cfg.Timeouts, Log: cfg.Logger, Heartbeat: cfg.Heartbeat, Lease: cfg.Lease, AllowPrivateWebhooks: cfg.WebhookAllowPrivate,
	}
	qopts := jobs.Options{
		Workers: cfg.Workers, MaxAttempts: cfg.MaxAttempts, RetryBase: cfg.RetryBase, PollInterval: cfg.PollInterval,
		Logger: cfg.Logger, Schema: cfg.DatabaseSchema,
		WebhookWindow: cfg.WebhookRetryWindow, WebhookRetryMax: cfg.WebhookRetryMax,
	}
	// River's client-wide timeout is the longest job timeout; RescueAfter comes on top.
	qopts.Timeout = max(cfg.Timeouts.For(store.KindCompile), cfg.Timeouts.For(store.KindSetup), cfg.Timeouts.For(store.KindProve))
	qopts.RescueAfter = qopts.Timeout + cfg.RescueAfter
	if worker {
		qopts.Handler = a.Processor.Handle
	}
	a.qopts = qopts
	if err := a.openBackend(ctx, qopts); err != nil {
		a.close()
		return nil, err
	}
	a.Processor.Store = a.Store
	a.Processor.Queue = a.Queue
	a.Processor.Metrics = jobs.NewMetrics(cfg.Registry, a.Store)
	a.API = api.New(api.Config{
		Store: a.Store, Queue: a.Processor, Engine: cfg.Engine, Blobs: blobs, Workspaces: a.Processor.Workspaces,
		AdminKey: cfg.AdminKey, Limits: cfg.Limits, Logger: cfg.Logger, Registry: cfg.Registry,
		Metrics: promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}), Ready: a.ready,
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate, Ceremonies: cfg.Ceremonies,
	})
	return a, nil
}

func (a *App) openBackend(ctx context.Context, qopts jobs.Options) error {
	if a.cfg.embedded() {
		path := filepath.Join(a.cfg.DataDir, "zkml.db")
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return err
		}
		a.Store = st
		a.closers = append(a.closers, st.Close)
		// River gets its own single-connection pool, as riversqlite recommends.
		rdb, err := sqlite.OpenDB(path, 1)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, rdb.Close)
		return a.openRiverSQLite(ctx, path, rdb, qopts)
	}
	st, err := postgres.Open(ctx, a.cfg.DatabaseURL, a.cfg.DatabaseSchema)
	if err != nil {
		return err
	}
	a.Store = st
	a.closers = append(a.closers, st.Close)
	drv := riverpgxv5.New(st.Pool())
	if err := migrateRiverLocked(ctx, st.Pool(), drv, a.cfg.DatabaseSchema); err != nil {
		return err
	}
	q, err := jobs.NewRiver(drv, qopts)
	if err != nil {
		return err
	}
	a.Queue = q
	return nil
}

// riverMigrationLock is the advisory lock key that serializes River migrations of
// processes starting at once (serve and workers).
const riverMigrationLock = 0x7a6b6d6c_72697672 // "zkmlrivr"

func migrateRiverLocked(ctx context.Context, pool *pgxpool.Pool, drv *riverpgxv5.Driver, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(riverMigrationLock)); err != nil {
		return fmt.Errorf("service: lock river migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(riverMigrationLock))
	return jobs.MigrateRiver(ctx, drv, schema)
}

func (a *App) openRiverSQLite(ctx context.Context, path string, db *sql.DB, qopts jobs.Options) error {
	drv := riversqlite.New(db)
	if err := sqlite.WithMigrationLock(path, func() error { return jobs.MigrateRiver(ctx, drv, "") }); err != nil {
		return err
	}
	qopts.Schema = ""
	q, err := jobs.NewRiver(drv, qopts)
	if err != nil {
		return err
	}
	a.Queue = q
	return nil
}

// Handler is the HTTP API.
func (a *App) Handler() http.Handler { return a.API }

func (a *App) ready(ctx context.Context) error {
	if a.stopping.Load() {
		return api.ErrShuttingDown
	}
	return a.Store.Ping(ctx)
}

// Start starts the queue's workers (when opened as a worker) and the sweeper that
// re-enqueues jobs an API process recorded but failed to enqueue.
func (a *App) Start(ctx context.Context) error {
	if err := a.Queue.Start(ctx); err != nil {
		return err
	}
	if a.worker {
		ctx, a.stopLoops = context.WithCancel(ctx)
		go a.sweep(ctx)
		go a.Processor.RunReaper(ctx, a.qopts.MaxAttempts)
	}
	return nil
}

func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(a.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.stopping.Load() {
			return
		}
		if n, err := a.Processor.Sweep(ctx, a.cfg.SweepEvery); err != nil {
			a.cfg.Logger.Warn("sweep failed", "err", err)
		} else if n > 0 {
			a.cfg.Logger.Info("sweep re-enqueued jobs", "n", n)
		}
	}
}

// Shutdown stops taking work, lets running jobs finish within the grace period, then
// cancels and re-queues the rest, and closes the database.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopping.Store(true)
	if a.stopLoops != nil {
		a.stopLoops()
	}
	err := a.Queue.Stop(ctx)
	return errors.Join(err, a.close())
}

func (a *App) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Serve runs the HTTP API on cfg.Addr until ctx is cancelled, then shuts down
// gracefully. On the embedded database, or when cfg.InProcessWorkers says so, it also
// runs jobs.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("service: listen: %w", err)
	}
	return ServeListener(ctx, cfg, ln)
}

// ServeListener is Serve on an open listener.
func ServeListener(ctx context.Context, cfg Config, ln net.Listener) error {
	cfg.defaults()
	worker := cfg.embedded()
	if cfg.InProcessWorkers != nil {
		worker = *cfg.InProcessWorkers
	}
	a, err := Open(ctx, cfg, worker)
	if err != nil {
		ln.Close()
		return err
	}
	return a.run(ctx, ln, "serve")
}

// Work runs job workers until ctx is cancelled, then shuts down gracefully. When
// cfg.Addr is set it serves /healthz, /readyz and /metrics there.
func Work(ctx context.Context, cfg Config) error {
	var ln net.Listener
	if cfg.Addr != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("service: listen: %w", err)
		}
	}
	cfg.defaults()
	a, err := Open(ctx, cfg, true)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	return a.run(ctx, ln, "worker")
}

// Migrate applies the service's and River's migrations and exits.
func Migrate(ctx context.Context, cfg Config) error {
	cfg.defaults()
	if cfg.Engine == nil {
		cfg.Engine = noEngine{}
	}
	a, err := Open(ctx, cfg, false)
	if err != nil {
		return err
	}
	return a.close()
}

func (a *App) run(ctx context.Context, ln net.Listener, role string) error {
	log := a.cfg.Logger.With("role", role)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if err := a.Start(runCtx); err != nil {
		a.close()
		return err
	}
	var srv *http.Server
	srvErr := make(chan error, 1)
	if ln != nil {
		var h http.Handler = a.API
		if role == "worker" {
			h = healthOnly(a.API)
		}
		// Headers must arrive within 10 s; bodies get Limits.BodyTimeout from the API
		// once the key is checked; idle keep-alive connections are dropped after 2 min.
		srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { srvErr <- srv.Serve(ln) }()
		log.Info("listening", "addr", ln.Addr().String(), "workers", a.worker)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-srvErr:
		log.Error("http server failed", "err", err)
	}
	log.Info("shutting down", "grace", a.cfg.ShutdownGrace)
	a.stopping.Store(true)
	sctx, scancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	defer scancel()
	if srv != nil {
		if e := srv.Shutdown(sctx); e != nil {
			err = errors.Join(err, e)
		}
	}
	err = errors.Join(err, a.Shutdown(sctx))
	cancel()
	log.Info("stopped", "err", err)
	return err
}

// healthOnly exposes a worker's probes and metrics, nothing else.
func healthOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			h.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// noEngine lets Migrate open the service without a proving engine.
type noEngine struct{ api.Engine }
