package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/calibrate"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
	"github.com/zkml/zkml/verifier"
)

// progressEvery is how often step prints a line while a step runs on a writer that is
// not a terminal (a log, CI): a long compile, setup or prove shows it is alive.
var progressEvery = 10 * time.Second

// step runs f while showing a spinner with the step's name on stderr (on a terminal;
// otherwise a line with the step's name and elapsed time every progressEvery), then
// prints its duration.
func step[T any](w io.Writer, name string, f func() (T, error)) (T, error) {
	start := time.Now()
	var stop func()
	if file, ok := w.(*os.File); !ok || !term.IsTerminal(int(file.Fd())) {
		stop = every(progressEvery, func() {
			fmt.Fprintf(w, "%-28s running, %.0fs so far\n", name, time.Since(start).Seconds())
		})
	} else {
		bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(name),
			progressbar.OptionSpinnerType(14), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
		stopBar := every(100*time.Millisecond, func() { _ = bar.Add(1) })
		stop = func() { stopBar(); _ = bar.Finish() }
	}
	v, err := f()
	stop()
	if err == nil {
		fmt.Fprintf(w, "%-28s %8.2fs\n", name, time.Since(start).Seconds())
	}
	return v, err
}

// every calls fn every d in a goroutine until the returned stop is called; stop
// returns once fn can no longer run, so nothing is printed after it.
func every(d time.Duration, fn func()) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func parseSystems(s string) ([]circuits.System, error) {
	if s == "all" {
		return []circuits.System{circuits.Groth16, circuits.Plonk}, nil
	}
	var out []circuits.System
	for _, part := range strings.Split(s, ",") {
		sys, err := circuits.ParseSystem(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, sys)
	}
	return out, nil
}

// openModel validates the proving system name and opens a model directory.
func openModel(dir, system string) (*prover.Model, circuits.System, error) {
	sys, err := circuits.ParseSystem(system)
	if err != nil {
		return nil, "", err
	}
	m, err := prover.Open(dir)
	return m, sys, err
}

// openWithInputs opens a model directory and reads an input.json for its graph.
func openWithInputs(dir, system, input string) (*prover.Model, circuits.System, []*model.Tensor, error) {
	m, sys, err := openModel(dir, system)
	if err != nil {
		return nil, "", nil, err
	}
	in, err := readInputs(input, m.Graph)
	return m, sys, in, err
}

