package circuits

import (
	"bytes"
	"math/big"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test/unsafekzg"

	"github.com/zkml/zkml/model/quant"
)

// matmulProgram is Y = A*B + bias (A m x k and B k x n both private inputs, the bias a
// fixed per-column constant), one linear layer checked by random linear combination
// (rlc > 0: rows of rlc outputs) or computed directly (rlc = 0).
func matmulProgram(m, k, n, rlc int) *quant.Program {
	p := &quant.Program{Config: quant.DefaultConfig()}
	p.Values = []quant.Value{
		{Shape: []int{m, k}, Bound: 127}, {Shape: []int{k, n}, Bound: 127},
		{Shape: []int{m, k}, Bound: 127}, {Shape: []int{k, n}, Bound: 127},
		{Shape: []int{n}, Bound: 100}, {Shape: []int{m, n}, Bound: float64(k*127*127 + 100)},
	}
	p.Inputs = []int{0, 1}
	p.Outputs = []int{5}
	bias := make([]int64, n)
	for j := range bias {
		bias[j] = int64(j*7 - 50)
	}
	p.Params = []*quant.Param{{Name: "bias", Value: 4, Data: bias, Bits: 8, Internal: true}}
	l := &quant.Layer{Name: "matmul", Op: "MatMul", Kind: quant.KLinear, In: []int{2, 3, 4}, Out: 5, RLC: rlc}
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
		{Name: "input a", Op: "Input", Kind: quant.KRangeChk, In: []int{0}, Out: 2, Bits: 8},
		{Name: "input b", Op: "Input", Kind: quant.KRangeChk, In: []int{1}, Out: 3, Bits: 8},
		l,
	}
	return p
}

func randInputs(r *rand.Rand, p *quant.Program) [][]int64 {
	var in [][]int64
	for _, id := range p.Inputs {
		v := make([]int64, numel(p.Values[id].Shape))
		for i := range v {
			v[i] = r.Int63n(255) - 127
		}
		in = append(in, v)
	}
	return in
}

// TestRLCMatMul: the checked layer gives the reference outputs in both proof systems,
// costs what the plan estimates (Groth16) and far fewer constraints than the direct
// layer, and the report marks it.
func TestRLCMatMul(t *testing.T) {
	quietGnark(t)
	const m, k, n = 6, 5, 7
	r := rand.New(rand.NewSource(1))
	p := matmulProgram(m, k, n, n)
	in := randInputs(r, p)
	ref, err := p.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assign(p, in, ref.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, sys := range []System{Groth16, Plonk} {
		if err := solve(t, p, sys, a); err != nil {
			t.Fatalf("%s: honest witness: %v", sys, err)
		}
	}
	_, st, err := Compile(p, Groth16)
	if err != nil {
		t.Fatal(err)
	}
	_, direct, err := Compile(matmulProgram(m, k, n, 0), Groth16)
	if err != nil {
		t.Fatal(err)
	}
	lst := st.Layers[2]
	if !lst.RLC || direct.Layers[2].RLC {
		t.Errorf("report: checked layer RLC=%v, direct layer RLC=%v", lst.RLC, direct.Layers[2].RLC)
	}
	// The estimate includes the product multicommit derives the layer's challenge
	// with, which is built before the check (in the deferred part of the report).
	est, _ := p.PlanRLC(p.Layers[2]).Cost()
	if lst.Constraints != 0 || lst.CheckConstraints+1 != est {
		t.Errorf("checked layer: %d constraints, %d in its check (+1 for its challenge), the plan estimates %d", lst.Constraints, lst.CheckConstraints, est)
	}
	if d := direct.Layers[2].Constraints; d != m*k*n || lst.CheckConstraints >= d {
		t.Errorf("direct layer %d constraints (want %d), checked %d", d, m*k*n, lst.CheckConstraints)
	}
	var table bytes.Buffer
	if err := st.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "MatMul (rlc check)") {
		t.Errorf("the report does not mark the checked layer:\n%s", table.String())
	}
	t.Logf("m=%d k=%d n=%d: direct %d constraints (total %d), checked %d (total %d)", m, k, n,
		direct.Layers[2].Constraints, direct.Constraints, lst.CheckConstraints, st.Constraints)
}

// rlcForgeries rewrite the checked layer's hinted outputs (rows of n, without bias).
func rlcForgeries(n int) map[string]func(y []int64) {
	return map[string]func(y []int64){
		"one entry +1": func(y []int64) { y[n+2]++ },
		"two rows swapped": func(y []int64) {
			for c := range n {
				y[c], y[n+c] = y[n+c], y[c]
			}
		},
		"every output +1": func(y []int64) {
			for i := range y {
				y[i]++
			}
		},
		"a row rotated": func(y []int64) {
			row := slices.Clone(y[:n])
			for c := range n {
				y[c] = row[(c+1)%n]
			}
		},
	}
}

// forgedRLC returns a witness claiming forged outputs and a solver option making the
// check's hint produce them: only the check itself can then reject it.
func forgedRLC(t *testing.T, p *quant.Program, in [][]int64, ref *quant.Result, forge func([]int64)) (*Circuit, solver.Option) {
	t.Helper()
	l := p.Layers[2]
	bias := p.Params[0].Data
	y := slices.Clone(ref.Outputs[0])
	for o := range y {
		y[o] -= bias[l.Bias[o]]
	}
	forge(y)
	claimed := slices.Clone(y)
	for o := range claimed {
		claimed[o] += bias[l.Bias[o]]
	}
	if slices.Equal(claimed, ref.Outputs[0]) {
		t.Fatal("the forgery changes nothing")
	}
	a, err := Assign(p, in, [][]int64{claimed})
	if err != nil {
		t.Fatal(err)
	}
	opt := solver.OverrideHint(solver.GetHintID(rlcHint), func(_ *big.Int, _, out []*big.Int) error {
		for i := range out {
			out[i].Mod(big.NewInt(y[i]), Field)
		}
		return nil
	})
	return a, opt
}

