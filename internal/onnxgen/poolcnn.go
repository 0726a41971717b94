package onnxgen

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// PoolCNN is a small CNN whose K x K max-pool (stride 1) dominates its circuit: a 3x3
// convolution (1 channel) and ReLU on a 1x1xHxH input, the max-pool, a 2x2 max-pool
// (stride 2), a global average pool, flatten. Tests of sharded plans use it: a budget
// below the pool's own estimate makes the planner split the pool into bands of output
// rows.
type PoolCNN struct {
	K, H int64
}

// Build writes the model and a sample input.json of values in [-1, 1).
func (c PoolCNN) Build() (onnxBytes, inputJSON []byte, err error) {
	if c.K < 1 || c.H < 2 {
		return nil, nil, fmt.Errorf("onnxgen: PoolCNN{%d, %d}: want K >= 1, H >= 2", c.K, c.H)
	}
	b := Seeded("split_e2e")
	w := b.Init("w", HeScale(9), 1, 1, 3, 3)
	bias := b.Init("b", 0.05, 1)
	x := b.Node("Conv", []string{"input", w, bias}, Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1))
	x = b.Node("Relu", []string{x})
	x = b.Node("MaxPool", []string{x}, Ints("kernel_shape", c.K, c.K), Ints("pads", c.K/2, c.K/2, c.K/2, c.K/2))
	x = b.Node("MaxPool", []string{x}, Ints("kernel_shape", 2, 2), Ints("strides", 2, 2))
	x = b.Node("GlobalAveragePool", []string{x})
	x = b.Node("Flatten", []string{x}, Int("axis", 1))
	onnxBytes, err = b.Marshal([]*onnx.ValueInfoProto{ValueInfo("input", 1, 1, c.H, c.H)}, []*onnx.ValueInfoProto{ValueInfo(x, 1, 1)}, 7, 13)
	if err != nil {
		return nil, nil, err
	}
	inputJSON, err = b.Input([]int{int(c.H * c.H)}, -1, 1)
	return onnxBytes, inputJSON, err
}
