package circuits

import (
	"math"
	"testing"

	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// TestRangeCheckWidthsMatchCircuit: the lowering chooses widths by the range checks it
// counts (quant's RangeCheckWidths); they must be the checks the circuit makes, query
// for query, at the limb width the circuit chose.
func TestRangeCheckWidthsMatchCircuit(t *testing.T) {
	for _, name := range sharedModels(t) {
		t.Run(name, func(t *testing.T) {
			g, in := loadShared(t, name)
			cal, err := quant.CalibrateWidths(g, quant.DefaultConfig(), [][]*model.Tensor{in}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, cfg := range []quant.Config{quant.DefaultConfig(), cal} {
				p, err := quant.Lower(g, cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, st, err := Compile(p, Groth16)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				for w, n := range p.RangeCheckWidths() {
					want += n * quant.LimbQueries(w, st.RangeLimbBits)
				}
				if st.RangeQueries != want {
					t.Fatalf("circuit makes %d range queries at t = %d, the lowering counts %d", st.RangeQueries, st.RangeLimbBits, want)
				}
			}
		})
	}
}

// TestNarrowedWidthRejectsWitness: a value outside a narrowed width cannot be proven,
// whether it is an input beyond its measured width or a rescaled activation beyond its
// own. The outputs are computed honestly by the same program with wide widths (the
// same integers), so only the range check can reject them.
func TestNarrowedWidthRejectsWitness(t *testing.T) {
	g, in := loadShared(t, "1l_mlp")
	cfg, err := quant.CalibrateWidths(g, quant.DefaultConfig(), [][]*model.Tensor{in}, 0)
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := quant.Lower(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wideCfg := quant.DefaultConfig()
	wideCfg.Bits = quant.MaxWidth
	wide, err := quant.Lower(g, wideCfg)
	if err != nil {
		t.Fatal(err)
	}
	var resc *quant.Layer
	for _, l := range narrow.Layers {
		if l.Kind == quant.KRescale {
			resc = l
		}
	}
	inBits := narrow.InputBits(0)
	if resc == nil || resc.Bits >= 24 || inBits >= 24 {
		t.Fatalf("widths not narrowed: input %d, rescale %+v", inBits, resc)
	}
	t.Logf("input width %d, rescale %s width %d (bits %d)", inBits, resc.Key, resc.Bits, cfg.Bits)
	honest := func(qi [][]int64) [][]int64 {
		t.Helper()
		r, err := wide.Eval(qi)
		if err != nil {
			t.Fatal(err)
		}
		return r.Outputs
	}
	qi, err := narrow.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assign(narrow, qi, honest(qi))
	if err != nil {
		t.Fatal(err)
	}
	if err := solve(t, narrow, Groth16, a); err != nil {
		t.Fatalf("honest witness within the widths not solved: %v", err)
	}
	cases := map[string][][]int64{}
	// An input just beyond its width.
	over := [][]int64{append([]int64(nil), qi[0]...)}
	over[0][0] = int64(1) << (inBits - 1)
	cases["input at 2^(w-1)"] = over
	// Inputs within their width whose rescale leaves its width: the largest input
	// values with the signs of the weights of the first output.
	lim := int64(1)<<(inBits-1) - 1
	var w []int64
	for _, par := range narrow.Params {
		if len(par.Data) == 12 { // dense_w, 4x3
			w = par.Data[:3]
		}
	}
	if w == nil {
		t.Fatal("weights not found")
	}
	big := [][]int64{make([]int64, 3)}
	for j := range big[0] {
		big[0][j] = lim
		if w[j] < 0 {
			big[0][j] = -lim
		}
	}
	if _, err := narrow.Eval(big); err == nil {
		t.Fatalf("inputs at ±%d do not overflow rescale width %d", lim, resc.Bits)
	}
	cases["rescale beyond its width"] = big
	for what, x := range cases {
		a, err := Assign(narrow, x, honest(x))
		if err != nil {
			t.Fatal(err)
		}
		for _, sys := range []System{Groth16, Plonk} {
			if err := solve(t, narrow, sys, a); err == nil {
				t.Errorf("%s, %s: a witness beyond the narrowed width was accepted", what, sys)
			}
		}
	}
	if math.Abs(float64(big[0][0])) >= math.Ldexp(1, inBits-1) {
		t.Fatal("test input itself beyond the input width")
	}
}
