package quant

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

type opCase struct {
	name  string
	opset int64
	nodes []*onnx.NodeProto
	inits []*onnx.TensorProto
	ins   [][]int64 // shapes of the runtime inputs x0, x1...
	outs  []string
	sd    float64 // input standard deviation (default 1.5)
	// grid rounds inputs to multiples of 2^-6, exact at the test scale, so that values
	// that quantize equal are equal (comparisons then agree with the float reference).
	grid bool
}

func unary(op string, attrs ...*onnx.AttributeProto) []*onnx.NodeProto {
	return []*onnx.NodeProto{node(op, []string{"x0"}, []string{"y"}, attrs...)}
}

func (c opCase) graph() *onnx.GraphProto {
	g := &onnx.GraphProto{Node: c.nodes, Initializer: c.inits}
	for i, s := range c.ins {
		g.Input = append(g.Input, floatInfo("x"+string(rune('0'+i)), s...))
	}
	outs := c.outs
	if outs == nil {
		outs = []string{"y"}
	}
	for _, o := range outs {
		g.Output = append(g.Output, floatInfo(o))
	}
	return g
}

var opCases = []opCase{
	{name: "Tanh", nodes: unary("Tanh"), ins: [][]int64{{3, 4}}},
	{name: "Erf", nodes: unary("Erf"), ins: [][]int64{{3, 4}}},
	{name: "Exp", nodes: unary("Exp"), ins: [][]int64{{3, 4}}},
	{name: "Softplus", nodes: unary("Softplus"), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "HardSigmoid", nodes: unary("HardSigmoid", floatAttr("alpha", 0.3), floatAttr("beta", 0.4)), ins: [][]int64{{3, 4}}, sd: 3},
	{name: "Gelu", opset: 20, nodes: unary("Gelu"), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "HardSwish", opset: 14, nodes: unary("HardSwish"), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "Elu", nodes: unary("Elu", floatAttr("alpha", 2)), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "Selu", nodes: unary("Selu"), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "ThresholdedRelu", nodes: unary("ThresholdedRelu", floatAttr("alpha", 0.7)), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "Shrink", nodes: unary("Shrink", floatAttr("lambd", 1.5), floatAttr("bias", 1.5)), ins: [][]int64{{3, 4}}, sd: 6},
	{name: "Sign", nodes: unary("Sign"), ins: [][]int64{{3, 4}}},
	{name: "Sqrt", nodes: []*onnx.NodeProto{node("Abs", []string{"x0"}, []string{"a"}), node("Sqrt", []string{"a"}, []string{"y"})}, ins: [][]int64{{3, 4}}},
	{name: "Softsign", nodes: unary("Softsign"), ins: [][]int64{{3, 4}}, sd: 20},
	{name: "Neg", nodes: unary("Neg"), ins: [][]int64{{3, 4}}},
	{name: "Abs", nodes: unary("Abs"), ins: [][]int64{{3, 4}}},
	{name: "LeakyRelu", nodes: unary("LeakyRelu", floatAttr("alpha", 0.1)), ins: [][]int64{{3, 4}}, sd: 20},
	{name: "PRelu runtime slope", nodes: []*onnx.NodeProto{node("PRelu", []string{"x0", "x1"}, []string{"y"})}, ins: [][]int64{{2, 3, 4}, {4}}},
	{name: "PRelu constant slope", nodes: []*onnx.NodeProto{node("PRelu", []string{"x0", "s"}, []string{"y"})}, ins: [][]int64{{2, 3}},
		inits: []*onnx.TensorProto{floatInit("s", []int64{3}, 0.25, -0.5, 2)}},
	{name: "Clip opset 11", opset: 11, nodes: []*onnx.NodeProto{node("Clip", []string{"x0", "lo", "hi"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("lo", nil, -1), floatInit("hi", nil, 0.5)}},
	{name: "Clip opset 11 min only", opset: 11, nodes: []*onnx.NodeProto{node("Clip", []string{"x0", "lo"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("lo", nil, -0.2)}},
	{name: "Clip bounds beyond the input range", opset: 11, nodes: []*onnx.NodeProto{node("Relu", []string{"x0"}, []string{"r"}), node("Sigmoid", []string{"r"}, []string{"s"}), node("Clip", []string{"s", "lo", "hi"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("lo", nil, 3), floatInit("hi", nil, 5)}},
	{name: "Clip opset 6", opset: 6, nodes: unary("Clip", floatAttr("min", -0.5), floatAttr("max", 1)), ins: [][]int64{{3, 4}}},
	{name: "Max", nodes: []*onnx.NodeProto{node("Max", []string{"x0", "x1", "x2"}, []string{"y"})}, ins: [][]int64{{2, 3}, {3}, {2, 1}}},
	{name: "Min", nodes: []*onnx.NodeProto{node("Min", []string{"x0", "x1"}, []string{"y"})}, ins: [][]int64{{2, 3}, {2, 3}}},
	{name: "Sum", nodes: []*onnx.NodeProto{node("Sum", []string{"x0", "x1", "x2"}, []string{"y"})}, ins: [][]int64{{2, 3}, {3}, {2, 3}}},
	{name: "Mean", nodes: []*onnx.NodeProto{node("Mean", []string{"x0", "x1", "x2"}, []string{"y"})}, ins: [][]int64{{2, 3}, {3}, {2, 3}}},
	{name: "ReduceSum", nodes: unary("ReduceSum", intsAttr("axes", 1), intAttr("keepdims", 0)), opset: 11, ins: [][]int64{{3, 4, 5}}},
	{name: "ReduceSum opset 13", opset: 13, nodes: []*onnx.NodeProto{node("ReduceSum", []string{"x0", "a"}, []string{"y"})}, ins: [][]int64{{3, 4, 5}},
		inits: []*onnx.TensorProto{int64Init("a", []int64{2}, 0, -1)}},
	{name: "ReduceMean", nodes: unary("ReduceMean", intsAttr("axes", -2)), ins: [][]int64{{3, 4, 5}}},
	{name: "ReduceMax opset 18", opset: 18, nodes: []*onnx.NodeProto{node("ReduceMax", []string{"x0", "a"}, []string{"y"})}, ins: [][]int64{{3, 4, 5}},
		inits: []*onnx.TensorProto{int64Init("a", []int64{1}, 2)}},
	{name: "ReduceMin", nodes: unary("ReduceMin", intAttr("keepdims", 0)), ins: [][]int64{{3, 4, 5}}},
	{name: "ReduceSumSquare", nodes: unary("ReduceSumSquare", intsAttr("axes", 0)), ins: [][]int64{{3, 4, 5}}},
	{name: "ArgMax", grid: true, nodes: unary("ArgMax", intAttr("axis", 1)), ins: [][]int64{{3, 4, 5}}},
	{name: "ArgMax last", grid: true, opset: 13, nodes: unary("ArgMax", intAttr("axis", -1), intAttr("select_last_index", 1), intAttr("keepdims", 0)), ins: [][]int64{{3, 4, 5}}},
	{name: "ArgMin", grid: true, nodes: unary("ArgMin", intAttr("axis", 2)), ins: [][]int64{{3, 4, 5}}},
	{name: "Hardmax opset 11", grid: true, nodes: unary("Hardmax", intAttr("axis", 1)), ins: [][]int64{{3, 4, 5}}},
	{name: "Hardmax opset 13", grid: true, opset: 13, nodes: unary("Hardmax", intAttr("axis", 1)), ins: [][]int64{{3, 4, 5}}},
	{name: "LogSoftmax", nodes: unary("LogSoftmax"), ins: [][]int64{{3, 4, 5}}},
	{name: "LogSoftmax opset 13", opset: 13, nodes: unary("LogSoftmax", intAttr("axis", 0)), ins: [][]int64{{3, 4, 5}}, sd: 10},
	{name: "LogSoftmax long rows", nodes: unary("LogSoftmax", intAttr("axis", 0)), ins: [][]int64{{3, 40, 50}}},
	{name: "Split", nodes: []*onnx.NodeProto{node("Split", []string{"x0"}, []string{"a", "b"}, intAttr("axis", 1), intsAttr("split", 1, 3))}, ins: [][]int64{{2, 4}}, outs: []string{"a", "b"}},
	{name: "Expand", nodes: []*onnx.NodeProto{node("Expand", []string{"x0", "s"}, []string{"y"})}, ins: [][]int64{{3, 1}},
		inits: []*onnx.TensorProto{int64Init("s", []int64{3}, 2, 3, 4)}},
	{name: "PRelu per-channel slope [C] (exporters' form)", opset: 13, nodes: []*onnx.NodeProto{node("PRelu", []string{"x0", "s"}, []string{"y"})}, ins: [][]int64{{2, 3, 4, 5}},
		inits: []*onnx.TensorProto{floatInit("s", []int64{3}, 0.25, -0.5, 2)}},
	{name: "Conv 3-D (NCDHW)", opset: 13, nodes: []*onnx.NodeProto{node("Conv", []string{"x0", "w", "b"}, []string{"y"}, intsAttr("kernel_shape", 2, 3, 2),
		intsAttr("strides", 1, 2, 1), intsAttr("pads", 1, 0, 1, 0, 1, 0), intsAttr("dilations", 2, 1, 1))}, ins: [][]int64{{1, 2, 4, 5, 4}},
		inits: []*onnx.TensorProto{floatInit("w", []int64{3, 2, 2, 3, 2}, randFloats(rand.New(rand.NewSource(3)), 72, 0.3)...), floatInit("b", []int64{3}, 0.1, -0.2, 0.3)}},
	{name: "MaxPool 3-D (NCDHW)", opset: 13, nodes: unary("MaxPool", intsAttr("kernel_shape", 2, 2, 3), intsAttr("strides", 2, 1, 2), intsAttr("pads", 1, 0, 1, 0, 1, 1)),
		ins: [][]int64{{1, 2, 4, 5, 6}}},
	{name: "AveragePool 3-D (NCDHW)", opset: 13, nodes: unary("AveragePool", intsAttr("kernel_shape", 3, 2, 2), intsAttr("strides", 1, 2, 2), intsAttr("pads", 1, 1, 0, 1, 0, 1), intAttr("count_include_pad", 1)),
		ins: [][]int64{{1, 2, 4, 5, 6}}},
	{name: "Pow 2", opset: 13, nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("e", nil, 2)}},
	{name: "Pow 3", opset: 13, nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("e", []int64{1}, 3)}},
	{name: "Pow 7", opset: 13, nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{3, 4}}, sd: 0.8,
		inits: []*onnx.TensorProto{floatInit("e", nil, 7)}},
	{name: "Pow 0.5", opset: 13, nodes: []*onnx.NodeProto{node("Abs", []string{"x0"}, []string{"a"}), node("Pow", []string{"a", "e"}, []string{"y"})}, ins: [][]int64{{3, 4}},
		inits: []*onnx.TensorProto{floatInit("e", nil, 0.5)}},
	{name: "Pow per-element exponents, broadcast", opset: 13, nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{2, 1}},
		inits: []*onnx.TensorProto{floatInit("e", []int64{4}, 1, 2, 3, 2)}},
	{name: "LayerNormalization (opset 17)", opset: 17, nodes: []*onnx.NodeProto{node("LayerNormalization", []string{"x0", "g", "b"}, []string{"y"})}, ins: [][]int64{{2, 3, 8}},
		inits: []*onnx.TensorProto{floatInit("g", []int64{8}, randFloats(rand.New(rand.NewSource(4)), 8, 1)...), floatInit("b", []int64{8}, randFloats(rand.New(rand.NewSource(5)), 8, 1)...)}},
	{name: "LayerNormalization axis 1, no bias (opset 18)", opset: 18, nodes: []*onnx.NodeProto{node("LayerNormalization", []string{"x0", "g"}, []string{"y"}, intAttr("axis", 1), floatAttr("epsilon", 1e-3))}, ins: [][]int64{{2, 3, 4}},
		inits: []*onnx.TensorProto{floatInit("g", []int64{3, 4}, randFloats(rand.New(rand.NewSource(6)), 12, 1)...)}},
	{name: "Softmax masked by Where with float32's lowest", opset: 13, nodes: []*onnx.NodeProto{node("Where", []string{"m", "x0", "inf"}, []string{"s"}), node("Softmax", []string{"s"}, []string{"y"}, intAttr("axis", -1))},
		ins: [][]int64{{2, 4, 4}}, sd: 3, inits: []*onnx.TensorProto{{Name: "m", Dims: []int64{4, 4}, DataType: int32(onnx.TensorProto_BOOL), Int32Data: []int32{1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1}},
			floatInit("inf", nil, -math.MaxFloat32)}},
	{name: "Softmax masked by adding -1e9", opset: 13, nodes: []*onnx.NodeProto{node("Add", []string{"x0", "mask"}, []string{"s"}), node("Softmax", []string{"s"}, []string{"y"}, intAttr("axis", -1))},
		ins: [][]int64{{2, 3, 4}}, sd: 3, inits: []*onnx.TensorProto{floatInit("mask", []int64{1, 1, 4}, 0, 0, -1e9, -1e9)}},
	{name: "Mish", opset: 18, nodes: unary("Mish"), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "Celu", opset: 12, nodes: unary("Celu", floatAttr("alpha", 1.5)), ins: [][]int64{{3, 4}}, sd: 5},
	{name: "Tile", opset: 13, nodes: []*onnx.NodeProto{node("Tile", []string{"x0", "r"}, []string{"y"})}, ins: [][]int64{{2, 3}},
		inits: []*onnx.TensorProto{int64Init("r", []int64{2}, 3, 2)}},
	{name: "Trilu", opset: 14, nodes: []*onnx.NodeProto{node("Trilu", []string{"x0", "k"}, []string{"y"}, intAttr("upper", 0))}, ins: [][]int64{{2, 4, 4}},
		inits: []*onnx.TensorProto{int64Init("k", nil, 1)}},
	{name: "DepthToSpace CRD", opset: 13, nodes: unary("DepthToSpace", intAttr("blocksize", 2), stringAttr("mode", "CRD")), ins: [][]int64{{1, 8, 2, 3}}},
	{name: "SpaceToDepth", opset: 13, nodes: unary("SpaceToDepth", intAttr("blocksize", 2)), ins: [][]int64{{1, 2, 4, 6}}},
	{name: "GroupNormalization (opset 18, per-group scale)", opset: 18, nodes: []*onnx.NodeProto{node("GroupNormalization", []string{"x0", "g", "b"}, []string{"y"}, intAttr("num_groups", 2))},
		ins: [][]int64{{2, 4, 3, 3}}, inits: []*onnx.TensorProto{floatInit("g", []int64{2}, 0.5, 1.5), floatInit("b", []int64{2}, 0.1, -0.2)}},
	{name: "GroupNormalization (opset 21, per-channel scale)", opset: 21, nodes: []*onnx.NodeProto{node("GroupNormalization", []string{"x0", "g", "b"}, []string{"y"}, intAttr("num_groups", 3))},
		ins: [][]int64{{1, 6, 5}}, inits: []*onnx.TensorProto{floatInit("g", []int64{6}, 0.5, 1.5, 1, 0.7, 1.2, 0.9), floatInit("b", []int64{6}, 0.1, -0.2, 0, 0.3, 0.2, -0.1)}},
	{name: "MeanVarianceNormalization", opset: 13, nodes: unary("MeanVarianceNormalization"), ins: [][]int64{{2, 3, 2, 4}}},
	{name: "ReduceL1", opset: 13, nodes: unary("ReduceL1", intsAttr("axes", 1)), ins: [][]int64{{3, 4, 5}}},
	{name: "ReduceL2 opset 18", opset: 18, nodes: []*onnx.NodeProto{node("ReduceL2", []string{"x0", "a"}, []string{"y"}, intAttr("keepdims", 0))}, ins: [][]int64{{3, 4, 5}}, sd: 0.8,
		inits: []*onnx.TensorProto{int64Init("a", []int64{1}, -1)}},
	{name: "Size and CastLike", opset: 15, nodes: []*onnx.NodeProto{node("Size", []string{"x0"}, []string{"n"}), node("CastLike", []string{"n", "x0"}, []string{"nf"}),
		node("Mul", []string{"x0", "nf"}, []string{"y"})}, ins: [][]int64{{2, 3}}},
	{name: "Pad reflect", opset: 13, nodes: []*onnx.NodeProto{node("Pad", []string{"x0", "p"}, []string{"y"}, stringAttr("mode", "reflect"))}, ins: [][]int64{{1, 2, 4, 5}},
		inits: []*onnx.TensorProto{int64Init("p", []int64{8}, 0, 0, 2, 1, 0, 0, 1, 3)}},
	{name: "Pad edge", opset: 13, nodes: []*onnx.NodeProto{node("Pad", []string{"x0", "p"}, []string{"y"}, stringAttr("mode", "edge"))}, ins: [][]int64{{1, 2, 5}},
		inits: []*onnx.TensorProto{int64Init("p", []int64{6}, 0, 0, 3, 0, 0, 2)}},
}

// TestOpsMatchFloat compares the integer program of every lowered op with the float
// reference on random data, within the circuit conformance tolerance, and checks that
// no value exceeds its static bound.
func TestOpsMatchFloat(t *testing.T) {
	for _, c := range opCases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewSource(int64(len(c.name))))
			opset := c.opset
			if opset == 0 {
				opset = 11
			}
			g := load(t, opset, c.graph())
			sd := c.sd
			if sd == 0 {
				sd = 1.5
			}
			for range 20 {
				in := randomInputs(r, g, sd)
				if c.grid {
					for _, x := range in {
						for i, v := range x.Data {
							x.Data[i] = math.Round(math.Ldexp(v, 6)) / 64
						}
					}
				}
				checkClose(t, g, testConfig(), in, 16, 8)
			}
		})
	}
}

