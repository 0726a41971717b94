package onnxgen

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Stack describes a feed-forward model: a Conv stack on a 1x1x28x28 input (MNIST's
// shape), or an MLP input, followed by dense layers.
type Stack struct {
	// Convs: output channels, kernel, stride, pad per Conv layer (each followed by Relu).
	Convs [][4]int
	// Dense: widths of the Gemm layers after the input (or the flattened conv output);
	// every Gemm but the last is followed by Relu.
	Dense []int
	// InDense is the MLP input width (used when Convs is empty).
	InDense int
}

// Build writes the model called name (weights seeded by the name, He-style scaling) and
// a sample input.json of values in [0, 1).
func (s Stack) Build(name string) (onnxBytes, inputJSON []byte, err error) {
	b := Seeded(name)
	x := "input"
	var inDims []int64
	var width int
	if len(s.Convs) > 0 {
		inDims = []int64{1, 1, 28, 28}
		c, h := 1, 28
		for _, cv := range s.Convs {
			m, k, st, pad := cv[0], cv[1], cv[2], cv[3]
			w := b.Init("conv_w", HeScale(c*k*k), int64(m), int64(c), int64(k), int64(k))
			bias := b.Init("conv_b", 0.1, int64(m))
			x = b.Node("Conv", []string{x, w, bias}, Ints("kernel_shape", int64(k), int64(k)),
				Ints("strides", int64(st), int64(st)), Ints("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
			x = b.Node("Relu", []string{x})
			c, h = m, (h+2*pad-k)/st+1
		}
		x = b.Node("Flatten", []string{x}, Int("axis", 1))
		width = c * h * h
	} else {
		inDims = []int64{1, int64(s.InDense)}
		width = s.InDense
	}
	for i, d := range s.Dense {
		w := b.Init("fc_w", HeScale(width), int64(d), int64(width))
		bias := b.Init("fc_b", 0.1, int64(d))
		x = b.Node("Gemm", []string{x, w, bias}, Int("transB", 1))
		if i < len(s.Dense)-1 {
			x = b.Node("Relu", []string{x})
		}
		width = d
	}
	onnxBytes, err = b.Marshal([]*onnx.ValueInfoProto{ValueInfo("input", inDims...)},
		[]*onnx.ValueInfoProto{ValueInfo(x, 1, int64(width))}, 7, 13)
	if err != nil {
		return nil, nil, err
	}
	inputJSON, err = b.Input([]int{int(numel(inDims))}, 0, 1)
	return onnxBytes, inputJSON, err
}

// Input draws one sample input.json ({"input_data": [[...], ...]}, one flat list per
// size): values uniform in [lo, hi), rounded to 3 decimals so the file stays readable.
func (b *Builder) Input(sizes []int, lo, hi float64) ([]byte, error) {
	data := make([][]float64, len(sizes))
	for i, n := range sizes {
		data[i] = make([]float64, n)
		for j := range data[i] {
			data[i][j] = math.Round((lo+(hi-lo)*b.rng.Float64())*1000) / 1000
		}
	}
	out, err := json.Marshal(map[string][][]float64{"input_data": data})
	if err != nil {
		return nil, fmt.Errorf("onnxgen: %s input: %w", b.Graph.Name, err)
	}
	return out, nil
}
