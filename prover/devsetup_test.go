package prover

import (
	"bytes"
	"math/big"
	"slices"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/rangecheck"
)

// TestCombMatchesScalarMul checks the fixed-base combs against gnark-crypto's scalar
// multiplication on edge scalars (0, 1, 2, r-1, all-ones limbs) and random ones, for
// several comb widths.
func TestCombMatchesScalarMul(t *testing.T) {
	_, _, g1, g2 := curve.Generators()
	var scalars []fr.Element
	var e fr.Element
	for _, v := range []int64{0, 1, 2, -1, -2, 255, 256, 1 << 40} {
		scalars = append(scalars, *e.SetInt64(v))
	}
	e.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 253))
	scalars = append(scalars, e)
	for range 40 {
		e.SetRandom()
		scalars = append(scalars, e)
	}
	for _, n := range []int{len(scalars), 1 << 16} { // small and large windows
		in := scalars
		if n > len(in) {
			in = make([]fr.Element, n)
			copy(in, scalars)
		}
		p1, p2 := combG1(&g1, in), combG2(&g2, in)
		for i, s := range scalars {
			var w1 curve.G1Affine
			var w2 curve.G2Affine
			k := s.BigInt(new(big.Int))
			w1.ScalarMultiplication(&g1, k)
			w2.ScalarMultiplication(&g2, k)
			if !p1[i].Equal(&w1) || !p2[i].Equal(&w2) {
				t.Fatalf("window %d, scalar %d (%s): comb differs from the scalar multiplication", combWindow(n), i, s.String())
			}
		}
	}
}

// setupCircuit has public inputs, private ones and a commitment (gnark's range checker
// commits to the checked values).
type setupCircuit struct {
	X, Y frontend.Variable `gnark:",public"`
	A, B frontend.Variable
}

func (c *setupCircuit) Define(api frontend.API) error {
	rc := rangecheck.New(api)
	rc.Check(c.A, 10)
	rc.Check(c.B, 12)
	api.AssertIsEqual(api.Mul(c.A, c.B), c.X)
	api.AssertIsEqual(api.Add(c.A, c.B, c.X), c.Y)
	return nil
}

// TestDevSetupGroth16 checks the development setup against gnark's groth16.Setup on a
// circuit with public inputs and a commitment: the same key layout, an honest proof
// verifies (also after a serialization round trip of the keys), and a proof does not
// verify for other public values, nor under another setup's verifying key.
func TestDevSetupGroth16(t *testing.T) {
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &setupCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := devSetupGroth16(ccs.(*csbn254.R1CS))
	if err != nil {
		t.Fatal(err)
	}
	gpk, gvk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	want, wantV := gpk.(*groth16bn254.ProvingKey), gvk.(*groth16bn254.VerifyingKey)
	if len(vk.CommitmentKeys) == 0 {
		t.Fatal("the circuit has no commitment")
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"G1.A", len(pk.G1.A), len(want.G1.A)}, {"G1.B", len(pk.G1.B), len(want.G1.B)}, {"G1.Z", len(pk.G1.Z), len(want.G1.Z)},
		{"G1.K", len(pk.G1.K), len(want.G1.K)}, {"G2.B", len(pk.G2.B), len(want.G2.B)}, {"vk.G1.K", len(vk.G1.K), len(wantV.G1.K)},
		{"commitment keys", len(pk.CommitmentKeys), len(want.CommitmentKeys)},
		{"NbInfinityA", int(pk.NbInfinityA), int(want.NbInfinityA)}, {"NbInfinityB", int(pk.NbInfinityB), int(want.NbInfinityB)},
		{"domain", int(pk.Domain.Cardinality), int(want.Domain.Cardinality)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, gnark's setup has %d", c.what, c.got, c.want)
		}
	}
	if !slices.Equal(pk.InfinityA, want.InfinityA) || !slices.Equal(pk.InfinityB, want.InfinityB) {
		t.Error("infinity markers differ from gnark's setup")
	}
	if !slices.EqualFunc(vk.PublicAndCommitmentCommitted, wantV.PublicAndCommitmentCommitted, slices.Equal) {
		t.Error("committed public indexes differ from gnark's setup")
	}

	// Keys through a serialization round trip, as SetupKeys' callers store them.
	var pb, vb bytes.Buffer
	if _, err := pk.WriteTo(&pb); err != nil {
		t.Fatal(err)
	}
	if _, err := vk.WriteTo(&vb); err != nil {
		t.Fatal(err)
	}
	rpk, rvk := groth16.NewProvingKey(ecc.BN254), groth16.NewVerifyingKey(ecc.BN254)
	if _, err := rpk.ReadFrom(&pb); err != nil {
		t.Fatal(err)
	}
	if _, err := rvk.ReadFrom(&vb); err != nil {
		t.Fatal(err)
	}
	full, err := frontend.NewWitness(&setupCircuit{X: 1000 * 3000, Y: 1000 + 3000 + 1000*3000, A: 1000, B: 3000}, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := full.Public()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		name string
		pk   groth16.ProvingKey
		vk   groth16.VerifyingKey
	}{{"in memory", pk, vk}, {"read back", rpk, rvk}} {
		proof, err := groth16.Prove(ccs, k.pk, full)
		if err != nil {
			t.Fatalf("%s: prove: %v", k.name, err)
		}
		if err := groth16.Verify(proof, k.vk, pub); err != nil {
			t.Fatalf("%s: the honest proof does not verify: %v", k.name, err)
		}
		other, err := frontend.NewWitness(&setupCircuit{X: 1000*3000 + 1, Y: 1000 + 3000 + 1000*3000}, ecc.BN254.ScalarField(), frontend.PublicOnly())
		if err != nil {
			t.Fatal(err)
		}
		if groth16.Verify(proof, k.vk, other) == nil {
			t.Errorf("%s: the proof verifies for other public values", k.name)
		}
		if groth16.Verify(proof, gvk, pub) == nil {
			t.Errorf("%s: the proof verifies under another setup's key", k.name)
		}
	}
	// A witness that does not satisfy the circuit (A out of its 10 bits) is not proven.
	bad, err := frontend.NewWitness(&setupCircuit{X: 2000 * 3000, Y: 2000 + 3000 + 2000*3000, A: 2000, B: 3000}, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := groth16.Prove(ccs, pk, bad); err == nil {
		t.Error("a witness outside the range check was proven")
	}
}

// benchSetupCircuit range-checks N values (a commitment) and multiplies neighbours.
type benchSetupCircuit struct {
	X []frontend.Variable
}

func (c *benchSetupCircuit) Define(api frontend.API) error {
	rc := rangecheck.New(api)
	for i, x := range c.X {
		rc.Check(x, 16)
		if i > 0 {
			api.AssertIsDifferent(api.Mul(x, c.X[i-1]), -1)
		}
	}
	return nil
}

// BenchmarkDevSetupGroth16 compares gnark's groth16.Setup with devSetupGroth16 on a
// circuit of about 2^15 constraints with a commitment (go test -run '^$' -bench
// DevSetupGroth16 -benchtime 1x ./prover).
func BenchmarkDevSetupGroth16(b *testing.B) {
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &benchSetupCircuit{X: make([]frontend.Variable, 8192)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
	b.Run("gnark", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := groth16.Setup(ccs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("comb", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := devSetupGroth16(ccs.(*csbn254.R1CS)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
