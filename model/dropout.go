package model

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Dropout's optional mask output (opset 7 on; SqueezeNet 1.0 of the model zoo writes
// it). At inference Dropout is the identity and its mask is all true, so the mask is a
// constant bool tensor of the input's shape: Load records it among the graph's
// constants, where consumers fold it or take it as a parameter, and a mask that is a
// graph output is proven as that constant. Training mode with a nonzero ratio (a random
// mask) is refused naming the node.

// dropoutMask records the mask output of Dropout node n, whose evaluated outputs are
// out (the data alone), as a constant.
func (g *Graph) dropoutMask(n *Node, out []*Tensor) error {
	if n.Op != "Dropout" || len(n.Outputs) < 2 || n.Outputs[1] == "" || len(out) != 1 {
		return nil
	}
	shape := out[0].Shape
	if err := checkOutput(n, shape); err != nil {
		return fmt.Errorf("%s: mask output %q: %w", n.Label(), n.Outputs[1], err)
	}
	mask := NewTensor(shape...)
	mask.DType = int32(onnx.TensorProto_BOOL)
	for i := range mask.Data {
		mask.Data[i] = 1
	}
	g.Consts[n.Outputs[1]] = mask
	g.Shapes[n.Outputs[1]] = shape
	return nil
}

// dropoutTraining reports whether Dropout node n (constant inputs consts) is in training
// mode with a nonzero ratio: then its output and mask are random, and it is refused.
func dropoutTraining(n *Node, consts []*Tensor) (bool, error) {
	if len(n.Inputs) <= 2 || n.Inputs[2] == "" {
		return false, nil // opset < 12 has no training mode; is_test is ignored (inference)
	}
	t, err := constInput(n, consts, 2, "training_mode")
	if err != nil {
		return false, err
	}
	if len(t.Data) == 1 && t.Data[0] == 0 {
		return false, nil
	}
	ratio := 0.5
	if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		r, err := constInput(n, consts, 1, "ratio")
		if err != nil {
			return false, err
		}
		if len(r.Data) != 1 {
			return false, fmt.Errorf("%s: ratio must be a scalar", n.Label())
		}
		ratio = r.Data[0]
	}
	return ratio != 0, nil
}
