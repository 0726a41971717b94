// Package onnxgen writes ONNX models with deterministic pseudo-random weights: the
// benchmark's synthetic models (internal/bench), and the example models the repository
// ships (examples/ and testdata/models/, see Examples). Every model is a pure function of
// its name, so the files checked in can be regenerated and compared byte for byte
// (`go generate ./internal/onnxgen`).
package onnxgen

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Producer is the producer_name of every model written here.
const Producer = "zkml"

// Builder accumulates an ONNX graph; the initializers take their values from its rng.
type Builder struct {
	Graph *onnx.GraphProto
	rng   *rand.Rand
	n     int
}

// New starts a graph called name whose weights come from rng.
func New(name string, rng *rand.Rand) *Builder {
	return &Builder{Graph: &onnx.GraphProto{Name: name}, rng: rng}
}

// Seeded starts a graph called name whose weights come from a generator seeded by the
// name: the same name always gives the same model.
func Seeded(name string) *Builder {
	h := fnv.New64a()
	h.Write([]byte(name))
	return New(name, rand.New(rand.NewPCG(h.Sum64(), 0x7a6b6d6c)))
}

// Float returns the next value of the builder's generator, uniform in [0, 1).
func (b *Builder) Float() float64 { return b.rng.Float64() }

func (b *Builder) name(prefix string) string {
	b.n++
	return fmt.Sprintf("%s%d", prefix, b.n)
}

// Init adds a float32 initializer of the given shape with uniform values in
// [-scale, scale) and returns its name.
func (b *Builder) Init(prefix string, scale float64, dims ...int64) string {
	return b.floats(prefix, dims, func(u float64) float64 { return (2*u - 1) * scale })
}

// Uniform adds a float32 initializer of the given shape with uniform values in [lo, hi)
// and returns its name.
func (b *Builder) Uniform(prefix string, lo, hi float64, dims ...int64) string {
	return b.floats(prefix, dims, func(u float64) float64 { return lo + (hi-lo)*u })
}

// floats adds a float32 initializer whose values are f of successive uniform draws.
func (b *Builder) floats(prefix string, dims []int64, f func(u float64) float64) string {
	vals := make([]float32, numel(dims))
	for i := range vals {
		vals[i] = float32(f(b.rng.Float64()))
	}
	name := b.name(prefix)
	b.Graph.Initializer = append(b.Graph.Initializer, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: vals})
	return name
}

// Int64s adds an int64 initializer (a shape or indices) and returns its name.
func (b *Builder) Int64s(prefix string, dims []int64, vals ...int64) string {
	name := b.name(prefix)
	b.Graph.Initializer = append(b.Graph.Initializer, &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT64), Int64Data: vals})
	return name
}

// Node appends a one-output node named after its operator (as exporters name them, so
// errors that name a layer name its operator too) and returns its output's name.
func (b *Builder) Node(op string, in []string, attrs ...*onnx.AttributeProto) string {
	out := b.name(op + "_")
	b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: out, OpType: op, Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

// Constant appends a Constant node holding an int64 tensor and returns its output's name.
func (b *Builder) Constant(dims []int64, vals ...int64) string {
	return b.Node("Constant", nil, &onnx.AttributeProto{Name: "value", Type: onnx.AttributeProto_TENSOR,
		T: &onnx.TensorProto{Dims: dims, DataType: int32(onnx.TensorProto_INT64), Int64Data: vals}})
}

// Marshal sets the graph's input and output and encodes the model with the given IR
// version and default-domain opset.
func (b *Builder) Marshal(inputs, outputs []*onnx.ValueInfoProto, irVersion, opset int64) ([]byte, error) {
	b.Graph.Input, b.Graph.Output = inputs, outputs
	m := &onnx.ModelProto{IrVersion: irVersion, ProducerName: Producer, Graph: b.Graph,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}}}
	out, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnxgen: %s: %w", b.Graph.Name, err)
	}
	return out, nil
}

// Ints is an INTS attribute.
func Ints(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

// Int is an INT attribute.
func Int(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

// Float is a FLOAT attribute.
func Float(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

// Batch marks a dimension of ValueInfo as the symbolic batch dimension "batch_size", as
// exporters write it (zkml proves batch 1).
const Batch = -1

// Unnamed marks a dimension of ValueInfo as unknown, with neither value nor name.
const Unnamed = -2

// ValueInfo is a float32 tensor declaration; dims may hold Batch or Unnamed.
func ValueInfo(name string, dims ...int64) *onnx.ValueInfoProto {
	return TypedValueInfo(name, onnx.TensorProto_FLOAT, dims...)
}

// TypedValueInfo is a tensor declaration of element type et; dims may hold Batch or
// Unnamed.
func TypedValueInfo(name string, et onnx.TensorProto_DataType, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnx.TensorShapeProto_Dimension{}
		switch d {
		case Batch:
			dim.Value = &onnx.TensorShapeProto_Dimension_DimParam{DimParam: "batch_size"}
		case Unnamed:
		default:
			dim.Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(et), Shape: shape}}}}
}

// HeScale is the He-style uniform bound for a layer of fan-in fanIn, so activations stay
// O(1) through the layers.
func HeScale(fanIn int) float64 { return math.Sqrt(3.0 / float64(fanIn)) }

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}
