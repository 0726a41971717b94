package model

import (
	"math"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func bnInits(r *rand.Rand, c int64) []*onnx.TensorProto {
	vr := randFloats(r, int(c))
	for i := range vr {
		vr[i] = vr[i]*vr[i] + 0.1
	}
	return []*onnx.TensorProto{
		floatTensorProto("g", []int64{c}, randFloats(r, int(c))...),
		floatTensorProto("b", []int64{c}, randFloats(r, int(c))...),
		floatTensorProto("m", []int64{c}, randFloats(r, int(c))...),
		floatTensorProto("v", []int64{c}, vr...),
	}
}

func TestFoldBatchNorm(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	bn := node("BatchNormalization", []string{"c", "g", "b", "m", "v"}, []string{"y"})
	cases := []struct {
		name  string
		g     *onnx.GraphProto
		nodes int // node count after folding
	}{
		{"conv", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Conv", []string{"x", "w", "cb"}, []string{"c"}, intsAttr("pads", 1, 1, 1, 1)), bn, node("Relu", []string{"y"}, []string{"z"})},
			Initializer: append(bnInits(r, 3), floatTensorProto("w", []int64{3, 2, 3, 3}, randFloats(r, 54)...), floatTensorProto("cb", []int64{3}, randFloats(r, 3)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 5, 5)},
			Output:      []*onnx.ValueInfoProto{floatInfo("z")},
		}, 2},
		{"conv without bias", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"c"}), bn},
			Initializer: append(bnInits(r, 3), floatTensorProto("w", []int64{3, 2, 1, 1}, randFloats(r, 6)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 4, 4)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y")},
		}, 1},
		{"gemm transB with matrix bias", &onnx.GraphProto{
			Node: []*onnx.NodeProto{node("Gemm", []string{"x", "w", "cb"}, []string{"c"}, intAttr("transB", 1),
				&onnx.AttributeProto{Name: "beta", Type: onnx.AttributeProto_FLOAT, F: 0.5},
				&onnx.AttributeProto{Name: "alpha", Type: onnx.AttributeProto_FLOAT, F: 2}), bn},
			Initializer: append(bnInits(r, 4), floatTensorProto("w", []int64{4, 5}, randFloats(r, 20)...), floatTensorProto("cb", []int64{2, 4}, randFloats(r, 8)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 2, 5)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y")},
		}, 1},
		{"gemm", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Gemm", []string{"x", "w"}, []string{"c"}), bn},
			Initializer: append(bnInits(r, 4), floatTensorProto("w", []int64{5, 4}, randFloats(r, 20)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 3, 5)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y")},
		}, 1},
		{"conv output is a graph output", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"c"}), bn},
			Initializer: append(bnInits(r, 3), floatTensorProto("w", []int64{3, 2, 1, 1}, randFloats(r, 6)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 4, 4)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y"), floatInfo("c")},
		}, 2},
		{"conv output has another reader", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Conv", []string{"x", "w"}, []string{"c"}), bn, node("Add", []string{"y", "c"}, []string{"z"})},
			Initializer: append(bnInits(r, 3), floatTensorProto("w", []int64{3, 2, 1, 1}, randFloats(r, 6)...)),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 4, 4)},
			Output:      []*onnx.ValueInfoProto{floatInfo("z")},
		}, 3},
		{"standalone", &onnx.GraphProto{
			Node:        []*onnx.NodeProto{node("Relu", []string{"x"}, []string{"c"}), bn},
			Initializer: bnInits(r, 2),
			Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 3)},
			Output:      []*onnx.ValueInfoProto{floatInfo("y")},
		}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load(modelBytes(t, 13, tc.g))
			if err != nil {
				t.Fatal(err)
			}
			before := len(g.Nodes)
			f := FoldBatchNorm(g)
			if len(f.Nodes) != tc.nodes {
				t.Fatalf("folded graph has %d nodes, want %d", len(f.Nodes), tc.nodes)
			}
			if len(g.Nodes) != before {
				t.Fatal("FoldBatchNorm modified its argument")
			}
			in := NewTensor(g.Inputs[0].Shape...)
			for i := range in.Data {
				in.Data[i] = r.NormFloat64()
			}
			want, err := g.Eval([]*Tensor{in})
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Eval([]*Tensor{in})
			if err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if !sameShape(want[k].Shape, got[k].Shape) {
					t.Fatalf("output %d shape %v, want %v", k, got[k].Shape, want[k].Shape)
				}
				for i, w := range want[k].Data {
					if math.Abs(got[k].Data[i]-w) > 1e-9*(1+math.Abs(w)) {
						t.Fatalf("output %d element %d = %v, want %v", k, i, got[k].Data[i], w)
					}
				}
			}
		})
	}
}
