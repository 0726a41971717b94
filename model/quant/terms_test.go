package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// randomConv draws a Conv node and its input and weight shapes: 1-3 spatial axes,
// batch, groups, channels, kernel, strides, dilations, and padding given by pads
// (asymmetric), omitted, or auto_pad VALID / SAME_UPPER / SAME_LOWER.
func randomConv(r *rand.Rand) (*model.Node, []int, []int) {
	k := 1 + r.Intn(3)
	g, cPerG, mPerG := 1+r.Intn(3), 1+r.Intn(3), 1+r.Intn(3)
	x := []int{1 + r.Intn(2), g * cPerG}
	w := []int{g * mPerG, cPerG}
	var strides, dils, pads, kernel []int64
	pads = make([]int64, 2*k)
	for i := range k {
		x = append(x, 1+r.Intn(7))
		ks := 1 + r.Intn(3)
		w = append(w, ks)
		kernel = append(kernel, int64(ks))
		strides = append(strides, int64(1+r.Intn(3)))
		dils = append(dils, int64(1+r.Intn(2)))
		pads[i], pads[k+i] = int64(r.Intn(3)), int64(r.Intn(3))
	}
	attrs := model.Attrs{
		"strides":   {Kind: model.AttrInts, Ints: strides},
		"dilations": {Kind: model.AttrInts, Ints: dils},
	}
	if g > 1 || r.Intn(2) == 0 {
		attrs["group"] = model.Attr{Kind: model.AttrInt, Int: int64(g)}
	}
	if r.Intn(2) == 0 {
		attrs["kernel_shape"] = model.Attr{Kind: model.AttrInts, Ints: kernel}
	}
	switch r.Intn(5) {
	case 0, 1:
		attrs["pads"] = model.Attr{Kind: model.AttrInts, Ints: pads}
	case 2:
		attrs["auto_pad"] = model.Attr{Kind: model.AttrString, String: "VALID"}
	case 3:
		attrs["auto_pad"] = model.Attr{Kind: model.AttrString, String: "SAME_UPPER"}
	case 4:
		attrs["auto_pad"] = model.Attr{Kind: model.AttrString, String: "SAME_LOWER"}
	}
	return &model.Node{Name: "conv", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: attrs}, x, w
}

