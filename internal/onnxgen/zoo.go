package onnxgen

import "github.com/advancedclimatesystems/gonnx/onnx"

// ZooMNIST builds a model with the layers of the ONNX model zoo's MNIST CNN (mnist-8):
// Conv 8@5x5 (same padding, no bias) -> Add(bias) -> Relu -> MaxPool 2x2/2 -> Conv
// 16@5x5 -> Add -> Relu -> MaxPool 3x3/3 -> Reshape 1x256 -> MatMul 256x10 -> Add, as
// older exporters write them, on a 1x1x28x28 input. The weights are pseudo-random
// (He-scaled, seeded), not the zoo's trained ones (which are not redistributed here);
// the circuit's shape, and so its size with one global width, is the zoo model's. It
// returns the model and a sample input.json of values in [0, 1).
func ZooMNIST() (onnxBytes, inputJSON []byte, err error) {
	b := Seeded("zoo_mnist")
	conv := func(x string, c, m int64) string {
		w := b.Init("W", HeScale(int(c)*25), m, c, 5, 5)
		y := b.Node("Conv", []string{x, w}, Ints("dilations", 1, 1), Int("group", 1), Ints("kernel_shape", 5, 5),
			Ints("strides", 1, 1), Ints("pads", 2, 2, 2, 2))
		y = b.Node("Add", []string{y, b.Init("B", 0.1, m, 1, 1)})
		return b.Node("Relu", []string{y})
	}
	x := conv("Input3", 1, 8)
	x = b.Node("MaxPool", []string{x}, Ints("kernel_shape", 2, 2), Ints("strides", 2, 2), Ints("pads", 0, 0, 0, 0))
	x = conv(x, 8, 16)
	x = b.Node("MaxPool", []string{x}, Ints("kernel_shape", 3, 3), Ints("strides", 3, 3), Ints("pads", 0, 0, 0, 0))
	x = b.Node("Reshape", []string{x, b.Int64s("shape", []int64{2}, 1, 256)})
	x = b.Node("MatMul", []string{x, b.Init("W", HeScale(256), 256, 10)})
	x = b.Node("Add", []string{x, b.Init("B", 0.1, 1, 10)})
	onnxBytes, err = b.Marshal([]*onnx.ValueInfoProto{ValueInfo("Input3", 1, 1, 28, 28)},
		[]*onnx.ValueInfoProto{ValueInfo(x, 1, 10)}, 3, 8)
	if err != nil {
		return nil, nil, err
	}
	inputJSON, err = b.Input([]int{784}, 0, 1)
	return onnxBytes, inputJSON, err
}
