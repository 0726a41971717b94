package shard

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// planPrograms are the programs the planner tests run on: a ResNet-50 at 32x32 with a
// sixteenth of the channels (residual blocks), and a pool net whose first pool is
// split into bands with the pool after it (values carried by element).
func planPrograms(t *testing.T) map[string]*quant.Program {
	t.Helper()
	m, _, _, err := onnxgen.ResNet50{Size: 32, Div: 16, Classes: 10}.Build()
	if err != nil {
		t.Fatal(err)
	}
	pools := lower(t, poolNet(t, 5, 32), quant.DefaultConfig())
	pool := slices.IndexFunc(pools.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KMax })
	split, err := ApplySplits(pools, []LayerSplit{{Layer: pool, Count: 2, Bands: 3}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*quant.Program{"resnet50-32-div16": lower(t, m, quant.DefaultConfig()), "pools-split": split}
}

// TestAllowedCuts: the one-pass allowedCuts agrees with cutAllowed at every cut.
func TestAllowedCuts(t *testing.T) {
	for name, p := range planPrograms(t) {
		lv := analyze(p)
		ok := allowedCuts(p, lv)
		n := 0
		for c := 0; c <= len(p.Layers); c++ {
			want := c > 0 && c < len(p.Layers) && cutAllowed(p, lv, c) == ""
			if ok[c] != want {
				t.Errorf("%s: cut %d: allowedCuts %v, cutAllowed %q", name, c, ok[c], cutAllowed(p, lv, c))
			}
			if want {
				n++
			}
		}
		if n == 0 || n == len(p.Layers)-1 {
			t.Errorf("%s: %d of %d cuts allowed: the test needs both kinds", name, n, len(p.Layers)-1)
		}
	}
}

// TestPlannerApproximations: on random runs of layers, the layers' approximate costs
// (bench.EstimateLayers) are at most the exact estimate of the run alone over
// approxSlack (so that listing ends by them misses none that fits), and with the
// crossing's boundary costs within 5% of the exact estimate of the segment (above
// 30,000 constraints: small segments are dominated by fixed costs; with the boundary
// sponge, a boundary value costs 5-8 constraints, and segments of 20,000-25,000 are
// within 7%).
func TestPlannerApproximations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sys := circuits.Groth16
	for name, p := range planPrograms(t) {
		lv := analyze(p)
		lc, err := bench.EstimateLayers(p, sys)
		if err != nil {
			t.Fatal(err)
		}
		x := newCrossing(p, lv, sys)
		ok := allowedCuts(p, lv)
		n := len(p.Layers)
		ok[n] = true
		var cuts []int
		for c := 1; c < n; c++ {
			if ok[c] {
				cuts = append(cuts, c)
			}
		}
		for range 12 {
			i := rng.IntN(len(cuts) + 1)
			first := 0
			if i > 0 {
				first = cuts[i-1]
			}
			end := n
			if j := i + 1 + rng.IntN(len(cuts)+1-i); j <= len(cuts) {
				end = cuts[j-1]
			}
			var before []int
			if first > 0 {
				before = []int{first}
			}
			bounds := slices.Compact([]int{0, first, end, n})
			si := slices.Index(bounds, first)
			pl := &Plan{Pairs: lv.pairs(p, bounds)}
			s, err := segment(p, lv, si, len(bounds)-1, first, end, pl.InPairs(si), pl.OutPairs(si))
			if err != nil {
				t.Fatal(err)
			}
			whole, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				t.Fatal(err)
			}
			core, err := bench.EstimateProgram(coreProgram(s), sys)
			if err != nil {
				t.Fatal(err)
			}
			approx := lc.Run(first, end, 0).Constraints
			if r := float64(approx) / float64(core.Constraints); r > 1/approxSlack {
				t.Errorf("%s [%d, %d): layers' approximate cost %d, exact %d (%.3f)", name, first, end, approx, core.Constraints, r)
			}
			x.start(first, before)
			for x.end < end {
				x.advance()
			}
			total := lc.Run(first, end, x.cost()).Constraints
			r := float64(total) / float64(whole.Constraints)
			t.Logf("%s [%d, %d): exact %d, approximation %d (%.3f)", name, first, end, whole.Constraints, total, r)
			if whole.Constraints > 30000 && (r < 0.95 || r > 1.05) || whole.Constraints > 20000 && (r < 0.93 || r > 1.07) {
				t.Errorf("%s [%d, %d): approximation %d, exact %d (%.3f)", name, first, end, total, whole.Constraints, r)
			}
		}
	}
}

