package onnxgen

import (
	"fmt"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Arch is a synthetic image-classification network of a published architecture:
// SqueezeNet, ResNet50, VGG16 and AlexNet. Build writes the model (seeded by its name:
// the same parameters give the same bytes) and a sample input.json of values in
// [0, 1), and returns the multiply-accumulates of its convolutions and fully connected
// layers.
type Arch interface {
	Name() string
	Build() (onnxBytes, inputJSON []byte, macs int64, err error)
}

// Architectures lists the names ParseArch accepts.
var Architectures = []string{"squeezenet", "resnet50", "vgg16", "alexnet"}

// ParseArch returns the architecture called name (one of Architectures) for a size x
// size input, channel counts divided by div and classes outputs. fill selects the
// FillWeights form of the architectures that have it (all but SqueezeNet, whose
// published weights fit any file limit).
func ParseArch(name string, size, div, classes int, fill bool) (Arch, error) {
	switch strings.ToLower(name) {
	case "squeezenet", "squeezenet1_0", "squeezenet1.0":
		return SqueezeNet{Size: size, Div: div, Classes: classes}, nil
	case "resnet50", "resnet-50", "resnet50v1":
		return ResNet50{Size: size, Div: div, Classes: classes, FillWeights: fill}, nil
	case "vgg16", "vgg-16":
		return VGG16{Size: size, Div: div, Classes: classes, FillWeights: fill}, nil
	case "alexnet", "bvlc_alexnet":
		return AlexNet{Size: size, Div: div, Classes: classes, FillWeights: fill}, nil
	}
	return nil, fmt.Errorf("onnxgen: unknown architecture %q (want one of %s)", name, strings.Join(Architectures, ", "))
}

// Name is "squeezenet1_0_SIZE_divDIV".
func (s SqueezeNet) Name() string { return fmt.Sprintf("squeezenet1_0_%d_div%d", s.Size, s.Div) }

// netBuilder tracks an NCHW activation while a network is written, and counts the
// multiply-accumulates of its linear layers.
type netBuilder struct {
	*Builder
	fill bool   // weights as ConstantOfShape fills (FillWeights)
	x    string // current activation
	c, h int    // its channels and height (= width)
	macs int64
}

// weight adds a weight of the given shape, uniform in [-scale, scale): an initializer,
// or with fill a ConstantOfShape node of value scale/2 (the mean magnitude).
func (b *netBuilder) weight(prefix string, scale float64, dims ...int64) string {
	if !b.fill {
		return b.Init(prefix, scale, dims...)
	}
	shape := b.Int64s(prefix+"_shape", []int64{int64(len(dims))}, dims...)
	return b.Node("ConstantOfShape", []string{shape}, &onnx.AttributeProto{Name: "value", Type: onnx.AttributeProto_TENSOR,
		T: &onnx.TensorProto{Dims: []int64{1}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: []float32{float32(scale / 2)}}})
}

// conv appends Conv cout@k x k / stride, pad, group on the current activation (with a
// bias unless bn, where a BatchNormalization follows instead, as exporters of
// batch-normalized networks write them).
func (b *netBuilder) conv(cout, k, stride, pad, group int, bn bool) string {
	cin := b.c / group
	w := b.weight("conv_w", HeScale(cin*k*k), int64(cout), int64(cin), int64(k), int64(k))
	in := []string{b.x, w}
	if !bn {
		in = append(in, b.weight("conv_b", 0.05, int64(cout)))
	}
	out := (b.h+2*pad-k)/stride + 1
	b.macs += int64(cout) * int64(out*out) * int64(cin*k*k)
	attrs := []*onnx.AttributeProto{Ints("kernel_shape", int64(k), int64(k)), Ints("strides", int64(stride), int64(stride)),
		Ints("pads", int64(pad), int64(pad), int64(pad), int64(pad))}
	if group > 1 {
		attrs = append(attrs, Int("group", int64(group)))
	}
	y := b.Node("Conv", in, attrs...)
	if bn {
		c := int64(cout)
		y = b.Node("BatchNormalization", []string{y, b.Uniform("bn_scale", 0.5, 1.5, c), b.Init("bn_bias", 0.1, c),
			b.Init("bn_mean", 0.1, c), b.Uniform("bn_var", 0.5, 1.5, c)}, Float("epsilon", 1e-5))
	}
	b.x, b.c, b.h = y, cout, out
	return y
}

func (b *netBuilder) relu() { b.x = b.Node("Relu", []string{b.x}) }

// maxPool appends MaxPool k x k / stride with pad (ceil mode with ceil).
func (b *netBuilder) maxPool(k, stride, pad int, ceil bool) {
	attrs := []*onnx.AttributeProto{Ints("kernel_shape", int64(k), int64(k)), Ints("strides", int64(stride), int64(stride)),
		Ints("pads", int64(pad), int64(pad), int64(pad), int64(pad))}
	span := b.h + 2*pad - k
	out := span/stride + 1
	if ceil {
		attrs = append(attrs, Int("ceil_mode", 1))
		out = (span+stride-1)/stride + 1
		if (out-1)*stride >= b.h+pad { // ONNX: the last window must start inside the input or left pad
			out--
		}
	}
	b.x, b.h = b.Node("MaxPool", []string{b.x}, attrs...), out
}

// fc flattens the current activation (when it is still NCHW) and appends Gemm to n
// outputs (transB, bias), with a Relu unless last.
func (b *netBuilder) fc(n int, relu bool) {
	if b.h > 0 {
		b.x = b.Node("Flatten", []string{b.x}, Int("axis", 1))
		b.c, b.h = b.c*b.h*b.h, 0
	}
	w := b.weight("fc_w", HeScale(b.c), int64(n), int64(b.c))
	bias := b.weight("fc_b", 0.05, int64(n))
	b.macs += int64(n) * int64(b.c)
	b.x, b.c = b.Node("Gemm", []string{b.x, w, bias}, Int("transB", 1)), n
	if relu {
		b.relu()
	}
}

// finish writes the model and a sample input.
func (b *netBuilder) finish(size, classes int) ([]byte, []byte, int64, error) {
	onnxBytes, err := b.Marshal([]*onnx.ValueInfoProto{ValueInfo("input", 1, 3, int64(size), int64(size))},
		[]*onnx.ValueInfoProto{ValueInfo(b.x, 1, int64(classes))}, 7, 13)
	if err != nil {
		return nil, nil, 0, err
	}
	inputJSON, err := b.Input([]int{3 * size * size}, 0, 1)
	return onnxBytes, inputJSON, b.macs, err
}

func newNet(name string, fill bool) *netBuilder {
	if fill {
		name += "_fill"
	}
	return &netBuilder{Builder: Seeded(name), fill: fill, x: "input", c: 3}
}

// ResNet50 describes a ResNet-50 v1 (He et al. 2015; the ONNX model zoo's resnet50-v1,
// exported from MXNet): Conv 64@7x7/2 -> BatchNormalization -> Relu -> MaxPool 3x3/2,
// then 3, 4, 6 and 3 bottleneck blocks (Conv 1x1 -> BN -> Relu -> Conv 3x3 -> BN ->
// Relu -> Conv 1x1 (4x the width) -> BN, plus the shortcut (identity, or Conv 1x1 ->
// BN where the shape changes), Add, Relu) of widths 64, 128, 256 and 512, the first
// block of each stage but the first striding by 2 in its first 1x1 Conv (v1; v1.5
// strides in the 3x3), then GlobalAveragePool, Flatten and Gemm to the classes. Every
// Conv has no bias and is followed by a BatchNormalization, as the zoo's export writes
// them (zkml folds each into its Conv). Div divides every channel count; at Size 224,
// Div 1: 25.6 M params, 3.87 G MACs.
type ResNet50 struct {
	Size, Div, Classes int
	// FillWeights writes every weight as a ConstantOfShape of He-scale magnitude
	// instead of random values (as ONNX's own full-size test models store large
	// weights): the same graph and shapes in a file of a few kilobytes, for estimates
	// of networks whose weights exceed the model file limit (model.MaxModelBytes).
	// Loading it still materializes the weights (8 bytes a parameter).
	FillWeights bool
}

// Name is "resnet50_v1_SIZE_divDIV".
func (r ResNet50) Name() string { return fmt.Sprintf("resnet50_v1_%d_div%d", r.Size, r.Div) }

// Build writes the model; see Arch.
func (r ResNet50) Build() ([]byte, []byte, int64, error) {
	if r.Size < 32 || r.Div < 1 || r.Classes < 1 {
		return nil, nil, 0, fmt.Errorf("onnxgen: ResNet-50 size %d (>= 32), div %d, classes %d", r.Size, r.Div, r.Classes)
	}
	b := newNet(r.Name(), r.FillWeights)
	ch := func(c int) int { return max(c/r.Div, 1) }
	b.h = r.Size
	b.conv(ch(64), 7, 2, 3, 1, true)
	b.relu()
	b.maxPool(3, 2, 1, false)
	for stage, blocks := range []int{3, 4, 6, 3} {
		width := 64 << stage
		for i := range blocks {
			stride := 1
			if i == 0 && stage > 0 {
				stride = 2
			}
			in, cin, hin := b.x, b.c, b.h
			b.conv(ch(width), 1, stride, 0, 1, true)
			b.relu()
			b.conv(ch(width), 3, 1, 1, 1, true)
			b.relu()
			y := b.conv(ch(4*width), 1, 1, 0, 1, true)
			short := in
			if i == 0 {
				b.x, b.c, b.h = in, cin, hin
				short = b.conv(ch(4*width), 1, stride, 0, 1, true)
			}
			b.x = b.Node("Add", []string{y, short})
			b.relu()
		}
	}
	b.x = b.Node("GlobalAveragePool", []string{b.x})
	b.h = 1
	b.fc(r.Classes, false)
	return b.finish(r.Size, r.Classes)
}

// VGG16 describes a VGG-16 (Simonyan and Zisserman 2014, configuration D; the ONNX
// model zoo's vgg16, without its batch norm): 13 Conv 3x3 (pad 1) + Relu layers of
// 64, 64, 128, 128, 256 x3, 512 x3, 512 x3 channels in five stages, each closed by a
// MaxPool 2x2/2, then Flatten and fully connected 4096 -> Relu -> 4096 -> Relu ->
// classes (Dropout, an identity at inference, left out). Size must be a multiple of 32
// (torchvision's adaptive pooling to 7x7 is an identity at 224). Div divides every
// channel count and the hidden widths; at Size 224, Div 1: 138.4 M params, 15.47 G MACs.
type VGG16 struct {
	Size, Div, Classes int
	FillWeights        bool // see ResNet50.FillWeights
}

// Name is "vgg16_SIZE_divDIV".
func (v VGG16) Name() string { return fmt.Sprintf("vgg16_%d_div%d", v.Size, v.Div) }

// Build writes the model; see Arch.
func (v VGG16) Build() ([]byte, []byte, int64, error) {
	if v.Size < 32 || v.Size%32 != 0 || v.Div < 1 || v.Classes < 1 {
		return nil, nil, 0, fmt.Errorf("onnxgen: VGG-16 size %d (a multiple of 32), div %d, classes %d", v.Size, v.Div, v.Classes)
	}
	b := newNet(v.Name(), v.FillWeights)
	ch := func(c int) int { return max(c/v.Div, 1) }
	b.h = v.Size
	for _, stage := range [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}} {
		for _, c := range stage {
			b.conv(ch(c), 3, 1, 1, 1, false)
			b.relu()
		}
		b.maxPool(2, 2, 0, false)
	}
	b.fc(ch(4096), true)
	b.fc(ch(4096), true)
	b.fc(v.Classes, false)
	return b.finish(v.Size, v.Classes)
}

