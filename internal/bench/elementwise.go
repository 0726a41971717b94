package bench

import (
	"math/rand/v2"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Elementwise builds the ONNX model input[1,n] -> op -> output, where op is an
// elementwise operator ("Relu", "Sigmoid", ...), "softmax" (over the row) or
// "mul_relu" (x*x -> Relu). Elementwise("mul_relu", 262144) is the 117-byte model of
// issue 13 that crashed the service: a few bytes can ask for millions of constraints,
// which is what admission control is for.
func Elementwise(op string, n int) []byte {
	b := &builder{g: &onnx.GraphProto{Name: op}, rng: rand.New(rand.NewPCG(3, 3))}
	x := "input"
	switch op {
	case "mul_relu":
		x = b.node("Relu", []string{b.node("Mul", []string{x, x})})
	case "softmax":
		x = b.node("Softmax", []string{x})
	default:
		x = b.node(op, []string{x})
	}
	return b.model(n, x, n)
}
