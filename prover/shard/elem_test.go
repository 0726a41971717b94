package shard

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
)

// TestUnsplitPlanIDs: plans without split layers have the plan IDs they had before
// layers could be split (computed with the code of main before this change).
func TestUnsplitPlanIDs(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	for _, c := range []struct {
		cuts []int
		id   string
	}{
		{residualCuts(t, p), "bca61adbb8159d4aa5ffafa8ead8ba0541aa39ed00e43ea09d3af9c982eb9651"},
		{skipCuts(t, p), "8163c56d40a808f378813f7014afc68300dac6114faf31aff84a0a11d4b700c8"},
	} {
		if pl := split(t, p, c.cuts); pl.ID != c.id {
			t.Errorf("cuts %v: plan %s, want %s", c.cuts, pl.ID, c.id)
		}
	}
}

// bandNet is a small CNN whose convolution and pool are split: conv 3x3 (stride 1,
// pad 1) and ReLU, max-pool 2x2, conv 1x1 and ReLU, global average pool, flatten.
func bandNet(t testing.TB) []byte { return convNet(t, 2, 3, 3, 12, 6) }

// convNet is bandNet with cout channels after a k x k convolution of a cin x h x w
// input.
func convNet(t testing.TB, cin, cout, k, h, w int64) []byte {
	t.Helper()
	b := onnxgen.Seeded("shard_bands")
	wt := b.Init("w", onnxgen.HeScale(int(cin*k*k)), cout, cin, k, k)
	bias := b.Init("b", 0.05, cout)
	x := b.Node("Conv", []string{"input", wt, bias}, onnxgen.Ints("kernel_shape", k, k), onnxgen.Ints("pads", k/2, k/2, k/2, k/2))
	x = b.Node("Relu", []string{x})
	x = b.Node("MaxPool", []string{x}, onnxgen.Ints("kernel_shape", 2, 2), onnxgen.Ints("strides", 2, 2))
	w2 := b.Init("w2", onnxgen.HeScale(int(cout)), 2, cout, 1, 1)
	x = b.Node("Conv", []string{x, w2}, onnxgen.Ints("kernel_shape", 1, 1))
	x = b.Node("Relu", []string{x})
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, onnxgen.Int("axis", 1))
	m, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, cin, h, w)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, 2)}, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// bandPlan splits bandNet's first convolution, its rescale and its pool into 3 bands
// (band by band) and cuts between every two bands and after the run: 4 segments at
// least.
func bandPlan(t testing.TB, p *quant.Program) *Plan { return bandPlanFrom(t, p, false) }

