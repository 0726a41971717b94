package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modelsDir holds the example models (written by internal/onnxgen).
const modelsDir = "../../testdata/models"

// run executes the CLI in-process and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runBoth(t, args...)
	return out, err
}

func TestCLIPipeline(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_mlp")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")

	out, err := run(t, "compile", onnx, "-d", dir, "--input", input, "--report")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	for _, want := range []string{"model ID", "Rescale+Relu", "total (groth16, r1cs)", "total (plonk, scs)"} {
		if !strings.Contains(out, want) {
			t.Errorf("compile report lacks %q:\n%s", want, out)
		}
	}
	if _, err := run(t, "setup", "-d", dir, "--system", "all"); err != nil {
		t.Fatalf("setup: %v", err)
	}
	for _, sys := range []string{"groth16", "plonk"} {
		out, err = run(t, "prove", "-d", dir, "--input", input, "--system", sys)
		if err != nil {
			t.Fatalf("prove %s: %v", sys, err)
		}
		if !strings.Contains(out, "max abs error") || !strings.Contains(out, "float reference") {
			t.Errorf("prove output lacks the comparison table:\n%s", out)
		}
		out, err = run(t, "verify", "-d", dir, "--system", sys)
		if err != nil || !strings.Contains(out, "valid "+sys) {
			t.Fatalf("verify %s: %v\n%s", sys, err, out)
		}
	}

	// A tampered proof is reported invalid with exit status 2, not a crash.
	proof, err := os.ReadFile(filepath.Join(dir, "proof.groth16.bin"))
	if err != nil {
		t.Fatal(err)
	}
	proof[len(proof)/2] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.bin")
	if err := os.WriteFile(bad, proof, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "verify", "-d", dir, "--proof", bad)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID") {
		t.Fatalf("tampered proof: err %v, out %q; want exit status 2 and INVALID", err, out)
	}
	out, err = run(t, "calldata", "-d", dir)
	if err != nil || !strings.HasPrefix(out, "0x") {
		t.Fatalf("calldata: %v %q", err, out)
	}
}