// TestRLCForgedOutputs: hinted outputs that differ from the product (one entry, two
// rows swapped, every output shifted alike, a row rotated) do not solve in either
// system, and neither a Groth16 nor a PLONK prover proves them (an honest proof
// verifies in both).
func TestRLCForgedOutputs(t *testing.T) {
	quietGnark(t)
	const m, k, n = 4, 3, 5
	r := rand.New(rand.NewSource(2))
	p := matmulProgram(m, k, n, n)
	in := randInputs(r, p)
	ref, err := p.Eval(in)
	if err != nil {
		t.Fatal(err)
	}
	forgeries := rlcForgeries(n)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range forgeries {
			if !yield(k) {
				return
			}
		}
	})
	for _, sys := range []System{Groth16, Plonk} {
		ccs, _, err := Compile(p, sys)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			a, opt := forgedRLC(t, p, in, ref, forgeries[name])
			w, err := frontend.NewWitness(a, Field)
			if err != nil {
				t.Fatal(err)
			}
			if err := ccs.IsSolved(w, opt); err == nil {
				t.Errorf("%s: forged outputs (%s) solve", sys, name)
			}
		}
	}
	// A real Groth16 prover, whose challenge is the hash of the commitment.
	ccs, _, err := Compile(p, Groth16)
	if err != nil {
		t.Fatal(err)
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		t.Fatal(err)
	}
	honest, err := Assign(p, in, ref.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := frontend.NewWitness(honest, Field)
	proof, err := groth16.Prove(ccs, pk, w)
	if err != nil {
		t.Fatalf("honest proof: %v", err)
	}
	pub, _ := w.Public()
	if err := groth16.Verify(proof, vk, pub); err != nil {
		t.Fatalf("honest proof does not verify: %v", err)
	}
	for _, name := range names {
		a, opt := forgedRLC(t, p, in, ref, forgeries[name])
		w, _ := frontend.NewWitness(a, Field)
		if _, err := groth16.Prove(ccs, pk, w, backend.WithSolverOptions(opt)); err == nil {
			t.Errorf("groth16 proved forged outputs (%s)", name)
		}
	}
	// And a real PLONK prover (its commitment is a wire of the proof).
	pccs, _, err := Compile(p, Plonk)
	if err != nil {
		t.Fatal(err)
	}
	srs, lag, err := unsafekzg.NewSRS(pccs)
	if err != nil {
		t.Fatal(err)
	}
	ppk, pvk, err := plonk.Setup(pccs, srs, lag)
	if err != nil {
		t.Fatal(err)
	}
	pproof, err := plonk.Prove(pccs, ppk, w)
	if err != nil {
		t.Fatalf("honest plonk proof: %v", err)
	}
	if err := plonk.Verify(pproof, pvk, pub); err != nil {
		t.Fatalf("honest plonk proof does not verify: %v", err)
	}
	a, opt := forgedRLC(t, p, in, ref, forgeries["one entry +1"])
	fw, _ := frontend.NewWitness(a, Field)
	if _, err := plonk.Prove(pccs, ppk, fw, backend.WithSolverOptions(opt)); err == nil {
		t.Error("plonk proved a forged output")
	}
}

// TestRLCNeedsLookupMode: a checked layer in a "bits" program (no commitment) is an
// error, not a circuit without the check.
func TestRLCNeedsLookupMode(t *testing.T) {
	p := matmulProgram(2, 2, 2, 2)
	p.RangeCheck = "bits"
	if _, _, err := Compile(p, Groth16); err == nil {
		t.Error("a checked layer compiled without a commitment")
	}
}

// TestRLCLoweredConv: a lowered model with private weights (the shared
// 3l_relu_conv_fc) has layers checked by RLC and its honest witness solves in both systems, with fewer
// constraints than the same program computed directly.
func TestRLCLoweredConv(t *testing.T) {
	quietGnark(t)
	g, in := loadShared(t, "3l_relu_conv_fc")
	cfg := quant.DefaultConfig()
	cfg.ParamVis = quant.Private
	p, err := quant.Lower(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, l := range p.Layers {
		if l.RLC > 0 {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no layer is checked by RLC")
	}
	qi, err := p.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assign(p, qi, ref.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := p.WithoutRLC()
	for _, sys := range []System{Groth16, Plonk} {
		if err := solve(t, p, sys, a); err != nil {
			t.Fatalf("%s: %v", sys, err)
		}
		_, st, err := Compile(p, sys)
		if err != nil {
			t.Fatal(err)
		}
		_, dst, err := Compile(direct, sys)
		if err != nil {
			t.Fatal(err)
		}
		if st.Constraints >= dst.Constraints {
			t.Errorf("%s: %d constraints checked, %d direct", sys, st.Constraints, dst.Constraints)
		}
		t.Logf("%s: %d layer(s) checked, %d constraints (direct %d)", sys, checked, st.Constraints, dst.Constraints)
	}
}
