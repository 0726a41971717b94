package quant

import (
	"bytes"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// splitGraph draws a small CNN: a Conv with random stride, padding, dilation and
// groups, ReLU, MaxPool, a broadcast Add, Sigmoid, then Flatten and Gemm.
func splitGraph(t *testing.T, r *rand.Rand) *onnx.GraphProto {
	g := 1 + r.Intn(2)
	c, m := g*(1+r.Intn(2)), g*(1+r.Intn(3))
	h, w := 8+r.Intn(5), 8+r.Intn(5)
	kh, kw := 1+r.Intn(3), 1+r.Intn(3)
	sh, sw := 1+r.Intn(2), 1+r.Intn(2)
	dh, dw := 1+r.Intn(2), 1+r.Intn(2)
	pads := []int64{int64(r.Intn(2)), int64(r.Intn(3)), int64(r.Intn(2)), int64(r.Intn(3))}
	oh := (h+int(pads[0]+pads[2])-dh*(kh-1)-1)/sh + 1
	ow := (w+int(pads[1]+pads[3])-dw*(kw-1)-1)/sw + 1
	ph, pw := (oh-2)/1+1, (ow-2)/1+1
	flat := m * ph * pw
	return &onnx.GraphProto{
		Node: []*onnx.NodeProto{
			node("Conv", []string{"x", "w", "b"}, []string{"h"}, intsAttr("pads", pads...), intsAttr("strides", int64(sh), int64(sw)),
				intsAttr("dilations", int64(dh), int64(dw)), intAttr("group", int64(g))),
			node("Relu", []string{"h"}, []string{"hr"}),
			node("MaxPool", []string{"hr"}, []string{"p"}, intsAttr("kernel_shape", 2, 2), intsAttr("strides", 1, 1)),
			node("Add", []string{"p", "c"}, []string{"pa"}),
			node("Sigmoid", []string{"pa"}, []string{"s"}),
			node("Flatten", []string{"s"}, []string{"f"}),
			node("Gemm", []string{"f", "gw", "gb"}, []string{"y"}, intAttr("transB", 1)),
		},
		Initializer: []*onnx.TensorProto{
			floatInit("w", []int64{int64(m), int64(c / g), int64(kh), int64(kw)}, randFloats(r, m*c/g*kh*kw, 0.4)...),
			floatInit("b", []int64{int64(m)}, randFloats(r, m, 0.5)...),
			floatInit("c", []int64{1, int64(m), 1, 1}, randFloats(r, m, 0.5)...),
			floatInit("gw", []int64{3, int64(flat)}, randFloats(r, 3*flat, 0.3)...),
			floatInit("gb", []int64{3}, randFloats(r, 3, 0.5)...),
		},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, int64(c), int64(h), int64(w))},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	}
}

