package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/service"
	"github.com/zkml/zkml/prover"
)

func init() {
	extraCommands = append(extraCommands, serveCmd, workerCmd, migrateCmd, internalProveCmd)
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
	fl.StringVar(&f.device, "device", "cpu", "proving device: cpu or gpu (ICICLE builds)")
	fl.IntVar(&f.workers, "workers", 0, "jobs run at once by this process (ZKML_WORKERS)")
	fl.BoolVar(&f.inProcessProve, "in-process-prove", false, "prove inside this process (faster for small models; a timed-out proof then keeps its CPU until it ends)")
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
	dev, err := prover.ParseDevice(f.device)
	if err != nil {
		return cfg, err
	}
	e := &engine.Engine{Device: dev}
	if e.SetupPolicy, err = setupPolicyFromEnv(); err != nil {
		return cfg, err
	}
	if e.SetupPolicy.Ptau != "" {
		cfg.Ceremonies = &service.Ceremonies{Ptau: e.SetupPolicy.Ptau, SRSCache: e.SetupPolicy.SRSCache}
	}
	if !f.inProcessProve {
		// Each proof runs in a child zkml process, so a job's timeout or
		// cancellation kills it and frees the worker.
		self, err := os.Executable()
		if err != nil {
			return cfg, err
		}
		e.ProveCommand = []string{self, "internal-prove"}
	}
	cfg.Engine = e
	return cfg, nil
}

func serveCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP proving service (with in-process workers on the embedded store)",
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
			return service.Serve(cmd.Context(), cfg)
		},
	}
	f.register(cmd, ":8080")
	return cmd
}

func workerCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run job workers against a shared PostgreSQL database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			return service.Work(cmd.Context(), cfg)
		},
	}
	f.register(cmd, "")
	return cmd
}

func migrateCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (also done by serve and worker at start)",
		Args:  cobra.NoArgs,
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

// internalProveCmd is the child process of the service's prover (engine.ProveCommand).
func internalProveCmd() *cobra.Command {
	var dir, system, input, out, device string
	cmd := &cobra.Command{
		Use:    "internal-prove",
		Short:  "Prove one inference for the service (child process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dev, err := prover.ParseDevice(device)
			if err != nil {
				return err
			}
			m, sys, in, err := openWithInputs(dir, system, input)
			if err != nil {
				return err
			}
			p, err := m.Prove(sys, in, prover.WithDevice(dev))
			if err != nil {
				return err
			}
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "model directory")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system")
	cmd.Flags().StringVar(&input, "input", "", "input.json")
	cmd.Flags().StringVar(&out, "out", "", "where to write the proof JSON")
	cmd.Flags().StringVar(&device, "device", "cpu", "cpu or gpu")
	return cmd
}