func readInputs(path string, g *model.Graph) ([]*model.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in, err := model.ReadInput(f, g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}

type configFlags struct {
	cfg                           quant.Config
	inputVis, outputVis, paramVis string
	settings                      string
	cmd                           *cobra.Command
}

func (c *configFlags) register(cmd *cobra.Command) {
	c.cfg = quant.DefaultConfig()
	c.cmd = cmd
	f := cmd.Flags()
	f.StringVar(&c.settings, "settings", "", "settings.json with any of the fields below (flags given explicitly override it)")
	f.IntVar(&c.cfg.Scale, "scale", c.cfg.Scale, "fractional bits of inputs and activations")
	f.IntVar(&c.cfg.ParamScale, "param-scale", c.cfg.ParamScale, "fractional bits of weights")
	f.IntVar(&c.cfg.Bits, "bits", c.cfg.Bits, "signed bit width an activation is proven to fit in when neither its static bound nor calibration (compile --input) gives it one; given explicitly, also the most any tensor may get")
	f.IntVar(&c.cfg.LookupBits, "lookup-bits", c.cfg.LookupBits, "log2 of the lookup-table domain of nonlinear functions")
	f.StringVar(&c.cfg.RangeCheck, "range-check", "lookup", "lookup (fewest constraints, one commitment) or bits (no commitment: cheaper Groth16 verification on-chain)")
	f.StringVar(&c.inputVis, "input-visibility", string(c.cfg.InputVis), "what the proof reveals of the input: public, private or hashed (secret, bound by a public Poseidon2 commitment)")
	f.StringVar(&c.outputVis, "output-visibility", string(c.cfg.OutputVis), "what the proof reveals of the output: public, private or hashed (secret, bound by a public Poseidon2 commitment)")
	f.StringVar(&c.paramVis, "param-visibility", string(c.cfg.ParamVis), "weights: fixed (in the circuit), public, private or hashed")
}

// config returns the settings: defaults, then the settings file, then explicit flags.
func (c *configFlags) config() (quant.Config, error) {
	c.cfg.InputVis, c.cfg.OutputVis, c.cfg.ParamVis = quant.Visibility(c.inputVis), quant.Visibility(c.outputVis), quant.Visibility(c.paramVis)
	if c.settings == "" {
		return c.cfg, c.cfg.Validate()
	}
	b, err := os.ReadFile(c.settings)
	if err != nil {
		return c.cfg, err
	}
	fromFile := quant.DefaultConfig()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fromFile); err != nil {
		return c.cfg, fmt.Errorf("settings %s: %w", c.settings, err)
	}
	flags := c.cmd.Flags()
	set := func(name string, dst any, v any) {
		if flags.Changed(name) {
			return
		}
		switch d := dst.(type) {
		case *int:
			*d = v.(int)
		case *string:
			*d = v.(string)
		case *quant.Visibility:
			*d = v.(quant.Visibility)
		}
	}
	set("scale", &c.cfg.Scale, fromFile.Scale)
	set("param-scale", &c.cfg.ParamScale, fromFile.ParamScale)
	set("bits", &c.cfg.Bits, fromFile.Bits)
	set("lookup-bits", &c.cfg.LookupBits, fromFile.LookupBits)
	set("range-check", &c.cfg.RangeCheck, fromFile.RangeCheck)
	set("input-visibility", &c.cfg.InputVis, fromFile.InputVis)
	set("output-visibility", &c.cfg.OutputVis, fromFile.OutputVis)
	set("param-visibility", &c.cfg.ParamVis, fromFile.ParamVis)
	c.cfg.Widths = fromFile.Widths
	if flags.Changed("bits") {
		// An explicit --bits caps every width, measured ones included.
		for _, k := range slices.Sorted(maps.Keys(c.cfg.Widths)) {
			if w := c.cfg.Widths[k]; w > c.cfg.Bits {
				return c.cfg, fmt.Errorf("settings %s: widths[%q] = %d is more than --bits %d", c.settings, k, w, c.cfg.Bits)
			}
		}
	}
	return c.cfg, c.cfg.Validate()
}

// fixed reports whether a setting was given explicitly: by its flag, or by a settings
// file (which fixes every setting it can hold).
func (c *configFlags) fixed(flag string) bool {
	return c.settings != "" || c.cmd.Flags().Changed(flag)
}

// chooseSettings picks (or, where given explicitly, validates) scale, param scale,
// lookup bits and bits on the sample inputs, for compile: see calibrate.Select.
func chooseSettings(cmd *cobra.Command, cf *configFlags, cfg quant.Config, onnx []byte, input, data string, rel, abs float64) (*calibrate.Choice, int, error) {
	g, err := model.Load(onnx)
	if err != nil {
		return nil, 0, err
	}
	var samples [][]*model.Tensor
	if data != "" {
		if samples, err = readSamples(data, g); err != nil {
			return nil, 0, err
		}
	}
	if input != "" {
		in, err := readInputs(input, g)
		if err != nil {
			return nil, 0, err
		}
		samples = append(samples, in)
	}
	tgt := calibrate.Target{AbsError: abs, RelError: rel,
		FixedScale: cf.fixed("scale"), FixedParamScale: cf.fixed("param-scale"),
		FixedLookupBits: cf.fixed("lookup-bits"), FixedBits: cf.fixed("bits")}
	ch, err := step(cmd.ErrOrStderr(), "choose settings", func() (*calibrate.Choice, error) { return calibrate.Select(g, samples, cfg, tgt) })
	return ch, len(samples), err
}

