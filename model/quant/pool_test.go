package quant

import (
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// TestPoolStridePadDilation lowers MaxPool and AveragePool, 1-D and 2-D, with stride,
// padding and dilation together (issue 17: such a MaxPool made a tiny model's compile
// run out of memory), checks the integer program against the float reference, and
// bounds the lowered work: one comparison (or one term) per kernel tap per output.
func TestPoolStridePadDilation(t *testing.T) {
	type pool struct {
		in                               []int64
		kernel, strides, pads, dilations []int64
		ceil                             int64
	}
	cases := map[string]pool{
		"1-D":              {[]int64{1, 3, 16}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{2}, 0},
		"1-D ceil":         {[]int64{1, 3, 15}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{2}, 1},
		"1-D wide":         {[]int64{2, 2, 9}, []int64{2}, []int64{3}, []int64{1, 0}, []int64{3}, 0},
		"2-D":              {[]int64{1, 2, 9, 9}, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, []int64{2, 2}, 0},
		"2-D asymmetric":   {[]int64{1, 2, 8, 11}, []int64{2, 3}, []int64{1, 3}, []int64{1, 0, 0, 1}, []int64{3, 2}, 1},
		"2-D kernel 1 pad": {[]int64{1, 1, 6, 6}, []int64{1, 2}, []int64{2, 2}, []int64{0, 1, 0, 1}, []int64{1, 3}, 0},
		// The dilated kernel overhangs the padded input by less than a stride: one window
		// in ceil mode (ONNX, PyTorch), refused before issue 17's fix.
		"1-D ceil overhang": {[]int64{1, 2, 4}, []int64{3}, []int64{2}, []int64{1, 1}, []int64{3}, 1},
		"2-D ceil overhang": {[]int64{1, 2, 4, 7}, []int64{3, 2}, []int64{2, 2}, []int64{1, 1, 1, 1}, []int64{3, 2}, 1},
	}
	for name, pc := range cases {
		for _, op := range []string{"MaxPool", "AveragePool"} {
			t.Run(op+" "+name, func(t *testing.T) {
				attrs := []*onnx.AttributeProto{intsAttr("kernel_shape", pc.kernel...), intsAttr("strides", pc.strides...),
					intsAttr("pads", pc.pads...), intsAttr("dilations", pc.dilations...), intAttr("ceil_mode", pc.ceil)}
				g := load(t, 19, opCase{nodes: unary(op, attrs...), ins: [][]int64{pc.in}}.graph())
				r := rand.New(rand.NewSource(7))
				p := checkClose(t, g, testConfig(), randomInputs(r, g, 2), 16, 8)
				taps := 1
				for _, k := range pc.kernel {
					taps *= int(k)
				}
				outs := numel(g.Outputs[0].Shape)
				work := 0
				for _, l := range p.Layers {
					work += l.NumTerms()
					for _, grp := range l.Groups {
						work += len(grp)
					}
				}
				if work == 0 || work > outs*taps {
					t.Fatalf("lowered work %d, want 1..%d (outputs %d x taps %d)", work, outs*taps, outs, taps)
				}
			})
		}
	}
}
