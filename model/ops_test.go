package model

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// TestOpsetForms evaluates the attribute and input forms of operators whose parameters
// moved from attributes to inputs across opsets.
func TestOpsetForms(t *testing.T) {
	x := tensorOf([]int{2, 3}, 1, -2, 3, 4, 5, -6)
	floatAttr := func(name string, v float32) *onnx.AttributeProto {
		return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
	}
	cases := []struct {
		name  string
		opset int64
		node  *onnx.NodeProto
		inits []*onnx.TensorProto
		outs  []string
		want  [][]float64
		shape [][]int
	}{
		{"Clip attributes (opset 6)", 6, node("Clip", []string{"x"}, []string{"y"}, floatAttr("min", -1), floatAttr("max", 3.5)), nil,
			[]string{"y"}, [][]float64{{1, -1, 3, 3.5, 3.5, -1}}, [][]int{{2, 3}}},
		{"Clip inputs (opset 13), max only", 13, node("Clip", []string{"x", "", "hi"}, []string{"y"}), []*onnx.TensorProto{floatTensorProto("hi", nil, 2)},
			[]string{"y"}, [][]float64{{1, -2, 2, 2, 2, -6}}, [][]int{{2, 3}}},
		{"ReduceSum axes input (opset 13)", 13, node("ReduceSum", []string{"x", "a"}, []string{"y"}, intAttr("keepdims", 0)), []*onnx.TensorProto{int64TensorProto("a", []int64{1}, -1)},
			[]string{"y"}, [][]float64{{2, 3}}, [][]int{{2}}},
		{"ReduceMax axes attribute (opset 13)", 13, node("ReduceMax", []string{"x"}, []string{"y"}, intsAttr("axes", 0)), nil,
			[]string{"y"}, [][]float64{{4, 5, 3}}, [][]int{{1, 3}}},
		{"ReduceMax axes input (opset 18)", 18, node("ReduceMax", []string{"x", "a"}, []string{"y"}), []*onnx.TensorProto{int64TensorProto("a", []int64{1}, 0)},
			[]string{"y"}, [][]float64{{4, 5, 3}}, [][]int{{1, 3}}},
		{"ReduceMean noop_with_empty_axes (opset 18)", 18, node("ReduceMean", []string{"x"}, []string{"y"}, intAttr("noop_with_empty_axes", 1)), nil,
			[]string{"y"}, [][]float64{{1, -2, 3, 4, 5, -6}}, [][]int{{2, 3}}},
		{"ReduceMin all axes", 13, node("ReduceMin", []string{"x"}, []string{"y"}, intAttr("keepdims", 0)), nil,
			[]string{"y"}, [][]float64{{-6}}, [][]int{{}}},
		{"Split input (opset 13)", 13, node("Split", []string{"x", "s"}, []string{"a", "b"}, intAttr("axis", 1)), []*onnx.TensorProto{int64TensorProto("s", []int64{2}, 1, 2)},
			[]string{"a", "b"}, [][]float64{{1, 4}, {-2, 3, 5, -6}}, [][]int{{2, 1}, {2, 2}}},
		{"Split num_outputs (opset 18)", 18, node("Split", []string{"x"}, []string{"a", "b"}, intAttr("axis", 1), intAttr("num_outputs", 2)), nil,
			[]string{"a", "b"}, [][]float64{{1, -2, 4, 5}, {3, -6}}, [][]int{{2, 2}, {2, 1}}},
		{"ArgMax select_last_index", 13, node("ArgMax", []string{"x"}, []string{"y"}, intAttr("axis", 1), intAttr("select_last_index", 1)), nil,
			[]string{"y"}, [][]float64{{2, 1}}, [][]int{{2, 1}}},
		{"ArgMin", 13, node("ArgMin", []string{"x"}, []string{"y"}, intAttr("axis", 1), intAttr("keepdims", 0)), nil,
			[]string{"y"}, [][]float64{{1, 2}}, [][]int{{2}}},
		{"Expand", 13, node("Expand", []string{"x", "s"}, []string{"y"}), []*onnx.TensorProto{int64TensorProto("s", []int64{3}, 2, 1, 1)},
			[]string{"y"}, [][]float64{{1, -2, 3, 4, 5, -6, 1, -2, 3, 4, 5, -6}}, [][]int{{2, 2, 3}}},
		{"Tile", 13, node("Tile", []string{"x", "r"}, []string{"y"}), []*onnx.TensorProto{int64TensorProto("r", []int64{2}, 1, 2)},
			[]string{"y"}, [][]float64{{1, -2, 3, 1, -2, 3, 4, 5, -6, 4, 5, -6}}, [][]int{{2, 6}}},
		{"Trilu upper", 14, node("Trilu", []string{"x"}, []string{"y"}), nil,
			[]string{"y"}, [][]float64{{1, -2, 3, 0, 5, -6}}, [][]int{{2, 3}}},
		{"Trilu lower", 14, node("Trilu", []string{"x"}, []string{"y"}, intAttr("upper", 0)), nil,
			[]string{"y"}, [][]float64{{1, 0, 0, 4, 5, 0}}, [][]int{{2, 3}}},
		{"Trilu upper k=1", 14, node("Trilu", []string{"x", "k"}, []string{"y"}), []*onnx.TensorProto{int64TensorProto("k", nil, 1)},
			[]string{"y"}, [][]float64{{0, -2, 3, 0, 0, -6}}, [][]int{{2, 3}}},
		{"Trilu lower k=-1", 14, node("Trilu", []string{"x", "k"}, []string{"y"}, intAttr("upper", 0)), []*onnx.TensorProto{int64TensorProto("k", nil, -1)},
			[]string{"y"}, [][]float64{{0, 0, 0, 4, 0, 0}}, [][]int{{2, 3}}},
		{"Pad reflect", 13, node("Pad", []string{"x", "p"}, []string{"y"}, stringAttr("mode", "reflect")), []*onnx.TensorProto{int64TensorProto("p", []int64{4}, 0, 2, 0, 1)},
			[]string{"y"}, [][]float64{{3, -2, 1, -2, 3, -2, -6, 5, 4, 5, -6, 5}}, [][]int{{2, 6}}},
		{"Pad reflect past the axis (numpy)", 13, node("Pad", []string{"x", "p"}, []string{"y"}, stringAttr("mode", "reflect")), []*onnx.TensorProto{int64TensorProto("p", []int64{4}, 0, 0, 0, 4)},
			[]string{"y"}, [][]float64{{1, -2, 3, -2, 1, -2, 3, 4, 5, -6, 5, 4, 5, -6}}, [][]int{{2, 7}}},
		{"Pad edge", 13, node("Pad", []string{"x", "p"}, []string{"y"}, stringAttr("mode", "edge")), []*onnx.TensorProto{int64TensorProto("p", []int64{4}, 1, 1, 0, 0)},
			[]string{"y"}, [][]float64{{1, 1, -2, 3, 1, 1, -2, 3, 4, 4, 5, -6}}, [][]int{{3, 4}}},
		{"Pad edge attributes (opset 2)", 2, node("Pad", []string{"x"}, []string{"y"}, stringAttr("mode", "edge"), intsAttr("pads", 0, 0, 0, 1)), nil,
			[]string{"y"}, [][]float64{{1, -2, 3, 3, 4, 5, -6, -6}}, [][]int{{2, 4}}},
		{"Pad wrap (opset 19)", 19, node("Pad", []string{"x", "p"}, []string{"y"}, stringAttr("mode", "wrap")), []*onnx.TensorProto{int64TensorProto("p", []int64{4}, 0, 1, 0, 1)},
			[]string{"y"}, [][]float64{{3, 1, -2, 3, 1, -6, 4, 5, -6, 4}}, [][]int{{2, 5}}},
		{"Pad reflect axes input (opset 18)", 18, node("Pad", []string{"x", "p", "", "a"}, []string{"y"}, stringAttr("mode", "reflect")),
			[]*onnx.TensorProto{int64TensorProto("p", []int64{2}, 1, 1), int64TensorProto("a", []int64{1}, -1)},
			[]string{"y"}, [][]float64{{-2, 1, -2, 3, -2, 5, 4, 5, -6, 5}}, [][]int{{2, 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var outs []*onnx.ValueInfoProto
			for _, o := range tc.outs {
				outs = append(outs, floatInfo(o))
			}
			g, err := Load(modelBytes(t, tc.opset, &onnx.GraphProto{Node: []*onnx.NodeProto{tc.node}, Initializer: tc.inits,
				Input: []*onnx.ValueInfoProto{floatInfo("x", 2, 3)}, Output: outs}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Eval([]*Tensor{x.Clone()})
			if err != nil {
				t.Fatal(err)
			}
			for k := range tc.want {
				if !sameShape(got[k].Shape, tc.shape[k]) {
					t.Fatalf("output %d shape %v, want %v", k, got[k].Shape, tc.shape[k])
				}
				for i, w := range tc.want[k] {
					if got[k].Data[i] != w {
						t.Fatalf("output %d = %v, want %v", k, got[k].Data, tc.want[k])
					}
				}
			}
		})
	}
}

// TestPReluPerChannel checks PRelu's 1-D slope on an [N, C, ...] input: per channel
// before opset 7 and wherever numpy broadcasting fails (as exporters write it), numpy's
// last-axis broadcast where that is valid from opset 7 on.
func TestPReluPerChannel(t *testing.T) {
	cases := []struct {
		name  string
		opset int64
		x     []int64
		slope []float32
		want  []float64
	}{
		// x = -1 -2 ... : every element negative, so y = slope * x.
		{"opset 13, [C] does not broadcast numpy-style", 13, []int64{1, 3, 2}, []float32{1, 2, 3}, []float64{-1, -2, -6, -8, -15, -18}},
		{"opset 6, per channel", 6, []int64{1, 2, 2}, []float32{1, 2}, []float64{-1, -2, -6, -8}},
		{"opset 13, numpy broadcast along the last axis", 13, []int64{1, 2, 2}, []float32{1, 2}, []float64{-1, -4, -3, -8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load(modelBytes(t, tc.opset, &onnx.GraphProto{Node: []*onnx.NodeProto{node("PRelu", []string{"x", "s"}, []string{"y"})},
				Initializer: []*onnx.TensorProto{floatTensorProto("s", []int64{int64(len(tc.slope))}, tc.slope...)},
				Input:       []*onnx.ValueInfoProto{floatInfo("x", tc.x...)}, Output: []*onnx.ValueInfoProto{floatInfo("y")}}))
			if err != nil {
				t.Fatal(err)
			}
			x := NewTensor(g.Inputs[0].Shape...)
			for i := range x.Data {
				x.Data[i] = -float64(i + 1)
			}
			got, err := g.Eval([]*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if got[0].Data[i] != w {
					t.Fatalf("got %v, want %v", got[0].Data, tc.want)
				}
			}
		})
	}
}

// TestDepthToSpace checks DepthToSpace in both modes on the channel order that tells
// them apart, and that SpaceToDepth undoes DCR.
func TestDepthToSpace(t *testing.T) {
	x := NewTensor(1, 8, 1, 1)
	for i := range x.Data {
		x.Data[i] = float64(i)
	}
	eval := func(op string, x *Tensor, attrs ...*onnx.AttributeProto) *Tensor {
		t.Helper()
		dims := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			dims[i] = int64(d)
		}
		g, err := Load(modelBytes(t, 13, &onnx.GraphProto{Node: []*onnx.NodeProto{node(op, []string{"x"}, []string{"y"}, attrs...)},
			Input: []*onnx.ValueInfoProto{floatInfo("x", dims...)}, Output: []*onnx.ValueInfoProto{floatInfo("y")}}))
		if err != nil {
			t.Fatal(err)
		}
		out, err := g.Eval([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	for _, tc := range []struct {
		mode string
		want []float64
	}{
		{"DCR", []float64{0, 2, 4, 6, 1, 3, 5, 7}},
		{"CRD", []float64{0, 1, 2, 3, 4, 5, 6, 7}},
	} {
		y := eval("DepthToSpace", x, intAttr("blocksize", 2), stringAttr("mode", tc.mode))
		if !sameShape(y.Shape, []int{1, 2, 2, 2}) || fmt.Sprint(y.Data) != fmt.Sprint(tc.want) {
			t.Fatalf("%s: got %v %v, want [1 2 2 2] %v", tc.mode, y.Shape, y.Data, tc.want)
		}
	}
	r := rand.New(rand.NewSource(1))
	z := NewTensor(2, 12, 3, 2)
	for i := range z.Data {
		z.Data[i] = r.NormFloat64()
	}
	back := eval("SpaceToDepth", eval("DepthToSpace", z, intAttr("blocksize", 2)), intAttr("blocksize", 2))
	if !sameShape(back.Shape, z.Shape) || fmt.Sprint(back.Data) != fmt.Sprint(z.Data) {
		t.Fatal("SpaceToDepth does not undo DepthToSpace (DCR)")
	}
}