func encodeLayer(t *testing.T, l *Layer) []byte {
	t.Helper()
	var buf bytes.Buffer
	p := &Program{Config: DefaultConfig(), Layers: []*Layer{l}}
	if err := p.WriteCanonical(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomMat draws a Gemm (with transA/transB) or MatMul (1-D operands, batch
// dimensions with broadcasting) node and its operand shapes.
func randomMat(r *rand.Rand) (*model.Node, []int, []int) {
	m, k, n := 1+r.Intn(4), 1+r.Intn(4), 1+r.Intn(4)
	if r.Intn(2) == 0 {
		ta, tb := r.Intn(2), r.Intn(2)
		a, b := []int{m, k}, []int{k, n}
		if ta == 1 {
			a = []int{k, m}
		}
		if tb == 1 {
			b = []int{n, k}
		}
		attrs := model.Attrs{"transA": {Kind: model.AttrInt, Int: int64(ta)}, "transB": {Kind: model.AttrInt, Int: int64(tb)}}
		return &model.Node{Name: "gemm", Op: "Gemm", Inputs: []string{"a", "b"}, Outputs: []string{"y"}, Attrs: attrs}, a, b
	}
	var batchA, batchB []int
	for range r.Intn(3) {
		d := 1 + r.Intn(3)
		da, db := d, d
		switch r.Intn(3) {
		case 0:
			da = 1
		case 1:
			db = 1
		}
		batchA, batchB = append(batchA, da), append(batchB, db)
	}
	if len(batchA) > 0 && r.Intn(3) == 0 {
		batchB = batchB[1:] // fewer batch dimensions on one side
	}
	a, b := append(batchA, m, k), append(batchB, k, n)
	switch r.Intn(6) {
	case 0:
		a = []int{k}
	case 1:
		b = []int{k}
	}
	return &model.Node{Name: "matmul", Op: "MatMul", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}, a, b
}

// checkSameTerms compares a structured layer with the lists the lowering materialized
// for the same node (want, from linearTermsListed): outputs, term counts, every
// output's terms in order, Materialized, the canonical encoding (hence the model ID)
// and the JSON encoding (the legacy ID).
func checkSameTerms(t *testing.T, what string, l, want *Layer) {
	t.Helper()
	if l.structure() == nil || l.TermStart != nil || l.TA != nil || l.TB != nil {
		t.Fatalf("%s: lowered layer has lists or no structure", what)
	}
	nOut := len(want.TermStart) - 1
	if l.LinearOutputs() != nOut || l.NumTerms() != len(want.TA) {
		t.Fatalf("%s: %d outputs %d terms, want %d and %d", what, l.LinearOutputs(), l.NumTerms(), nOut, len(want.TA))
	}
	var buf TermBuf
	for o := range nOut {
		ta, tb := l.Terms(o, &buf)
		s, e := want.TermStart[o], want.TermStart[o+1]
		if !slices.Equal(ta, want.TA[s:e]) || !slices.Equal(tb, want.TB[s:e]) {
			t.Fatalf("%s: output %d terms %v %v, want %v %v", what, o, ta, tb, want.TA[s:e], want.TB[s:e])
		}
		wa, wb := want.Terms(o, &buf)
		if !slices.Equal(wa, want.TA[s:e]) || !slices.Equal(wb, want.TB[s:e]) {
			t.Fatalf("%s: listed layer's Terms(%d) = %v %v", what, o, wa, wb)
		}
	}
	if m := l.Materialized(); m.structure() != nil || !slices.Equal(m.TermStart, want.TermStart) || !slices.Equal(m.TA, want.TA) || !slices.Equal(m.TB, want.TB) {
		t.Fatalf("%s: Materialized differs from the listed lowering", what)
	}
	if !bytes.Equal(encodeLayer(t, l), encodeLayer(t, want)) {
		t.Fatalf("%s: canonical encoding differs from the listed layer's", what)
	}
	ja, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s: JSON differs:\n%s\n%s", what, ja, jb)
	}
}

// TestConvTermsMatchMaterialized: for random Conv geometries, the layer the lowering
// builds (with ConvGeom, no lists) generates exactly the terms, in order, that the
// lowering materialized before (linearTermsListed), and encodes to the same bytes.
func TestConvTermsMatchMaterialized(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	tested, padded := 0, 0
	for tested < 400 {
		n, xs, ws := randomConv(r)
		l := &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}}
		outShape, cols, err := linearTerms(n, "Conv", l, xs, ws)
		want := &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}}
		wantShape, wantCols, wantErr := linearTermsListed(n, "Conv", want, xs, ws)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%v %v %v: error %v, listed %v", n.Attrs, xs, ws, err, wantErr)
		}
		if err != nil {
			continue // an output size < 1: refused, as before
		}
		tested++
		if l.Conv == nil || !slices.Equal(outShape, wantShape) || cols != wantCols {
			t.Fatalf("out shape %v cols %d, want %v %d", outShape, cols, wantShape, wantCols)
		}
		checkSameTerms(t, fmt.Sprintf("Conv %v x %v w %v", n.Attrs, xs, ws), l, want)
		pl := l.Conv
		if len(want.TA) < pl.Outputs()*(pl.C/pl.Group)*numel(pl.K) {
			padded++
		}
	}
	if padded < 50 {
		t.Fatalf("only %d geometries skip padding taps", padded)
	}
}

// TestMatTermsMatchMaterialized is TestConvTermsMatchMaterialized for Gemm and MatMul
// (MatGeom).
func TestMatTermsMatchMaterialized(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	tested := map[string]int{}
	for tested["Gemm"]+tested["MatMul"] < 400 {
		n, as, bs := randomMat(r)
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{0, 1}}
		outShape, cols, err := linearTerms(n, n.Op, l, as, bs)
		want := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{0, 1}}
		wantShape, wantCols, wantErr := linearTermsListed(n, n.Op, want, as, bs)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s %v %v: error %v, listed %v", n.Op, as, bs, err, wantErr)
		}
		if err != nil {
			continue
		}
		tested[n.Op]++
		if l.Mat == nil || !slices.Equal(outShape, wantShape) || cols != wantCols {
			t.Fatalf("out shape %v cols %d, want %v %d", outShape, cols, wantShape, wantCols)
		}
		checkSameTerms(t, fmt.Sprintf("%s %v %v %v", n.Op, n.Attrs, as, bs), l, want)
	}
	if tested["Gemm"] < 100 || tested["MatMul"] < 100 {
		t.Fatalf("tested %v", tested)
	}
}

