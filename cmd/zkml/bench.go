package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/prover"
)

func init() {
	extraCommands = append(extraCommands, benchCmd)
}

func benchCmd() *cobra.Command {
	var (
		models, systems, shared            string
		csvPath, jsonPath, svgPath, mdPath string
		notesPath, fromJSON                string
		n, maxCons, plonkMax               int
		noFloor, noBudget, gas             bool
		device, solc                       string
		arch                               archFlags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark compile, setup, prove and verify on synthetic and example models, against the MSM+FFT floor",
		Long: `bench measures, for each model and proving system: constraints, compile, setup, prove
(median of -n) and verify times, proving key and proof sizes and peak memory; for Groth16
also the MSM+FFT floor of the same circuit (gnark-crypto alone) and the ratio prove/floor;
and the per-gadget constraint budgets. Models: synthetic (` + strings.Join(bench.SyntheticNames(), ", ") + `)
the example models (` + strings.Join(onnxgen.ExampleNames(), ", ") + `)
and the models under --shared; "all" is the examples, the models under --shared and ` + strings.Join(bench.DefaultSynthetic, ", ") + `.

With --arch, bench instead estimates synthetic full-size architectures (` + strings.Join(onnxgen.Architectures, ", ") + `)
from their structure, without lowering or compiling them: MACs, params, activations,
estimated constraints (Groth16 and PLONK) and per MAC, estimated compile bytes per MAC,
estimated peak memory, and the segments a per-process budget (--segment-memory)
needs; --layers adds the per-layer breakdown, --measure the real lowering and
compile of (small) models next to their estimates.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if arch.archs != "" {
				return arch.run(cmd, jsonPath)
			}
			syss, err := parseSystems(systems)
			if err != nil {
				return err
			}
			var names []string
			for _, m := range strings.Split(models, ",") {
				if m = strings.TrimSpace(m); m != "" {
					names = append(names, m)
				}
			}
			notes := ""
			if notesPath != "" {
				b, err := os.ReadFile(notesPath)
				if err != nil {
					return err
				}
				notes = string(b)
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			rep := &bench.Report{Env: bench.Environment("zkml " + strings.Join(os.Args[1:], " ")),
				MaxConstraints: maxCons, PlonkMaxConstraints: plonkMax, N: n}
			if fromJSON != "" {
				b, err := os.ReadFile(fromJSON)
				if err != nil {
					return err
				}
				rep = &bench.Report{}
				if err := json.Unmarshal(b, rep); err != nil {
					return fmt.Errorf("%s: %w", fromJSON, err)
				}
				return writeReport(out, rep, csvPath, "", svgPath, mdPath, notes)
			}
			fmt.Fprintf(errw, "%s, nproc %d, %s, gnark %s, load %s\n", rep.Env.CPU, rep.Env.NumCPU, rep.Env.Go, rep.Env.Gnark, rep.Env.Load)
			dev, err := prover.ParseDevice(device)
			if err != nil {
				return err
			}
			if gas {
				c, err := evm.Ensure(cmd.Context(), solc, errw)
				if err != nil {
					return err
				}
				evm.UseCompiler(c)
			}
			opts := bench.Options{Models: names, Systems: syss, N: n, MaxConstraints: maxCons, PlonkMaxConstraints: plonkMax,
				SharedDir: shared, Floor: !noFloor, Log: errw, Device: dev, Gas: gas}
			rep.Results, err = bench.Run(cmd.Context(), opts, func(r bench.Result) {
				fmt.Fprintf(errw, "%-22s %-8s constraints %d prove %.3fs (%s)\n", r.Model, r.System, r.Constraints, r.ProveS, resultStatus(r))
				// Save partial results as they come: a long run that is stopped keeps them.
				rep.Results = append(rep.Results, r)
				if jsonPath != "" {
					var buf bytes.Buffer
					if bench.WriteJSON(&buf, rep) == nil {
						_ = os.WriteFile(jsonPath, buf.Bytes(), 0o644)
					}
				}
			})
			if err != nil {
				return err
			}
			if !noBudget {
				for _, sys := range syss {
					b, err := bench.MeasureBudget(sys)
					if err != nil {
						return err
					}
					rep.Budgets = append(rep.Budgets, b)
				}
			}
			return writeReport(out, rep, csvPath, jsonPath, svgPath, mdPath, notes)
		},
	}
	f := cmd.Flags()
	f.StringVar(&models, "models", "all", "comma-separated model names, or all, examples, synthetic")
	f.StringVar(&systems, "systems", "groth16,plonk", "proving systems: groth16, plonk or both")
	f.IntVarP(&n, "n", "n", 3, "repetitions of witness, prove and verify (median reported)")
	f.IntVar(&maxCons, "max-constraints", bench.DefaultMaxConstraints, "skip setup/prove of Groth16 circuits with more R1CS constraints")
	f.IntVar(&plonkMax, "plonk-max-constraints", bench.DefaultPlonkMaxConstraints, "skip PLONK circuits with more SCS constraints")
	f.StringVar(&shared, "shared", "", "directory of more models to measure (<dir>/<name>/network.onnx and input.json)")
	f.StringVar(&csvPath, "csv", "", "write results as CSV")
	f.StringVar(&jsonPath, "json", "", "write the report as JSON")
	f.StringVar(&svgPath, "svg", "", "write a log-log plot of prove time vs constraints")
	f.StringVar(&mdPath, "markdown", "", "write BENCHMARKS.md")
	f.StringVar(&notesPath, "notes", "", "markdown appended verbatim to --markdown (profiles, hot spots)")
	f.BoolVar(&noFloor, "no-floor", false, "skip the Groth16 MSM+FFT floor")
	f.StringVar(&device, "device", "cpu", "prove on "+prover.Devices+" (icicle-cpu and gpu: ICICLE builds, Groth16)")
	f.BoolVar(&gas, "gas", false, "also verify every proof in an in-process EVM with the exported Solidity verifier and report gas (installs the pinned solc on first use)")
	f.StringVar(&solc, "solc", "", "directory of the pinned solc-js for --gas (default: $ZKML_SOLC, else the user cache)")
	f.BoolVar(&noBudget, "no-budget", false, "skip the per-gadget constraint budgets")
	f.StringVar(&fromJSON, "from-json", "", "render the outputs from a report written by --json instead of running")
	arch.register(cmd)
	return cmd
}

// writeReport prints the table and writes the requested files.
func writeReport(out io.Writer, rep *bench.Report, csvPath, jsonPath, svgPath, mdPath, notes string) error {
	if err := bench.WriteTable(out, rep.Results); err != nil {
		return err
	}
	write := func(path string, f func(*bytes.Buffer) error) error {
		if path == "" {
			return nil
		}
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			return err
		}
		return os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if err := write(csvPath, func(b *bytes.Buffer) error { return bench.WriteCSV(b, rep.Results) }); err != nil {
		return err
	}
	if err := write(jsonPath, func(b *bytes.Buffer) error { return bench.WriteJSON(b, rep) }); err != nil {
		return err
	}
	if err := write(svgPath, func(b *bytes.Buffer) error { return bench.WriteSVG(b, rep.Results) }); err != nil {
		return err
	}
	return write(mdPath, func(b *bytes.Buffer) error {
		link := ""
		if svgPath != "" {
			if rel, err := filepath.Rel(filepath.Dir(mdPath), svgPath); err == nil {
				link = filepath.ToSlash(rel)
			}
		}
		return bench.WriteMarkdown(b, rep, link, notes)
	})
}

func resultStatus(r bench.Result) string {
	switch {
	case r.Err != "":
		return "error: " + r.Err
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	}
	return "ok"
}
