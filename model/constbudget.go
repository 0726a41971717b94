package model

import (
	"fmt"
	"math"
	"os"
	"strconv"
)

// Constants that are weights (ConstantOfShape's output, which ONNX's full-size test
// architectures use for the weights of AlexNet's and VGG's fully connected layers:
// [4096, 9216] and [4096, 25088]) are bounded by memory, not by MaxTensorElements: the
// float64 tensor may take at most MaxConstantBytes bytes. Activations keep the element
// limit (a proof of more is far beyond one circuit anyway).

// DefaultMaxConstantBytes is MaxConstantBytes unless ZKML_MAX_CONSTANT_BYTES sets it.
const DefaultMaxConstantBytes = 2 << 30

// MaxConstantBytes bounds the memory of one constant tensor computed while loading
// (8 bytes per element). It is read from the environment variable
// ZKML_MAX_CONSTANT_BYTES (a positive integer) at start-up; programs may set it before
// loading models.
var MaxConstantBytes int64 = constantBytesFromEnv(os.Getenv("ZKML_MAX_CONSTANT_BYTES"))

func constantBytesFromEnv(v string) int64 {
	if b, err := strconv.ParseInt(v, 10, 64); err == nil && b > 0 {
		return b
	}
	return DefaultMaxConstantBytes
}

func init() {
	// The shape fixes the output: a ConstantOfShape is always a constant.
	constParams["ConstantOfShape"] = []int{0}
}

// checkConstant bounds a constant of shape computed by node n by MaxConstantBytes,
// naming the node, the shape and the bytes.
func checkConstant(n *Node, shape []int) error {
	if len(shape) > MaxRank {
		return invalidf("%s: rank %d is over the limit of %d", n.Label(), len(shape), MaxRank)
	}
	elems := 1.0
	for _, d := range shape {
		if d < 0 {
			return invalidf("%s: shape %v has a negative dimension", n.Label(), shape)
		}
		elems *= float64(d)
	}
	if bytes := 8 * elems; bytes > float64(MaxConstantBytes) || elems > math.MaxInt32*float64(1<<20) {
		return fmt.Errorf("%w: %s: constant of shape %v needs %.0f bytes, over the constant memory budget of %d bytes (ZKML_MAX_CONSTANT_BYTES)",
			ErrInvalidModel, n.Label(), shape, bytes, MaxConstantBytes)
	}
	return nil
}
