package bench

import (
	"math"
	"testing"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
	"github.com/consensys/gnark/std/hash/poseidon2"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// commitProgram is a program whose circuit range-checks 4096 values to 16 bits (so
// the range argument and its table exist without the commitment, as in a model)
// and, with boundary set, commits to n other input values of signed width w as one
// boundary group (quant.Boundary). Without boundary those values are private
// inputs: the difference between the two circuits is the commitment's cost. With
// entry > 0 the n values are also range-checked to entry bits by a layer of their
// own, as prover/shard checks a segment's boundary inputs on entry.
func commitProgram(n, w, entry int, boundary bool) *quant.Program {
	const base = 4096
	cfg := quant.DefaultConfig()
	cfg.InputVis, cfg.OutputVis = quant.Private, quant.Private
	p := &quant.Program{Config: cfg}
	p.Values = []quant.Value{
		{Shape: []int{base}, Bound: 1 << 14},
		{Shape: []int{n}, Bound: math.Ldexp(1, w-1) - 1},
		{Shape: []int{base}, Bound: 1 << 14},
	}
	p.Inputs, p.InputNames = []int{0, 1}, []string{"base", "x"}
	p.Outputs, p.OutputNames = []int{2}, []string{"y"}
	p.Layers = []*quant.Layer{{Name: "check", Op: "Input", Kind: quant.KRangeChk, In: []int{0}, Out: 2, Bits: 16}}
	if entry > 0 {
		p.Values = append(p.Values, quant.Value{Shape: []int{n}, Bound: p.Values[1].Bound})
		p.Layers = append(p.Layers, &quant.Layer{Name: "entry", Op: "Boundary", Kind: quant.KRangeChk, In: []int{1}, Out: 3, Bits: entry})
		p.Outputs, p.OutputNames = []int{2, 3}, []string{"y", "x"}
	}
	if boundary {
		p.InputVis = quant.Boundary
		p.PrivateInputs = 1
	}
	return p
}

// TestEstimateBoundsCommitments checks that the estimate of a Poseidon2 commitment
// (counter.hash: its range checks, packing and permutations) is an upper bound on
// what the compiled circuit spends on it, and a tight one, in both systems: for
// groups of 1 to 10,000 values (1,000 under -short) of widths 8, 16 and 24, and for
// 1,000 values of widths 8, 16, 24 and 25 also range-checked on entry, within 10%.
// The commitment's part is the difference between a program with the boundary
// group and the same program without it. One exception: gnark's PLONK builder
// reuses an addition it has already made with the same wires and coefficients, so
// values checked on entry to exactly the commitment's width share their shift (and,
// for a one-limb check, its query) with the commitment's own check; the estimate,
// which does not follow wires, stays an upper bound there, within 40%.
func TestEstimateBoundsCommitments(t *testing.T) {
	sizes := []int{1, 10, 100, 1000, 10000}
	if testing.Short() {
		sizes = sizes[:4]
	}
	type cas struct{ n, w, entry int }
	var cases []cas
	for _, w := range []int{8, 16, 24} {
		for _, n := range sizes {
			cases = append(cases, cas{n, w, 0})
		}
	}
	for _, w := range []int{8, 16, 24, 25} {
		cases = append(cases, cas{1000, w, w + 1}, cas{1000, w, w})
	}
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		for _, tc := range cases {
			p0, p := commitProgram(tc.n, tc.w, tc.entry, false), commitProgram(tc.n, tc.w, tc.entry, true)
			if l := circuits.NewLayout(p); len(l.Hashes) != 1 || l.Hashes[0].Domain != circuits.TagBoundary || l.Hashes[0].Width != tc.w {
				t.Fatalf("%+v: commitments %+v, want one boundary group of width %d", tc, l.Hashes, tc.w)
			}
			e0, err := EstimateProgram(p0, sys)
			if err != nil {
				t.Fatal(err)
			}
			e, err := EstimateProgram(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			_, s0, err := circuits.Compile(p0, sys)
			if err != nil {
				t.Fatal(err)
			}
			_, s, err := circuits.Compile(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			compiled, est := int64(s.Constraints-s0.Constraints), e.Constraints-e0.Constraints
			wires := int64(s.Internal + s.Public + s.Secret)
			t.Logf("%-7s w %2d n %5d entry %2d: commitment compiled %7d, estimated %7d (%.3fx), %.2f constraints a value",
				sys, tc.w, tc.n, tc.entry, compiled, est, float64(est)/float64(compiled), float64(compiled)/float64(tc.n))
			limit := 1.10
			if sys == circuits.Plonk && tc.entry == tc.w {
				limit = 1.40
			}
			if est < compiled || float64(est) > limit*float64(compiled) {
				t.Errorf("%s %+v: commitment estimated at %d constraints, compiled to %d (want within [1, %.2f]x)",
					sys, tc, est, compiled, limit)
			}
			if e.Constraints < int64(s.Constraints) || e.Wires < wires {
				t.Errorf("%s %+v: estimated %d constraints and %d wires, compiled %d and %d",
					sys, tc, e.Constraints, e.Wires, s.Constraints, wires)
			}
		}
	}
}

// permCircuit hashes three constant header elements and len(X) variables with
// gnark's Merkle-Damgard Poseidon2, as circuits' commitVars does.
type permCircuit struct {
	X []frontend.Variable
	C frontend.Variable `gnark:",public"`
}

func (c *permCircuit) Define(api frontend.API) error {
	h, err := poseidon2.New(api)
	if err != nil {
		return err
	}
	h.Write(circuits.TagBoundary, len(c.X), 8)
	h.Write(c.X...)
	api.AssertIsEqual(h.Sum(), c.C)
	return nil
}

// TestPoseidon2PermutationCost pins what one permutation compiles to (the
// difference between hashing 11 and 1 variables, over 10) against the estimate's
// per-permutation charges: at least that, and at most 5% more. It also checks that
// the constant header elements cost nothing (1 variable: one permutation and the
// equality).
func TestPoseidon2PermutationCost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plonk  bool
		charge int
	}{{"R1CS", false, poseidonR1CS}, {"SCS", true, poseidonSCS}} {
		count := func(k int) int {
			return compiledConstraints(t, tc.plonk, &permCircuit{X: make([]frontend.Variable, k)})
		}
		one, eleven := count(1), count(11)
		perm := (eleven - one) / 10
		t.Logf("%s: %d constraints a permutation (charged %d), %d for one", tc.name, perm, tc.charge, one)
		if (eleven-one)%10 != 0 || one != perm+1 {
			t.Errorf("%s: %d constraints for 1 variable, %d for 11: not 1 + one permutation each", tc.name, one, eleven)
		}
		if tc.charge < perm || float64(tc.charge) > 1.05*float64(perm) {
			t.Errorf("%s: a permutation compiles to %d constraints, charged %d", tc.name, perm, tc.charge)
		}
	}
}

