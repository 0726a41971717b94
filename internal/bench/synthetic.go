// Package bench measures zkml end to end (compile, setup, prove, verify, sizes, memory)
// on synthetic and shared models, measures the MSM+FFT floor a Groth16 prover cannot go
// below, derives the project's per-gadget constraint budgets, and renders the results as
// a text table, CSV, JSON, a log-log SVG plot and BENCHMARKS.md.
package bench

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model/quant"
)

// Model is one benchmark model: ONNX bytes, a sample input in the input.json layout and
// the fixed-point settings it is compiled with.
type Model struct {
	Name   string
	Desc   string
	ONNX   []byte
	Input  []byte
	Config quant.Config
	// Source is "synthetic" or the directory of a shared model.
	Source string
}

// spec describes a synthetic model: a Conv stack (28x28 single-channel input) or an MLP,
// followed by dense layers.
type spec struct {
	desc string
	// convs: output channels, kernel, stride, pad per Conv layer (each followed by Relu).
	convs [][4]int
	// dense: widths of the Gemm layers after the input (or the flattened conv output);
	// every Gemm but the last is followed by Relu.
	dense []int
	// inDense is the MLP input width (used when convs is empty).
	inDense int
	// private weights: each multiply-accumulate is a constraint (ParamVis=private).
	private bool
}

// synthetic lists the built-in models. The size families are tuned (measured with
// circuits.Compile, Groth16/R1CS) to land just under 2^16, 2^18 and 2^20 constraints so
// each fills its FFT domain.
var synthetic = map[string]spec{
	"mnist_mlp": {desc: "MLP 784-56-10 (Gemm, Relu, Gemm), fixed weights", inDense: 784, dense: []int{56, 10}},
	"mnist_cnn": {desc: "CNN 1x28x28: Conv 4@5x5/2, Relu, Conv 8@5x5/2, Relu, Gemm 128-10, fixed weights",
		convs: [][4]int{{4, 5, 2, 0}, {8, 5, 2, 0}}, dense: []int{10}},
	// Fixed-weight CNNs: one 3x3 same-padded Conv of C channels + Relu + Gemm to 10.
	"cnn_2e16": {desc: "CNN 1x28x28: Conv 8@3x3, Relu, Gemm 6272-10, fixed weights", convs: [][4]int{{8, 3, 1, 1}}, dense: []int{10}},
	"cnn_2e18": {desc: "CNN 1x28x28: Conv 34@3x3, Relu, Gemm 26656-10, fixed weights", convs: [][4]int{{34, 3, 1, 1}}, dense: []int{10}},
	"cnn_2e20": {desc: "CNN 1x28x28: Conv 137@3x3, Relu, Gemm 107408-10, fixed weights", convs: [][4]int{{137, 3, 1, 1}}, dense: []int{10}},
	// Private-weight MLPs: every multiply-accumulate is a constraint.
	"mlp_2e16": {desc: "MLP 128-140-10, private weights", inDense: 128, dense: []int{140, 10}, private: true},
	"mlp_2e18": {desc: "MLP 256-296-10, private weights", inDense: 256, dense: []int{296, 10}, private: true},
	"mlp_2e20": {desc: "MLP 512-608-10, private weights", inDense: 512, dense: []int{608, 10}, private: true},
}

// SyntheticNames lists the built-in synthetic models, sorted.
func SyntheticNames() []string {
	names := make([]string, 0, len(synthetic))
	for n := range synthetic {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Synthetic builds a named synthetic model: ONNX bytes and an input.json. Weights are
// deterministic pseudo-random float32 values (He-style scaling) seeded by the name.
func Synthetic(name string) (onnxBytes, inputJSON []byte, err error) {
	m, err := SyntheticModel(name)
	if err != nil {
		return nil, nil, err
	}
	return m.ONNX, m.Input, nil
}

// SyntheticModel is Synthetic with the description and settings of the model.
func SyntheticModel(name string) (*Model, error) {
	s, ok := synthetic[name]
	if !ok {
		return nil, fmt.Errorf("bench: unknown synthetic model %q (have %s)", name, strings.Join(SyntheticNames(), ", "))
	}
	return s.build(name)
}

func seed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// builder accumulates an ONNX graph.
type builder struct {
	g   *onnx.GraphProto
	rng *rand.Rand
	n   int
}

func (b *builder) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s%d", prefix, b.n)
}

// init adds a float32 initializer of the given shape with uniform values in
// [-scale, scale).
func (b *builder) init(prefix string, scale float64, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32((2*b.rng.Float64() - 1) * scale)
	}
	name := b.name(prefix)
	b.g.Initializer = append(b.g.Initializer, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: vals})
	return name
}

func (b *builder) node(op string, in []string, attrs ...*onnx.AttributeProto) string {
	out := b.name(strings.ToLower(op) + "_")
	b.g.Node = append(b.g.Node, &onnx.NodeProto{Name: out, OpType: op, Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

func ints(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func valueInfo(name string, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}}}}
}

// He-style uniform bound so activations stay O(1) through the layers.
func heScale(fanIn int) float64 { return math.Sqrt(3.0 / float64(fanIn)) }

func (s spec) build(name string) (*Model, error) {
	b := &builder{g: &onnx.GraphProto{Name: name}, rng: rand.New(rand.NewPCG(seed(name), 0x7a6b6d6c))}
	var x string
	var inDims []int64
	var width int
	if len(s.convs) > 0 {
		inDims = []int64{1, 1, 28, 28}
		x = "input"
		c, h := 1, 28
		for _, cv := range s.convs {
			m, k, st, pad := cv[0], cv[1], cv[2], cv[3]
			w := b.init("conv_w", heScale(c*k*k), int64(m), int64(c), int64(k), int64(k))
			bias := b.init("conv_b", 0.1, int64(m))
			x = b.node("Conv", []string{x, w, bias}, ints("kernel_shape", int64(k), int64(k)),
				ints("strides", int64(st), int64(st)), ints("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
			x = b.node("Relu", []string{x})
			c, h = m, (h+2*pad-k)/st+1
		}
		x = b.node("Flatten", []string{x}, intAttr("axis", 1))
		width = c * h * h
	} else {
		inDims = []int64{1, int64(s.inDense)}
		x = "input"
		width = s.inDense
	}
	for i, d := range s.dense {
		w := b.init("fc_w", heScale(width), int64(d), int64(width))
		bias := b.init("fc_b", 0.1, int64(d))
		x = b.node("Gemm", []string{x, w, bias}, intAttr("transB", 1))
		if i < len(s.dense)-1 {
			x = b.node("Relu", []string{x})
		}
		width = d
	}
	b.g.Input = []*onnx.ValueInfoProto{valueInfo("input", inDims...)}
	b.g.Output = []*onnx.ValueInfoProto{valueInfo(x, 1, int64(width))}
	mp := &onnx.ModelProto{IrVersion: 7, ProducerName: "zkml-bench", Graph: b.g,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: 13}}}
	ob, err := proto.Marshal(mp)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range inDims {
		n *= int(d)
	}
	in := make([]float64, n)
	for i := range in {
		in[i] = math.Round(b.rng.Float64()*1000) / 1000
	}
	ib, err := json.Marshal(map[string][][]float64{"input_data": {in}})
	if err != nil {
		return nil, err
	}
	cfg := quant.DefaultConfig()
	if s.private {
		cfg.ParamVis = quant.Private
	}
	return &Model{Name: name, Desc: s.desc, ONNX: ob, Input: ib, Config: cfg, Source: "synthetic"}, nil
}