// TestSplitBudgetResidual plans a ResNet-50 at 32x32 with a sixteenth of the
// channels (16 residual blocks: cuts inside a block carry its input too). Under 35,000
// constraints a segment the plan's every segment fits. In PLONK under 250,000 no plan
// exists (a boundary value costs about 25 constraints there, against 5 in R1CS: the
// cuts after the stem carry more boundary values than a segment can commit besides its
// layers): the search backs off from the layer where no segment can start, a bounded
// number of times, and the error names the furthest layer it reached.
func TestSplitBudgetResidual(t *testing.T) {
	if testing.Short() {
		t.Skip("plans a ResNet-50 at 32x32 (about 10 s)")
	}
	m, _, _, err := onnxgen.ResNet50{Size: 32, Div: 16, Classes: 10}.Build()
	if err != nil {
		t.Fatal(err)
	}
	p := lower(t, m, quant.DefaultConfig())
	syss := []circuits.System{circuits.Groth16}
	limits := bench.Limits{MaxConstraints: 35000}
	pl, err := SplitBudget(p, syss, limits)
	if err != nil {
		t.Fatal(err)
	}
	checkFits(t, pl, limits)
	t.Logf("%d segments, splits %+v", len(pl.Segments), pl.Splits)
	plonk := []circuits.System{circuits.Plonk}
	_, _, at, err := budgetCuts(p, nil, plonk, bench.Limits{MaxConstraints: 250000}, nil, nil)
	if !errors.Is(err, bench.ErrOverBudget) || at <= 0 || !strings.Contains(err.Error(), fmt.Sprintf("no segment starting at layer %d (%s)", at, p.Layers[at].Name)) || strings.Contains(err.Error(), "(0 back-offs)") {
		t.Fatalf("PLONK, 250,000: %v (at %d), want over budget at a layer after the start, with back-offs", err, at)
	}
}

// TestSiblings: in the ResNet-50 at 32x32, the run split from conv2_x's first Add
// (layer 12, to 20) repeats at the second block's Add (20), not at the third's (28),
// whose run enters conv3_x (a stride-2 convolution): the planner grows the splits of
// identical blocks in one attempt (a full-width ResNet-50 used to cost one attempt of
// 4-13 minutes per conv4_x block). A sibling inside a split is not one.
func TestSiblings(t *testing.T) {
	p := planPrograms(t)["resnet50-32-div16"]
	if p.Layers[12].Kind != quant.KAdd || chainEnd(p, 12) != 20 {
		t.Fatalf("layer 12 is %s %s (chainEnd %d), want conv2_x's first Add", p.Layers[12].Name, p.Layers[12].Kind, chainEnd(p, 12))
	}
	for _, tc := range []struct {
		k      int
		splits []LayerSplit
		want   []int
	}{
		{12, nil, []int{20}},
		{28, nil, nil},
		{12, []LayerSplit{{Layer: 18, Count: 4, Bands: 2}}, nil},
	} {
		if got := siblings(p, tc.splits, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("siblings of layer %d with splits %v: %v, want %v", tc.k, tc.splits, got, tc.want)
		}
	}
	if runSignature(p, 12, 20) == runSignature(p, 28, 36) {
		t.Error("conv2_x's first block and its last (into conv3_x) have one signature")
	}
}

