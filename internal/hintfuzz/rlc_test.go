package hintfuzz

import (
	"math/big"
	"math/rand"
	"slices"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// Forged hints of the random-linear-combination check of linear layers (#16): the
// check's hint (circuits.rlcHint) gives a layer's outputs, which only the check pins
// down. Self-contained (its own program builder), so that it does not depend on the
// other files of this package.

// rlcCase is Y = A*B + bias with A [m, k] and B [k, n] both private inputs, checked
// in rows of n.
func rlcCase(m, k, n int) Case {
	p := &quant.Program{Config: quant.DefaultConfig()}
	val := func(shape []int, bound float64) int {
		p.Values = append(p.Values, quant.Value{Shape: shape, Scale: p.Scale, Bound: bound})
		return len(p.Values) - 1
	}
	a, b := val([]int{m, k}, 127), val([]int{k, n}, 127)
	ca, cb := val([]int{m, k}, 127), val([]int{k, n}, 127)
	bias := val([]int{n}, 64)
	y := val([]int{m, n}, float64(k*127*127+64))
	p.Inputs, p.InputNames = []int{a, b}, []string{"a", "b"}
	p.Outputs, p.OutputNames = []int{y}, []string{"y"}
	bd := make([]int64, n)
	for j := range bd {
		bd[j] = int64(j*5 - 9)
	}
	p.Params = []*quant.Param{{Name: "bias", Value: bias, Data: bd, Bits: 8, Internal: true}}
	l := &quant.Layer{Name: "matmul", Op: "MatMul", Kind: quant.KLinear, In: []int{ca, cb, bias}, Out: y, RLC: n}
	for i := range m {
		for j := range n {
			l.TermStart = append(l.TermStart, int32(len(l.TA)))
			l.Bias = append(l.Bias, int32(j))
			for x := range k {
				l.TA = append(l.TA, int32(i*k+x))
				l.TB = append(l.TB, int32(x*n+j))
			}
		}
	}
	l.TermStart = append(l.TermStart, int32(len(l.TA)))
	p.Layers = []*quant.Layer{
		{Name: "input a", Op: "Input", Kind: quant.KRangeChk, In: []int{a}, Out: ca, Bits: 8},
		{Name: "input b", Op: "Input", Kind: quant.KRangeChk, In: []int{b}, Out: cb, Bits: 8},
		l,
	}
	r := rand.New(rand.NewSource(11))
	in := make([][]int64, 2)
	for i, sz := range []int{m * k, k * n} {
		for range sz {
			in[i] = append(in[i], r.Int63n(255)-127)
		}
	}
	return Case{Name: "rlc_matmul", Prog: p, Inputs: in}
}

// rlcJoint are rewrites of all the check's outputs at once (rows of n): two rows
// swapped, a row rotated, every output shifted alike, one row scaled by 2.
func rlcJoint(n int) []Perturbation {
	return []Perturbation{
		{Name: "rows 0 and 1 swapped", Apply: func(_, out []*big.Int) {
			for c := range n {
				out[c], out[n+c] = out[n+c], out[c]
			}
		}},
		{Name: "row 0 rotated", Apply: func(_, out []*big.Int) {
			row := slices.Clone(out[:n])
			for c := range n {
				out[c] = row[(c+1)%n]
			}
		}},
		{Name: "every output +1", Apply: func(_, out []*big.Int) {
			for _, o := range out {
				o.Add(o, big.NewInt(1))
			}
		}},
		{Name: "row 1 doubled", Apply: func(_, out []*big.Int) {
			for c := range n {
				out[n+c].Lsh(out[n+c], 1)
			}
		}},
	}
}

// TestForgedRLC perturbs every output of the check's hint (the fuzzer's rewrites:
// neighbours, negation, field wraps, range boundaries, random values) and the joint
// rewrites above, in both proof systems, and the copies of shared groups: every
// changed witness must be rejected.
func TestForgedRLC(t *testing.T) {
	const m, k, n = 3, 4, 5
	c := rlcCase(m, k, n)
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		tg, err := Compile(c, sys)
		if err != nil {
			t.Fatal(err)
		}
		var sites []Site
		for _, s := range tg.Sites() {
			if s.Name == "circuits.rlcHint" {
				sites = append(sites, s)
			}
		}
		if len(sites) != 1 || len(sites[0].Out) != m*n {
			t.Fatalf("%s: %d rlcHint calls (want 1 of %d outputs)", sys, len(sites), m*n)
		}
		rng := rand.New(rand.NewSource(7))
		ps := append(Perturbations(sites[0], rng, 2), rlcJoint(n)...)
		tried := 0
		for _, p := range ps {
			res, err := tg.Try(sites[0], p)
			if err != nil {
				t.Fatal(err)
			}
			switch res.Outcome {
			case Unchanged:
				continue
			case Rejected:
				tried++
			default:
				t.Errorf("%s: %s: %s (confirmed %v)", sys, p.Name, res.Outcome, res.Confirmed)
			}
		}
		if tried < len(rlcJoint(n))+m*n {
			t.Errorf("%s: only %d perturbations changed the hint", sys, tried)
		}
		// The copies of shared groups (R1CS) are asserted equal to their sums.
		copies := 0
		for _, s := range tg.Sites() {
			if s.Name != "circuits.rlcCopyHint" {
				continue
			}
			for _, p := range Perturbations(s, rng, 1) {
				res, err := tg.Try(s, p)
				if err != nil {
					t.Fatal(err)
				}
				if res.Outcome != Unchanged && res.Outcome != Rejected {
					t.Errorf("%s: group copy %d: %s: %s", sys, s.Rank, p.Name, res.Outcome)
				}
				copies++
			}
		}
		if sys == circuits.Groth16 && copies == 0 {
			t.Errorf("no group copy was fuzzed")
		}
		t.Logf("%s: %d perturbations of the check's outputs, all rejected; %d of group copies", sys, tried, copies)
	}
}
