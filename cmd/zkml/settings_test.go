package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/prover"
)

// TestCompileChoosesSettings: with a sample input, compile picks the settings that meet
// the error target at the fewest constraints, prints them and writes them into the
// model directory; a looser target picks settings no more expensive; explicit flags are
// kept, and validated against the target.
func TestCompileChoosesSettings(t *testing.T) {
	model := filepath.Join(modelsDir, "2l_relu_sigmoid_small")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")
	compile := func(args ...string) (map[string]any, *prover.Model) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "m")
		out, err := run(t, append([]string{"compile", onnx, "-d", dir, "--input", input, "--system", "groth16", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("compile %v: %v", args, err)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		m, err := prover.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return res, m
	}
	constraints := func(res map[string]any) float64 {
		return res["circuits"].(map[string]any)["groth16"].(map[string]any)["constraints"].(float64)
	}
	tight, m := compile("--max-error", "0.01")
	st := tight["settings"].(map[string]any)
	if e, tg := st["max_abs_error"].(float64), st["target"].(float64); e > tg || tg <= 0 {
		t.Fatalf("chosen error %g, target %g", e, tg)
	}
	// Select's count is that of the program compiled: an upper bound, close to it (#15).
	if est, got := st["estimated_constraints"].(float64), constraints(tight); est < got || est > 1.1*got+300 {
		t.Errorf("Select estimated %g constraints, compiled %g", est, got)
	}
	cfg := st["config"].(map[string]any)
	if cfg["scale"].(float64) != float64(m.Config.Scale) || cfg["bits"].(float64) != float64(m.Config.Bits) {
		t.Fatalf("printed %v, compiled %+v", cfg, m.Config)
	}
	loose, _ := compile("--max-error", "0.1")
	if constraints(loose) > constraints(tight) {
		t.Errorf("a looser target costs more: %g > %g constraints", constraints(loose), constraints(tight))
	}

	// The text report states the choice and the error.
	out, err := run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "m"), "--input", input, "--system", "groth16", "--max-error", "0.01")
	if err != nil || !strings.Contains(out, "settings chosen on 1 sample(s): scale ") || !strings.Contains(out, "of the output range") {
		t.Fatalf("compile: %v\n%s", err, out)
	}

	// Explicit settings win, and are validated.
	_, m = compile("--max-error", "0.1", "--scale", "7", "--param-scale", "7")
	if m.Config.Scale != 7 || m.Config.ParamScale != 7 {
		t.Fatalf("explicit --scale 7 --param-scale 7 not kept: %+v", m.Config)
	}
	sigmoid := filepath.Join(modelsDir, "1l_sigmoid")
	for _, tc := range []struct {
		model string
		args  []string
		want  []string
	}{
		{model, []string{"--scale", "3", "--max-error", "0.001"}, []string{"--scale 3", "error target not met"}},
		{sigmoid, []string{"--scale", "24", "--bits", "40", "--max-error", "0.5"}, []string{"--scale 24, --bits 40", "Sigmoid"}},
		{model, []string{"--bits", "10", "--max-error", "0.001"}, []string{"--bits 10", "error target not met"}},
	} {
		_, err := run(t, append([]string{"compile", filepath.Join(tc.model, "network.onnx"), "-d", filepath.Join(t.TempDir(), "m"), "--input", filepath.Join(tc.model, "input.json"), "--system", "groth16"}, tc.args...)...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: want an error containing %q, got %v", tc.args, w, err)
			}
		}
	}
	if _, err := run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "m"), "--max-error", "0.01"); err == nil || !strings.Contains(err.Error(), "--input or --data") {
		t.Errorf("--max-error without samples: %v", err)
	}
	// --data: a JSON array of samples.
	b, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "samples.json")
	if err := os.WriteFile(data, []byte("["+string(b)+","+string(b)+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "m"), "--data", data, "--system", "groth16", "--max-error", "0.01")
	if err != nil || !strings.Contains(out, "on 2 sample(s)") {
		t.Fatalf("compile --data: %v\n%s", err, out)
	}
}
