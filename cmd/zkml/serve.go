package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/prover"
)

func init() {
	extraCommands = append(extraCommands, serveCmd, workerCmd, migrateCmd, internalJobCmd)
}

type serviceFlags struct {
	addr, databaseURL, dataDir, device string
	workers                            int
	inProcessProve                     bool
}

func (f *serviceFlags) register(cmd *cobra.Command, defaultAddr string) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultAddr, "listen address (ZKML_ADDR)")
	fl.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL URL (ZKML_DATABASE_URL); empty: embedded SQLite in the data dir")
	fl.StringVar(&f.dataDir, "data-dir", "", "data directory: embedded database, artifacts, workspaces (ZKML_DATA_DIR)")
	fl.StringVar(&f.device, "device", "cpu", "proving device of the workers: "+prover.Devices+" (icicle-cpu and gpu: ICICLE builds, Groth16; ZKML_DEVICE)")
	fl.IntVar(&f.workers, "workers", 0, "jobs run at once by this process (ZKML_WORKERS)")
	fl.BoolVar(&f.inProcessProve, "in-process-prove", false, "compile, set up and prove inside this process (faster for small models; a timed-out job then keeps its CPU until it ends, and a crash takes the process down)")
}

// config builds the service configuration: environment first, then flags.
func (f *serviceFlags) config(cmd *cobra.Command) (service.Config, error) {
	cfg, err := service.FromEnv()
	if err != nil {
		return cfg, err
	}
	if cmd.Flags().Changed("addr") || cfg.Addr == "" {
		cfg.Addr = f.addr
	}
	if f.databaseURL != "" {
		cfg.DatabaseURL = f.databaseURL
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	if f.workers > 0 {
		cfg.Workers = f.workers
	}
	if v := os.Getenv("ZKML_DEVICE"); v != "" && !cmd.Flags().Changed("device") {
		f.device = v
	}
	dev, err := prover.ParseDevice(f.device)
	if err != nil {
		return cfg, err
	}
	limits, err := limitsFromEnv()
	if err != nil {
		return cfg, err
	}
	e := &engine.Engine{Device: dev, Limits: limits}
	if e.SetupPolicy, err = setupPolicyFromEnv(); err != nil {
		return cfg, err
	}
	if e.SetupPolicy.Ptau != "" {
		cfg.Ceremonies = &service.Ceremonies{Ptau: e.SetupPolicy.Ptau, SRSCache: e.SetupPolicy.SRSCache}
	}
	if !f.inProcessProve {
		// Each compile, setup and proof runs in a child zkml process, so a job's
		// timeout or cancellation kills it and frees the worker, and a crash (out of
		// memory, a Go fatal error) fails that job, not the service.
		self, err := os.Executable()
		if err != nil {
			return cfg, err
		}
		e.ChildCommand = []string{self, "internal-job"}
	}
	cfg.Engine = e
	return cfg, nil
}

func serveCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:         "serve",
		Annotations: gracefulSignals(),
		Short:       "Run the HTTP proving service (with in-process workers on the embedded store)",
		Long: `serve runs the REST API (see /v1/openapi.json). Without a database URL it keeps
jobs in an embedded SQLite database in the data directory and runs the workers in
this process, so one command is enough to try it. With --database-url (PostgreSQL),
run workers with 'zkml worker' on as many machines as needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			warnDevSetup(cmd.ErrOrStderr())
			return service.Serve(cmd.Context(), cfg)
		},
	}
	f.register(cmd, ":8080")
	return cmd
}

func workerCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:         "worker",
		Annotations: gracefulSignals(),
		Short:       "Run job workers against a shared PostgreSQL database",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			warnDevSetup(cmd.ErrOrStderr())
			return service.Work(cmd.Context(), cfg)
		},
	}
	f.register(cmd, "")
	return cmd
}

func migrateCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:         "migrate",
		Annotations: gracefulSignals(),
		Short:       "Apply database migrations (also done by serve and worker at start)",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			return service.Migrate(cmd.Context(), cfg)
		},
	}
	f.register(cmd, "")
	return cmd
}

// internalJobCmd is the child process of the service's engine (engine.ChildCommand):
// one compile, setup or proof, run by engine.RunChild. "internal-prove" is its
// former name.
func internalJobCmd() *cobra.Command {
	var a engine.ChildArgs
	cmd := &cobra.Command{
		Use:         "internal-job",
		Annotations: gracefulSignals(),
		Aliases:     []string{"internal-prove"},
		Short:       "Run one compile, setup, proof or sharded-proof step for the service (child process)",
		Hidden:      true,
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return engine.RunChild(cmd.Context(), a, os.Stdin)
		},
	}
	a.RegisterFlags(cmd.Flags())
	return cmd
}

// Default admission budgets: about 8 million constraints per proving system (PLONK
// proves 2^18 in ~10 s on 2 cores, so 2^23 is already minutes on a large machine),
// and 16 GiB of memory per job.
const (
	defaultMaxConstraints = 1 << 23
	defaultMaxJobMemory   = 16 << 30
)

// limitsFromEnv reads the admission budgets: ZKML_MAX_CONSTRAINTS and
// ZKML_MAX_JOB_MEMORY (bytes, or with a KiB/MiB/GiB suffix); 0 disables a limit.
func limitsFromEnv() (bench.Limits, error) {
	l := bench.Limits{MaxConstraints: defaultMaxConstraints, MaxMemoryBytes: defaultMaxJobMemory}
	if v := os.Getenv("ZKML_MAX_CONSTRAINTS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return l, fmt.Errorf("ZKML_MAX_CONSTRAINTS=%q: want a non-negative integer", v)
		}
		l.MaxConstraints = n
	}
	if v := os.Getenv("ZKML_MAX_JOB_MEMORY"); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return l, fmt.Errorf("ZKML_MAX_JOB_MEMORY: %w", err)
		}
		l.MaxMemoryBytes = n
	}
	return l, nil
}

// parseBytes reads "123", "512MiB", "8GiB" or "64KiB".
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a non-negative byte count (optionally KiB, MiB or GiB)", v)
	}
	return n * mult, nil
}
