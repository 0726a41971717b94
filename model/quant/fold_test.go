package quant

import (
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// TestBatchNormFolded checks that Conv+BatchNormalization lowers to a single linear
// layer and one rescale, matching the float reference.
func TestBatchNormFolded(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	vr := randFloats(r, 3, 1)
	for i := range vr {
		vr[i] = vr[i]*vr[i] + 0.5
	}
	g := load(t, 13, &onnx.GraphProto{
		Node: []*onnx.NodeProto{
			node("Conv", []string{"x", "w", "cb"}, []string{"c"}, intsAttr("pads", 1, 1, 1, 1)),
			{OpType: "BatchNormalization", Name: "bn", Input: []string{"c", "g", "b", "m", "v"}, Output: []string{"y"}},
		},
		Initializer: []*onnx.TensorProto{
			floatInit("w", []int64{3, 2, 3, 3}, randFloats(r, 54, 0.3)...), floatInit("cb", []int64{3}, randFloats(r, 3, 1)...),
			floatInit("g", []int64{3}, randFloats(r, 3, 1)...), floatInit("b", []int64{3}, randFloats(r, 3, 1)...),
			floatInit("m", []int64{3}, randFloats(r, 3, 1)...), floatInit("v", []int64{3}, vr...),
		},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 2, 5, 5)},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	})
	for range 5 {
		p := checkClose(t, g, testConfig(), randomInputs(r, g, 1), 16, 8)
		var kinds []Kind
		for _, l := range p.Layers {
			kinds = append(kinds, l.Kind)
		}
		if len(kinds) != 3 || kinds[1] != KLinear || kinds[2] != KRescale {
			t.Fatalf("layers %v, want input range check, linear, rescale", kinds)
		}
	}
}
