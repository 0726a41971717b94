// Package bench measures zkml end to end (compile, setup, prove, verify, sizes, memory)
// on synthetic and example models, measures the MSM+FFT floor a Groth16 prover cannot go
// below, derives the project's per-gadget constraint budgets, and renders the results as
// a text table, CSV, JSON, a log-log SVG plot and BENCHMARKS.md.
package bench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// Model is one benchmark model: ONNX bytes, a sample input in the input.json layout and
// the fixed-point settings it is compiled with.
type Model struct {
	Name   string
	Desc   string
	ONNX   []byte
	Input  []byte
	Config quant.Config
	// Source is "synthetic", "example" or the directory the model was read from.
	Source string
}

// spec describes a synthetic model: its architecture and whether its weights are
// private witnesses.
type spec struct {
	desc  string
	stack onnxgen.Stack
	// private weights: each multiply-accumulate is a constraint (ParamVis=private).
	private bool
}

// synthetic lists the built-in models. The size families are tuned (measured with
// circuits.Compile, Groth16/R1CS) to land just under 2^16, 2^18 and 2^20 constraints so
// each fills its FFT domain.
var synthetic = map[string]spec{
	"mnist_mlp": {desc: "MLP 784-56-10 (Gemm, Relu, Gemm), fixed weights", stack: onnxgen.Stack{InDense: 784, Dense: []int{56, 10}}},
	// The bundled example model, examples/mnist_cnn.
	"mnist_cnn": {desc: "CNN 1x28x28: Conv 4@5x5/2, Relu, Conv 8@5x5/2, Relu, Gemm 128-10, fixed weights", stack: onnxgen.MNISTCNN},
	// Fixed-weight CNNs: one 3x3 same-padded Conv of C channels + Relu + Gemm to 10.
	"cnn_2e16": {desc: "CNN 1x28x28: Conv 8@3x3, Relu, Gemm 6272-10, fixed weights", stack: onnxgen.Stack{Convs: [][4]int{{8, 3, 1, 1}}, Dense: []int{10}}},
	"cnn_2e18": {desc: "CNN 1x28x28: Conv 34@3x3, Relu, Gemm 26656-10, fixed weights", stack: onnxgen.Stack{Convs: [][4]int{{34, 3, 1, 1}}, Dense: []int{10}}},
	"cnn_2e20": {desc: "CNN 1x28x28: Conv 137@3x3, Relu, Gemm 107408-10, fixed weights", stack: onnxgen.Stack{Convs: [][4]int{{137, 3, 1, 1}}, Dense: []int{10}}},
	// About 3.0 M constraints (domain 2^22): for GPU machines (scripts/gpu-bench.sh); not
	// in DefaultSynthetic (its compile needs about 10 GB).
	"cnn_2e22": {desc: "CNN 1x28x28: Conv 548@3x3, Relu, Gemm 429632-10, fixed weights", stack: onnxgen.Stack{Convs: [][4]int{{548, 3, 1, 1}}, Dense: []int{10}}},
	// Private-weight MLPs: every multiply-accumulate is a constraint.
	"mlp_2e16": {desc: "MLP 128-140-10, private weights", stack: onnxgen.Stack{InDense: 128, Dense: []int{140, 10}}, private: true},
	"mlp_2e18": {desc: "MLP 256-296-10, private weights", stack: onnxgen.Stack{InDense: 256, Dense: []int{296, 10}}, private: true},
	"mlp_2e20": {desc: "MLP 512-608-10, private weights", stack: onnxgen.Stack{InDense: 512, Dense: []int{608, 10}}, private: true},
}

// SyntheticNames lists the built-in synthetic models, sorted.
func SyntheticNames() []string {
	names := make([]string, 0, len(synthetic))
	for n := range synthetic {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Synthetic builds a named synthetic model: ONNX bytes and an input.json. Weights are
// deterministic pseudo-random float32 values (He-style scaling) seeded by the name.
func Synthetic(name string) (onnxBytes, inputJSON []byte, err error) {
	m, err := SyntheticModel(name)
	if err != nil {
		return nil, nil, err
	}
	return m.ONNX, m.Input, nil
}

// SyntheticModel is Synthetic with the description and settings of the model.
func SyntheticModel(name string) (*Model, error) {
	s, ok := synthetic[name]
	if !ok {
		return nil, fmt.Errorf("bench: unknown synthetic model %q (have %s)", name, strings.Join(SyntheticNames(), ", "))
	}
	return s.build(name)
}

func (s spec) build(name string) (*Model, error) {
	ob, ib, err := s.stack.Build(name)
	if err != nil {
		return nil, err
	}
	cfg := quant.DefaultConfig()
	if s.private {
		cfg.ParamVis = quant.Private
	}
	return &Model{Name: name, Desc: s.desc, ONNX: ob, Input: ib, Config: cfg, Source: "synthetic"}, nil
}