// randomRanges cuts the outputs of a value of shape into ranges: bands of rows
// (BandRanges) or 1..4 contiguous flat ranges, in a random order.
func randomRanges(r *rand.Rand, shape []int) [][2]int {
	n := numel(shape)
	if r.Intn(2) == 0 {
		return BandRanges(shape, 2+r.Intn(3))
	}
	b := []int{0, n}
	for range r.Intn(4) {
		b = append(b, r.Intn(n+1))
	}
	slices.Sort(b)
	b = slices.Compact(b)
	var out [][2]int
	for i := range len(b) - 1 {
		out = append(out, [2]int{b[i], b[i+1]})
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestSplitLayersSameOutputs splits every splittable layer of random CNNs into
// random output ranges (a linear layer with the rescale after it, interleaved) and
// checks that the split program computes exactly the unsplit program's integers, and
// that the unsplit program's encoding does not change.
func TestSplitLayersSameOutputs(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	kinds := map[Kind]bool{}
	for trial := range 12 {
		g := load(t, 13, splitGraph(t, r))
		p, err := Lower(g, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		var enc bytes.Buffer
		if err := p.WriteCanonical(&enc); err != nil {
			t.Fatal(err)
		}
		qi, want := quantizeEval(t, r, g, p)
		q := p
		for i := 0; i < len(q.Layers); i++ {
			l := q.Layers[i]
			if !Splittable(l.Kind) || r.Intn(4) == 0 {
				continue
			}
			follow := l.Kind == KLinear && i+1 < len(q.Layers) && ElementWise(q.Layers[i+1].Kind) && q.Layers[i+1].In[0] == l.Out
			ranges := randomRanges(r, q.Values[l.Out].Shape)
			if len(ranges) < 2 {
				continue
			}
			kinds[l.Kind] = true
			n := len(q.Layers)
			if q, err = SplitLayer(q, i, ranges, follow); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			i += len(q.Layers) - n
			if follow {
				i++
			}
		}
		got, err := q.Eval(qi)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if !reflect.DeepEqual(got.Outputs, want.Outputs) {
			t.Fatalf("trial %d: split outputs %v, want %v", trial, got.Outputs, want.Outputs)
		}
		for _, l := range q.Layers {
			if !l.Restricted() {
				continue
			}
			if !slices.Equal(got.Values[l.Out], want.Values[l.Out]) {
				t.Fatalf("trial %d: value of %s differs", trial, l.Name)
			}
		}
		var again bytes.Buffer
		if err := p.WriteCanonical(&again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc.Bytes(), again.Bytes()) {
			t.Fatal("splitting changed the unsplit program's encoding")
		}
		var split bytes.Buffer
		if err := q.WriteCanonical(&split); err != nil {
			t.Fatal(err)
		}
		if len(q.Layers) > len(p.Layers) && bytes.Equal(split.Bytes(), enc.Bytes()) {
			t.Fatal("split program encodes like the unsplit one")
		}
	}
	for _, k := range []Kind{KLinear, KRescale, KMax, KAdd, KLookup} {
		if !kinds[k] {
			t.Errorf("no %s layer was split (split %v)", k, kinds)
		}
	}
}

// TestSplitRefused: a kind that cannot be split, bad bounds, and a restricted layer
// with inconsistent lists are refused with an error naming the problem.
func TestSplitRefused(t *testing.T) {
	g := load(t, 13, &onnx.GraphProto{
		Node:   []*onnx.NodeProto{node("Softmax", []string{"x"}, []string{"y"}, intAttr("axis", 1))},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 2, 5)},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	})
	p, err := Lower(g, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	li := slices.IndexFunc(p.Layers, func(l *Layer) bool { return l.Kind == KSoftmax })
	if li < 0 {
		t.Fatal("no softmax layer")
	}
	if _, err := SplitLayer(p, li, [][2]int{{0, 5}, {5, 10}}, false); err == nil || !strings.Contains(err.Error(), "softmax layer cannot be split") {
		t.Fatalf("softmax split: %v", err)
	}
	// A restricted softmax written by hand is refused when run.
	q := *p
	q.Layers = slices.Clone(p.Layers)
	c := *p.Layers[li]
	c.OutLo, c.OutHi = 0, 5
	q.Layers[li] = &c
	qi, err := p.QuantizeInputs(randomInputs(rand.New(rand.NewSource(1)), g, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Eval(qi); err == nil || !strings.Contains(err.Error(), "cannot be restricted") {
		t.Fatalf("restricted softmax ran: %v", err)
	}
	// A first range check split with bounds that do not cover its outputs.
	if _, err := SplitLayer(p, 0, [][2]int{{0, 4}, {5, 10}}, false); err == nil || !strings.Contains(err.Error(), "do not cover") {
		t.Fatalf("bounds not covering: %v", err)
	}
	// A restricted range check whose range exceeds its value.
	c = *p.Layers[0]
	c.OutLo, c.OutHi = 4, 11
	q.Layers[0] = &c
	if _, err := q.Eval(qi); err == nil || !strings.Contains(err.Error(), "outside its value") {
		t.Fatalf("range outside value: %v", err)
	}
}

// TestSplitChainSameOutputs splits the convolution, its rescale and the pool of
// random CNNs together into bands, interleaved band by band, and checks the integers
// against the unsplit program's; the pool's bands come after the convolution bands
// under their windows.
func TestSplitChainSameOutputs(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	for trial := range 12 {
		g := load(t, 13, splitGraph(t, r))
		p, err := Lower(g, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		conv := slices.IndexFunc(p.Layers, func(l *Layer) bool { return l.Kind == KLinear })
		pool := slices.IndexFunc(p.Layers, func(l *Layer) bool { return l.Kind == KMax })
		if conv < 0 || pool < conv {
			t.Fatalf("conv %d pool %d", conv, pool)
		}
		qi, want := quantizeEval(t, r, g, p)
		bands := 2 + r.Intn(4)
		q, cuts, err := SplitChain(p, conv, pool-conv+1, bands)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if len(cuts) == 0 || !slices.IsSorted(cuts) || cuts[0] <= conv || cuts[len(cuts)-1] >= conv+len(q.Layers)-len(p.Layers)+pool-conv+1 {
			t.Fatalf("trial %d: cuts %v", trial, cuts)
		}
		// Every part reads only elements written before it.
		written := map[int][]bool{}
		for _, l := range q.Layers {
			q.ElemDeps(l, func(k, j int) {
				if w, ok := written[l.In[k]]; ok && !w[j] {
					t.Fatalf("trial %d: %s reads element %d before it is written", trial, l.Name, j)
				}
			})
			if written[l.Out] == nil {
				written[l.Out] = make([]bool, numel(q.Values[l.Out].Shape))
			}
			lo, hi := 0, len(written[l.Out])
			if l.Restricted() {
				lo, hi = l.OutLo, l.OutHi
			}
			for j := lo; j < hi; j++ {
				written[l.Out][j] = true
			}
		}
		got, err := q.Eval(qi)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if !reflect.DeepEqual(got.Values, want.Values) {
			t.Fatalf("trial %d: split chain computes other values", trial)
		}
	}
}

// TestSplitChainGlobalPool bands a convolution, its rescale and the global average
// pool after it: the pool becomes partial sums, one row per band, their range check
// and their sum, which reads bands times channels values rather than the whole
// convolution output, and the program computes the same integers.
func TestSplitChainGlobalPool(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for trial := range 6 {
		c, m, h, w := 1+r.Intn(3), 2+r.Intn(4), 6+r.Intn(8), 5+r.Intn(6)
		gr := &onnx.GraphProto{
			Node: []*onnx.NodeProto{
				node("Conv", []string{"x", "w", "b"}, []string{"h"}, intsAttr("pads", 1, 1, 1, 1)),
				node("Relu", []string{"h"}, []string{"hr"}),
				node("GlobalAveragePool", []string{"hr"}, []string{"g"}),
				node("Flatten", []string{"g"}, []string{"f"}),
				node("Gemm", []string{"f", "gw", "gb"}, []string{"y"}, intAttr("transB", 1)),
			},
			Initializer: []*onnx.TensorProto{
				floatInit("w", []int64{int64(m), int64(c), 3, 3}, randFloats(r, m*c*9, 0.4)...),
				floatInit("b", []int64{int64(m)}, randFloats(r, m, 0.5)...),
				floatInit("gw", []int64{2, int64(m)}, randFloats(r, 2*m, 0.5)...),
				floatInit("gb", []int64{2}, randFloats(r, 2, 0.5)...),
			},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, int64(c), int64(h), int64(w))},
			Output: []*onnx.ValueInfoProto{floatInfo("y")},
		}
		g := load(t, 13, gr)
		p, err := Lower(g, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		pool := slices.IndexFunc(p.Layers, func(l *Layer) bool { return l.Op == "GlobalAveragePool" })
		if pool < 2 || p.Layers[pool].Kind != KLinear || p.Layers[pool+1].Kind != KRescale {
			t.Fatalf("trial %d: pool at %d", trial, pool)
		}
		conv := slices.IndexFunc(p.Layers, func(l *Layer) bool { return l.Kind == KLinear })
		qi, want := quantizeEval(t, r, g, p)
		bands := 2 + r.Intn(5)
		count := pool + 2 - conv
		q, cuts, err := SplitChain(p, conv, count, bands)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if len(cuts) == 0 || !slices.IsSorted(cuts) {
			t.Fatalf("trial %d: cuts %v", trial, cuts)
		}
		nb := min(bands, h)
		// The pool's last parts: its partial sums' range checks (one per band) and the
		// sum, reading nb rows of m partials.
		sum := slices.IndexFunc(q.Layers, func(l *Layer) bool { return l.Out == p.Layers[pool].Out })
		if sum < 0 {
			t.Fatalf("trial %d: no sum of the partials", trial)
		}
		if in := q.Values[q.Layers[sum].In[0]].Shape; !slices.Equal(in, []int{1, 1, nb, m}) {
			t.Fatalf("trial %d: the sum reads %v, want [1 1 %d %d]", trial, in, nb, m)
		}
		checks := 0
		for _, l := range q.Layers {
			if l.Kind == KRescale && l.Shift == 0 && l.In[0] != p.Layers[pool].Out {
				checks++
			}
		}
		if checks != nb {
			t.Fatalf("trial %d: %d range checks of partials, want %d", trial, checks, nb)
		}
		if len(p.Values) >= len(q.Values) || len(p.Params) >= len(q.Params) {
			t.Fatalf("trial %d: p's lists were not extended on a copy", trial)
		}
		got, err := q.Eval(qi)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if !reflect.DeepEqual(got.Values[:len(p.Values)], want.Values) {
			t.Fatalf("trial %d: split chain computes other values", trial)
		}
	}
}

// quantizeEval quantizes a random input of g for p and evaluates p on it.
func quantizeEval(t *testing.T, r *rand.Rand, g *model.Graph, p *Program) ([][]int64, *Result) {
	t.Helper()
	qi, err := p.QuantizeInputs(randomInputs(r, g, 1))
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	return qi, want
}
