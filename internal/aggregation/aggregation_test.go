package aggregation

import (
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/algebra"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bw6761"
	"github.com/consensys/gnark/std/algebra/native/sw_bls12377"
	"github.com/consensys/gnark/std/math/emulated"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// Run: go test -run '^$' -bench . -benchtime 1x ./internal/aggregation
// ZKML_AGG_K=k verifies k proofs in one outer circuit (default 1; the cost is linear in
// k). ZKML_AGG_PROVE=1 also sets up and proves the emulated outer circuit (minutes,
// several GB).

func aggK(tb testing.TB) int {
	k := 1
	if s := os.Getenv("ZKML_AGG_K"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			tb.Fatalf("ZKML_AGG_K=%q: want a positive integer", s)
		}
		k = v
	}
	return k
}

// outer verifies K Groth16 proofs of one inner circuit whose verifying key is a
// constant of the outer circuit (a bundle's segment keys are fixed by its plan).
type outer[FR emulated.FieldParams, G1El algebra.G1ElementT, G2El algebra.G2ElementT, GtEl algebra.GtElementT] struct {
	Proofs    []stdgroth16.Proof[G1El, G2El]
	Witnesses []stdgroth16.Witness[FR]
	VK        stdgroth16.VerifyingKey[G1El, G2El, GtEl] `gnark:"-"`
}

func (c *outer[FR, G1El, G2El, GtEl]) Define(api frontend.API) error {
	v, err := stdgroth16.NewVerifier[FR, G1El, G2El, GtEl](api)
	if err != nil {
		return err
	}
	for i := range c.Proofs {
		if err := v.AssertProof(c.VK, c.Proofs[i], c.Witnesses[i]); err != nil {
			return err
		}
	}
	return nil
}

// inner is one proof to verify recursively.
type inner struct {
	ccs   constraint.ConstraintSystem
	vk    groth16.VerifyingKey
	pub   witness.Witness
	proof groth16.Proof
}

// proveInner proves full for ccs with the hash-to-field the outer circuit can
// recompute (the commitment's challenge), and checks the proof natively.
func proveInner(tb testing.TB, ccs constraint.ConstraintSystem, full witness.Witness, outerField, innerField *big.Int) *inner {
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		tb.Fatal(err)
	}
	proof, err := groth16.Prove(ccs, pk, full, stdgroth16.GetNativeProverOptions(outerField, innerField))
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := full.Public()
	if err != nil {
		tb.Fatal(err)
	}
	if err := groth16.Verify(proof, vk, pub, stdgroth16.GetNativeVerifierOptions(outerField, innerField)); err != nil {
		tb.Fatal(err)
	}
	return &inner{ccs, vk, pub, proof}
}

