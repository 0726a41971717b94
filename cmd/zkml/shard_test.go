package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/prover/shard"
)

// TestCLISharded compiles a small CNN into 2 segments (cut before its fully connected
// layer), sets up, proves and verifies the bundle; a bundle with its segments swapped
// is INVALID (exit status 2).
func TestCLISharded(t *testing.T) {
	model := filepath.Join(modelsDir, "3l_relu_conv_fc")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")
	out, err := run(t, "compile", onnx, "-d", dir, "--system", "groth16", "--shard", "--cuts", "7")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if !strings.Contains(out, "sharded into 2 segments") || !strings.Contains(out, "[7, 9)") {
		t.Fatalf("compile report:\n%s", out)
	}
	// Cutting off a linear layer's accumulator is refused.
	if _, err := run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "x.zkml"), "--system", "groth16", "--shard", "--cuts", "8"); !errors.Is(err, shard.ErrBadCut) {
		t.Fatalf("cut after Gemm's accumulator: %v", err)
	}
	if _, err := run(t, "setup", "-d", dir); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if out, err = run(t, "prove", "-d", dir, "--input", input); err != nil || !strings.Contains(out, "bundle of 2 segment proofs") {
		t.Fatalf("prove: %v\n%s", err, out)
	}
	if out, err = run(t, "verify", "-d", dir); err != nil || !strings.Contains(out, "valid groth16 bundle of 2 segment proofs") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, shard.BundleFile("groth16")))
	if err != nil {
		t.Fatal(err)
	}
	var b shard.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	b.Segments[0], b.Segments[1] = b.Segments[1], b.Segments[0]
	swapped, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, swapped, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "verify", "-d", dir, "--proof", bad)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID") {
		t.Fatalf("swapped bundle: err %v, out %q; want exit status 2 and INVALID", err, out)
	}
}