// spongeCircuit hashes three constant header elements and len(X) variables with the
// boundary commitments' sponge (circuits.Sponge).
type spongeCircuit struct {
	X []frontend.Variable
	C frontend.Variable `gnark:",public"`
}

func (c *spongeCircuit) Define(api frontend.API) error {
	elems := append([]frontend.Variable{circuits.TagBoundary, len(c.X), 8}, c.X...)
	h, err := circuits.Sponge(api, elems)
	if err != nil {
		return err
	}
	api.AssertIsEqual(h, c.C)
	return nil
}

// TestSpongePermutationCost pins what one permutation of the boundary sponge
// compiles to (the difference between hashing 27 and 12 variables after the header:
// one more block of 15, with their 15 additions into the state in PLONK) against the
// estimate's charges: at least that, and at most 2% more; and that a first block
// with constants costs no more than the others.
func TestSpongePermutationCost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plonk  bool
		charge int
		adds   int
	}{{"R1CS", false, spongeR1CS, 0}, {"SCS", true, spongeSCS, 15}} {
		count := func(k int) int {
			return compiledConstraints(t, tc.plonk, &spongeCircuit{X: make([]frontend.Variable, k)})
		}
		one, first, second := count(1), count(12), count(27)
		perm := second - first - tc.adds
		t.Logf("%s: %d constraints a permutation (charged %d), %d for one variable, %d for one block", tc.name, perm, tc.charge, one, first)
		if first-1 > perm+tc.adds {
			t.Errorf("%s: the first block costs %d, a later one %d", tc.name, first-1, perm+tc.adds)
		}
		if tc.charge < perm || float64(tc.charge) > 1.02*float64(perm) {
			t.Errorf("%s: a permutation compiles to %d constraints, charged %d", tc.name, perm, tc.charge)
		}
	}
}

// compiledConstraints compiles c for PLONK (SCS) or Groth16 (R1CS) and returns its
// constraint count.
func compiledConstraints(t *testing.T, plonk bool, c frontend.Circuit) int {
	t.Helper()
	var cs interface{ GetNbConstraints() int }
	var err error
	if plonk {
		cs, err = frontend.Compile(circuits.Field, scs.NewBuilder, c)
	} else {
		cs, err = frontend.Compile(circuits.Field, r1cs.NewBuilder, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cs.GetNbConstraints()
}