// TestSegmentPairs: segmentPairs gives each segment exactly the pairs of the whole
// pair table that it imports or exports, in order, on random cuts of the planner's
// programs, of band plans (hashed model input and output; private input rows taken
// by element) and of a pool net split from its input to its output (both carried by
// element).
func TestSegmentPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	progs := planPrograms(t)
	progs["bands-from-input"] = bandPlanFrom(t, lower(t, bandNet(t), quant.DefaultConfig()), true).Program
	progs["bands-hashed"] = bandPlan(t, lower(t, bandNet(t), hashedConfig())).Program
	b := onnxgen.Seeded("shard_pool_out")
	x := b.Node("MaxPool", []string{"input"}, onnxgen.Ints("kernel_shape", 3, 3), onnxgen.Ints("pads", 1, 1, 1, 1))
	x = b.Node("MaxPool", []string{x}, onnxgen.Ints("kernel_shape", 2, 2), onnxgen.Ints("strides", 2, 2))
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, 2, 12, 12)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 2, 6, 6)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	pools := lower(t, m, quant.DefaultConfig())
	whole, err := ApplySplits(pools, []LayerSplit{{Layer: 0, Count: len(pools.Layers), Bands: 3}})
	if err != nil {
		t.Fatal(err)
	}
	progs["pools-input-to-output"] = whole // the input's rows and the output by element
	for name, p := range progs {
		lv := analyze(p)
		n := len(p.Layers)
		checked := 0
		for range 20 {
			bounds := []int{0, n}
			for range 1 + rng.IntN(6) {
				bounds = append(bounds, 1+rng.IntN(n-1))
			}
			slices.Sort(bounds)
			bounds = slices.Compact(bounds)
			all := &Plan{Pairs: lv.pairs(p, bounds)}
			for i := range len(bounds) - 1 {
				got := lv.segmentPairs(p, bounds, i)
				want := append(all.InPairs(i), all.OutPairs(i)...)
				slices.SortFunc(want, func(a, b *Pair) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: bounds %v, segment %d: segmentPairs %s, pairs %s", name, bounds, i, pairString(got), pairString(want))
				}
				for _, pr := range got {
					if pr.Elems != nil {
						checked++
					}
				}
			}
		}
		t.Logf("%s: %d layers, %d pairs by element compared", name, n, checked)
	}
}

func pairString(ps []*Pair) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "[%d->%d values %v elems %v] ", p.From, p.To, p.Values, p.Elems)
	}
	return b.String()
}

// TestBudgetCutsWarmStart: a search warm-started with a prefix of its own cuts finds
// the same cuts, and one warm-started with the cuts of a plan under a smaller budget
// (which fit the larger one) completes them into a plan that fits; a search that
// fails returns the furthest partial plan it made.
func TestBudgetCutsWarmStart(t *testing.T) {
	if testing.Short() {
		t.Skip("plans a ResNet-50 at 32x32 five times (about 40 s)")
	}
	p := planPrograms(t)["resnet50-32-div16"]
	syss := []circuits.System{circuits.Groth16}
	small := bench.Limits{MaxConstraints: 35000}
	cold, _, _, err := budgetCuts(p, nil, syss, small, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cold) < 4 {
		t.Fatalf("cuts %v, want several", cold)
	}
	for _, k := range []int{1, len(cold) / 2} {
		warm, _, _, err := budgetCuts(p, nil, syss, small, cold[:k], nil)
		if err != nil || !slices.Equal(warm, cold) {
			t.Fatalf("warm start from %v: cuts %v (%v), want %v", cold[:k], warm, err, cold)
		}
	}
	large := bench.Limits{MaxConstraints: 45000}
	keep := cold[:len(cold)/2]
	warm, _, _, err := budgetCuts(p, nil, syss, large, keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(warm[:len(keep)], keep) {
		t.Fatalf("warm start from %v: cuts %v", keep, warm)
	}
	checkFits(t, split(t, p, warm), large)
	reached, _, at, err := budgetCuts(p, nil, []circuits.System{circuits.Plonk}, bench.Limits{MaxConstraints: 250000}, nil, nil)
	if !errors.Is(err, bench.ErrOverBudget) || len(reached) == 0 || reached[len(reached)-1] != at {
		t.Fatalf("PLONK, 250,000: cuts %v, failed at %d: %v; want the partial plan up to the failing layer", reached, at, err)
	}
}
