package shard

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// poolNet is a k x k max-pool (stride 1) of an h x h input, a 2x2 max-pool (stride
// 2), a global average pool: the first pool's comparisons (about 4(k^2-1) R1CS
// constraints an output) outweigh its boundary values (about 44 each in the
// estimate), so that splitting it pays even in a tiny net.
func poolNet(t testing.TB, k, h int64) []byte {
	t.Helper()
	b := onnxgen.Seeded("shard_pools")
	x := b.Node("MaxPool", []string{"input"}, onnxgen.Ints("kernel_shape", k, k), onnxgen.Ints("pads", k/2, k/2, k/2, k/2))
	x = b.Node("MaxPool", []string{x}, onnxgen.Ints("kernel_shape", 2, 2), onnxgen.Ints("strides", 2, 2))
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, onnxgen.Int("axis", 1))
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, 1, h, h)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 1)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSplitBudgetSplitsLayer: under a constraint budget of 3/4 of a max-pool's own
// estimate, SplitBudget splits it, with the pool after it, into bands; every segment
// fits, and the plan computes the whole program's outputs. Without the split, no plan
// fits. A layer that cannot be split is named.
func TestSplitBudgetSplitsLayer(t *testing.T) {
	p := lower(t, poolNet(t, 5, 32), quant.DefaultConfig())
	pool := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KMax })
	es, err := estimateCore(p, analyze(p), pool, pool+1, []circuits.System{circuits.Groth16})
	if err != nil {
		t.Fatal(err)
	}
	limits := bench.Limits{MaxConstraints: es[0].Constraints * 3 / 4}
	if _, _, _, err := budgetCuts(p, nil, []circuits.System{circuits.Groth16}, limits, nil, nil); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("unsplit: %v, want over budget", err)
	}
	pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, limits)
	if err != nil {
		t.Fatal(err)
	}
	conv := pool
	if len(pl.Splits) == 0 || pl.Splits[0].Layer != conv || pl.Splits[0].Count < 2 {
		t.Fatalf("splits %+v, want the pool at layer %d with the next one", pl.Splits, conv)
	}
	t.Logf("budget %d constraints: splits %+v, %d segments", limits.MaxConstraints, pl.Splits, len(pl.Segments))
	checkFits(t, pl, limits)
	qi := inputs(t, p, 3)
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(checkSegments(t, pl, p, qi), want.Outputs, slices.Equal) {
		t.Fatal("last segment's outputs are not the model's")
	}
	// A layer that cannot be split and is over the budget is named.
	sp := softmaxNet(t, "shard_softmax_big", 4, 64)
	if _, err := SplitBudget(sp, []circuits.System{circuits.Groth16}, bench.Limits{MaxConstraints: 500}); !errors.Is(err, bench.ErrOverBudget) || !strings.Contains(err.Error(), "cannot be split") {
		t.Fatalf("softmax over the budget: %v", err)
	}
}

// TestSplitBudgetGrowsSplit: under 30,000 constraints, the 5x5 convolution's rescale
// of a 3x24x24 input is split into bands, but no segment can start at the input's
// range check (one holding it alone exports the whole checked input, 52,740
// constraints with its commitments), and the run split from there reaches the
// rescale's split: that split grows to start at the range check, so that each band
// checks its own input rows. The planner used to give up ("no segment starting at
// layer 0"); now every segment fits and computes the whole program's values.
func TestSplitBudgetGrowsSplit(t *testing.T) {
	p := lower(t, convNet(t, 3, 8, 5, 24, 24), quant.DefaultConfig())
	limits := bench.Limits{MaxConstraints: 30000}
	pl, err := SplitBudget(p, []circuits.System{circuits.Groth16}, limits)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Splits) != 1 || pl.Splits[0].Layer != 0 {
		t.Fatalf("splits %+v, want one from the input's range check", pl.Splits)
	}
	checkFits(t, pl, limits)
	checkSegments(t, pl, p, inputs(t, p, 1))
}

