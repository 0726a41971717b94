package conformance

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
)

// zooModel is a scaled-down classic-zoo network with the operators issue 16 lists, as
// the model zoo's exports write them: Conv, BatchNormalization (folded into the conv),
// Relu, MaxPool (ceil mode), LRN, a SqueezeNet fire module (squeeze conv, two expand
// convs, Concat), a Concat of many inputs, Dropout with its mask output (a graph output,
// and consumed by Cast and Mul), GlobalAveragePool, Flatten, Reshape, Gemm, Softmax at
// the end.
func zooModel(t *testing.T) []byte {
	t.Helper()
	b := onnxgen.Seeded("zoo")
	conv := func(x string, cin, cout, k int64, pad int64) string {
		return b.Node("Conv", []string{x, b.Init("w", onnxgen.HeScale(int(cin*k*k)), cout, cin, k, k), b.Init("b", 0.1, cout)},
			onnxgen.Ints("kernel_shape", k, k), onnxgen.Ints("pads", pad, pad, pad, pad))
	}
	c1 := conv("x", 3, 4, 3, 1)
	bn := b.Node("BatchNormalization", []string{c1, b.Uniform("gamma", 0.5, 1.5, 4), b.Init("beta", 0.2, 4), b.Init("mean", 0.2, 4), b.Uniform("var", 0.5, 1.5, 4)})
	r1 := b.Node("Relu", []string{bn})
	mp := b.Node("MaxPool", []string{r1}, onnxgen.Ints("kernel_shape", 3, 3), onnxgen.Ints("strides", 2, 2), onnxgen.Int("ceil_mode", 1))
	lrn := b.Node("LRN", []string{mp}, onnxgen.Int("size", 5), onnxgen.Float("alpha", 1e-4), onnxgen.Float("beta", 0.75), onnxgen.Float("bias", 1))
	sq := b.Node("Relu", []string{conv(lrn, 4, 2, 1, 0)})
	e1 := b.Node("Relu", []string{conv(sq, 2, 3, 1, 0)})
	e3 := b.Node("Relu", []string{conv(sq, 2, 3, 3, 1)})
	fire := b.Node("Concat", []string{e1, e3}, onnxgen.Int("axis", 1))
	many := b.Node("Concat", []string{fire, e1, e3, sq, fire}, onnxgen.Int("axis", 1)) // 6+3+3+2+6 = 20 channels
	drop := b.Node("Dropout", []string{many})
	dropNode := b.Graph.Node[len(b.Graph.Node)-1]
	dropNode.Output = append(dropNode.Output, "mask")
	maskF := b.Node("Cast", []string{"mask"}, onnxgen.Int("to", int64(onnx.TensorProto_FLOAT)))
	kept := b.Node("Mul", []string{drop, maskF})
	gap := b.Node("GlobalAveragePool", []string{kept})
	flat := b.Node("Flatten", []string{gap}, onnxgen.Int("axis", 1))
	re := b.Node("Reshape", []string{flat, b.Int64s("shape", []int64{2}, 1, -1)})
	fc := b.Node("Gemm", []string{re, b.Init("fcw", onnxgen.HeScale(20), 5, 20), b.Init("fcb", 0.1, 5)}, onnxgen.Int("transB", 1))
	y := b.Node("Softmax", []string{fc}, onnxgen.Int("axis", 1))
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", onnxgen.Batch, 3, 8, 8)},
		[]*onnx.ValueInfoProto{onnxgen.ValueInfo(y, onnxgen.Batch, 5), onnxgen.TypedValueInfo("mask", onnx.TensorProto_BOOL, onnxgen.Batch, 20, 4, 4)}, 7, 12)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestZooOperators lowers zooModel, checks that BatchNormalization left no layer of its
// own, compares the integer program with the float reference (Softmax probabilities and
// the all-true mask), and proves it with Groth16.
func TestZooOperators(t *testing.T) {
	m := loadSound(t, zooModel(t), Config())
	var ops []string
	for _, l := range m.P.Layers {
		if !slices.Contains(ops, l.Op) {
			ops = append(ops, l.Op)
		}
	}
	if slices.Contains(ops, "BatchNormalization") {
		t.Errorf("BatchNormalization was not folded into the conv: layers %v", ops)
	}
	for _, want := range []string{"LRN", "Softmax", "GlobalAveragePool", "MaxPool"} {
		if !slices.Contains(ops, want) {
			t.Errorf("no %s layer among %v", want, ops)
		}
	}
	r := rand.New(rand.NewSource(9))
	x := model.NewTensor(m.G.Inputs[0].Shape...)
	for i := range x.Data {
		x.Data[i] = r.NormFloat64()
	}
	want := m.Float(x)
	if len(want) != 2 || slices.ContainsFunc(want[1].Data, func(v float64) bool { return v != 1 }) {
		t.Fatalf("mask output is not all true: %v", want[1].Data)
	}
	_, out := m.Int(x)
	got := m.P.Dequantize(out)
	sum := 0.0
	for i, w := range want[0].Data {
		sum += got[0].Data[i]
		if d := math.Abs(got[0].Data[i] - w); d > 0.02 {
			t.Errorf("probability %d: %v, want %v", i, got[0].Data[i], w)
		}
	}
	if math.Abs(sum-1) > 0.02 {
		t.Errorf("probabilities sum to %v", sum)
	}
	for i, v := range got[1].Data {
		if v != 1 {
			t.Fatalf("mask element %d = %v", i, v)
		}
	}
	m.Prove(t, "zoo", "zoo", []*model.Tensor{x}, want)
}

// TestDropoutTrainingMaskRefused: a Dropout in training mode with a nonzero ratio has a
// random output and mask: refused naming the node and the mask.
func TestDropoutTrainingMaskRefused(t *testing.T) {
	b := onnxgen.Seeded("dropout")
	ratio := b.Uniform("ratio", 0.5, 0.5)
	b.Graph.Initializer[len(b.Graph.Initializer)-1].Dims = nil
	training := b.Node("Constant", nil, &onnx.AttributeProto{Name: "value", Type: onnx.AttributeProto_TENSOR,
		T: &onnx.TensorProto{DataType: int32(onnx.TensorProto_BOOL), Int32Data: []int32{1}}})
	b.Graph.Node = append(b.Graph.Node, &onnx.NodeProto{Name: "drop", OpType: "Dropout", Input: []string{"x", ratio, training}, Output: []string{"y", "mask"}})
	data, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("x", 1, 4)}, []*onnx.ValueInfoProto{onnxgen.ValueInfo("y"), onnxgen.TypedValueInfo("mask", onnx.TensorProto_BOOL)}, 8, 13)
	if err != nil {
		t.Fatal(err)
	}
	_, err = model.Load(data)
	if err == nil || !strings.Contains(err.Error(), `Dropout node "drop"`) || !strings.Contains(err.Error(), `mask "mask"`) {
		t.Fatalf("err = %v, want a refusal naming the node and its mask", err)
	}
}
