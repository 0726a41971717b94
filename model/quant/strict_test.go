package quant

import (
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

// TestLookupAboveDomain checks that Exp and Sqrt, which keep growing beyond their
// tables, report an input above the domain as out of range (naming the layer) instead
// of proving a clamped value.
func TestLookupAboveDomain(t *testing.T) {
	for _, op := range []string{"Exp", "Sqrt"} {
		g := load(t, 13, &onnx.GraphProto{Input: []*onnx.ValueInfoProto{floatInfo("x", 2)}, Output: []*onnx.ValueInfoProto{floatInfo("y")},
			Node: []*onnx.NodeProto{node(op, []string{"x"}, []string{"y"})}})
		p, err := Lower(g, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range [][]float64{{1, 2}, {1, 1000}} {
			qi, err := p.QuantizeInputs([]*model.Tensor{{Shape: []int{2}, Data: x}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Eval(qi)
			if x[1] < 100 {
				if err != nil {
					t.Fatalf("%s(%v): %v", op, x, err)
				}
				continue
			}
			wantOutOfRange(t, err, op+"_0")
		}
	}
}