// AlexNet describes the BVLC AlexNet (Krizhevsky et al. 2012, as Caffe's bvlc_alexnet
// and the ONNX model zoo's bvlcalexnet export it): Conv 96@11x11/4 -> Relu -> LRN
// (size 5, alpha 1e-4, beta 0.75) -> MaxPool 3x3/2, Conv 256@5x5 (pad 2, 2 groups) ->
// Relu -> LRN -> MaxPool, Conv 384@3x3 -> Relu, Conv 384@3x3 (2 groups) -> Relu, Conv
// 256@3x3 (2 groups) -> Relu -> MaxPool, then fully connected 4096 -> Relu -> 4096 ->
// Relu -> classes (the zoo's final Softmax and the Dropouts left out). The pools round
// up (Caffe's rule, ceil_mode), so 224x224 gives the published 6x6x256 = 9216 inputs of
// the first fully connected layer. Div divides every channel count (kept even, for the
// groups) and the hidden widths; at Size 224, Div 1: 61.0 M params, 0.72 G MACs.
type AlexNet struct {
	Size, Div, Classes int
	FillWeights        bool // see ResNet50.FillWeights
}

// Name is "bvlc_alexnet_SIZE_divDIV".
func (a AlexNet) Name() string { return fmt.Sprintf("bvlc_alexnet_%d_div%d", a.Size, a.Div) }

