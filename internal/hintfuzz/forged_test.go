package hintfuzz

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
)

// forgedOperators names, per gadget, the ONNX node tests that exercise it end to end
// (ONNX node -> lowering -> model circuit). Each is forged exhaustively: every call of
// every hint (up to maxSitesPerHint, spread over the calls) with every perturbation.
var forgedOperators = []struct {
	gadget string
	cases  []string
}{
	{"Max and max pooling", []string{"test_max_example", "test_min_example", "test_maxpool_2d_dilations", "test_globalmaxpool_precomputed", "test_reduce_max_keepdims_example"}},
	{"clamp", []string{"test_clip_example", "test_clip_splitbounds", "test_clip_outbounds"}},
	{"comparisons", []string{"test_greater_bcast", "test_less_bcast", "test_equal_bcast"}},
	{"ArgMax, ArgMin, Hardmax", []string{"test_argmax_default_axis_example", "test_argmin_default_axis_example", "test_argmax_keepdims_example", "test_hardmax_one_hot", "test_hardmax_example"}},
	{"Where", []string{"test_where_example"}},
	{"Softmax", []string{"test_softmax_example", "1l_softmax"}},
	{"runtime Div", []string{"test_div_example"}},
	{"int8 requantization", []string{"test_quantizelinear", "test_qlinearmatmul_2D", "test_qlinearconv", "test_matmulinteger", "test_basic_convinteger"}},
}

// maxSitesPerHint bounds the calls forged per hint, and solveBudget the constraints
// solved per case (the core perturbations go first, then a sample of the others), in
// the full budget (ZKML_HINTFUZZ_BUDGET=full; CI forges ciSitesPerHint calls, core
// perturbations only).
const (
	maxSitesPerHint = 24
	solveBudget     = 1_000_000
)

// TestForgedOperators forges the witness of the gadgets with no forgery test of their
// own at the gadget level (Max, clamp, comparisons, ArgMax/ArgMin/Hardmax, Where,
// Softmax, runtime Div, int8 requantization) through real lowered models, under R1CS
// and PLONK: no perturbation of any hint call may prove another output.
func TestForgedOperators(t *testing.T) {
	quiet(t)
	byName := map[string]Case{}
	for _, c := range corpus(t) {
		name, _, _ := strings.Cut(c.Name, "/")
		if _, dup := byName[name]; !dup {
			byName[name] = c
		}
	}
	for _, op := range forgedOperators {
		t.Run(op.gadget, func(t *testing.T) {
			tl := newTally()
			found := 0
			for _, name := range op.cases {
				c, ok := byName[name]
				if !ok {
					continue
				}
				found++
				for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
					tg, err := Compile(c, sys)
					if err != nil {
						t.Fatal(err)
					}
					tl.add(forgeAll(t, tg))
					if testing.Short() || tg.NbConstraints() > 1500 {
						break // PLONK for the small circuits only
					}
				}
			}
			if found == 0 {
				t.Skip("none of the node tests is available beside this checkout")
			}
			if tl.tried == 0 {
				t.Fatal("no perturbation was tried")
			}
			report(t, op.gadget, tl)
		})
	}
}

// forgeAll tries every perturbation on up to maxSitesPerHint calls of every hint
// (ciSitesPerHint in CI), as far as the solve budget goes (every core perturbation in
// any case).
func forgeAll(t *testing.T, tg *Target) *tally {
	perHint, solved := forgeLimits(t)
	rng := rand.New(rand.NewSource(seed(tg.Case.Name)))
	names, byHint := sitesByHint(tg.Sites())
	var picked []Site
	for _, name := range names {
		ss := byHint[name]
		if perHint < maxSitesPerHint {
			picked = append(picked, spread(ss, perHint)...)
			continue
		}
		step := max(1, len(ss)/perHint)
		for i := 0; i < len(ss); i += step {
			picked = append(picked, ss[i])
		}
	}
	trials, nCore := coreFirst(picked, rng)
	return runTrials(t, tg, trials[:min(len(trials), max(nCore, solved/tg.NbConstraints()))])
}

// spread picks up to n of ss, evenly spaced, always the first and the last.
func spread(ss []Site, n int) []Site {
	if len(ss) <= n {
		return ss
	}
	out := make([]Site, 0, n)
	for k := range n - 1 {
		out = append(out, ss[k*(len(ss)-1)/(n-1)])
	}
	return append(out, ss[len(ss)-1])
}
