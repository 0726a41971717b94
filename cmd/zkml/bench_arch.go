package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// archFlags are bench's --arch mode: full-size (or scaled) synthetic architectures,
// estimated from their structure (bench.EstimateGraph) without lowering them.
type archFlags struct {
	archs, writeDir, segment string
	size, div, classes       int
	layers, measure          bool
}

func (a *archFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.archs, "arch", "", "estimate synthetic architectures instead of benchmarking: comma-separated "+strings.Join(onnxgen.Architectures, ", ")+" (or all); prints MACs, params, activations, estimated constraints, memory and segments, without lowering them")
	f.IntVar(&a.size, "size", 224, "--arch: input height and width")
	f.IntVar(&a.div, "div", 1, "--arch: channel divisor (1: the published widths)")
	f.IntVar(&a.classes, "classes", 1000, "--arch: classes (outputs)")
	f.BoolVar(&a.layers, "layers", false, "--arch: also print the per-layer breakdown")
	f.BoolVar(&a.measure, "measure", false, "--arch: also lower and compile (Groth16) each model, with times and heap peaks, to compare with the estimate (small models only: this builds the circuit)")
	f.StringVar(&a.writeDir, "write-onnx", "", "--arch: write each model's ONNX and input.json into this directory (DIR/NAME/network.onnx), with random weights (a model to prove), or as estimated (weights as ConstantOfShape fills, onnxgen FillWeights) where random weights would be past the model file limit")
	f.StringVar(&a.segment, "segment-memory", "8GiB", "--arch: per-process memory budget for the segment count")
}

func (a *archFlags) run(cmd *cobra.Command, jsonPath string) error {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	budget, err := parseBytes(a.segment)
	if err != nil {
		return fmt.Errorf("--segment-memory: %w", err)
	}
	names := strings.Split(a.archs, ",")
	if a.archs == "all" {
		names = onnxgen.Architectures
	}
	cfg := quant.DefaultConfig()
	// Full-size VGG-16's convolutions are over the loader's per-node work limit (the
	// float evaluation that infers shapes at load): estimates lift it, this process
	// proves nothing.
	defer func(old int64) { model.MaxNodeWork = old }(model.MaxNodeWork)
	model.MaxNodeWork = 1 << 40
	var rows []*bench.ArchRow
	for _, name := range names {
		// Estimates only need the structure: weights as ConstantOfShape fills keep the
		// file small (VGG-16's 138 M weights are 553 MB of ONNX, past the file limit).
		arch, err := onnxgen.ParseArch(strings.TrimSpace(name), a.size, a.div, a.classes, !a.measure)
		if err != nil {
			return err
		}
		fmt.Fprintf(errw, "estimating %s\n", arch.Name())
		row, onnx, err := bench.EstimateArch(arch, cfg, budget)
		if err != nil {
			return err
		}
		row.Div = a.div
		if a.writeDir != "" {
			// The written model is one to prove: random weights (as --measure
			// builds), unless they would be past the model file limit. Constant fills
			// are for estimates: every weight positive, the activations of a deep
			// network grow past any fixed-point range (ResNet-50's overflow 24 bits
			// by its fourth block).
			write := arch
			if row.Estimate.Params*4 < int64(model.MaxModelBytes)*9/10 {
				if write, err = onnxgen.ParseArch(strings.TrimSpace(name), a.size, a.div, a.classes, false); err != nil {
					return err
				}
			} else if !a.measure {
				fmt.Fprintf(errw, "%s: written with constant weights (random ones would be past the model file limit): for estimates; its activations overflow the fixed-point range when proven\n", arch.Name())
			}
			b, input, _, err := write.Build()
			if err != nil {
				return err
			}
			d := filepath.Join(a.writeDir, arch.Name())
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(d, "network.onnx"), b, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(d, "input.json"), input, 0o644); err != nil {
				return err
			}
		}
		if a.measure {
			fmt.Fprintf(errw, "lowering and compiling %s (Groth16)\n", arch.Name())
			if row.Measured, err = bench.MeasureArch(onnx, cfg); err != nil {
				return err
			}
		}
		rows = append(rows, row)
	}
	if err := bench.WriteArchTable(out, rows); err != nil {
		return err
	}
	if a.layers {
		for _, r := range rows {
			fmt.Fprintln(out)
			if err := bench.WriteLayerTable(out, r.Arch, r.Estimate); err != nil {
				return err
			}
		}
	}
	if jsonPath != "" {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(jsonPath, b, 0o644)
	}
	return nil
}