// Build writes the model; see Arch.
func (a AlexNet) Build() ([]byte, []byte, int64, error) {
	if a.Size < 64 || a.Div < 1 || a.Classes < 1 {
		return nil, nil, 0, fmt.Errorf("onnxgen: AlexNet size %d (>= 64), div %d, classes %d", a.Size, a.Div, a.Classes)
	}
	b := newNet(a.Name(), a.FillWeights)
	ch := func(c int) int { return max(2, c/a.Div&^1) }
	lrn := func() {
		b.x = b.Node("LRN", []string{b.x}, Int("size", 5), Float("alpha", 1e-4), Float("beta", 0.75), Float("bias", 1))
	}
	b.h = a.Size
	b.conv(ch(96), 11, 4, 0, 1, false)
	b.relu()
	lrn()
	b.maxPool(3, 2, 0, true)
	b.conv(ch(256), 5, 1, 2, 2, false)
	b.relu()
	lrn()
	b.maxPool(3, 2, 0, true)
	b.conv(ch(384), 3, 1, 1, 1, false)
	b.relu()
	b.conv(ch(384), 3, 1, 1, 2, false)
	b.relu()
	b.conv(ch(256), 3, 1, 1, 2, false)
	b.relu()
	b.maxPool(3, 2, 0, true)
	b.fc(max(4096/a.Div, 1), true)
	b.fc(max(4096/a.Div, 1), true)
	b.fc(a.Classes, false)
	return b.finish(a.Size, a.Classes)
}
