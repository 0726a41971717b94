package shard

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
// 20,000 constraints: small segments are dominated by fixed costs).
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
			if whole.Constraints > 20000 && (r < 0.95 || r > 1.05) {
				t.Errorf("%s [%d, %d): approximation %d, exact %d (%.3f)", name, first, end, total, whole.Constraints, r)
			}
		}
	}
}

// TestSplitBudgetResidual plans a ResNet-50 at 32x32 with a sixteenth of the
// channels (16 residual blocks: cuts inside a block carry its input too). Under 70,000
// constraints a segment the plan's every segment fits; under 40,000 no plan exists
// (every cut in the first stage carries more boundary values than a segment can commit
// besides its layers): the search backs off from the layer where no segment can start,
// a bounded number of times, and the error names the furthest layer it reached.
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
	limits := bench.Limits{MaxConstraints: 70000}
	pl, err := SplitBudget(p, syss, limits)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pl.Segments {
		e, err := bench.EstimateProgram(s.Program, circuits.Groth16)
		if err != nil {
			t.Fatal(err)
		}
		if err := limits.Check(e); err != nil {
			t.Errorf("segment %d: %v", s.Index, err)
		}
	}
	t.Logf("%d segments, splits %+v", len(pl.Segments), pl.Splits)
	_, _, at, err := budgetCuts(p, nil, syss, bench.Limits{MaxConstraints: 40000})
	if !errors.Is(err, bench.ErrOverBudget) || at <= 0 || !strings.Contains(err.Error(), fmt.Sprintf("no segment starting at layer %d (%s)", at, p.Layers[at].Name)) || strings.Contains(err.Error(), "(0 back-offs)") {
		t.Fatalf("40,000: %v (at %d), want over budget at a layer after the start, with back-offs", err, at)
	}
}
