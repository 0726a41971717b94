package model

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// graphOf is a one-input (x, float [1 4]) graph with output y.
func graphOf(nodes []*onnx.NodeProto, inits ...*onnx.TensorProto) *onnx.GraphProto {
	return &onnx.GraphProto{
		Node: nodes, Initializer: inits,
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 4)},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	}
}

func TestLoadRejects(t *testing.T) {
	relu, err := os.ReadFile(filepath.Join("testdata", "relu", "network.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	oversized := append(bytes.Clone(relu), make([]byte, MaxModelBytes)...)
	hugeDim := func(dims ...int64) []byte {
		return modelBytes(t, 13, &onnx.GraphProto{
			Node:   []*onnx.NodeProto{node("Relu", []string{"x"}, []string{"y"})},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", dims...)},
			Output: []*onnx.ValueInfoProto{floatInfo("y")},
		})
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		want    string // substring of the message
	}{
		{"empty", nil, ErrInvalidModel, "empty ONNX file"},
		{"random bytes", random, ErrInvalidModel, ""},
		{"truncated", relu[:len(relu)/2], ErrInvalidModel, ""},
		{"oversized", oversized, ErrInvalidModel, "byte limit"},
		{"no opset", func() []byte {
			b := modelBytes(t, 0, graphOf([]*onnx.NodeProto{node("Relu", []string{"x"}, []string{"y"})}))
			return b
		}(), ErrInvalidModel, "opset"},
		{"unsupported op", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			{OpType: "Foo", Name: "my_foo", Input: []string{"x"}, Output: []string{"y"}}})),
			ErrUnsupportedOp, `Foo node "my_foo" is not supported`},
		{"unsupported op without a name", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Relu", []string{"x"}, []string{"h"}), node("Foo", []string{"h"}, []string{"y"})})),
			ErrUnsupportedOp, `Foo node "Foo_1"`},
		{"custom domain", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			{OpType: "Relu", Domain: "com.example", Input: []string{"x"}, Output: []string{"y"}}})),
			ErrUnsupportedOp, `domain "com.example"`},
		{"unsupported pad mode", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Pad", []string{"x", "p"}, []string{"y"}, &onnx.AttributeProto{Name: "mode", Type: onnx.AttributeProto_STRING, S: []byte("mirror")})},
			int64TensorProto("p", []int64{4}, 0, 1, 0, 1))),
			ErrUnsupportedOp, `pad mode "mirror"`},
		{"dangling input", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Add", []string{"x", "ghost"}, []string{"y"})})),
			ErrInvalidModel, `input "ghost" is not produced`},
		{"output never produced", modelBytes(t, 13, &onnx.GraphProto{
			Node:   []*onnx.NodeProto{node("Relu", []string{"x"}, []string{"h"})},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", 4)},
			Output: []*onnx.ValueInfoProto{floatInfo("y")}}),
			ErrInvalidModel, `graph output "y" is never produced`},
		{"node without output", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Relu", []string{"x"}, nil), node("Relu", []string{"x"}, []string{"y"})})),
			ErrInvalidModel, "has no output"},
		{"value defined twice", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Relu", []string{"x"}, []string{"y"}), node("Neg", []string{"x"}, []string{"y"})})),
			ErrInvalidModel, `output "y" is already defined`},
		{"missing required input", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Gemm", []string{"x", ""}, []string{"y"})})),
			ErrInvalidModel, "required input 1 is missing"},
		{"too many inputs", modelBytes(t, 13, graphOf([]*onnx.NodeProto{
			node("Relu", []string{"x", "x"}, []string{"y"})})),
			ErrInvalidModel, "has 2 inputs, want 1"},
		{"huge dimension", hugeDim(1 << 40), ErrInvalidModel, "over the limit"},
		{"dimension product overflows", hugeDim(1<<24, 1<<24, 1<<24, 1<<24), ErrInvalidModel, "over the limit"},
		{"negative dimension", hugeDim(-3), ErrInvalidModel, "negative dimension"},
		{"huge initializer", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})},
			floatTensorProto("w", []int64{1 << 20, 1 << 20}))), ErrInvalidModel, "over the limit"},
		{"initializer data short", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})},
			floatTensorProto("w", []int64{4}, 1, 2))), ErrInvalidModel, "has 2 values, want 4"},
		{"broadcast explosion", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Add", []string{"a", "b"}, []string{"y"})},
			floatTensorProto("a", []int64{1 << 13, 1}, make([]float32, 1<<13)...),
			floatTensorProto("b", []int64{1, 1 << 13}, make([]float32, 1<<13)...))), ErrInvalidModel, "over the limit"},
		{"huge pads", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Pad", []string{"x", "p"}, []string{"y"})},
			int64TensorProto("p", []int64{4}, 0, 1<<40, 0, 1<<40))), ErrInvalidModel, "over the limit"},
		{"huge gather", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Gather", []string{"x", "i"}, []string{"y"})},
			int64TensorProto("i", []int64{1 << 23}, make([]int64, 1<<23)...))), ErrInvalidModel, "over the limit"},
		{"gather index out of range", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Gather", []string{"x", "i"}, []string{"y"}, intAttr("axis", 1))},
			int64TensorProto("i", []int64{1}, 4))), ErrInvalidModel, "out of range"},
		{"matmul too much work", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("MatMul", []string{"a", "b"}, []string{"y"})},
			floatTensorProto("a", []int64{1 << 11, 1 << 11}, make([]float32, 1<<22)...),
			floatTensorProto("b", []int64{1 << 11, 1 << 11}, make([]float32, 1<<22)...))), ErrUnsupportedOp, "over the limit"},
		{"runtime reshape shape", modelBytes(t, 13, &onnx.GraphProto{
			Node:   []*onnx.NodeProto{node("Reshape", []string{"x", "s"}, []string{"y"})},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 4), floatInfo("s", 2)},
			Output: []*onnx.ValueInfoProto{floatInfo("y")}}),
			ErrInvalidModel, "must be a constant"},
		{"NaN reshape shape", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Reshape", []string{"x", "s"}, []string{"y"})},
			floatTensorProto("s", []int64{2}, float32(math.NaN()), 2))), ErrInvalidModel, "not an integer"},
		{"conv bias length", modelBytes(t, 13, &onnx.GraphProto{
			Node: []*onnx.NodeProto{node("Conv", []string{"x", "w", "b"}, []string{"y"})},
			Initializer: []*onnx.TensorProto{floatTensorProto("w", []int64{2, 1, 1, 1}, 1, 2),
				floatTensorProto("b", []int64{1}, 1)},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 1, 2, 2)},
			Output: []*onnx.ValueInfoProto{floatInfo("y")}}),
			ErrInvalidModel, "bias shape [1], want [2]"},
		{"gemm bias does not broadcast", modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Gemm", []string{"x", "w", "b"}, []string{"y"})},
			floatTensorProto("w", []int64{4, 2}, make([]float32, 8)...),
			floatTensorProto("b", []int64{3, 1, 2}, make([]float32, 6)...))), ErrInvalidModel, "does not broadcast"},
		{"pool window in padding", modelBytes(t, 13, &onnx.GraphProto{
			Node: []*onnx.NodeProto{node("MaxPool", []string{"x"}, []string{"y"},
				intsAttr("kernel_shape", 2, 2), intsAttr("pads", 2, 2, 2, 2))},
			Input:  []*onnx.ValueInfoProto{floatInfo("x", 1, 1, 2, 2)},
			Output: []*onnx.ValueInfoProto{floatInfo("y")}}),
			ErrInvalidModel, "entirely in the padding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load(tc.data)
			if err == nil {
				t.Fatalf("Load succeeded (%d nodes), want an error", len(g.Nodes))
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestEvalRejectsBadInputs(t *testing.T) {
	g, err := Load(modelBytes(t, 13, graphOf([]*onnx.NodeProto{node("Relu", []string{"x"}, []string{"y"})})))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inputs []*Tensor
		want   string
	}{
		{"no inputs", nil, "model has 1 inputs, got 0"},
		{"nil input", []*Tensor{nil}, `input "x" has shape [1 4] (4 values), got 0 values`},
		{"wrong element count", []*Tensor{tensorOf([]int{5}, 1, 2, 3, 4, 5)}, `input "x" has shape [1 4] (4 values), got 5 values`},
		{"NaN", []*Tensor{tensorOf([]int{1, 4}, 1, math.NaN(), 3, 4)}, "element 1 is NaN"},
		{"Inf", []*Tensor{tensorOf([]int{1, 4}, 1, 2, math.Inf(-1), 4)}, "element 2 is -Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.Eval(tc.inputs)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrBadInput containing %q", err, tc.want)
			}
		})
	}
	// An input with the right element count is accepted and takes the declared shape.
	out, err := g.Eval([]*Tensor{tensorOf([]int{4}, -1, 2, -3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(out[0].Shape, []int{1, 4}) || out[0].Data[1] != 2 || out[0].Data[2] != 0 {
		t.Errorf("Eval = %+v", out[0])
	}
}
