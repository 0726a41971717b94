package onnxgen

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// MNISTCNN is the bundled example model (examples/mnist_cnn) and the benchmark's
// mnist_cnn: a CNN of MNIST's shape, 1x28x28 -> Conv 4@5x5/2, Relu, Conv 8@5x5/2, Relu,
// Gemm 128-10. Its weights are pseudo-random, not trained.
var MNISTCNN = Stack{Convs: [][4]int{{4, 5, 2, 0}, {8, 5, 2, 0}}, Dense: []int{10}}

// Example is one example model: ONNX bytes and a sample input.json.
type Example struct {
	Name  string
	Ops   string // the operators it exercises
	ONNX  []byte
	Input []byte
}

// graphFunc builds an example's graph and says how to encode it and draw its input.
type graphFunc func(b *Builder) exampleGraph

type exampleGraph struct {
	in, out          []*onnx.ValueInfoProto
	irVersion, opset int64
	lo, hi           float64 // range of the sample input's values
}

// pytorch mirrors the encoding of a PyTorch export (IR 5, opset 10, symbolic batch
// dimension) of a one-input, one-output graph.
func pytorch(in, out *onnx.ValueInfoProto) exampleGraph {
	return exampleGraph{in: []*onnx.ValueInfoProto{in}, out: []*onnx.ValueInfoProto{out}, irVersion: 5, opset: 10, lo: -1, hi: 1}
}

// examples are the small models the tests of model, quant, circuits, prover and the CLI
// run on (testdata/models): one or a few layers each, covering the ONNX features
// exporters write (symbolic and unnamed dimensions, Constant nodes, int64 shape
// initializers, Cast, opset 10 attribute forms).
var examples = map[string]struct {
	ops   string
	build graphFunc
}{
	"1l_relu": {"Relu", func(b *Builder) exampleGraph {
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(b.Node("Relu", []string{"input"}), Batch, 3))
	}},
	"1l_sigmoid": {"Sigmoid", func(b *Builder) exampleGraph {
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(b.Node("Sigmoid", []string{"input"}), Batch, 3))
	}},
	"1l_softmax": {"Softmax", func(b *Builder) exampleGraph {
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(b.Node("Softmax", []string{"input"}, Int("axis", 1)), Batch, 3))
	}},
	"1l_flatten": {"Flatten", func(b *Builder) exampleGraph {
		return pytorch(ValueInfo("input", Batch, 3, 2, 3), ValueInfo(b.Node("Flatten", []string{"input"}, Int("axis", 1)), Batch, 18))
	}},
	"1l_reshape": {"Constant, Reshape", func(b *Builder) exampleGraph {
		shape := b.Constant([]int64{2}, -1, 6)
		out := ValueInfo(b.Node("Reshape", []string{"input", shape}), Batch, Unnamed)
		out.Type.GetTensorType().Shape.Dim[1].Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "reshape_dim_1"}
		return pytorch(ValueInfo("input", Batch, 1, 3, 2), out)
	}},
	"1l_linear": {"Gemm", func(b *Builder) exampleGraph {
		x := b.Node("Gemm", []string{"input", b.Init("weight", 1, 1, 1), b.Init("bias", 1, 1)}, Float("alpha", 1), Float("beta", 1), Int("transB", 1))
		return pytorch(ValueInfo("input", Batch, 1), ValueInfo(x, Batch, 1))
	}},
	"1l_mlp": {"Gemm, Relu", func(b *Builder) exampleGraph {
		x := b.Node("Gemm", []string{"input", b.Init("dense_w", HeScale(3), 4, 3), b.Init("dense_b", 0.5, 4)}, Int("transB", 1))
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(b.Node("Relu", []string{x}), Batch, 4))
	}},
	"2l_relu_fc": {"Gemm, Relu", func(b *Builder) exampleGraph {
		x := b.Node("Gemm", []string{"input", b.Init("fc_w", HeScale(3), 1, 3), b.Init("fc_b", 0.5, 1)}, Int("transB", 1))
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(b.Node("Relu", []string{x}), Batch, 1))
	}},
	"2l_relu_sigmoid_small": {"Relu, Sigmoid", func(b *Builder) exampleGraph {
		x := b.Node("Sigmoid", []string{b.Node("Relu", []string{"input"})})
		return pytorch(ValueInfo("input", Batch, 3), ValueInfo(x, Batch, 3))
	}},
	"2l_matmul_relu": {"Cast, MatMul, Add, Relu, Reshape", func(b *Builder) exampleGraph {
		// The layout of scikit-learn's MLP exports: MatMul + Add layers, a Cast on entry
		// and a Reshape by an int64 initializer on exit, an unnamed batch dimension.
		x := b.Node("Cast", []string{"input"}, Int("to", int64(onnx.TensorProto_FLOAT)))
		x = b.Node("Add", []string{b.Node("MatMul", []string{x, b.Init("coef", HeScale(3), 3, 3)}), b.Init("intercept", 0.5, 1, 3)})
		x = b.Node("Relu", []string{x})
		x = b.Node("Add", []string{b.Node("MatMul", []string{x, b.Init("coef", HeScale(3), 3, 2)}), b.Init("intercept", 0.5, 1, 2)})
		x = b.Node("Reshape", []string{x, b.Int64s("shape", []int64{2}, -1, 2)})
		return exampleGraph{in: []*onnx.ValueInfoProto{ValueInfo("input", Unnamed, 3)}, out: []*onnx.ValueInfoProto{ValueInfo(x, Unnamed, 2)},
			irVersion: 8, opset: 15, lo: -1, hi: 1}
	}},
	"1l_max_pool": {"MaxPool", func(b *Builder) exampleGraph {
		x := b.Node("MaxPool", []string{"input"}, Int("ceil_mode", 0), Ints("kernel_shape", 2, 2), Ints("pads", 1, 1, 1, 1), Ints("strides", 1, 1))
		g := pytorch(ValueInfo("input", Batch, 3, 2, 2), ValueInfo(x, Batch, 3, 3, 3))
		g.irVersion, g.opset = 7, 14
		return g
	}},
	"1l_average": {"Pad, AveragePool, Constant, Gather", func(b *Builder) exampleGraph {
		x := b.Node("Pad", []string{"input"}, Ints("pads", 0, 0, 1, 1, 0, 0, 1, 1), Float("value", 0))
		x = b.Node("AveragePool", []string{x}, Ints("kernel_shape", 2, 2), Ints("pads", 0, 0, 0, 0), Ints("strides", 1, 1))
		x = b.Node("Gather", []string{x, b.Constant(nil, 0)}, Int("axis", 0))
		return pytorch(ValueInfo("input", Batch, 3, 2, 2), ValueInfo(x, 3, 3, 3))
	}},
	"1l_conv": {"Conv", func(b *Builder) exampleGraph {
		x := b.Node("Conv", []string{"input", b.Init("conv_w", HeScale(3), 1, 3, 1, 1), b.Init("conv_b", 0.5, 1)},
			Ints("dilations", 1, 1), Int("group", 1), Ints("kernel_shape", 1, 1), Ints("pads", 1, 1, 1, 1), Ints("strides", 1, 1))
		return pytorch(ValueInfo("input", Batch, 3, 1, 1), ValueInfo(x, Batch, 1, 3, 3))
	}},
	"1l_batch_norm": {"BatchNormalization", func(b *Builder) exampleGraph {
		x := b.Node("BatchNormalization", []string{"input", b.Uniform("gamma", 0.5, 1.5, 3), b.Init("beta", 0.5, 3),
			b.Init("mean", 0.5, 3), b.Uniform("var", 0.5, 1.5, 3)}, Float("epsilon", 1e-5), Float("momentum", 0.9))
		return pytorch(ValueInfo("input", Batch, 3, 2, 2), ValueInfo(x, Batch, 3, 2, 2))
	}},
	"3l_relu_conv_fc": {"Constant, Reshape, Conv, Relu, Gemm (28x28 CNN)", func(b *Builder) exampleGraph {
		x := b.Node("Reshape", []string{"input", b.Constant([]int64{4}, -1, 1, 28, 28)})
		conv := func(x string, c, m int64) string {
			w, bias := b.Init("conv_w", HeScale(int(c)*25), m, c, 5, 5), b.Init("conv_b", 0.1, m)
			return b.Node("Relu", []string{b.Node("Conv", []string{x, w, bias}, Ints("dilations", 1, 1), Int("group", 1),
				Ints("kernel_shape", 5, 5), Ints("pads", 0, 0, 0, 0), Ints("strides", 2, 2))})
		}
		x = conv(conv(x, 1, 4), 4, 4)
		x = b.Node("Reshape", []string{x, b.Constant([]int64{2}, -1, 64)})
		x = b.Node("Gemm", []string{x, b.Init("fc_w", HeScale(64), 10, 64), b.Init("fc_b", 0.1, 10)}, Int("transB", 1))
		g := pytorch(ValueInfo("input", Batch, 1, 28, 28), ValueInfo(x, Batch, 10))
		g.lo = 0
		return g
	}},
}