// bandPlanFrom is bandPlan, the run starting at the model input's range check with
// fromInput (each segment then takes its band of the private model input directly).
func bandPlanFrom(t testing.TB, p *quant.Program, fromInput bool) *Plan {
	t.Helper()
	conv := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KLinear })
	pool := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KMax })
	if conv < 0 || pool < conv+2 || !quant.ElementWise(p.Layers[conv+1].Kind) {
		t.Fatalf("layers: conv %d, pool %d", conv, pool)
	}
	splits := []LayerSplit{{Layer: conv, Count: pool - conv + 1, Bands: 3}}
	if fromInput {
		if conv != 1 || p.Layers[0].Kind != quant.KRangeChk {
			t.Fatalf("layer 0 is %s, conv %d", p.Layers[0].Kind, conv)
		}
		splits = []LayerSplit{{Layer: 0, Count: pool + 1, Bands: 3}}
	}
	q, regs, err := applySplits(p, splits)
	if err != nil {
		t.Fatal(err)
	}
	lv := analyze(q)
	var cuts []int
	for _, r := range regs {
		for _, c := range append(slices.Clone(r.cuts), r.end) {
			// From the input: cut only before a band of the range check, so that a
			// segment takes its input rows privately and imports halos (both kinds
			// of inputs in one program).
			if c < len(q.Layers) && cutAllowed(q, lv, c) == "" && (!fromInput || q.Layers[c].Kind == quant.KRangeChk || c == r.end) {
				cuts = append(cuts, c)
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	if len(cuts) < 3 && !fromInput || len(cuts) < 2 {
		t.Fatalf("cuts %v (regions %+v)", cuts, regs)
	}
	pl, err := SplitWith(p, splits, cuts)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestSplitBands: the segments of a plan with split layers, run one after another on
// each other's boundary tensors, compute the whole program's outputs; pairs carry
// elements (a band of the conv's input, the halo rows of the pool's), fewer than
// their values; Activations gives each segment exactly its own evaluation.
func TestSplitBands(t *testing.T) {
	p := lower(t, bandNet(t), quant.DefaultConfig())
	pl := bandPlan(t, p)
	t.Logf("%d segments, %d layers (%d unsplit), cuts %v", len(pl.Segments), len(pl.Program.Layers), len(p.Layers), pl.Cuts())
	byElem := 0
	for _, pr := range pl.Pairs {
		for j, id := range pr.Values {
			if es := pr.elemsOf(j); es != nil {
				byElem++
				if n := len(es); n == 0 || n >= numelOf(p, id) {
					t.Errorf("pair %d->%d value %d: %d of %d elements", pr.From, pr.To, id, n, numelOf(p, id))
				}
			}
		}
	}
	if byElem == 0 {
		t.Fatal("no pair carries elements")
	}
	for _, seed := range []int{1, 2} {
		qi := inputs(t, p, seed)
		want, err := p.Eval(qi)
		if err != nil {
			t.Fatal(err)
		}
		ins, outs, final, err := pl.Activations(p, qi)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(final, want.Outputs, slices.Equal) {
			t.Fatal("activations' outputs differ")
		}
		// Chain: each segment's inputs are its producers' outputs, element by element.
		type key struct{ from, to, id int }
		sent := map[key][]int64{}
		for i, s := range pl.Segments {
			in := ins[i]
			if i > 0 {
				in = nil
				at := 0
				for _, g := range pl.InPairs(i) {
					for _, id := range g.Values {
						in = append(in, sent[key{g.From, i, id}])
						at++
					}
				}
			}
			r, err := s.Program.Eval(in)
			if err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
			if !slices.EqualFunc(r.Outputs, outs[i], slices.Equal) {
				t.Fatalf("segment %d: outputs differ from the activations'", i)
			}
			at := 0
			for _, g := range pl.OutPairs(i) {
				for _, id := range g.Values {
					sent[key{i, g.To, id}] = r.Outputs[at]
					at++
				}
			}
			if i == len(pl.Segments)-1 && !slices.EqualFunc(r.Outputs, want.Outputs, slices.Equal) {
				t.Fatalf("chained outputs %v, want %v", r.Outputs, want.Outputs)
			}
		}
	}
	// Reloading reproduces the plan from the splits and cuts.
	again, err := SplitWith(p, pl.Splits, pl.Cuts())
	if err != nil || again.ID != pl.ID {
		t.Fatalf("re-split: %v, plan %s vs %s", err, again.ID, pl.ID)
	}
}

func numelOf(p *quant.Program, id int) int {
	n := 1
	for _, d := range p.Values[id].Shape {
		n *= d
	}
	return n
}

// TestCheckElemsRefuses: a consumer segment program importing other elements than
// its producer exports (its scatter permuted) is refused, as is a producer exporting
// others.
func TestCheckElemsRefuses(t *testing.T) {
	p := lower(t, bandNet(t), quant.DefaultConfig())
	pl := bandPlan(t, p)
	if err := pl.CheckElems(); err != nil {
		t.Fatal(err)
	}
	var scatter, gather *quant.Layer
	var si, gi int
	for i, s := range pl.Segments {
		for _, l := range s.Program.Layers {
			if l.Op == OpScatter && scatter == nil {
				scatter, si = l, i
			}
			if l.Op == OpGather && gather == nil && len(l.Index) > 1 {
				gather, gi = l, i
			}
		}
	}
	if scatter == nil || gather == nil {
		t.Fatal("no scatter or gather layer")
	}
	orig := slices.Clone(scatter.Index)
	// Move the first imported element to an element not imported.
	first := slices.IndexFunc(scatter.Index, func(v int32) bool { return v >= 0 })
	free := slices.Index(scatter.Index, -1)
	if first < 0 || free < 0 {
		t.Fatal("scatter imports every element or none")
	}
	scatter.Index[free], scatter.Index[first] = scatter.Index[first], -1
	if err := pl.CheckElems(); err == nil || !strings.Contains(err.Error(), "imports") && !strings.Contains(err.Error(), "increasing") {
		t.Fatalf("segment %d importing other elements: %v", si, err)
	}
	copy(scatter.Index, orig)
	g := slices.Clone(gather.Index)
	gather.Index[0]++
	if gather.Index[0] == gather.Index[1] {
		gather.Index[0] -= 2
	}
	if err := pl.CheckElems(); err == nil || !strings.Contains(err.Error(), "exports") {
		t.Fatalf("segment %d exporting other elements: %v", gi, err)
	}
	copy(gather.Index, g)
	if err := pl.CheckElems(); err != nil {
		t.Fatal(err)
	}
}

// TestSplitUnsupportedKind: a softmax cannot be split, with a clear error.
func TestSplitUnsupportedKind(t *testing.T) {
	p := softmaxNet(t, "shard_softmax", 2, 8)
	sm := slices.IndexFunc(p.Layers, func(l *quant.Layer) bool { return l.Kind == quant.KSoftmax })
	if sm < 0 {
		t.Fatal("no softmax layer")
	}
	if _, err := SplitWith(p, []LayerSplit{{Layer: sm, Count: 1, Bands: 2}}, nil); !errors.Is(err, ErrBadCut) || !strings.Contains(err.Error(), "softmax layer cannot be split") {
		t.Fatalf("split softmax: %v", err)
	}
}

// TestBundleBands proves bandNet's split plan (Groth16) and verifies the bundle; a
// consumer proven over a tampered imported element (a valid proof of another
// statement) fails the pair check.
func TestBundleBands(t *testing.T) { testBundleBands(t, false) }

// TestBundleBandsFromInput: the run starts at the private model input's range check,
// so every segment takes its own rows of the input as private inputs, uncommitted
// (any choice of them is some input); the halo rows of the range-checked input go
// from the band that checks them to the next, committed. The bundle proves and
// verifies, and a tampered imported element fails the pair check.
func TestBundleBandsFromInput(t *testing.T) { testBundleBands(t, true) }

func testBundleBands(t *testing.T, fromInput bool) {
	p := lower(t, bandNet(t), quant.DefaultConfig())
	pl := bandPlanFrom(t, p, fromInput)
	if fromInput {
		private := 0
		for i, s := range pl.Segments {
			for j, id := range s.In {
				if i > 0 && id == p.Inputs[0] && s.InElems[j] != nil && j < max(1, s.Program.PrivateInputs) {
					private++
				}
			}
			if i == 0 && numelOf(s.Program, s.Program.Inputs[0]) >= numelOf(p, p.Inputs[0]) {
				t.Fatal("the first segment takes the whole model input")
			}
		}
		for _, pr := range pl.Pairs {
			if slices.Contains(pr.Values, p.Inputs[0]) {
				t.Fatalf("pair %d->%d carries the private model input", pr.From, pr.To)
			}
		}
		if private == 0 {
			t.Fatal("no segment after the first takes model input rows privately")
		}
		if !slices.ContainsFunc(pl.Segments, func(s *Segment) bool { return s.Program.PrivateInputs > 0 }) {
			t.Fatal("no segment has both private input rows and boundary groups")
		}
	}
	f := proveBundle(t, p, pl, circuits.Groth16)
	// Tamper one imported element of a consumer carrying elements.
	c, j := -1, -1
	for i, s := range pl.Segments {
		for k, es := range s.InElems {
			if i > 0 && es != nil && c < 0 {
				c, j = i, k
			}
		}
	}
	if c < 0 {
		t.Fatal("no segment imports elements")
	}
	forged, _ := f.proveOn(t, pl.Segments[c], bumped(f.ins[c], j))
	bad := f.tampered(func(b *Bundle) { b.Segments[c] = forged })
	if _, err := f.verify(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("segment %d proven over a tampered imported element: got %v, want ErrInvalid", c, err)
	}
}