// TestGrowSplits: on SqueezeNet's layers (the same at every size), a run split from a
// fire module's Concat (layer 17, chainEnd 24) that reaches two splits (the expand
// convolutions' rescale at 21, Conv_42 at 22) takes them in: one split from 17 with
// the most bands, the run's own if it asks for more. The full-width planner used to
// stop there ("no segment starting at layer 24000 (Concat_31)"): the grown run
// overlapped the next split.
func TestGrowSplits(t *testing.T) {
	p := tinySqueezeNet(t)
	if p.Layers[17].Name != "Concat_31" || chainEnd(p, 17) != 24 {
		t.Fatalf("layer 17 is %s (chainEnd %d)", p.Layers[17].Name, chainEnd(p, 17))
	}
	splits := []LayerSplit{{10, 7, 8}, {21, 1, 8}, {22, 2, 6}}
	for _, tc := range []struct{ ask, want int }{{3, 8}, {12, 12}} {
		got, _, _, err := growSplits(p, splits, []int{17}, func(k, end int) (int, error) { return tc.ask, nil })
		if err != nil {
			t.Fatal(err)
		}
		if want := []LayerSplit{{10, 7, 8}, {17, 7, tc.want}}; !slices.Equal(got, want) {
			t.Fatalf("run asking for %d bands: grown splits %v, want %v", tc.ask, got, want)
		}
	}
	// A run reaching no split is a new one, with the bands asked for.
	got, _, _, err := growSplits(p, []LayerSplit{{10, 7, 8}}, []int{17}, func(k, end int) (int, error) { return end - k, nil })
	if err != nil || !slices.Equal(got, []LayerSplit{{10, 7, 8}, {17, 7, 7}}) {
		t.Fatalf("new split: %v, %v", got, err)
	}
}

// TestSplitGlobalPool: a split run that ends in a global average pool sums each
// band's rows into partials (quant.SplitChain), so the segment holding the pool's
// sum imports bands times channels values instead of the whole feature map (the
// full-width SqueezeNet's classifier could not be planned: its pool imported 169,000
// values). The bundle proves and verifies the whole program's outputs, and a segment
// proven over a forged partial is rejected.
func TestSplitGlobalPool(t *testing.T) {
	p := lower(t, convNet(t, 1, 3, 3, 16, 12), quant.DefaultConfig())
	pool := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Op == "GlobalAveragePool" })
	conv := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KLinear && l.Op == "Conv" && l.In[0] != p.Inputs[0] })
	if pool < 0 || conv < 0 || conv > pool {
		t.Fatalf("conv %d pool %d", conv, pool)
	}
	fm := p.Values[p.Layers[pool].In[0]].Shape // the 1x1 convolution's map
	pl := bandedPlan(t, p, []LayerSplit{{Layer: conv, Count: pool + 2 - conv, Bands: 4}})
	// The segment computing the pool's accumulator imports the partials: 4 bands of
	// 2 channels, not the 2 x 8 x 6 map.
	acc := p.Layers[pool].Out
	sum := slices.IndexFunc(pl.Segments, func(s *Segment) bool {
		return slices.ContainsFunc(pl.Program.Layers[s.First:s.End], func(l *quant.Layer) bool { return l.Out == acc })
	})
	if sum <= 0 {
		t.Fatalf("the pool's sum is in segment %d", sum)
	}
	imported := 0
	for j, id := range pl.Segments[sum].In {
		if id == p.Layers[pool].In[0] {
			t.Fatalf("the pool's segment imports the feature map %v", fm)
		}
		if es := pl.Segments[sum].InElems[j]; es != nil {
			imported += len(es)
		} else {
			imported += numelOf(pl.Program, id)
		}
	}
	if imported > 4*fm[1] {
		t.Fatalf("the pool's segment imports %d values, want at most %d partials", imported, 4*fm[1])
	}
	checkSegments(t, pl, p, inputs(t, p, 1))
	f := proveBundle(t, p, pl, circuits.Groth16)
	j := slices.IndexFunc(pl.Segments[sum].In, func(id int) bool { return id >= len(p.Values) })
	if j < 0 {
		t.Fatal("the pool's segment imports no partial")
	}
	forged, _ := f.proveOn(t, pl.Segments[sum], bumped(f.ins[sum], j))
	bad := f.tampered(func(b *Bundle) { b.Segments[sum] = forged })
	if _, err := f.verify(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the pool's segment proven over a forged partial: got %v, want ErrInvalid", err)
	}
}
