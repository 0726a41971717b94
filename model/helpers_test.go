package model

import (
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Helpers that build small ONNX models in memory for tests.

func tensorInfo(name string, elem onnx.TensorProto_DataType, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
			Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
}

func floatInfo(name string, dims ...int64) *onnx.ValueInfoProto {
	return tensorInfo(name, onnx.TensorProto_FLOAT, dims...)
}

func node(op string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Input: in, Output: out, Attribute: attrs}
}

func intAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func intsAttr(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func stringAttr(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_STRING, S: []byte(v)}
}

func floatTensorProto(name string, dims []int64, vals ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: vals}
}

func int64TensorProto(name string, dims []int64, vals ...int64) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_INT64), Int64Data: vals}
}

// modelBytes serializes graph g as a model importing the default opset.
func modelBytes(t testing.TB, opset int64, g *onnx.GraphProto) []byte {
	t.Helper()
	m := &onnx.ModelProto{IrVersion: 7, Graph: g,
		OpsetImport: []*onnx.OperatorSetIdProto{{Domain: "", Version: opset}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tensorOf(shape []int, vals ...float64) *Tensor {
	return &Tensor{Shape: shape, Data: vals}
}