// TestArgMaxTies checks ONNX's tie rule: the first maximum (the last with
// select_last_index), on rows with repeated values.
func TestArgMaxTies(t *testing.T) {
	for _, last := range []int64{0, 1} {
		g := load(t, 13, opCase{nodes: unary("ArgMax", intAttr("axis", 1), intAttr("select_last_index", last)), ins: [][]int64{{4, 6}}}.graph())
		r := rand.New(rand.NewSource(3))
		for range 50 {
			in := randomInputs(r, g, 1)
			for i := range in[0].Data {
				in[0].Data[i] = float64(r.Intn(3)) // many ties
			}
			checkClose(t, g, testConfig(), in, 0, 0)
		}
	}
}

// TestOutOfRange checks that values leaving the fixed-point range are reported as
// ErrOutOfRange naming the layer.
func TestOutOfRange(t *testing.T) {
	cfg := testConfig()
	cfg.Bits = 14 // |v| < 8 at scale 10
	cases := []struct {
		name  string
		c     opCase
		layer string
	}{
		{"ReduceSum", opCase{nodes: unary("ReduceSum", intAttr("keepdims", 0)), ins: [][]int64{{10}}}, "ReduceSum_0"},
		{"LeakyRelu", opCase{nodes: unary("LeakyRelu", floatAttr("alpha", 3)), ins: [][]int64{{10}}}, "LeakyRelu_0"},
		{"ReduceSumSquare", opCase{nodes: unary("ReduceSumSquare"), ins: [][]int64{{10}}}, "ReduceSumSquare_0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := load(t, 11, tc.c.graph())
			p, err := Lower(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := randomInputs(rand.New(rand.NewSource(1)), g, 1)
			for i := range in[0].Data {
				in[0].Data[i] = -7
			}
			_, _, err = evalBoth(t, g, p, in)
			wantOutOfRange(t, err, tc.layer)
		})
	}
}

