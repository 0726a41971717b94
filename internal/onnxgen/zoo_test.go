package onnxgen

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zkml/zkml/model"
)

// TestZooMNIST checks that the zoo-shaped MNIST CNN loads with its layers and input.
// With ZKML_WRITE_ZOO=DIR it also writes DIR/network.onnx and DIR/input.json (for the
// per-tensor widths measurements in docs/bench-notes.md).
func TestZooMNIST(t *testing.T) {
	onnxBytes, input, err := ZooMNIST()
	if err != nil {
		t.Fatal(err)
	}
	g, err := model.Load(onnxBytes)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range g.Nodes {
		ops[n.Op]++
	}
	if ops["Conv"] != 2 || ops["Add"] != 3 || ops["Relu"] != 2 || ops["MaxPool"] != 2 || ops["MatMul"] != 1 {
		t.Fatalf("ops %v", ops)
	}
	in, err := model.ParseInput(input, g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.Eval(in)
	if err != nil || len(out) != 1 || len(out[0].Data) != 10 {
		t.Fatalf("eval: %v %v", out, err)
	}
	if dir := os.Getenv("ZKML_WRITE_ZOO"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "network.onnx"), onnxBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "input.json"), input, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
