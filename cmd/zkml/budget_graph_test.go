package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestMemoryBudgetStructural: compile refuses a scaled-down ResNet-50 (32x32, channels
// / 8) over --max-memory by its structural estimate, before quantizing it: the error
// names the estimate, the budget and the largest layers, the structural estimate is
// printed, no "quantize" step ran and nothing was written. Within the budget, the
// structural check lets it through, in the requested system only (a Groth16 compile is
// not refused for PLONK's larger estimate).
func TestMemoryBudgetStructural(t *testing.T) {
	t.Setenv(envJobMemory, "")
	onnx, _, _, err := onnxgen.ResNet50{Size: 32, Div: 8, Classes: 10}.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "resnet50.onnx")
	if err := os.WriteFile(path, onnx, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m.zkml")
	_, stderr, err := runBoth(t, "compile", path, "-d", dir, "--system", "groth16", "--max-memory", "512MiB")
	if !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("err %v, want over budget", err)
	}
	for _, want := range []string{"before lowering", "above the limit of 512 MiB (--max-memory)", "largest layers: Conv", "MACs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(stderr, "estimate groth16: at most") || !strings.Contains(stderr, "structural") || strings.Contains(stderr, "quantize") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("refused compile wrote %s (%v)", dir, err)
	}
	est := graphEstimate(t, onnx)
	var b memoryBudget
	t.Setenv(envJobMemory, "1000GiB")
	if err := b.checkGraph(onnx, quant.DefaultConfig(), []circuits.System{circuits.Groth16}, false, nil); err != nil {
		t.Fatal(err)
	}
	between := (est.Groth16.MemoryBytes + est.Plonk.MemoryBytes) / 2
	t.Setenv(envJobMemory, strconv.FormatInt(between, 10))
	if err := b.checkGraph(onnx, quant.DefaultConfig(), []circuits.System{circuits.Groth16}, false, nil); err != nil {
		t.Fatalf("groth16 within the budget refused: %v", err)
	}
	if err := b.checkGraph(onnx, quant.DefaultConfig(), []circuits.System{circuits.Plonk}, false, nil); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("plonk over the budget: %v", err)
	}
}

// TestBenchArch: `zkml bench --arch` prints the estimate table (a row per
// architecture), the per-layer breakdown with --layers, and writes the rows as JSON;
// an unknown architecture is an error naming the known ones.
func TestBenchArch(t *testing.T) {
	js := filepath.Join(t.TempDir(), "archs.json")
	out := mustRun(t, "bench", "--arch", "resnet50,alexnet", "--size", "64", "--div", "32", "--classes", "4", "--layers", "--json", js)
	for _, want := range []string{"| resnet50_v1_64_div32 |", "| bvlc_alexnet_64_div32 |", "segments (8192 MiB)", "Conv+Relu", "LRN"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "BatchNormalization") {
		t.Errorf("a BatchNormalization row (they fold into their Convs):\n%s", out)
	}
	var rows []bench.ArchRow
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) != 2 || rows[0].Estimate.Groth16.Constraints == 0 {
		t.Fatalf("json (%v): %s", err, b)
	}
	if _, _, err := runBoth(t, "bench", "--arch", "lenet"); err == nil || !strings.Contains(err.Error(), "squeezenet, resnet50, vgg16, alexnet") {
		t.Errorf("unknown architecture: %v", err)
	}
}

// TestBenchArchWritesProvableModels: `zkml bench --arch --write-onnx` writes models to
// prove: random weights, as the estimate's own graph has them only with --measure
// (the estimate builds ResNet-50, VGG-16 and AlexNet with constant weight fills, whose
// activations overflow: a ResNet-50 224/16 so written failed to prove, "Conv_86 ...
// does not fit in the 24 signed bits"). The written ResNet-50's quantized program
// evaluates its input.json within range, close to the float model.
func TestBenchArchWritesProvableModels(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "bench", "--arch", "resnet50", "--size", "64", "--div", "16", "--classes", "4", "--write-onnx", dir)
	d := filepath.Join(dir, onnxgen.ResNet50{Size: 64, Div: 16}.Name())
	onnx, err := os.ReadFile(filepath.Join(d, "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile(filepath.Join(d, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, err := onnxgen.ResNet50{Size: 64, Div: 16, Classes: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onnx, want) {
		t.Fatal("written model is not the random-weight ResNet-50 (constant fills?)")
	}
	g, p, err := prover.Build(onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x, err := model.ParseInput(input, g)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := p.QuantizeInputs(x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(qi); err != nil {
		t.Fatalf("written model's input does not evaluate: %v", err)
	}
}

// graphEstimate is the structural estimate (bench.EstimateGraph, default settings) of
// an ONNX model.
func graphEstimate(t *testing.T, onnx []byte) *bench.GraphEstimate {
	t.Helper()
	g, err := model.Load(onnx)
	if err != nil {
		t.Fatal(err)
	}
	est, err := bench.EstimateGraph(g, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return est
}