// ExampleNames lists the example models of testdata/models, sorted.
func ExampleNames() []string {
	names := make([]string, 0, len(examples))
	for n := range examples {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BuildExample writes the example model called name and its sample input.
func BuildExample(name string) (*Example, error) {
	e, ok := examples[name]
	if !ok {
		return nil, fmt.Errorf("onnxgen: no example model %q", name)
	}
	b := Seeded(name)
	g := e.build(b)
	onnxBytes, err := b.Marshal(g.in, g.out, g.irVersion, g.opset)
	if err != nil {
		return nil, err
	}
	var sizes []int
	for _, in := range g.in {
		n := 1
		for _, d := range in.GetType().GetTensorType().GetShape().GetDim() {
			if v := d.GetDimValue(); v > 0 {
				n *= int(v)
			}
		}
		sizes = append(sizes, n)
	}
	input, err := b.Input(sizes, g.lo, g.hi)
	if err != nil {
		return nil, err
	}
	return &Example{Name: name, Ops: e.ops, ONNX: onnxBytes, Input: input}, nil
}

// MNISTSamples draws n more inputs for MNISTCNN (pixels in [0, 1)) as a JSON array of
// input.json objects: the calibration data of `zkml calibrate --data`.
func MNISTSamples(n int) ([]byte, error) {
	b := Seeded("mnist_cnn samples")
	samples := make([]json.RawMessage, n)
	for i := range samples {
		in, err := b.Input([]int{28 * 28}, 0, 1)
		if err != nil {
			return nil, err
		}
		samples[i] = in
	}
	return json.Marshal(samples)
}
