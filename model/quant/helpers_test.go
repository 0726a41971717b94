package quant

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

// Helpers that build small ONNX models in memory and compare the integer program with
// the float reference.

func floatInfo(name string, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
			Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(onnx.TensorProto_FLOAT), Shape: shape}}}}
}

func node(op string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Name: op + "_0", Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func intsAttr(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func floatAttr(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

func stringAttr(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_STRING, S: []byte(v)}
}

func floatInit(name string, dims []int64, vals ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: vals}
}

func int64Init(name string, dims []int64, vals ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT64), Int64Data: vals}
}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// load builds and loads a one-graph model.
func load(t testing.TB, opset int64, g *onnx.GraphProto) *model.Graph {
	t.Helper()
	m := &onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := model.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return gr
}

// testConfig is the conformance suite's setting: scale 10, 24 bits, 14-bit tables.
func testConfig() Config {
	c := DefaultConfig()
	c.Scale, c.ParamScale, c.Bits, c.LookupBits = 10, 10, 24, 14
	return c
}

// randomInputs draws normal inputs with standard deviation sd for every graph input.
func randomInputs(r *rand.Rand, g *model.Graph, sd float64) []*model.Tensor {
	var in []*model.Tensor
	for _, v := range g.Inputs {
		t := model.NewTensor(v.Shape...)
		for i := range t.Data {
			t.Data[i] = r.NormFloat64() * sd
		}
		in = append(in, t)
	}
	return in
}

// evalBoth runs the float reference and the integer program on inputs and checks that
// every integer value stays within its static bound. It returns float and dequantized
// integer outputs.
func evalBoth(t testing.TB, g *model.Graph, p *Program, inputs []*model.Tensor) (want, got []*model.Tensor, err error) {
	t.Helper()
	want, err = g.Eval(inputs)
	if err != nil {
		t.Fatalf("float eval: %v", err)
	}
	qi, err := p.QuantizeInputs(inputs)
	if err != nil {
		return nil, nil, err
	}
	r, err := p.Eval(qi)
	if err != nil {
		return nil, nil, err
	}
	for id, vals := range r.Values {
		for _, v := range vals {
			if math.Abs(float64(v)) > p.Values[id].Bound {
				t.Fatalf("value %d element %d exceeds its proven bound %g", id, v, p.Values[id].Bound)
			}
		}
	}
	return want, p.Dequantize(r.Outputs), nil
}

// checkClose runs evalBoth and compares within the conformance tolerance
// (ulps + rel·|want| units of 2^-Scale).
func checkClose(t testing.TB, g *model.Graph, cfg Config, inputs []*model.Tensor, ulps, rel float64) *Program {
	t.Helper()
	p, err := Lower(g, cfg)
	if err != nil {
		t.Fatalf("lower: %v", err)
	}
	want, got, err := evalBoth(t, g, p, inputs)
	if err != nil {
		t.Fatalf("integer eval: %v", err)
	}
	ulp := math.Ldexp(1, -cfg.Scale)
	for k := range want {
		if model.Numel(want[k].Shape) != model.Numel(got[k].Shape) {
			t.Fatalf("output %d has shape %v, want %v", k, got[k].Shape, want[k].Shape)
		}
		for i, w := range want[k].Data {
			if d := math.Abs(got[k].Data[i] - w); d > ulps*ulp+rel*ulp*math.Abs(w) {
				t.Fatalf("output %d element %d = %v, want %v (|diff| = %.3g ulps)", k, i, got[k].Data[i], w, d/ulp)
			}
		}
	}
	return p
}

// wantOutOfRange checks that err reports ErrOutOfRange naming the layer.
func wantOutOfRange(t testing.TB, err error, layer string) {
	t.Helper()
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), layer) {
		t.Fatalf("got %v, want ErrOutOfRange naming %q", err, layer)
	}
}
