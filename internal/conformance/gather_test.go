package conformance

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"github.com/zkml/zkml/model"
)

// embeddingModel is Gather(E, idx): a constant table E [rows, width] read by runtime
// int64 indices idx [k].
func embeddingModel(t *testing.T, rows, width, k int) []byte {
	t.Helper()
	r := rand.New(rand.NewSource(1))
	e := make([]float32, rows*width)
	for i := range e {
		e[i] = float32(r.NormFloat64())
	}
	info := func(name string, elem onnx.TensorProto_DataType, dims ...int64) *onnx.ValueInfoProto {
		shape := &onnx.TensorShapeProto{}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
			TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
	}
	g := &onnx.GraphProto{Name: "embedding",
		Node:        []*onnx.NodeProto{{OpType: "Gather", Name: "embed", Input: []string{"E", "idx"}, Output: []string{"y"}}},
		Initializer: []*onnx.TensorProto{{Name: "E", Dims: []int64{int64(rows), int64(width)}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: e}},
		Input:       []*onnx.ValueInfoProto{info("idx", onnx.TensorProto_INT64, int64(k))},
		Output:      []*onnx.ValueInfoProto{info("y", onnx.TensorProto_FLOAT, int64(k), int64(width))},
	}
	b, err := proto.Marshal(&onnx.ModelProto{IrVersion: 8, Graph: g, OpsetImport: []*onnx.OperatorSetIdProto{{Version: 13}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmbeddingLookupSound proves an embedding lookup (Gather by runtime indices) with
// Groth16, and checks that the circuit rejects a wrong index for the rows shown, the
// rows of another index for the index shown, and an index outside the table. It logs
// the constraints per looked-up row.
func TestEmbeddingLookupSound(t *testing.T) {
	const rows, width, k = 16, 8, 3
	m := loadSound(t, embeddingModel(t, rows, width, k), Config())
	idx := model.NewTensor(k)
	copy(idx.Data, []float64{5, 0, 15})
	m.Prove(t, "embedding", "Gather", []*model.Tensor{idx}, m.Float(idx))
	stats := m.Compile()
	lookup := 0
	for _, l := range stats.Layers {
		if l.Name == "embed" {
			lookup += l.Constraints
		}
	}
	t.Logf("embedding lookup of %d rows of width %d: %d constraints per index (Groth16, layers only; %d in all)", rows, width, lookup/k, stats.Constraints)
	outputs := func(in []float64) ([][]int64, [][]int64) {
		q, out, err := m.TryInt(&model.Tensor{Shape: []int{k}, Data: in})
		if err != nil {
			return q, [][]int64{make([]int64, k*width)}
		}
		return q, out
	}
	in, out := outputs(idx.Data)
	if !m.Solves(in, out) {
		t.Fatal("the honest lookup does not solve")
	}
	otherIn, otherOut := outputs([]float64{6, 0, 15})
	if slices.Equal(otherOut[0], out[0]) {
		t.Fatal("rows 5 and 6 are equal; pick another table")
	}
	if m.Solves(otherIn, out) {
		t.Error("index 6 solves with the rows of index 5")
	}
	if m.Solves(in, otherOut) {
		t.Error("index 5 solves with the rows of index 6")
	}
	// Index 16 is past the table: the float reference refuses it; so must the circuit,
	// with any rows (here zeros, what a one-hot over no position would give).
	badIn, _ := outputs([]float64{rows, 0, 15})
	zero := append([]int64(nil), out[0]...)
	for i := range width {
		zero[i] = 0
	}
	if m.Solves(badIn, [][]int64{zero}) {
		t.Error("index 16 of 16 rows solves")
	}
}
