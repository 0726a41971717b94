package model

import (
	"errors"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
)

// fcFromConstantOfShape is AlexNet's first fully connected layer as ONNX's test
// architectures write it, scaled to rows x cols: Gemm(x, ConstantOfShape([rows, cols])
// filled with 0.5, transB=1).
func fcFromConstantOfShape(t *testing.T, rows, cols int64) []byte {
	t.Helper()
	b := onnxgen.Seeded("fc")
	shape := b.Int64s("shape", []int64{2}, rows, cols)
	w := b.Node("ConstantOfShape", []string{shape}, &onnx.AttributeProto{Name: "value", Type: onnx.AttributeProto_TENSOR,
		T: &onnx.TensorProto{Dims: []int64{1}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: []float32{0.5}}})
	y := b.Node("Gemm", []string{"x", w}, onnxgen.Int("transB", 1))
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 1, cols)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo(y, 1, rows)}, 8, 13)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConstantOverElementLimit: a weight constant of more than MaxTensorElements
// (2^24) elements loads and evaluates (issue 16: AlexNet's [4096, 9216] stopped at "over
// the limit of 16777216 elements"); the bound is MaxConstantBytes, and a constant over
// it is refused naming the node, the shape and the bytes.
func TestConstantOverElementLimit(t *testing.T) {
	const rows, cols = 4097, 4096 // 16,781,312 elements > 2^24
	if testing.Short() {
		t.Skip("allocates a 134 MB constant")
	}
	g, err := Load(fcFromConstantOfShape(t, rows, cols))
	if err != nil {
		t.Fatal(err)
	}
	w := g.Consts[g.Nodes[0].Inputs[1]]
	if w == nil || w.Numel() != rows*cols || w.Numel() <= MaxTensorElements {
		t.Fatalf("weight constant not folded to %d elements", rows*cols)
	}
	x := NewTensor(1, cols)
	for i := range x.Data {
		x.Data[i] = 1
	}
	out, err := g.Eval([]*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Data[0] != 0.5*cols || out[0].Data[rows-1] != 0.5*cols {
		t.Fatalf("y = %v ... %v, want %v", out[0].Data[0], out[0].Data[rows-1], 0.5*cols)
	}
}

func TestConstantBudgetRefusal(t *testing.T) {
	old := MaxConstantBytes
	MaxConstantBytes = 1 << 20
	t.Cleanup(func() { MaxConstantBytes = old })
	_, err := Load(fcFromConstantOfShape(t, 512, 512)) // 2 MiB as float64
	if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), `ConstantOfShape node "ConstantOfShape_2"`) ||
		!strings.Contains(err.Error(), "2097152 bytes") || !strings.Contains(err.Error(), "1048576") {
		t.Fatalf("err = %v, want a refusal naming the node, 2097152 bytes and the budget", err)
	}
	if _, err := Load(fcFromConstantOfShape(t, 256, 512)); err != nil { // exactly 1 MiB
		t.Fatal(err)
	}
	if got := constantBytesFromEnv("12345"); got != 12345 {
		t.Fatalf("ZKML_MAX_CONSTANT_BYTES=12345 gives %d", got)
	}
	for _, bad := range []string{"", "-1", "lots"} {
		if got := constantBytesFromEnv(bad); got != DefaultMaxConstantBytes {
			t.Fatalf("ZKML_MAX_CONSTANT_BYTES=%q gives %d", bad, got)
		}
	}
}
