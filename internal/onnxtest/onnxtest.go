// Package onnxtest builds small ONNX models in memory for tests: value infos, float and
// integer initializers, and the serialized model.
package onnxtest

import (
	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/internal/onnxgen"
)

// Info is a tensor value info of element type et and fixed dims.
func Info(name string, et onnx.TensorProto_DataType, dims ...int64) *onnx.ValueInfoProto {
	return onnxgen.TypedValueInfo(name, et, dims...)
}

// Floats is a float32 initializer.
func Floats(name string, dims []int64, vals ...float32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(onnx.TensorProto_FLOAT), FloatData: vals}
}

// Int32s is an initializer of an integer type stored in int32_data (int8 to int32).
func Int32s(name string, et onnx.TensorProto_DataType, dims []int64, vals ...int32) *onnx.TensorProto {
	return &onnx.TensorProto{Name: name, Dims: dims, DataType: int32(et), Int32Data: vals}
}

// Node is one operator node.
func Node(op, name string, in, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: op, Name: name, Input: in, Output: out, Attribute: attrs}
}

// Marshal serializes g as a model of the default domain at opset.
func Marshal(g *onnx.GraphProto, opset int64) ([]byte, error) {
	return proto.Marshal(&onnx.ModelProto{IrVersion: 7, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: opset}}})
}

// TinyGemm is y = Relu(W x + b) with x of shape [1, 4] and y of shape [1, 3], opset 13:
// a model small enough to prove in a test in a second. w0 is W's first weight, so two
// calls with different w0 give two models of the same shapes (same circuit with
// witness params) and different weights.
func TinyGemm(w0 float32) []byte {
	g := &onnx.GraphProto{
		Input:  []*onnx.ValueInfoProto{Info("x", onnx.TensorProto_FLOAT, 1, 4)},
		Output: []*onnx.ValueInfoProto{Info("y", onnx.TensorProto_FLOAT, 1, 3)},
		Initializer: []*onnx.TensorProto{
			Floats("w", []int64{3, 4}, w0, -0.25, 0.5, 0.125, 0.75, 0.5, -0.5, 0.25, -0.125, 0.25, 0.375, -1),
			Floats("b", []int64{3}, 0.5, -0.25, 0.125),
		},
		Node: []*onnx.NodeProto{
			Node("Gemm", "fc", []string{"x", "w", "b"}, []string{"h"}, &onnx.AttributeProto{Name: "transB", Type: onnx.AttributeProto_INT, I: 1}),
			Node("Relu", "relu", []string{"h"}, []string{"y"}),
		},
	}
	b, err := Marshal(g, 13)
	if err != nil {
		panic(err) // a fixed, valid message
	}
	return b
}

// TinyGemmInput is an input.json for TinyGemm.
const TinyGemmInput = `{"input_data": [[1, -0.5, 0.25, 2]]}`