// TestGeomEncoded: every field of ConvGeom and MatGeom is part of the program's
// canonical encoding (through the terms it generates): changing any one changes it.
// (The generic walk of TestCanonicalEncodingCoversEveryField leaves the geometries to
// this test: a geometry is only meaningful whole.)
func TestGeomEncoded(t *testing.T) {
	for _, base := range []func() *Layer{
		func() *Layer {
			return &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}, Conv: &ConvGeom{
				N: 1, C: 2, M: 2, Group: 1, In: []int{4}, K: []int{2}, S: []int{1}, D: []int{1}, PadBegin: []int{1}, Out: []int{4}}}
		},
		func() *Layer {
			return &Layer{Name: "mm", Op: "MatMul", Kind: KLinear, In: []int{0, 1}, Mat: &MatGeom{
				M: 2, K: 3, N: 4, AOff: []int{0}, BOff: []int{0}}}
		},
	} {
		enc := encodeLayer(t, base())
		g := reflect.ValueOf(base().structure()).Elem()
		for i := range g.NumField() {
			l := base()
			f := reflect.ValueOf(l.structure()).Elem().Field(i)
			switch f.Kind() {
			case reflect.Int:
				f.SetInt(f.Int() + 1)
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Slice:
				f.Index(0).SetInt(f.Index(0).Int() + 1)
			default:
				t.Fatalf("%s.%s: kind %s: teach this test", g.Type().Name(), g.Type().Field(i).Name, f.Kind())
			}
			if bytes.Equal(encodeLayer(t, l), enc) {
				t.Errorf("changing %s.%s does not change the encoding", g.Type().Name(), g.Type().Field(i).Name)
			}
		}
	}
}

// TestLoweredConvRunsLikeMaterialized: a lowered model with convolutions (grouped,
// strided, padded) evaluates to the same integers, and encodes to the same bytes, as
// the program with every layer's terms materialized.
func TestLoweredConvRunsLikeMaterialized(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	g := load(t, 13, &onnx.GraphProto{
		Node: []*onnx.NodeProto{
			node("Conv", []string{"x", "w1", "b1"}, []string{"h"}, intsAttr("pads", 1, 0, 2, 1), intsAttr("strides", 2, 1)),
			node("Relu", []string{"h"}, []string{"hr"}),
			node("Conv", []string{"hr", "w2"}, []string{"y"}, intAttr("group", 2), intsAttr("dilations", 1, 2), intsAttr("pads", 1, 1, 1, 1)),
		},
		Initializer: []*onnx.TensorProto{
			floatInit("w1", []int64{4, 2, 3, 2}, randFloats(r, 48, 0.3)...), floatInit("b1", []int64{4}, randFloats(r, 4, 1)...),
			floatInit("w2", []int64{2, 2, 2, 2}, randFloats(r, 16, 0.3)...),
		},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 6, 5)},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	})
	p := checkClose(t, g, testConfig(), randomInputs(r, g, 1), 16, 8)
	m := *p
	m.Layers = nil
	convs := 0
	for _, l := range p.Layers {
		if l.structure() != nil {
			convs++
		}
		m.Layers = append(m.Layers, l.Materialized())
	}
	if convs != 2 {
		t.Fatalf("%d structured layers, want 2", convs)
	}
	var a, b bytes.Buffer
	if err := p.WriteCanonical(&a); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteCanonical(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("canonical encodings differ")
	}
	for range 3 {
		qi, err := p.QuantizeInputs(randomInputs(r, g, 1))
		if err != nil {
			t.Fatal(err)
		}
		ra, err := p.Eval(qi)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := m.Eval(qi)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ra.Values, rb.Values) {
			t.Fatal("structured and materialized programs evaluate differently")
		}
	}
}
