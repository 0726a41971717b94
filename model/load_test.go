package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// reshapeModel is y = Reshape(x, shape) with shape a graph input, as in the ONNX node tests.
func reshapeModel(t *testing.T) []byte {
	return modelBytes(t, 13, &onnx.GraphProto{
		Node:   []*onnx.NodeProto{node("Reshape", []string{"x", "shape"}, []string{"y"})},
		Input:  []*onnx.ValueInfoProto{floatInfo("x", 2, 3), tensorInfo("shape", onnx.TensorProto_INT64, 2)},
		Output: []*onnx.ValueInfoProto{floatInfo("y")},
	})
}

func TestLoadWithConstants(t *testing.T) {
	data := reshapeModel(t)
	if _, err := Load(data); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "must be a constant") {
		t.Fatalf("Load without binding: got %v, want a must-be-constant error", err)
	}
	g, err := LoadWithConstants(data, map[string]*Tensor{"shape": tensorOf([]int{2}, 3, -1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "x" {
		t.Fatalf("inputs = %v, want only x", g.Inputs)
	}
	if got := g.Outputs[0].Shape; !sameShape(got, []int{3, 2}) {
		t.Errorf("output shape %v, want [3 2]", got)
	}
	out, err := g.Eval([]*Tensor{tensorOf([]int{2, 3}, 1, 2, 3, 4, 5, 6)})
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(out[0].Shape, []int{3, 2}) || out[0].Data[5] != 6 {
		t.Errorf("Eval = %v", out[0])
	}

	bad := []struct {
		name   string
		consts map[string]*Tensor
		want   string
	}{
		{"unknown name", map[string]*Tensor{"nope": tensorOf([]int{2}, 3, 2)}, `cannot bind "nope"`},
		{"wrong rank", map[string]*Tensor{"shape": tensorOf([]int{1, 2}, 3, 2)}, "rank 2, the model declares rank 1"},
		{"wrong dim", map[string]*Tensor{"shape": tensorOf([]int{3}, 3, 2, 1)}, "declared dimension 2"},
		{"inconsistent", map[string]*Tensor{"shape": tensorOf([]int{2}, 3)}, "does not match its shape"},
		{"nil", map[string]*Tensor{"shape": nil}, "nil"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadWithConstants(data, tc.consts)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrBadInput containing %q", err, tc.want)
			}
		})
	}
}

// TestEvalOps covers behaviour the ONNX node tests do not reach.
func TestEvalOps(t *testing.T) {
	tests := []struct {
		name   string
		opset  int64
		nodes  []*onnx.NodeProto
		inits  []*onnx.TensorProto
		inDims []int64
		input  []float64
		want   []float64
	}{
		{"Cast to int64 truncates", 13,
			[]*onnx.NodeProto{node("Cast", []string{"x"}, []string{"y"}, intAttr("to", int64(onnx.TensorProto_INT64)))},
			nil, []int64{4}, []float64{1.7, -1.7, 2, -0.2}, []float64{1, -1, 2, 0}},
		{"Cast to bool", 13,
			[]*onnx.NodeProto{node("Cast", []string{"x"}, []string{"y"}, intAttr("to", int64(onnx.TensorProto_BOOL)))},
			nil, []int64{3}, []float64{0, -3, 0.5}, []float64{0, 1, 1}},
		{"Cast to float rounds to float32", 13,
			[]*onnx.NodeProto{node("Cast", []string{"x"}, []string{"y"}, intAttr("to", int64(onnx.TensorProto_FLOAT)))},
			nil, []int64{1}, []float64{0.1}, []float64{float64(float32(0.1))}},
		{"Dropout is the identity", 13,
			[]*onnx.NodeProto{node("Dropout", []string{"x"}, []string{"y"})},
			nil, []int64{2}, []float64{1, 2}, []float64{1, 2}},
		{"Gemm row bias", 13,
			[]*onnx.NodeProto{node("Gemm", []string{"x", "w", "b"}, []string{"y"})},
			[]*onnx.TensorProto{floatTensorProto("w", []int64{2, 2}, 1, 0, 0, 1), floatTensorProto("b", []int64{1, 2}, 10, 20)},
			[]int64{1, 2}, []float64{1, 2}, []float64{11, 22}},
		{"Slice huge negative step", 13,
			[]*onnx.NodeProto{node("Slice", []string{"x", "s", "e", "a", "st"}, []string{"y"})},
			[]*onnx.TensorProto{int64TensorProto("s", []int64{1}, -1), int64TensorProto("e", []int64{1}, -1<<63),
				int64TensorProto("a", []int64{1}, 0), int64TensorProto("st", []int64{1}, -1<<63)},
			[]int64{4}, []float64{1, 2, 3, 4}, []float64{4}},
		{"Squeeze-13 axes input", 13,
			[]*onnx.NodeProto{node("Squeeze", []string{"x", "a"}, []string{"y"})},
			[]*onnx.TensorProto{int64TensorProto("a", []int64{1}, -1)},
			[]int64{2, 1}, []float64{1, 2}, []float64{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Load(modelBytes(t, tc.opset, &onnx.GraphProto{
				Node: tc.nodes, Initializer: tc.inits,
				Input:  []*onnx.ValueInfoProto{floatInfo("x", tc.inDims...)},
				Output: []*onnx.ValueInfoProto{floatInfo("y")},
			}))
			if err != nil {
				t.Fatal(err)
			}
			shape := make([]int, len(tc.inDims))
			for i, d := range tc.inDims {
				shape[i] = int(d)
			}
			out, err := g.Eval([]*Tensor{tensorOf(shape, tc.input...)})
			if err != nil {
				t.Fatal(err)
			}
			if len(out[0].Data) != len(tc.want) {
				t.Fatalf("got %v, want %v", out[0].Data, tc.want)
			}
			for i := range tc.want {
				if out[0].Data[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", out[0].Data, tc.want)
				}
			}
		})
	}
}
