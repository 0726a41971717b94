package bench

import (
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/zkml/zkml/internal/onnxgen"
)

// Elementwise builds the ONNX model input[1,n] -> op -> output, where op is an
// elementwise operator ("Relu", "Sigmoid", ...), "softmax" (over the row) or
// "mul_relu" (x*x -> Relu). Elementwise("mul_relu", 262144) is the 117-byte model of
// issue 13 that crashed the service: a few bytes can ask for millions of constraints,
// which is what admission control is for.
func Elementwise(op string, n int) []byte {
	b := onnxgen.New(op, rand.New(rand.NewPCG(3, 3)))
	x := "input"
	switch op {
	case "mul_relu":
		x = b.Node("Relu", []string{b.Node("Mul", []string{x, x})})
	case "softmax":
		x = b.Node("Softmax", []string{x})
	default:
		x = b.Node(op, []string{x})
	}
	out, err := b.Marshal([]*onnx.ValueInfoProto{onnxgen.ValueInfo("input", 1, int64(n))},
		[]*onnx.ValueInfoProto{onnxgen.ValueInfo(x, 1, int64(n))}, 7, 13)
	if err != nil {
		panic(err) // a valid graph always encodes
	}
	return out
}
