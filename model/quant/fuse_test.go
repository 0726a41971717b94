package quant

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// TestFoldConstAdds checks the Conv/Gemm -> Add(bias) -> Relu fusion older exporters
// need: the constant addition moves before the rescale (exact), so the Relu fuses into
// it; the fused program computes exactly the integers of the unfused one.
func TestFoldConstAdds(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, tc := range []struct {
		name  string
		nodes []*onnx.NodeProto
		fused bool
	}{
		{"MatMul Add Relu", []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Add", []string{"h", "b"}, []string{"a"}), node("Relu", []string{"a"}, []string{"y"})}, true},
		{"bias first", []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Add", []string{"b", "h"}, []string{"a"}), node("Relu", []string{"a"}, []string{"y"})}, true},
		{"Sub bias", []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Sub", []string{"h", "b"}, []string{"a"}), node("Relu", []string{"a"}, []string{"y"})}, true},
		{"bias minus x", []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Sub", []string{"b", "h"}, []string{"a"}), node("Relu", []string{"a"}, []string{"y"})}, false},
		{"rescale read twice", []*onnx.NodeProto{node("MatMul", []string{"x", "w"}, []string{"h"}), node("Add", []string{"h", "b"}, []string{"a"}), node("Relu", []string{"a"}, []string{"r"}), node("Add", []string{"r", "h"}, []string{"y"})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &onnx.GraphProto{
				Input:       []*onnx.ValueInfoProto{floatInfo("x", 1, 6)},
				Output:      []*onnx.ValueInfoProto{floatInfo("y", 1, 4)},
				Initializer: []*onnx.TensorProto{floatInit("w", []int64{6, 4}, randFloats(r, 24, 0.5)...), floatInit("b", []int64{4}, randFloats(r, 4, 0.5)...)},
				Node:        tc.nodes,
			}
			gr := load(t, 13, g)
			for _, vis := range []Visibility{Fixed, Hashed} {
				cfg := testConfig()
				cfg.ParamVis = vis
				plain, err := lowerGraph(gr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				fused, err := Lower(gr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				folded := false
				for _, l := range fused.Layers {
					folded = folded || l.Op == "Rescale+Relu"
				}
				if want := tc.fused && vis == Fixed; folded != want {
					t.Fatalf("params %s: fused = %v, want %v (%d layers)", vis, folded, want, len(fused.Layers))
				}
				for k := 0; k < 20; k++ {
					in := randomInputs(r, gr, 3)
					qi, err := plain.QuantizeInputs(in)
					if err != nil {
						t.Fatal(err)
					}
					a, err := plain.Eval(qi)
					if err != nil {
						t.Fatal(err)
					}
					b, err := fused.Eval(qi)
					if err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(a.Outputs) != fmt.Sprint(b.Outputs) {
						t.Fatalf("fused %v, unfused %v", b.Outputs, a.Outputs)
					}
				}
			}
		})
	}
}