// zkmlSegment is a real zkml circuit shaped like a middle segment of a bundle: the
// example CNN with hashed inputs and outputs (two public Poseidon2 commitments, like a
// segment's boundary commitments) and the range argument's BSB22 commitment.
func zkmlSegment(tb testing.TB) *inner {
	dir := filepath.Join("..", "..", "examples", "mnist_cnn")
	onnx, err := os.ReadFile(filepath.Join(dir, "network.onnx"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := quant.DefaultConfig()
	cfg.InputVis, cfg.OutputVis = quant.Hashed, quant.Hashed
	g, p, err := prover.Build(onnx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := os.ReadFile(filepath.Join(dir, "input.json"))
	if err != nil {
		tb.Fatal(err)
	}
	inputs, err := model.ParseInput(in, g)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := prover.NewWitness(p, inputs)
	if err != nil {
		tb.Fatal(err)
	}
	ccs, _, err := circuits.Compile(p, circuits.Groth16)
	if err != nil {
		tb.Fatal(err)
	}
	fr := ecc.BN254.ScalarField()
	return proveInner(tb, ccs, w.Full, fr, fr)
}

// synthetic is a stand-in for a segment on another curve: two public inputs (the
// boundary commitments) and one BSB22 commitment, like a zkml segment in lookup mode.
type synthetic struct {
	In, Out frontend.Variable `gnark:",public"`
	X       [16]frontend.Variable
}

func (c *synthetic) Define(api frontend.API) error {
	cm, err := api.(frontend.Committer).Commit(c.X[:]...)
	if err != nil {
		return err
	}
	s, sq := frontend.Variable(0), frontend.Variable(0)
	for _, x := range c.X {
		s = api.Add(s, x)
		sq = api.Add(sq, api.Mul(x, x))
	}
	api.AssertIsEqual(s, c.In)
	api.AssertIsEqual(sq, c.Out)
	api.AssertIsDifferent(api.Add(cm, s), 0)
	return nil
}

func syntheticSegment(tb testing.TB, curve ecc.ID, outerField *big.Int) *inner {
	ccs, err := frontend.Compile(curve.ScalarField(), r1cs.NewBuilder, &synthetic{})
	if err != nil {
		tb.Fatal(err)
	}
	var a synthetic
	s, sq := 0, 0
	for i := range a.X {
		a.X[i] = i + 1
		s += i + 1
		sq += (i + 1) * (i + 1)
	}
	a.In, a.Out = s, sq
	full, err := frontend.NewWitness(&a, curve.ScalarField())
	if err != nil {
		tb.Fatal(err)
	}
	return proveInner(tb, ccs, full, outerField, curve.ScalarField())
}

// measure compiles an outer circuit verifying k copies of in over outerField and
// reports its constraints per verified proof; with prove it also sets up (zkml's
// development Groth16 setup) and proves it, and checks the outer proof.
func measure[FR emulated.FieldParams, G1El algebra.G1ElementT, G2El algebra.G2ElementT, GtEl algebra.GtElementT](b *testing.B, in *inner, outerField *big.Int, k int, prove bool) {
	vk, err := stdgroth16.ValueOfVerifyingKeyFixed[G1El, G2El, GtEl](in.vk)
	if err != nil {
		b.Fatal(err)
	}
	circuit := &outer[FR, G1El, G2El, GtEl]{VK: vk}
	assign := &outer[FR, G1El, G2El, GtEl]{}
	for range k {
		circuit.Proofs = append(circuit.Proofs, stdgroth16.PlaceholderProof[G1El, G2El](in.ccs))
		circuit.Witnesses = append(circuit.Witnesses, stdgroth16.PlaceholderWitness[FR](in.ccs))
		p, err := stdgroth16.ValueOfProof[G1El, G2El](in.proof)
		if err != nil {
			b.Fatal(err)
		}
		w, err := stdgroth16.ValueOfWitness[FR](in.pub)
		if err != nil {
			b.Fatal(err)
		}
		assign.Proofs, assign.Witnesses = append(assign.Proofs, p), append(assign.Witnesses, w)
	}
	runtime.GC()
	start := time.Now()
	ccs, err := frontend.Compile(outerField, r1cs.NewBuilder, circuit)
	if err != nil {
		b.Fatal(err)
	}
	compile := time.Since(start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	nIn := in.ccs.GetNbPublicVariables() - 1 // without the constant-one wire
	b.ReportMetric(float64(ccs.GetNbConstraints())/float64(k), "constraints/proof")
	b.ReportMetric(compile.Seconds(), "compile-s")
	b.Logf("inner: %d constraints, %d public inputs, %d commitments; outer (k=%d): %d R1CS constraints, %d wires, compile %.1f s, heap in use after compile %d MiB",
		in.ccs.GetNbConstraints(), nIn, commitmentsOf(in.ccs), k, ccs.GetNbConstraints(), ccs.GetNbInternalVariables()+ccs.GetNbPublicVariables()+ccs.GetNbSecretVariables(), compile.Seconds(), ms.HeapInuse>>20)
	if !prove {
		return
	}
	start = time.Now()
	pk, ovk, err := prover.SetupKeys(ccs, circuits.Groth16)
	if err != nil {
		b.Fatal(err)
	}
	setup := time.Since(start)
	full, err := frontend.NewWitness(assign, outerField)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	proof, err := prover.ProveWitness(circuits.Groth16, ccs, pk, full)
	if err != nil {
		b.Fatal(err)
	}
	proveT := time.Since(start)
	pub, err := full.Public()
	if err != nil {
		b.Fatal(err)
	}
	if err := prover.VerifyWitness(circuits.Groth16, ovk, proof, pub); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.ReportMetric(proveT.Seconds(), "prove-s")
	b.Logf("outer setup %.1f s, prove %.1f s, verified", setup.Seconds(), proveT.Seconds())
}

func commitmentsOf(ccs constraint.ConstraintSystem) int {
	if c, ok := ccs.GetCommitments().(constraint.Groth16Commitments); ok {
		return len(c)
	}
	return -1
}

// BenchmarkEmulatedBN254 verifies zkml segment proofs (BN254) inside a BN254 circuit.
func BenchmarkEmulatedBN254(b *testing.B) {
	in := zkmlSegment(b)
	for b.Loop() {
		measure[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](b, in, ecc.BN254.ScalarField(), aggK(b), os.Getenv("ZKML_AGG_PROVE") == "1")
	}
}

// BenchmarkTwoChainBLS12377InBW6761 verifies BLS12-377 segment proofs natively in a
// BW6-761 circuit (the aggregation step of the 2-chain route).
func BenchmarkTwoChainBLS12377InBW6761(b *testing.B) {
	in := syntheticSegment(b, ecc.BLS12_377, ecc.BW6_761.ScalarField())
	for b.Loop() {
		measure[sw_bls12377.ScalarField, sw_bls12377.G1Affine, sw_bls12377.G2Affine, sw_bls12377.GT](b, in, ecc.BW6_761.ScalarField(), aggK(b), false)
	}
}

// BenchmarkTwoChainBW6761InBN254 verifies one BW6-761 proof inside a BN254 circuit
// (the final wrap of the 2-chain route, once per bundle, for Ethereum).
func BenchmarkTwoChainBW6761InBN254(b *testing.B) {
	in := syntheticSegment(b, ecc.BW6_761, ecc.BN254.ScalarField())
	for b.Loop() {
		measure[sw_bw6761.ScalarField, sw_bw6761.G1Affine, sw_bw6761.G2Affine, sw_bw6761.GTEl](b, in, ecc.BN254.ScalarField(), 1, false)
	}
}
