//go:build icicle

package prover_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	cs_bn254 "github.com/consensys/gnark/constraint/bn254"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// These tests run gnark's ICICLE Groth16 prover on ICICLE's CPU backend, so that the
// code path the GPU uses runs wherever ICICLE is built (scripts/test-icicle.sh builds
// it and sets the environment). They fail, rather than skip, when the backend cannot
// load: a binary built with -tags icicle that silently proves on gnark's CPU prover
// is exactly what they are here to catch.

// requireICICLECPU fails the test unless the ICICLE CPU backend is usable.
func requireICICLECPU(t *testing.T) {
	t.Helper()
	if ok, why := prover.Support(prover.ICICLECPU); !ok {
		t.Fatalf("ICICLE CPU backend unavailable: %s (run scripts/test-icicle.sh)", why)
	}
}

// groth16Commitments is the number of BSB22 commitments of a compiled Groth16 circuit:
// the range argument and lookup tables draw their challenge from one.
func groth16Commitments(t *testing.T, ccs constraint.ConstraintSystem) int {
	t.Helper()
	r1cs, ok := ccs.(*cs_bn254.R1CS)
	if !ok {
		t.Fatalf("compiled circuit is %T, want a BN254 R1CS", ccs)
	}
	return len(r1cs.CommitmentInfo.(constraint.Groth16Commitments))
}

// setUpModel creates, compiles and sets up for sys the model in dir (network.onnx and
// input.json) with cfg, and returns it with its parsed input.
func setUpModel(t *testing.T, dir string, cfg quant.Config, sys circuits.System) (*prover.Model, []*model.Tensor) {
	t.Helper()
	onnx, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	inJSON, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := prover.Create(t.TempDir(), onnx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(inJSON, m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compile(sys); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(sys); err != nil {
		t.Fatal(err)
	}
	return m, in
}

// TestICICLECPUModels proves models through Model.Prove on the icicle-cpu device and
// re-verifies every proof from its bytes on gnark's CPU verifier: the bundled example
// (whose default "lookup" range checks make a commitment circuit) and a small model with
// "bits" range checks (no commitment).
func TestICICLECPUModels(t *testing.T) {
	requireICICLECPU(t)
	tests := []struct {
		name        string
		dir         string
		rangeCheck  string
		wantCommits bool
		// again proves a second time, with the ICICLE proving key cached by the first.
		again bool
	}{
		{"mnist_cnn/lookup", "../examples/mnist_cnn", "lookup", true, true},
		{"1l_relu/bits", "../testdata/models/1l_relu", "bits", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := quant.DefaultConfig()
			cfg.RangeCheck = tc.rangeCheck
			m, in := setUpModel(t, tc.dir, cfg, circuits.Groth16)
			ccs, err := m.Circuit(circuits.Groth16)
			if err != nil {
				t.Fatal(err)
			}
			if n := groth16Commitments(t, ccs); (n > 0) != tc.wantCommits {
				t.Fatalf("%d commitments, want commitments: %v", n, tc.wantCommits)
			}
			p, err := m.Prove(circuits.Groth16, in, prover.WithDevice(prover.ICICLECPU))
			if err != nil {
				t.Fatal(err)
			}
			if p.Device != prover.ICICLECPU {
				t.Fatalf("proved on %s, want %s", p.Device, prover.ICICLECPU)
			}
			vk, err := m.VerifyingKeyBytes(circuits.Groth16)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := verifier.PublicWitness(p.PublicInputs)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifier.Verify(string(circuits.Groth16), vk, p.Proof, pub); err != nil {
				t.Fatalf("ICICLE CPU proof rejected by gnark's verifier: %v", err)
			}
			if tc.again {
				p2, err := m.Prove(circuits.Groth16, in, prover.WithDevice(prover.ICICLECPU))
				if err != nil {
					t.Fatalf("second proof with the cached key: %v", err)
				}
				if err := verifier.Verify(string(circuits.Groth16), vk, p2.Proof, pub); err != nil {
					t.Fatalf("second ICICLE CPU proof rejected by gnark's verifier: %v", err)
				}
			}
		})
	}
}

// TestICICLECPUPlonkFallsBack checks that a PLONK proof asked of icicle-cpu (gnark's
// ICICLE backend is Groth16 only) is made by gnark's CPU prover and verifies.
func TestICICLECPUPlonkFallsBack(t *testing.T) {
	requireICICLECPU(t)
	m, in := setUpModel(t, "../testdata/models/1l_relu", quant.DefaultConfig(), circuits.Plonk)
	p, err := m.Prove(circuits.Plonk, in, prover.WithDevice(prover.ICICLECPU))
	if err != nil {
		t.Fatal(err)
	}
	if p.Device != prover.CPU {
		t.Fatalf("PLONK proved on %s, want the CPU fallback", p.Device)
	}
}

// TestICICLECPUSynthetic2e16 proves the 2^16-constraint synthetic CNN through ProveCS
// (the benchmark path) on icicle-cpu and verifies it on gnark's CPU verifier. It takes
// about a minute and a half on two shared cores, so -short skips it.
func TestICICLECPUSynthetic2e16(t *testing.T) {
	if testing.Short() {
		t.Skip("2^16 constraints: skipped with -short")
	}
	requireICICLECPU(t)
	bm, err := bench.LoadModel("cnn_2e16", "")
	if err != nil {
		t.Fatal(err)
	}
	g, prog, err := prover.Build(bm.ONNX, bm.Config)
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(bm.Input, g)
	if err != nil {
		t.Fatal(err)
	}
	w, err := prover.NewWitness(prog, in)
	if err != nil {
		t.Fatal(err)
	}
	ccs, _, err := circuits.Compile(prog, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	if n := ccs.GetNbConstraints(); n < 1<<15 || n > 1<<16 {
		t.Fatalf("cnn_2e16 has %d constraints, want (2^15, 2^16]", n)
	}
	if groth16Commitments(t, ccs) == 0 {
		t.Fatal("cnn_2e16 has no commitment; its range argument should make one")
	}
	pk, vk, err := prover.SetupKeys(ccs, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	proof, dev, err := prover.ProveCS(circuits.Groth16, prover.ICICLECPU, ccs, pk, w.Full)
	if err != nil {
		t.Fatal(err)
	}
	if dev != prover.ICICLECPU {
		t.Fatalf("proved on %s, want %s", dev, prover.ICICLECPU)
	}
	pub, err := w.Full.Public()
	if err != nil {
		t.Fatal(err)
	}
	if err := groth16.Verify(proof.(groth16.Proof), vk.(groth16.VerifyingKey), pub, prover.VerifierOptions(circuits.Groth16)...); err != nil {
		t.Fatalf("ICICLE CPU proof rejected by gnark's verifier: %v", err)
	}
}
