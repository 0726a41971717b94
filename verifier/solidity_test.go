package verifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
	"github.com/consensys/gnark/std/rangecheck"
	"github.com/consensys/gnark/test/unsafekzg"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/contracts"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/verifier"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/*.golden, contracts/ZKMLVerifier.abi.json)")

// affineCircuit is a two-neuron linear layer y = W x + b with signed, range-checked values:
// public inputs X[0], X[1], Y[0], Y[1] (outputs at offset 2), private W and B. The range
// checks go through std/rangecheck, which adds one commitment (api.Commit) to both Groth16
// and PLONK proofs: the case gnark's Solidity verifiers need special prover options for.
type affineCircuit struct {
	X [2]frontend.Variable `gnark:",public"`
	Y [2]frontend.Variable `gnark:",public"`
	W [2][2]frontend.Variable
	B [2]frontend.Variable
}

func (c *affineCircuit) Define(api frontend.API) error {
	rc := rangecheck.New(api)
	for i := range c.Y {
		y := c.B[i]
		rc.Check(api.Add(c.B[i], 1<<15), 16) // b in [-2^15, 2^15)
		for j := range c.X {
			rc.Check(api.Add(c.W[i][j], 1<<7), 8) // w in [-128, 128)
			y = api.Add(y, api.Mul(c.W[i][j], c.X[j]))
		}
		rc.Check(api.Add(y, 1<<20), 21) // y in [-2^20, 2^20)
		api.AssertIsEqual(y, c.Y[i])
	}
	return nil
}

// The test assignment: x = (-3, 4), W = ((5, -7), (2, 3)), b = (2, 1), y = (-41, 7).
var (
	testX       = [2]int64{-3, 4}
	testW       = [2][2]int64{{5, -7}, {2, 3}}
	testB       = [2]int64{2, 1}
	testY       = [2]int64{-41, 7}
	testOutputs = verifier.WithOutputs(2, 2)
	testModelID = [32]byte{0x7a, 0x6b, 0x6d, 0x6c, 31: 0x01}
)

func assignment() *affineCircuit {
	a := &affineCircuit{}
	for i := range 2 {
		a.X[i], a.Y[i], a.B[i] = testX[i], testY[i], testB[i]
		for j := range 2 {
			a.W[i][j] = testW[i][j]
		}
	}
	return a
}

// fixture is a circuit set up and proved once per proving system.
type fixture struct {
	system string
	ccs    constraint.ConstraintSystem
	vk     any
	proof  any
	public witness.Witness
	// plainProof is proved with gnark's default options (not ProverOptions).
	plainProof any
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

func getFixture(t *testing.T, system string) *fixture {
	t.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[system]; ok {
		return f
	}
	full, err := frontend.NewWitness(assignment(), ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	public, err := full.Public()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{system: system, public: public}
	switch system {
	case verifier.Groth16:
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &affineCircuit{})
		if err != nil {
			t.Fatal(err)
		}
		pk, vk, err := groth16.Setup(ccs)
		if err != nil {
			t.Fatal(err)
		}
		if len(vk.(*groth16bn254.VerifyingKey).PublicAndCommitmentCommitted) == 0 {
			t.Fatal("test circuit has no Groth16 commitment; std/rangecheck should add one")
		}
		proof, err := groth16.Prove(ccs, pk, full, verifier.ProverOptions(system)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := groth16.Verify(proof, vk, public, verifier.VerifierOptions(system)...); err != nil {
			t.Fatalf("Go-side verify: %v", err)
		}
		plain, err := groth16.Prove(ccs, pk, full)
		if err != nil {
			t.Fatal(err)
		}
		f.ccs, f.vk, f.proof, f.plainProof = ccs, vk, proof, plain
	case verifier.PLONK:
		ccs, err := frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, &affineCircuit{})
		if err != nil {
			t.Fatal(err)
		}
		srs, srsLagrange, err := unsafekzg.NewSRS(ccs)
		if err != nil {
			t.Fatal(err)
		}
		pk, vk, err := plonk.Setup(ccs, srs, srsLagrange)
		if err != nil {
			t.Fatal(err)
		}
		if len(vk.(*plonkbn254.VerifyingKey).CommitmentConstraintIndexes) == 0 {
			t.Fatal("test circuit has no PLONK commitment; std/rangecheck should add one")
		}
		proof, err := plonk.Prove(ccs, pk, full, verifier.ProverOptions(system)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := plonk.Verify(proof, vk, public, verifier.VerifierOptions(system)...); err != nil {
			t.Fatalf("Go-side verify: %v", err)
		}
		f.ccs, f.vk, f.proof = ccs, vk, proof
	default:
		t.Fatalf("unknown system %q", system)
	}
	fixtures[system] = f
	return f
}

var systems = []string{verifier.Groth16, verifier.PLONK}

// TestSolidityOnEVM exports, compiles (pinned solc), size-checks and deploys the verifier for
// both proving systems and checks that it accepts the valid proof and rejects tampered
// proofs and inputs without reverting.
// Gas is measured on Osaka (evm.DefaultFork) and, for comparison, Prague.
func TestSolidityOnEVM(t *testing.T) {
	evm.RequireCompiler(t)
	for _, fork := range []evm.Fork{evm.Osaka, evm.Prague} {
		solc, err := evm.NewCompiler(fork)
		if err != nil {
			t.Fatal(err)
		}
		for _, system := range systems {
			t.Run(string(fork)+"/"+system, func(t *testing.T) {
				testOnEVM(t, solc, system)
			})
		}
	}
}

func testOnEVM(t *testing.T, solc *evm.Compiler, system string) {
	{
		{
			f := getFixture(t, system)
			d, err := verifier.DeployOnEVM(context.Background(), solc, f.vk, testModelID, testOutputs)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: solc %s, fork %s: runtime sizes ZKMLVerifier %d B, gnark verifier %d B (limit %d); deploy gas %d",
				system, d.Solc, d.Chain.Fork(), d.WrapperSize, d.VerifierSize, evm.MaxCodeSize, d.DeployGas)

			id, err := d.ModelID()
			if err != nil || id != testModelID {
				t.Fatalf("modelId() = %x, %v; want %x", id, err, testModelID)
			}

			proof, err := verifier.ProofBytes(f.proof)
			if err != nil {
				t.Fatal(err)
			}
			inputs, err := verifier.PublicInputs(f.public)
			if err != nil {
				t.Fatal(err)
			}
			ok, gas, err := d.Verify(proof, inputs)
			if err != nil || !ok {
				t.Fatalf("verify(valid proof) = %v, %v", ok, err)
			}
			t.Logf("%s: verify gas %d (proof %d bytes, %d public inputs)", system, gas, len(proof), len(inputs))

			ok, outputs, gasDecode, err := d.VerifyAndDecode(proof, inputs)
			if err != nil || !ok {
				t.Fatalf("verifyAndDecode(valid proof) = %v, %v", ok, err)
			}
			if got, want := bigs(outputs), []string{"-41", "7"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded outputs %v, want %v", got, want)
			}
			t.Logf("%s: verifyAndDecode gas %d", system, gasDecode)

			// The wrapper's verify must be exactly what Calldata encodes.
			cd, err := verifier.Calldata(f.proof, f.public)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Chain.Call(d.Address, cd)
			if err != nil || res.Reverted || new(big.Int).SetBytes(res.Return).Cmp(big.NewInt(1)) != 0 || res.GasUsed != gas {
				t.Fatalf("raw Calldata call: %+v, %v", res, err)
			}

			rejects := []struct {
				name   string
				proof  []byte
				inputs []*big.Int
			}{
				{"flipped bit in first point", flip(proof, 0x3f), inputs},
				{"flipped bit in last word", flip(proof, len(proof)-1), inputs},
				{"flipped bit in middle", flip(proof, len(proof)/2+7), inputs},
				{"truncated proof", proof[:len(proof)-32], inputs},
				{"empty proof", nil, inputs},
				{"output changed", proof, with(inputs, 2, big.NewInt(-40))},
				{"input changed", proof, with(inputs, 0, big.NewInt(3))},
				{"output not reduced (v + r)", proof, with(inputs, 3, new(big.Int).Add(inputs[3], fr.Modulus()))},
				{"input equals r", proof, with(inputs, 1, fr.Modulus())},
				{"too few inputs", proof, inputs[:3]},
				{"too many inputs", proof, append(append([]*big.Int{}, inputs...), big.NewInt(0))},
			}
			for _, tc := range rejects {
				ok, gas, err := d.Verify(tc.proof, tc.inputs)
				if err != nil {
					t.Errorf("%s: wrapper reverted: %v", tc.name, err)
					continue
				}
				if ok {
					t.Errorf("%s: verify returned true", tc.name)
				}
				ok, outs, _, err := d.VerifyAndDecode(tc.proof, tc.inputs)
				if err != nil || ok || len(outs) != 0 {
					t.Errorf("%s: verifyAndDecode = %v, %v, %v", tc.name, ok, outs, err)
				}
				t.Logf("%s: rejected %s, gas %d", system, tc.name, gas)
			}

			if f.plainProof != nil {
				// A Groth16 proof with a commitment made without ProverOptions hashes the
				// commitment differently: valid in Go with default options, rejected on-chain.
				plain, err := verifier.ProofBytes(f.plainProof)
				if err != nil {
					t.Fatal(err)
				}
				if ok, _, err := d.Verify(plain, inputs); err != nil || ok {
					t.Fatalf("proof without ProverOptions: verify = %v, %v; want false", ok, err)
				}
			}
		}
	}
}

// manyInputs has n public inputs. gnark's Groth16 Solidity verifier unrolls its public-input
// MSM (about 135 bytes of code per input), so above about 130 inputs it breaks EIP-170;
// PLONK's verifier does not grow.
type manyInputs struct {
	P []frontend.Variable `gnark:",public"`
}

func (c *manyInputs) Define(api frontend.API) error {
	for _, p := range c.P {
		api.AssertIsDifferent(p, 0)
	}
	return nil
}

func TestDeployOverSizeLimit(t *testing.T) {
	solc := evm.RequireCompiler(t)
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &manyInputs{P: make([]frontend.Variable, 200)})
	if err != nil {
		t.Fatal(err)
	}
	_, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	_, err = verifier.DeployOnEVM(context.Background(), solc, vk, testModelID)
	var cse *evm.CodeSizeError
	if !errors.As(err, &cse) || cse.Name != "Verifier" || cse.Size <= evm.MaxCodeSize {
		t.Fatalf("err = %v, want a *evm.CodeSizeError for Verifier", err)
	}
	t.Logf("200 public inputs: %v", err)
}

// TestVerifyOnEVM checks the one-call helper the CLI uses for gas figures.
func TestVerifyOnEVM(t *testing.T) {
	evm.RequireCompiler(t)
	for _, system := range systems {
		t.Run(system, func(t *testing.T) {
			f := getFixture(t, system)
			rep, err := verifier.VerifyOnEVM(context.Background(), f.vk, f.proof, f.public, testModelID, testOutputs)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Valid || rep.VerifyGas == 0 || !reflect.DeepEqual(bigs(rep.Outputs), []string{"-41", "7"}) {
				t.Fatalf("report %+v", rep)
			}
			t.Logf("%s on %s (solc %s): verify %d gas, verifyAndDecode %d gas, deploy %d gas",
				rep.System, rep.Fork, rep.Solc, rep.VerifyGas, rep.VerifyAndDecodeGas, rep.DeployGas)
			other := verifier.PLONK
			if system == verifier.PLONK {
				other = verifier.Groth16
			}
			if _, err := verifier.VerifyOnEVM(context.Background(), f.vk, getFixture(t, other).proof, f.public, testModelID); err == nil {
				t.Fatal("proof of the other system accepted")
			}
		})
	}
}

// TestWrapperABI checks that contracts/ZKMLVerifier.abi.json is the ABI solc reports for
// the exported ZKMLVerifier of both systems (-update rewrites it).
func TestWrapperABI(t *testing.T) {
	solc := evm.RequireCompiler(t)
	var abis []json.RawMessage
	for _, system := range systems {
		var src bytes.Buffer
		if err := verifier.ExportSolidity(&src, goldenKey(t, system), testOutputs); err != nil {
			t.Fatal(err)
		}
		arts, err := solc.Compile(context.Background(), map[string]string{"ZKMLVerifier.sol": src.String()})
		if err != nil {
			t.Fatal(err)
		}
		a, err := arts.Get(verifier.WrapperContract)
		if err != nil {
			t.Fatal(err)
		}
		abis = append(abis, a.ABI)
	}
	if !jsonEqual(t, abis[0], abis[1]) {
		t.Fatalf("Groth16 and PLONK wrappers have different ABIs:\n%s\n%s", abis[0], abis[1])
	}
	path := filepath.Join("..", "contracts", "ZKMLVerifier.abi.json")
	if *update {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, abis[0], "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !jsonEqual(t, abis[0], contracts.ZKMLVerifierABI) {
		t.Fatalf("%s is stale; run go test ./verifier -run TestWrapperABI -update\nsolc: %s", path, abis[0])
	}
}

// TestExportSolidityGolden checks that the export of checked-in verifying keys is stable.
func TestExportSolidityGolden(t *testing.T) {
	for _, system := range systems {
		t.Run(system, func(t *testing.T) {
			var got bytes.Buffer
			if err := verifier.ExportSolidity(&got, goldenKey(t, system), testOutputs); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", system+"_bn254.sol.golden")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("ExportSolidity output differs from %s; if intended, run go test ./verifier -run TestExportSolidityGolden -update", golden)
			}
			var again bytes.Buffer
			if err := verifier.ExportSolidity(&again, goldenKey(t, system), testOutputs); err != nil || !bytes.Equal(again.Bytes(), got.Bytes()) {
				t.Fatalf("ExportSolidity is not deterministic (err %v)", err)
			}
		})
	}
}

func TestExportSolidityFiles(t *testing.T) {
	dir := t.TempDir()
	sol, abiPath, err := verifier.ExportSolidityFiles(dir, goldenKey(t, verifier.PLONK))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(sol)
	if err != nil {
		t.Fatal(err)
	}
	// Without WithOutputs every public input is an output; without WithBinding nothing is pinned.
	if !strings.Contains(string(src), "ZKMLVerifierBase(modelId_, 0, 4, 0, 0, PARAMS_DIGEST)") || strings.Count(string(src), "SPDX-License-Identifier") != 1 {
		t.Fatalf("unexpected export:\n%s", src)
	}
	abiJSON, err := os.ReadFile(abiPath)
	if err != nil || !bytes.Equal(abiJSON, contracts.ZKMLVerifierABI) {
		t.Fatalf("ABI file: %v", err)
	}
}

func TestExportSolidityErrors(t *testing.T) {
	vk := goldenKey(t, verifier.Groth16)
	var buf bytes.Buffer
	for _, tc := range []struct {
		name string
		vk   any
		opts []verifier.ExportOption
	}{
		{"outputs past the public inputs", vk, []verifier.ExportOption{verifier.WithOutputs(3, 2)}},
		{"negative outputs", vk, []verifier.ExportOption{verifier.WithOutputs(-1, 2)}},
		{"binding past the public inputs", vk, []verifier.ExportOption{verifier.WithBinding(&circuits.Binding{What: "params commitment", Offset: 4, Values: []*big.Int{big.NewInt(1)}})}},
		{"empty binding", vk, []verifier.ExportOption{verifier.WithBinding(&circuits.Binding{What: "public params", Offset: 0})}},
		{"not a key", "vk", nil},
		{"nil", nil, nil},
	} {
		if err := verifier.ExportSolidity(&buf, tc.vk, tc.opts...); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// goldenKey reads testdata/<system>_bn254.vk, a key of affineCircuit checked in so the
// export golden files do not depend on a random setup. -update creates missing keys.
func goldenKey(t *testing.T, system string) any {
	t.Helper()
	return readKey(t, system, filepath.Join("testdata", system+"_bn254.vk"))
}

func readKey(t *testing.T, system, path string) any {
	t.Helper()
	if *update {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			switch vk := getFixture(t, system).vk.(type) {
			case *groth16bn254.VerifyingKey:
				_, err = vk.WriteTo(f)
			case *plonkbn254.VerifyingKey:
				_, err = vk.WriteTo(f)
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	defer f.Close()
	switch system {
	case verifier.Groth16:
		vk := new(groth16bn254.VerifyingKey)
		if _, err := vk.ReadFrom(f); err != nil {
			t.Fatal(err)
		}
		return vk
	default:
		vk := new(plonkbn254.VerifyingKey)
		if _, err := vk.ReadFrom(f); err != nil {
			t.Fatal(err)
		}
		return vk
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func with(in []*big.Int, i int, v *big.Int) []*big.Int {
	c := append([]*big.Int{}, in...)
	if v.Sign() < 0 {
		v = new(big.Int).Add(v, fr.Modulus())
	}
	c[i] = v
	return c
}

func bigs(xs []*big.Int) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
