package engine

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
)

func readModel(t *testing.T, name string) ([]byte, []byte) {
	t.Helper()
	dir := filepath.Join("../../testdata/models", name)
	onnx, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		t.Skipf("shared models not available: %v", err)
	}
	in, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	return onnx, in
}

func TestEngine(t *testing.T) {
	ctx := context.Background()
	onnx, input := readModel(t, "1l_mlp")
	e := &Engine{}
	dir := t.TempDir()
	info, err := e.Compile(ctx, dir, onnx, []byte(`{"scale": 8}`))
	if err != nil {
		t.Fatal(err)
	}
	if info.ModelID == "" || info.Constraints["groth16"] == 0 || info.Constraints["plonk"] == 0 || len(info.Inputs) != 1 {
		t.Fatalf("model info incomplete: %+v", info)
	}
	for _, sys := range api.Systems {
		if _, err := e.Setup(ctx, dir, sys); err != nil {
			t.Fatal(err)
		}
		var stages []string
		res, err := e.Prove(ctx, dir, sys, input, func(s string, _ float64) { stages = append(stages, s) })
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Calldata) < 4 || len(res.Outputs) != 1 || len(stages) == 0 {
			t.Fatalf("%s: incomplete result %+v, stages %v", sys, res, stages)
		}
		v, err := e.Verify(ctx, dir, sys, res.Proof, res.PublicInputs)
		if err != nil || !v.Valid {
			t.Fatalf("%s: valid proof: %+v %v", sys, v, err)
		}
		last := len(res.PublicInputs) - 1
		bad := append([]string(nil), res.PublicInputs...)
		bad[last] = "7"
		// The same field element written as v + r: the EVM rejects it, so must we.
		plusR := append([]string(nil), res.PublicInputs...)
		x, _ := new(big.Int).SetString(res.PublicInputs[last], 10)
		plusR[last] = x.Add(x, circuits.Field).String()
		for _, tc := range []struct {
			name   string
			proof  []byte
			public []string
			reason string
		}{
			{"tampered public inputs", res.Proof, bad, "invalid proof"},
			{"non-canonical public input", res.Proof, plusR, "not a canonical field element"},
			{"junk proof", []byte("junk"), res.PublicInputs, "invalid proof"},
			{"junk public inputs", res.Proof, []string{"not a number"}, "not a decimal integer"},
		} {
			v, err := e.Verify(ctx, dir, sys, tc.proof, tc.public)
			if err != nil || v.Valid || !strings.Contains(v.Reason, tc.reason) {
				t.Fatalf("%s: %s: %+v %v, want invalid with %q", sys, tc.name, v, err, tc.reason)
			}
		}
		sol, err := e.SolidityVerifier(ctx, dir, sys)
		if err != nil || !strings.Contains(string(sol), "contract ZKMLVerifier") {
			t.Fatalf("%s: verifier source: %v", sys, err)
		}
	}
}

func TestEngineUserErrors(t *testing.T) {
	ctx := context.Background()
	onnx, _ := readModel(t, "1l_mlp")
	e := &Engine{}
	if _, err := e.Compile(ctx, t.TempDir(), []byte("garbage"), nil); !errors.Is(err, api.ErrInvalidModel) {
		t.Errorf("garbage model: %v, want ErrInvalidModel", err)
	}
	if _, err := e.Compile(ctx, t.TempDir(), onnx, []byte(`{"bits": 2}`)); !errors.Is(err, api.ErrInvalidSettings) {
		t.Errorf("bad settings: %v, want ErrInvalidSettings", err)
	}
	if _, err := e.Compile(ctx, t.TempDir(), onnx, []byte(`{"colour": 1}`)); !errors.Is(err, api.ErrInvalidSettings) {
		t.Errorf("unknown setting: %v, want ErrInvalidSettings", err)
	}
	dir := t.TempDir()
	if _, err := e.Compile(ctx, dir, onnx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Setup(ctx, dir, "groth16"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"input_data": [[1]]}`, `{"input_data": [[1e9, 0, 0]]}`, `not json`} {
		if _, err := e.Prove(ctx, dir, "groth16", []byte(in), nil); !errors.Is(err, api.ErrInvalidInput) {
			t.Errorf("input %s: %v, want ErrInvalidInput", in, err)
		}
	}
}
