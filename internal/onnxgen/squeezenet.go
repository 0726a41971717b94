package onnxgen

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// SqueezeNet describes a SqueezeNet 1.0 (Iandola et al. 2016; torchvision's
// squeezenet1_0, without Dropout, an identity at inference): Conv 96@7x7/2, MaxPool
// 3x3/2 (ceil mode), fire2-4, MaxPool, fire5-8, MaxPool, fire9, Conv 1x1 to the
// classes, Relu, GlobalAveragePool, Flatten. A fire module squeezes with a 1x1 Conv and
// expands with a 1x1 and a 3x3 Conv whose outputs are concatenated. Div divides every
// channel count (Div 1: the published network; 1.2 M params, 0.35 G MACs at 224x224),
// so tests and profiles can build scaled-down versions of the same structure.
type SqueezeNet struct {
	Size    int // input height and width (224 for the published network)
	Div     int // channel divisor (1: full width)
	Classes int // outputs (1000 for ImageNet)
}

// fires are SqueezeNet 1.0's fire modules: squeeze, expand 1x1, expand 3x3 channels;
// a MaxPool follows fire4 and fire8.
var fires = [][3]int{{16, 64, 64}, {16, 64, 64}, {32, 128, 128}, {32, 128, 128}, {48, 192, 192}, {48, 192, 192}, {64, 256, 256}, {64, 256, 256}}

// Build writes the model (weights seeded by its name, He-style scaling, small biases)
// and a sample input.json of values in [0, 1). It also returns the number of
// multiply-accumulates of its convolutions.
func (s SqueezeNet) Build() (onnxBytes, inputJSON []byte, macs int64, err error) {
	if s.Size < 32 || s.Div < 1 || s.Classes < 1 {
		return nil, nil, 0, fmt.Errorf("onnxgen: SqueezeNet size %d (>= 32), div %d, classes %d", s.Size, s.Div, s.Classes)
	}
	name := fmt.Sprintf("squeezenet1_0_%d_div%d", s.Size, s.Div)
	b := Seeded(name)
	ch := func(c int) int { return max(c/s.Div, 1) }
	x, c, h := "input", 3, s.Size
	conv := func(in string, cin, cout, k, stride, pad int) string {
		w := b.Init("conv_w", HeScale(cin*k*k), int64(cout), int64(cin), int64(k), int64(k))
		bias := b.Init("conv_b", 0.05, int64(cout))
		out := (h+2*pad-k)/stride + 1
		macs += int64(cout) * int64(out*out) * int64(cin*k*k)
		y := b.Node("Conv", []string{in, w, bias}, Ints("kernel_shape", int64(k), int64(k)),
			Ints("strides", int64(stride), int64(stride)), Ints("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
		return b.Node("Relu", []string{y})
	}
	pool := func() {
		x = b.Node("MaxPool", []string{x}, Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Int("ceil_mode", 1))
		h = (h-3+1)/2 + 1 // ceil((h-3)/2) + 1
	}
	x = conv(x, c, ch(96), 7, 2, 0)
	c, h = ch(96), (h-7)/2+1
	pool()
	for i, f := range fires {
		sq := conv(x, c, ch(f[0]), 1, 1, 0)
		e1 := conv(sq, ch(f[0]), ch(f[1]), 1, 1, 0)
		e3 := conv(sq, ch(f[0]), ch(f[2]), 3, 1, 1)
		x, c = b.Node("Concat", []string{e1, e3}, Int("axis", 1)), ch(f[1])+ch(f[2])
		if i == 2 || i == 6 {
			pool()
		}
	}
	x = conv(x, c, s.Classes, 1, 1, 0)
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, Int("axis", 1))
	onnxBytes, err = b.Marshal([]*onnx.ValueInfoProto{ValueInfo("input", 1, 3, int64(s.Size), int64(s.Size))},
		[]*onnx.ValueInfoProto{ValueInfo(x, 1, int64(s.Classes))}, 7, 13)
	if err != nil {
		return nil, nil, 0, err
	}
	inputJSON, err = b.Input([]int{3 * s.Size * s.Size}, 0, 1)
	return onnxBytes, inputJSON, macs, err
}
