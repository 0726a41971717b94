package quant

import (
	"errors"
	"math/rand"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/model"
)

func int64Info(name string, dims ...int64) *onnx.ValueInfoProto {
	vi := floatInfo(name, dims...)
	vi.GetType().GetTensorType().ElemType = int32(onnx.TensorProto_INT64)
	return vi
}

// embeddingGraph is Gather(E, idx) with E a constant [rows, width] table (axis 0) or
// [width, rows] (axis 1) and idx a runtime int64 tensor of shape idxShape.
func embeddingGraph(rows, width int64, axis int64, idxShape ...int64) *onnx.GraphProto {
	dims := []int64{rows, width}
	if axis == 1 {
		dims = []int64{width, rows}
	}
	return &onnx.GraphProto{
		Node:        []*onnx.NodeProto{node("Gather", []string{"E", "idx"}, []string{"y"}, intAttr("axis", axis))},
		Initializer: []*onnx.TensorProto{floatInit("E", dims, randFloats(rand.New(rand.NewSource(rows)), int(rows*width), 1)...)},
		Input:       []*onnx.ValueInfoProto{int64Info("idx", idxShape...)},
		Output:      []*onnx.ValueInfoProto{floatInfo("y")},
	}
}

// TestGatherRuntimeIndices checks the embedding lookup (Gather of a constant table by
// runtime indices) against the float reference, and that an index outside the table
// is an out-of-range error in the integer program, as in the float reference.
func TestGatherRuntimeIndices(t *testing.T) {
	cases := []struct {
		name       string
		rows, wid  int64
		axis       int64
		idx        []int64
		indexShape []int64
	}{
		{"rows", 10, 4, 0, []int64{3, 0, 9, 3}, []int64{4}},
		{"token matrix", 7, 3, 0, []int64{1, 6, 2, 2, 0, 5}, []int64{2, 3}},
		{"columns (axis 1)", 6, 2, 1, []int64{5, 0, 1}, []int64{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := load(t, 13, embeddingGraph(tc.rows, tc.wid, tc.axis, tc.indexShape...))
			in := model.NewTensor(g.Inputs[0].Shape...)
			for i, v := range tc.idx {
				in.Data[i] = float64(v)
			}
			p := checkClose(t, g, testConfig(), []*model.Tensor{in}, 1, 0)
			for _, bad := range []float64{float64(tc.rows), -1} {
				in.Data[0] = bad
				qi, err := p.QuantizeInputs([]*model.Tensor{in})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Eval(qi); !errors.Is(err, ErrOutOfRange) {
					t.Fatalf("index %v of %d rows: got %v, want ErrOutOfRange", bad, tc.rows, err)
				}
			}
		})
	}
}
