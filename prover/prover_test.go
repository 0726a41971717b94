package prover

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark/frontend"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/verifier"
)

const modelsDir = "../testdata/models"

// Tolerance is the documented bound on |proven output - float reference| for the
// shared example models at the default fixed-point settings (scale 2^-8): a few units
// in the last place, from rounding inputs, weights and each rescale.
const Tolerance = 0.02

func sharedModels(t testing.TB) []string {
	entries, err := os.ReadDir(modelsDir)
	if err != nil {
		t.Skipf("shared models not available: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func readShared(t testing.TB, name string) ([]byte, []byte) {
	t.Helper()
	onnx, err := os.ReadFile(filepath.Join(modelsDir, name, "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile(filepath.Join(modelsDir, name, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	return onnx, in
}

// TestSharedModelsEndToEnd proves every shared example model with Groth16 and PLONK,
// checks the outputs against the float reference, verifies the proof, and checks that
// tampered proofs and tampered public inputs are rejected.
func TestSharedModelsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("proves every example model; skipped in -short")
	}
	for _, name := range sharedModels(t) {
		t.Run(name, func(t *testing.T) {
			onnx, inJSON := readShared(t, name)
			m, err := Create(t.TempDir(), onnx, quant.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			in, err := model.ParseInput(inJSON, m.Graph)
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.Graph.Eval(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
				if _, err := m.Compile(sys); err != nil {
					t.Fatal(err)
				}
				if err := m.Setup(sys); err != nil {
					t.Fatal(err)
				}
				p, err := m.Prove(sys, in)
				if err != nil {
					t.Fatalf("%s: %v", sys, err)
				}
				for i := range p.Outputs {
					for j, v := range p.Outputs[i] {
						if d := math.Abs(v - want[i].Data[j]); d > Tolerance {
							t.Errorf("%s: output %d[%d] = %v, float reference %v (|diff| %.3g > %v)", sys, i, j, v, want[i].Data[j], d, Tolerance)
						}
					}
				}
				if err := m.SaveProof(p); err != nil {
					t.Fatal(err)
				}
				checkVerify(t, m, sys, p)
			}
		})
	}
}

func checkVerify(t *testing.T, m *Model, sys circuits.System, p *Proof) {
	t.Helper()
	vk, err := m.VerifyingKeyBytes(sys)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verifier.PublicWitness(p.PublicInputs)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(string(sys), vk, p.Proof, pub); err != nil {
		t.Fatalf("%s: valid proof rejected: %v", sys, err)
	}
	// A tampered public input (the claimed output) must not verify.
	bad := append([]string(nil), p.PublicInputs...)
	last := len(bad) - 1
	bad[last] = "12345"
	if bad[last] == p.PublicInputs[last] {
		bad[last] = "54321"
	}
	badPub, err := verifier.PublicWitness(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(string(sys), vk, p.Proof, badPub); !errors.Is(err, verifier.ErrInvalidProof) {
		t.Fatalf("%s: tampered public input: got %v, want ErrInvalidProof", sys, err)
	}
	// A tampered proof must not verify (flip a byte in the middle of a point).
	tampered := append([]byte(nil), p.Proof...)
	tampered[len(tampered)/2] ^= 0x01
	if err := verifier.Verify(string(sys), vk, tampered, pub); !errors.Is(err, verifier.ErrInvalidProof) {
		t.Fatalf("%s: tampered proof: got %v, want ErrInvalidProof", sys, err)
	}
	// Garbage is invalid, not a crash.
	if err := verifier.Verify(string(sys), vk, []byte("not a proof"), pub); !errors.Is(err, verifier.ErrInvalidProof) {
		t.Fatalf("%s: garbage proof: got %v, want ErrInvalidProof", sys, err)
	}
}

func TestBadInputs(t *testing.T) {
	onnx, _ := readShared(t, "1l_mlp")
	m, err := Create(t.TempDir(), onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	shape := m.Graph.Inputs[0].Shape
	tests := []struct {
		name string
		data []float64
		want error
		msg  string
	}{
		{"too few values", []float64{1}, model.ErrBadInput, "input"},
		{"NaN", []float64{1, math.NaN(), 0}, model.ErrBadInput, "NaN"},
		{"Inf", []float64{1, math.Inf(1), 0}, model.ErrBadInput, "Inf"},
		{"out of fixed-point range", []float64{1e9, 0, 0}, quant.ErrOutOfRange, "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewWitness(m.Program, []*model.Tensor{{Shape: shape, Data: tt.data}})
			if err == nil {
				err = m.Graph.CheckInputs([]*model.Tensor{{Shape: shape, Data: tt.data}})
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestOverflowNamesLayer checks that an intermediate value out of range is reported
// before proving, naming the layer.
func TestOverflowNamesLayer(t *testing.T) {
	onnx, _ := readShared(t, "1l_batch_norm")
	cfg := quant.DefaultConfig()
	cfg.Bits = cfg.Scale + 4 // |activations| < 8
	m, err := Create(t.TempDir(), onnx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := &model.Tensor{Shape: m.Graph.Inputs[0].Shape, Data: make([]float64, model.Numel(m.Graph.Inputs[0].Shape))}
	for i := range in.Data {
		in.Data[i] = 7.9 - 15.8*float64(i%2)
	}
	_, err = NewWitness(m.Program, []*model.Tensor{in})
	if !errors.Is(err, quant.ErrOutOfRange) || !strings.Contains(err.Error(), "BatchNormalization") {
		t.Fatalf("got %v, want an out-of-range error naming the BatchNormalization layer", err)
	}
}

func TestCorruptArtifacts(t *testing.T) {
	onnx, _ := readShared(t, "1l_relu")
	dir := t.TempDir()
	m, err := Create(dir, onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compile(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	path := filepath.Join(dir, "circuit.groth16.bin")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.manifest.readFile(dir, "circuit.groth16.bin"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"scale": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("changed settings: got %v, want ErrCorrupt", err)
	}
}

// TestGPUFallback checks that a GPU request on a binary or machine without ICICLE
// proves on the CPU, and the proof still verifies.
func TestGPUFallback(t *testing.T) {
	if ok, _ := GPUSupport(); ok {
		t.Skip("a GPU is available; the fallback is not exercised")
	}
	onnx, inJSON := readShared(t, "1l_relu")
	m, err := Create(t.TempDir(), onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(inJSON, m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compile(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(circuits.Groth16); err != nil {
		t.Fatal(err)
	}
	p, err := m.Prove(circuits.Groth16, in, WithDevice(GPU))
	if err != nil {
		t.Fatal(err)
	}
	if p.Device != CPU {
		t.Fatalf("proved on %s, want the CPU fallback", p.Device)
	}
	checkVerify(t, m, circuits.Groth16, p)
}

// TestFillWitnessMatchesGnark checks the fast witness builder against gnark's
// reflection-based frontend.NewWitness, byte for byte, in every visibility layout.
func TestFillWitnessMatchesGnark(t *testing.T) {
	onnx, inJSON := readShared(t, "1l_mlp")
	for _, vis := range []quant.Visibility{quant.Public, quant.Private, quant.Hashed} {
		cfg := quant.DefaultConfig()
		cfg.InputVis, cfg.OutputVis = vis, vis
		if vis != quant.Private {
			cfg.ParamVis = vis
		}
		_, p, err := Build(onnx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		g, _, _ := Build(onnx, cfg)
		in, err := model.ParseInput(inJSON, g)
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWitness(p, in)
		if err != nil {
			t.Fatal(err)
		}
		a, err := circuits.Assign(p, w.Inputs, w.IntOutputs)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := frontend.NewWitness(a, circuits.Field)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := w.Full.MarshalBinary()
		want, _ := ref.MarshalBinary()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: witness differs from gnark's", vis)
		}
	}
}
