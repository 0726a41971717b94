package quant

import (
	"bytes"
	"encoding/json"
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

// TestConvTermsMatchMaterialized: for random Conv geometries, the layer the lowering
// builds (with ConvGeom, no lists) generates exactly the terms, in order, that the
// lowering materialized before (materializeConv), has the same output and term counts,
// and encodes (canonically, hence the model ID, and as JSON, the legacy ID) to the same
// bytes as the materialized layer.
func TestConvTermsMatchMaterialized(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	tested, padded := 0, 0
	for tested < 400 {
		n, xs, ws := randomConv(r)
		l := &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}}
		outShape, cols, err := linearTerms(n, "Conv", l, xs, ws)
		if err != nil {
			continue // an output size < 1: refused, as before
		}
		tested++
		pl, err := model.PlanConv(n, xs, ws)
		if err != nil {
			t.Fatal(err)
		}
		want := &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}}
		materializeConv(pl, want)
		if l.Conv == nil || l.TermStart != nil || l.TA != nil || l.TB != nil {
			t.Fatalf("%v %v %v: lowered layer has lists or no geometry", n.Attrs, xs, ws)
		}
		if !slices.Equal(outShape, pl.OutShape()) || cols != pl.Outputs() {
			t.Fatalf("out shape %v cols %d, want %v %d", outShape, cols, pl.OutShape(), pl.Outputs())
		}
		nOut := len(want.TermStart) - 1
		if l.LinearOutputs() != nOut || l.NumTerms() != len(want.TA) {
			t.Fatalf("%v %v %v: %d outputs %d terms, want %d and %d", n.Attrs, xs, ws, l.LinearOutputs(), l.NumTerms(), nOut, len(want.TA))
		}
		var buf TermBuf
		for o := range nOut {
			ta, tb := l.Terms(o, &buf)
			s, e := want.TermStart[o], want.TermStart[o+1]
			if !slices.Equal(ta, want.TA[s:e]) || !slices.Equal(tb, want.TB[s:e]) {
				t.Fatalf("%v %v %v: output %d terms %v %v, want %v %v", n.Attrs, xs, ws, o, ta, tb, want.TA[s:e], want.TB[s:e])
			}
			wa, wb := want.Terms(o, &buf)
			if !slices.Equal(wa, want.TA[s:e]) || !slices.Equal(wb, want.TB[s:e]) {
				t.Fatalf("listed layer's Terms(%d) = %v %v", o, wa, wb)
			}
		}
		if m := l.Materialized(); m.Conv != nil || !slices.Equal(m.TermStart, want.TermStart) || !slices.Equal(m.TA, want.TA) || !slices.Equal(m.TB, want.TB) {
			t.Fatalf("Materialized differs from the old lowering")
		}
		if !bytes.Equal(encodeLayer(t, l), encodeLayer(t, want)) {
			t.Fatalf("%v %v %v: canonical encoding differs from the materialized layer's", n.Attrs, xs, ws)
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
			t.Fatalf("JSON differs:\n%s\n%s", ja, jb)
		}
		if len(want.TA) < nOut*pl.CPerG*pl.KernelSize() {
			padded++
		}
	}
	if padded < 50 {
		t.Fatalf("only %d geometries skip padding taps", padded)
	}
}

// TestConvGeomEncoded: every field of ConvGeom is part of the program's canonical
// encoding (through the terms it generates): changing any one changes it. (The
// generic walk of TestCanonicalEncodingCoversEveryField leaves the geometry to this
// test: a geometry is only meaningful whole.)
func TestConvGeomEncoded(t *testing.T) {
	base := func() *Layer {
		return &Layer{Name: "conv", Op: "Conv", Kind: KLinear, In: []int{0, 1}, Conv: &ConvGeom{
			N: 1, C: 2, M: 2, Group: 1, In: []int{4}, K: []int{2}, S: []int{1}, D: []int{1}, PadBegin: []int{1}, Out: []int{4}}}
	}
	enc := encodeLayer(t, base())
	typ := reflect.TypeFor[ConvGeom]()
	for i := range typ.NumField() {
		l := base()
		f := reflect.ValueOf(l.Conv).Elem().Field(i)
		switch f.Kind() {
		case reflect.Int:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Index(0).SetInt(f.Index(0).Int() + 1)
		default:
			t.Fatalf("ConvGeom.%s: kind %s: teach this test", typ.Field(i).Name, f.Kind())
		}
		if bytes.Equal(encodeLayer(t, l), enc) {
			t.Errorf("changing ConvGeom.%s does not change the encoding", typ.Field(i).Name)
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
		if l.Conv != nil {
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