// defaultDir is the model directory compile writes without -d: the model file's name
// with .zkml for .onnx, in the current directory (network.onnx -> network.zkml).
func defaultDir(onnxPath string) string {
	return strings.TrimSuffix(filepath.Base(onnxPath), ".onnx") + ".zkml"
}

func compileCmd() *cobra.Command {
	var cf configFlags
	var budget memoryBudget
	var dir, input, data, systems, svg, planPath string
	var report, asJSON, sharded bool
	var segmentConstraints int64
	var cuts []int
	var maxErr, maxAbsErr float64
	cmd := &cobra.Command{
		Use:   "compile MODEL.onnx",
		Short: "Quantize an ONNX model and compile it into circuits",
		Long: `compile loads an ONNX model, quantizes it to fixed point, compiles the gnark
circuit for each proving system and writes everything into a model directory
(default: the model file's name with .zkml for .onnx, in the current directory:
network.onnx -> network.zkml). With --input, the sample input is run through the
integer reference first, so values out of the fixed-point range are reported now.
With sample inputs (--input and/or --data), compile measures the width each
activation needs: every rescaled activation and input is then range-checked to twice
the largest value it takes on the samples (or to its static bound, when tighter),
even beyond --bits unless --bits is given explicitly.

With sample inputs (--input, and/or --data with an input.json or a JSON array of
them), compile first chooses the settings: among scales 2-16, param scales
scale-2..scale+2 and lookup-table sizes, the one with the fewest constraints
(admission estimate of the program compile then builds, with the measured widths:
a lookup table larger than --lookup-bits allows is replaced by its range-reduced
form where that is cheaper) whose max abs error against the float reference on the samples
is within --max-error (relative to the range of the outputs over the samples; default
1e-3) or --max-abs-error, with bits from the largest range-checked value seen,
doubled. It prints the choice and its error. Settings given explicitly (flags, or
every field of --settings) are kept and validated by the same rules: one that cannot
meet the target, or whose values leave the range, is an error naming it.

With --shard, a model over the memory budget (--max-memory) is not refused: its
program is split at layer boundaries into segments whose estimates each fit the
budget (and --segment-constraints), each compiled as its own circuit; setup, prove
and verify then work segment by segment, and a proof is a bundle of segment proofs
whose boundary activations are bound by Poseidon2 commitments (docs/sharding.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := cf.config()
			if err != nil {
				return err
			}
			syss, err := parseSystems(systems)
			if err != nil {
				return err
			}
			onnx, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if dir == "" {
				dir = defaultDir(args[0])
			}
			if err := budget.checkGraph(onnx, cfg, syss, sharded, cmd.ErrOrStderr()); err != nil {
				return err
			}
			var chosen *calibrate.Choice
			nSamples := 0
			if input != "" || data != "" {
				// Choosing settings lowers the model many times: a model over the memory
				// budget at the given settings is refused before that, not after.
				// Settings that do not lower at all are left to Select, whose error names
				// the explicit settings to change.
				if _, p0, err := prover.Build(onnx, cfg); err == nil && !sharded {
					if err := budget.check(p0, syss, nil); err != nil {
						return err
					}
				}
				if chosen, nSamples, err = chooseSettings(cmd, &cf, cfg, onnx, input, data, maxErr, maxAbsErr); err != nil {
					return err
				}
				cfg = chosen.Config
			} else if cmd.Flags().Changed("max-error") || cmd.Flags().Changed("max-abs-error") {
				return fmt.Errorf("--max-error and --max-abs-error need sample inputs: --input or --data")
			}
			// chosen.Config carries the widths measured on the samples: the program
			// Select estimated is the one built here.
			errw := cmd.ErrOrStderr()
			type built struct {
				g *model.Graph
				p *quant.Program
			}
			q, err := step(errw, "quantize", func() (built, error) {
				g, p, err := prover.Build(onnx, cfg)
				return built{g, p}, err
			})
			if err != nil {
				return err
			}
			// The service's admission estimate, printed and checked against the memory
			// budget before anything is written or compiled.
			limits, err := budget.limits()
			if err != nil {
				return err
			}
			if sharded {
				limits.MaxConstraints = segmentConstraints
				// The whole program's estimate, printed: the segments are checked
				// against the budget instead.
				if err := printEstimates(q.p, syss, errw); err != nil {
					return err
				}
			} else if err := budget.check(q.p, syss, errw); err != nil {
				return err
			}
			m, err := prover.CreateBuilt(dir, onnx, cfg, q.g, q.p)
			if err != nil {
				return err
			}
			if input != "" {
				in, err := readInputs(input, m.Graph)
				if err != nil {
					return err
				}
				if _, err := prover.NewWitness(m.Program, in); err != nil {
					return fmt.Errorf("sample input: %w", err)
				}
			}
			if sharded {
				return compileSharded(cmd, m, syss, limits, cuts, planPath, asJSON)
			}
			all := map[string]*circuits.Stats{}
			for _, sys := range syss {
				st, err := step(errw, "compile "+string(sys), func() (*circuits.Stats, error) { return m.Compile(sys) })
				if err != nil {
					return err
				}
				all[string(sys)] = st
			}
			if svg != "" {
				if err := writeReportSVGFile(svg, filepath.Base(args[0]), all, syss); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				res := map[string]any{"model_id": m.ID, "dir": dir, "circuits": all}
				if chosen != nil {
					// estimated_constraints: Select's count for the choice (the Groth16
					// admission estimate of the program compiled here, an upper bound).
					res["settings"] = map[string]any{"config": chosen.Config, "max_abs_error": chosen.MaxAbsErr, "target": chosen.Target, "output_range": chosen.Range, "samples": nSamples,
						"estimated_constraints": chosen.Constraints}
				}
				return enc.Encode(res)
			}
			if chosen != nil {
				c := chosen.Config
				how := "chosen"
				if cf.fixed("scale") && cf.fixed("param-scale") && cf.fixed("lookup-bits") && cf.fixed("bits") {
					how = "checked"
				}
				target := fmt.Sprintf("%.3g", chosen.Target)
				if chosen.Range > 0 {
					target += fmt.Sprintf(" (%g of the output range %.3g)", maxErr, chosen.Range)
				}
				fmt.Fprintf(out, "settings %s on %d sample(s): scale %d, param scale %d, lookup bits %d, bits %d; max abs error %.3g, target %s\n",
					how, nSamples, c.Scale, c.ParamScale, c.LookupBits, c.Bits, chosen.MaxAbsErr, target)
			}
			fmt.Fprintf(out, "model %s\nmodel ID %s (sha256 of the quantized program)\n", dir, m.ID)
			if c, ok, err := circuits.ParamsCommitment(m.Program); err != nil {
				return err
			} else if ok {
				fmt.Fprintf(out, "params commitment %s (Poseidon2; a public input of every proof)\n", c)
			}
			for _, sys := range syss {
				st := all[string(sys)]
				if report {
					fmt.Fprintln(out)
					if err := st.WriteTable(out); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(out, "%-8s %d constraints (%s), %d public inputs\n", sys, st.Constraints, st.Constraint, st.PublicInputs())
				}
			}
			return nil
		},
	}
	cf.register(cmd)
	budget.register(cmd)
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory to write (default: MODEL.onnx -> ./MODEL.zkml)")
	cmd.Flags().StringVar(&input, "input", "", "sample input.json: checked against the fixed-point range, and used to choose the settings")
	cmd.Flags().StringVar(&data, "data", "", "more sample inputs (input.json or a JSON array of input objects) to choose the settings on")
	cmd.Flags().Float64Var(&maxErr, "max-error", calibrate.DefaultRelativeError, "error target for choosing settings: max abs error on the samples, relative to the outputs' range")
	cmd.Flags().Float64Var(&maxAbsErr, "max-abs-error", 0, "error target as an absolute max abs error (overrides --max-error)")
	cmd.Flags().StringVar(&systems, "system", "all", "proving systems: groth16, plonk, or all")
	cmd.Flags().BoolVar(&report, "report", false, "print the circuit size layer by layer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&svg, "svg", "", "also draw the per-layer constraints, range-checked bits and lookups into this SVG file")
	cmd.Flags().BoolVar(&sharded, "shard", false, "split the model into segments that each fit --max-memory (and --segment-constraints), one circuit and proof each")
	cmd.Flags().Int64Var(&segmentConstraints, "segment-constraints", 0, "with --shard: also bound each segment's estimated constraints (0: no bound)")
	cmd.Flags().IntSliceVar(&cuts, "cuts", nil, "with --shard: cut before these layer indices instead of splitting by the budget")
	cmd.Flags().StringVar(&planPath, "plan", "", "with --shard: split as this recorded plan does (the shard.json of a directory of the same model and settings) instead of planning again; every segment is still checked against the budget")
	return cmd
}

func setupCmd() *cobra.Command {
	var dir, systems, srsPath, srsCacheFlag string
	var resume bool
	var budget memoryBudget
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Generate proving and verifying keys (development setup; --srs FILE.ptau: PLONK on a public SRS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			syss, err := parseSystems(systems)
			if err != nil {
				return err
			}
			if err := budget.checkDir(dir, syss); err != nil {
				return err
			}
			m, err := prover.Open(dir)
			if err != nil {
				return err
			}
			if shard.Sharded(m) {
				return setupSharded(cmd, m, syss, &budget, srsPath, srsCacheFlag, resume)
			}
			if resume {
				return fmt.Errorf("--resume continues the setup of a sharded model's segments; %s holds one circuit: run setup without it", dir)
			}
			if err := budget.check(m.Program, syss, nil); err != nil {
				return err
			}
			if srsPath != "" {
				return setupUniversal(cmd, m, syss, srsPath, srsCacheFlag)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", prover.DevSetupWarning)
			for _, sys := range syss {
				if !m.Has("circuit", sys) {
					if _, err := step(cmd.ErrOrStderr(), "compile "+string(sys), func() (*circuits.Stats, error) { return m.Compile(sys) }); err != nil {
						return err
					}
				}
				if _, err := step(cmd.ErrOrStderr(), "setup "+string(sys), func() (struct{}, error) { return struct{}{}, m.Setup(sys) }); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory (from compile)")
	cmd.Flags().StringVar(&systems, "system", "groth16", "proving systems: groth16, plonk, or all")
	cmd.Flags().StringVar(&srsPath, "srs", "", "Powers of Tau file (snarkjs .ptau, BN254): PLONK keys on its public SRS, reproducible by anyone")
	cmd.Flags().BoolVar(&resume, "resume", false, "sharded models: keep the keys of segments already set up for their current circuit the same way (same --srs file), make the rest")
	addSRSCacheFlag(cmd, &srsCacheFlag)
	budget.register(cmd)
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func proveCmd() *cobra.Command {
	var dir, input, system, device string
	var resume bool
	var budget memoryBudget
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Prove one inference and compare it with the float reference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sys, err := circuits.ParseSystem(system); err == nil {
				if err := budget.checkDir(dir, []circuits.System{sys}); err != nil {
					return err
				}
			}
			m, sys, in, err := openWithInputs(dir, system, input)
			if err != nil {
				return err
			}
			if shard.Sharded(m) {
				if device != "cpu" {
					return fmt.Errorf("%s is sharded: --device %s is not supported for sharded models yet", dir, device)
				}
				return proveSharded(cmd, m, sys, in, &budget, resume)
			}
			if resume {
				return fmt.Errorf("--resume goes on with the segment proofs of a sharded model; %s holds one circuit: prove without it", dir)
			}
			if err := budget.check(m.Program, []circuits.System{sys}, nil); err != nil {
				return err
			}
			want, err := m.Graph.Eval(in)
			if err != nil {
				return err
			}
			dev, err := prover.ParseDevice(device)
			if err != nil {
				return err
			}
			p, err := step(cmd.ErrOrStderr(), "prove "+string(sys), func() (*prover.Proof, error) { return m.Prove(sys, in, prover.WithDevice(dev)) })
			if err != nil {
				return err
			}
			if err := m.SaveProof(p); err != nil {
				return err
			}
			return printOutputs(cmd.OutOrStdout(), m, p, want)
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory (from compile and setup)")
	cmd.Flags().StringVar(&input, "input", "", "input.json ({\"input_data\": [[...]]})")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	cmd.Flags().BoolVar(&resume, "resume", false, "sharded models: use the segment proofs an earlier, stopped prove stored where they prove this inference; prove the rest")
	budget.register(cmd)
	cmd.Flags().StringVar(&device, "device", "cpu", prover.Devices+": cpu is gnark; icicle-cpu (ICICLE's CPU backend) and gpu (ICICLE CUDA) are Groth16 only, need a binary built with -tags icicle and fall back to cpu with a warning")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

// printOutputs prints the proven (dequantized) outputs beside the float reference.
func printOutputs(w io.Writer, m *prover.Model, p *prover.Proof, want []*model.Tensor) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "output\tindex\tproven\tfloat reference\tabs error\t\n")
	maxErr := 0.0
	for i, o := range p.Outputs {
		for j, v := range o {
			e := math.Abs(v - want[i].Data[j])
			maxErr = math.Max(maxErr, e)
			fmt.Fprintf(tw, "%s\t%d\t%.6f\t%.6f\t%.2e\t\n", m.Program.OutputNames[i], j, v, want[i].Data[j], e)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range []string{"inputs", "outputs", "params"} {
		if c, ok := p.Commitments[k]; ok {
			fmt.Fprintf(w, "%s commitment (Poseidon2, public input): %s\n", k, c)
		}
	}
	_, err := fmt.Fprintf(w, "max abs error %.3e (fixed point 2^-%d); proof verified; %s proof (%s) written to %s (%.2fs)\n",
		maxErr, m.Config.Scale, p.System, p.Device, m.Dir, p.ProveSeconds)
	return err
}

func verifyCmd() *cobra.Command {
	var dir, system, proofPath, publicPath, solc string
	var onEVM bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a proof with the model's verifying key (exit status 2 if invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, sys, err := openModel(dir, system)
			if err != nil {
				return err
			}
			if shard.Sharded(m) {
				if onEVM || publicPath != "" {
					return fmt.Errorf("%s is sharded: verify takes a bundle (--proof bundle.json); --evm and --public are not supported for sharded models", dir)
				}
				return verifySharded(cmd, m, sys, proofPath)
			}
			vk, err := m.VerifyingKeyBytes(sys)
			if err != nil {
				return err
			}
			proof, pub, err := readProof(m, sys, proofPath, publicPath)
			if err == nil {
				err = verifier.VerifyModel(m.Program, string(sys), vk, proof, pub)
			}
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "INVALID: %v\n", err)
				return exitError(2)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "valid %s proof for model %s\n", sys, m.ID)
			if m.Program.ParamVis == quant.Private {
				fmt.Fprintln(cmd.OutOrStdout(), "note: the params are private: the proof does not bind the weights, only the architecture")
			}
			printTrust(cmd.OutOrStdout(), cmd.ErrOrStderr(), m, sys)
			if onEVM {
				return verifyOnEVM(cmd, m, sys, proof, pub, solc)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "model directory")
	cmd.Flags().StringVar(&system, "system", "groth16", "proving system: groth16 or plonk")
	cmd.Flags().StringVar(&proofPath, "proof", "", "proof file (default: the model directory's last proof)")
	cmd.Flags().StringVar(&publicPath, "public", "", "public witness file (default: the model directory's)")
	cmd.Flags().BoolVar(&onEVM, "evm", false, "also run the generated Solidity verifier in an in-process EVM and print gas")
	cmd.Flags().StringVar(&solc, "solc", "", "directory with the pinned solc-js in node_modules/solc, for --evm (default $"+evm.EnvSolc+", else the user cache directory, installed there with npm on first use)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func configDefault() quant.Config { return quant.DefaultConfig() }