func TestCLIErrors(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_mlp")
	bogus := filepath.Join(t.TempDir(), "bogus.onnx")
	if err := os.WriteFile(bogus, []byte("definitely not protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	badInput := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(badInput, []byte(`{"input_data": [[1, 2]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"malformed onnx", []string{"compile", bogus, "-d", t.TempDir()}, "invalid model"},
		{"wrong input shape", []string{"compile", filepath.Join(model, "network.onnx"), "-d", t.TempDir(), "--input", badInput}, "bad input"},
		{"bad visibility", []string{"compile", filepath.Join(model, "network.onnx"), "--input-visibility", "secret"}, "input_visibility"},
		{"bad system", []string{"setup", "-d", t.TempDir(), "--system", "stark"}, "unknown proving system"},
		{"unknown settings field", []string{"compile", filepath.Join(model, "network.onnx"), "--settings", writeFile(t, `{"scael": 9}`)}, "unknown field"},
		{"settings out of range", []string{"compile", filepath.Join(model, "network.onnx"), "--settings", writeFile(t, `{"bits": 99}`)}, "bits 99"},
		{"not a model dir", []string{"prove", "-d", t.TempDir(), "--input", badInput}, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCLIVerifyEVM runs the generated Solidity verifiers in the in-process EVM for a
// real model, with and without the range-check commitment, and checks the gas goal:
// Groth16 verification under 250k gas when no commitment is needed.
func TestCLIVerifyEVM(t *testing.T) {
	if testing.Short() {
		t.Skip("needs solc (scripts/ensure-solc.sh); skipped in -short")
	}
	model := filepath.Join(modelsDir, "1l_mlp")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")
	for _, tc := range []struct {
		rangeCheck string
		system     string
		maxGas     int
	}{
		{"bits", "groth16", 250_000},
		{"lookup", "groth16", 400_000},
		{"lookup", "plonk", 400_000},
	} {
		t.Run(tc.rangeCheck+"-"+tc.system, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m.zkml")
			steps := [][]string{
				{"compile", onnx, "-d", dir, "--system", tc.system, "--range-check", tc.rangeCheck},
				{"setup", "-d", dir, "--system", tc.system},
				{"prove", "-d", dir, "--input", input, "--system", tc.system},
			}
			for _, args := range steps {
				if _, err := run(t, args...); err != nil {
					t.Fatalf("%v: %v", args, err)
				}
			}
			out, err := run(t, "verify", "-d", dir, "--system", tc.system, "--evm")
			if err != nil {
				t.Fatalf("verify --evm: %v\n%s", err, out)
			}
			var gas int
			i := strings.Index(out, "verify gas ")
			if i < 0 {
				t.Fatalf("no gas figure in %q", out)
			}
			if _, err := fmt.Sscanf(out[i:], "verify gas %d", &gas); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: verify gas %d", tc.system, tc.rangeCheck, gas)
			if !strings.Contains(out, "valid=true") || gas > tc.maxGas {
				t.Fatalf("on-chain verification: %s (gas %d, limit %d)", out, gas, tc.maxGas)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettingsFile(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_relu")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	settings := writeFile(t, `{"scale": 6, "input_visibility": "public"}`)
	if _, err := run(t, "compile", filepath.Join(model, "network.onnx"), "-d", dir, "--settings", settings, "--scale", "7", "--system", "groth16"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, `"scale": 7`) || !strings.Contains(s, `"input_visibility": "public"`) {
		t.Fatalf("flags should override the file, the file the defaults; got %s", s)
	}
}

func TestCalibrateCommand(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_mlp")
	in, err := os.ReadFile(filepath.Join(model, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	samples := writeFile(t, "["+string(in)+`, {"input_data": [[1.5, -2.0, 0.25]]}]`)
	settings := filepath.Join(t.TempDir(), "settings.json")
	out, err := run(t, "calibrate", filepath.Join(model, "network.onnx"), "--data", samples, "--scales", "4,8", "--write", settings)
	if err != nil {
		t.Fatalf("calibrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "recommended") || !strings.Contains(out, "argmax agreement") {
		t.Fatalf("calibrate output: %s", out)
	}
	if _, err := run(t, "compile", filepath.Join(model, "network.onnx"), "-d", filepath.Join(t.TempDir(), "m"), "--settings", settings, "--system", "groth16"); err != nil {
		t.Fatalf("compile with calibrated settings: %v", err)
	}
}

// TestQuantizeCommand quantizes a float model to int8 QDQ and runs the int8 model
// through compile, setup, prove and verify: its convolutions are proven as integer
// arithmetic (QLinearConv layers in the report).
func TestQuantizeCommand(t *testing.T) {
	model := filepath.Join(modelsDir, "1l_conv")
	input := filepath.Join(model, "input.json")
	q := filepath.Join(t.TempDir(), "conv.int8.onnx")
	out, err := run(t, "quantize", filepath.Join(model, "network.onnx"), "--data", input, "-o", q, "--per-channel")
	if err != nil || !strings.Contains(out, "wrote") {
		t.Fatalf("quantize: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "m")
	out, err = run(t, "compile", q, "-d", dir, "--input", input, "--report", "--system", "groth16")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if !strings.Contains(out, "QLinearConv") || strings.Contains(out, "Rescale") {
		t.Errorf("int8 model not proven as integer arithmetic:\n%s", out)
	}
	if _, err := run(t, "setup", "-d", dir, "--system", "groth16"); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if out, err := run(t, "prove", "-d", dir, "--input", input, "--system", "groth16"); err != nil {
		t.Fatalf("prove: %v\n%s", err, out)
	}
	if out, err := run(t, "verify", "-d", dir, "--system", "groth16"); err != nil || !strings.Contains(out, "valid groth16") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if _, err := run(t, "quantize", filepath.Join(model, "network.onnx")); err == nil {
		t.Error("quantize without --data accepted")
	}
}

// TestDemoBuiltinExample checks that the example demo uses without --example (built
// in-process, so an installed binary needs no checkout) is examples/mnist_cnn.
func TestDemoBuiltinExample(t *testing.T) {
	name, onnx, input, err := demoExample("")
	if err != nil {
		t.Fatal(err)
	}
	dirName, dirONNX, dirInput, err := demoExample("../../examples/mnist_cnn")
	if err != nil {
		t.Fatal(err)
	}
	if name != dirName || !bytes.Equal(onnx, dirONNX) || !bytes.Equal(bytes.TrimSpace(input), bytes.TrimSpace(dirInput)) {
		t.Fatalf("built-in example %s differs from examples/%s", name, dirName)
	}
	if _, _, _, err := demoExample(t.TempDir()); err == nil {
		t.Fatal("a directory without network.onnx accepted")
	}
}