// TestPowRefused checks that Pow exponents without a lowering are refused naming the
// operator, the node and the exponent.
func TestPowRefused(t *testing.T) {
	cases := []struct {
		name  string
		c     opCase
		cause string
	}{
		{"runtime exponent", opCase{nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "x1"}, []string{"y"})}, ins: [][]int64{{3}, {3}}}, "runtime"},
		{"negative exponent", opCase{nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{3}},
			inits: []*onnx.TensorProto{floatInit("e", nil, -1)}}, "exponent -1"},
		{"real exponent", opCase{nodes: []*onnx.NodeProto{node("Pow", []string{"x0", "e"}, []string{"y"})}, ins: [][]int64{{3}},
			inits: []*onnx.TensorProto{floatInit("e", []int64{3}, 2, 1.5, 3)}}, "exponent 1.5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Lower(load(t, 13, tc.c.graph()), testConfig())
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `Pow node "Pow_0"`) || !strings.Contains(err.Error(), tc.cause) {
				t.Fatalf("got %v, want an unsupported error naming Pow_0 and %q", err, tc.cause)
			}
		})
	}
}

// TestUnsupportedNamesNode checks that ops without a circuit lowering are rejected with
// an error naming the operator and the node.
func TestUnsupportedNamesNode(t *testing.T) {
	for _, op := range []string{"Reciprocal"} {
		g := load(t, 13, opCase{nodes: unary(op), ins: [][]int64{{3}}}.graph())
		_, err := Lower(g, testConfig())
		if err == nil || !strings.Contains(err.Error(), op+" node ") {
			t.Errorf("%s: got %v, want an unsupported error naming the node", op, err)
		}
	}
}
