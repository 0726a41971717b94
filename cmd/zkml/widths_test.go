package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestCompileMeasuresWidths: compile --input records each activation's measured width
// in settings.json, the directory reopens to the same model ID (the widths are part of
// the settings), and an explicit --bits below what a tensor needs is an error naming
// the tensor; without --input nothing is measured.
func TestCompileMeasuresWidths(t *testing.T) {
	ex := filepath.Join("..", "..", "examples", "mnist_cnn")
	onnx, input := filepath.Join(ex, "network.onnx"), filepath.Join(ex, "input.json")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	if _, err := run(t, "compile", onnx, "-d", dir, "--input", input, "--system", "groth16"); err != nil {
		t.Fatalf("compile: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg quant.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Widths) == 0 {
		t.Fatalf("settings.json has no widths:\n%s", b)
	}
	m, err := prover.Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := prover.NewWitness(m.Program, mustInputs(t, input, m)); err != nil {
		t.Fatalf("the sample does not fit its own widths: %v", err)
	}

	plain := filepath.Join(t.TempDir(), "p.zkml")
	if _, err := run(t, "compile", onnx, "-d", plain, "--system", "groth16"); err != nil {
		t.Fatalf("compile: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(plain, "settings.json")); err != nil || strings.Contains(string(b), "widths") {
		t.Fatalf("widths without --input (%v):\n%s", err, b)
	}

	// (The fixed-point settings are given too, with a loose error target: with --input
	// alone compile would choose them, and --bits 10 would fail the error target first.)
	_, err = run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "c.zkml"), "--input", input, "--bits", "10", "--system", "groth16",
		"--scale", "8", "--param-scale", "8", "--lookup-bits", "12", "--max-error", "1")
	if err == nil || !strings.Contains(err.Error(), "more than 10") || !strings.Contains(err.Error(), "rescale") {
		t.Fatalf("--bits 10: got %v, want an error naming a tensor above the cap", err)
	}
	// Measured widths from a settings file are capped by an explicit --bits too.
	settings := filepath.Join(dir, "settings.json")
	_, err = run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "s.zkml"), "--settings", settings, "--bits", "10", "--system", "groth16")
	if err == nil || !strings.Contains(err.Error(), "more than --bits 10") {
		t.Fatalf("settings widths above --bits 10: got %v", err)
	}
	if _, err := run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "s2.zkml"), "--settings", settings, "--system", "groth16"); err != nil {
		t.Fatalf("compile with the measured settings: %v", err)
	}
}

func mustInputs(t *testing.T, path string, m *prover.Model) []*model.Tensor {
	t.Helper()
	in, err := readInputs(path, m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
