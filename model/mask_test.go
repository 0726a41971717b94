package model

import (
	"math"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// TestBoundSoftmaxMasks checks that only a mask constant read through Where or Add by a
// Softmax alone is bounded, and that the bounded graph computes the same function (on
// rows with at least one position left unmasked, as attention masks leave them).
func TestBoundSoftmaxMasks(t *testing.T) {
	low := floatTensorProto("low", nil, -math.MaxFloat32)
	addMask := floatTensorProto("mask", []int64{3}, 0, -math.MaxFloat32, 0)
	cases := []struct {
		name    string
		nodes   []*onnx.NodeProto
		bounded bool
	}{
		{"Where into Softmax", []*onnx.NodeProto{node("Where", []string{"m", "x", "low"}, []string{"s"}), node("Softmax", []string{"s"}, []string{"y"})}, true},
		{"Add into Softmax", []*onnx.NodeProto{node("Add", []string{"mask", "x"}, []string{"s"}), node("Softmax", []string{"s"}, []string{"y"})}, true},
		{"Where read elsewhere too", []*onnx.NodeProto{node("Where", []string{"m", "x", "low"}, []string{"s"}), node("Softmax", []string{"s"}, []string{"y"}),
			node("Relu", []string{"s"}, []string{"z"})}, false},
		{"Where into Relu", []*onnx.NodeProto{node("Where", []string{"m", "x", "low"}, []string{"y"})}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := &onnx.TensorProto{Name: "m", Dims: []int64{3}, DataType: int32(onnx.TensorProto_BOOL), Int32Data: []int32{1, 0, 1}}
			g, err := Load(modelBytes(t, 13, &onnx.GraphProto{Node: tc.nodes, Initializer: []*onnx.TensorProto{low, m, addMask},
				Input: []*onnx.ValueInfoProto{floatInfo("x", 2, 3)}, Output: []*onnx.ValueInfoProto{floatInfo("y")}}))
			if err != nil {
				t.Fatal(err)
			}
			b := BoundSoftmaxMasks(g, 1e4)
			if (b != g) != tc.bounded {
				t.Fatalf("bounded = %v, want %v", b != g, tc.bounded)
			}
			if g.Consts["low"].Data[0] != -math.MaxFloat32 {
				t.Fatal("the input graph's constant changed")
			}
			x := tensorOf([]int{2, 3}, 1, 2, 3, -1, 0.5, 4)
			want, err := g.Eval([]*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Eval([]*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range want[0].Data {
				if got[0].Data[i] != w {
					t.Fatalf("element %d = %v, want %v", i, got[0].Data[i], w)
				}
			}
		})
	}
}
