// Package service wires the proving service together for the zkml binary: `zkml
// serve` (HTTP API, plus in-process workers on the embedded database), `zkml worker`
// (job workers only) and `zkml migrate`. It picks the store and queue from the
// configuration: PostgreSQL with River on riverpgxv5 when a database URL is set,
// otherwise an embedded SQLite file with River on riversqlite.
package service

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/internal/jobs"
)

// Config configures Serve, Work and Migrate. FromEnv fills it from ZKML_* variables.
type Config struct {
	// Addr is the HTTP listen address of Serve, and of Work's metrics/health endpoint
	// (empty: Work serves no HTTP). ZKML_ADDR, default ":8080" for serve.
	Addr string
	// DatabaseURL selects PostgreSQL (ZKML_DATABASE_URL); empty means embedded SQLite
	// at DataDir/zkml.db.
	DatabaseURL string
	// DatabaseSchema puts every table in this Postgres schema (ZKML_DATABASE_SCHEMA).
	DatabaseSchema string
	// DataDir holds the SQLite file, the artifact store (DataDir/blobs) and the model
	// workspace cache (DataDir/work). Workers and API nodes must share DataDir/blobs
	// (work is rebuilt from it). ZKML_DATA_DIR, default "zkml-data".
	DataDir string
	// AdminKey enables key management endpoints (ZKML_ADMIN_KEY).
	AdminKey string
	// Workers is the number of jobs run at once per process (ZKML_WORKERS, default 1).
	Workers int
	// InProcessWorkers makes Serve also run jobs (ZKML_SERVE_WORKERS; default true
	// for SQLite, false for Postgres where `zkml worker` processes run them).
	InProcessWorkers *bool
	// Limits on request sizes and on the time to send a body (ZKML_MAX_MODEL_BYTES,
	// ZKML_MAX_BODY_BYTES, ZKML_BODY_TIMEOUT).
	Limits api.Limits
	// Timeouts per job kind (ZKML_COMPILE_TIMEOUT, ZKML_SETUP_TIMEOUT, ZKML_PROVE_TIMEOUT).
	Timeouts jobs.Timeouts
	// MaxAttempts per job (ZKML_MAX_ATTEMPTS, default 3).
	MaxAttempts int
	// RescueAfter: a job running this long past its timeout on a silent worker is
	// retried elsewhere (ZKML_RESCUE_AFTER, default 5m).
	RescueAfter time.Duration
	// ShutdownGrace is how long running jobs may finish on shutdown before they are
	// cancelled and re-queued (ZKML_SHUTDOWN_GRACE, default 30s).
	ShutdownGrace time.Duration
	// PollInterval, RetryBase and Heartbeat tune the queue (ZKML_POLL_INTERVAL,
	// ZKML_RETRY_BASE, ZKML_HEARTBEAT; defaults 1s, 1s, 1s).
	PollInterval, RetryBase, Heartbeat time.Duration
	// Lease: a running job whose worker has not renewed it for this long is handed to
	// another worker (ZKML_LEASE, default 15s).
	Lease time.Duration
	// WebhookAllowPrivate lets webhooks go to loopback and private addresses
	// (ZKML_WEBHOOK_ALLOW_PRIVATE; default false, which blocks SSRF into the cluster).
	WebhookAllowPrivate bool
	// WebhookRetryWindow is how long a failing webhook is retried (ZKML_WEBHOOK_RETRY_WINDOW,
	// default 24h), with delays doubling up to WebhookRetryMax (ZKML_WEBHOOK_RETRY_MAX,
	// default 1h).
	WebhookRetryWindow, WebhookRetryMax time.Duration
	// SweepEvery is how often workers re-enqueue jobs left queued (default 30s).
	SweepEvery time.Duration

	// Engine runs the pipeline (required for Serve and Work).
	Engine api.Engine
	// Ceremonies runs Groth16 phase-2 ceremonies (nil: none; see Ceremonies).
	Ceremonies api.Ceremonies
	// Logger defaults to a JSON slog logger on stderr.
	Logger *slog.Logger
	// Registry receives metrics; default a fresh registry with Go and process collectors.
	Registry *prometheus.Registry
}

// FromEnv reads the ZKML_* environment variables into a Config (without Engine).
func FromEnv() (Config, error) {
	c := Config{
		Addr:           os.Getenv("ZKML_ADDR"),
		DatabaseURL:    os.Getenv("ZKML_DATABASE_URL"),
		DatabaseSchema: os.Getenv("ZKML_DATABASE_SCHEMA"),
		DataDir:        os.Getenv("ZKML_DATA_DIR"),
		AdminKey:       os.Getenv("ZKML_ADMIN_KEY"),
	}
	var errs []error
	intVar := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			*dst = n
		}
	}
	int64Var := func(name string, dst *int64) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			*dst = n
		}
	}
	durVar := func(name string, dst *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			*dst = d
		}
	}
	intVar("ZKML_WORKERS", &c.Workers)
	intVar("ZKML_MAX_ATTEMPTS", &c.MaxAttempts)
	int64Var("ZKML_MAX_MODEL_BYTES", &c.Limits.MaxModelBytes)
	int64Var("ZKML_MAX_BODY_BYTES", &c.Limits.MaxBodyBytes)
	durVar("ZKML_BODY_TIMEOUT", &c.Limits.BodyTimeout)
	durVar("ZKML_COMPILE_TIMEOUT", &c.Timeouts.Compile)
	durVar("ZKML_SETUP_TIMEOUT", &c.Timeouts.Setup)
	durVar("ZKML_PROVE_TIMEOUT", &c.Timeouts.Prove)
	durVar("ZKML_RESCUE_AFTER", &c.RescueAfter)
	durVar("ZKML_SHUTDOWN_GRACE", &c.ShutdownGrace)
	durVar("ZKML_POLL_INTERVAL", &c.PollInterval)
	durVar("ZKML_RETRY_BASE", &c.RetryBase)
	durVar("ZKML_HEARTBEAT", &c.Heartbeat)
	durVar("ZKML_LEASE", &c.Lease)
	durVar("ZKML_WEBHOOK_RETRY_WINDOW", &c.WebhookRetryWindow)
	durVar("ZKML_WEBHOOK_RETRY_MAX", &c.WebhookRetryMax)
	if v := os.Getenv("ZKML_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ZKML_WEBHOOK_ALLOW_PRIVATE: %w", err))
		}
		c.WebhookAllowPrivate = b
	}
	if v := os.Getenv("ZKML_SERVE_WORKERS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ZKML_SERVE_WORKERS: %w", err))
		}
		c.InProcessWorkers = &b
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("service: config: %v", errs)
	}
	return c, nil
}

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = "zkml-data"
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.RescueAfter <= 0 {
		c.RescueAfter = 5 * time.Minute
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
}

func (c *Config) embedded() bool { return c.DatabaseURL == "" }
