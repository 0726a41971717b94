package model

import (
	"fmt"
	"math"
)

// Tensor is a dense, row-major tensor with a static shape. Values are float64 for
// floating-point data and exact small integers for integer data (shapes, indices).
type Tensor struct {
	Shape []int
	Data  []float64
	// DType is the ONNX element type (onnx.TensorProto_DataType); 0 (undefined) means
	// float. Quantized operators read it to pick their integer range.
	DType int32
}

// NewTensor returns a zero tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float64, numel(shape))}
}

// Numel is the number of elements of the tensor.
func (t *Tensor) Numel() int { return numel(t.Shape) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float64(nil), t.Data...), DType: t.DType}
}

// MaxRank bounds the rank of any tensor.
const MaxRank = 32

// checkShape enforces the size limits on a shape: rank at most MaxRank, no negative
// dimension, and a product of the non-zero dimensions at most MaxTensorElements (so that
// loops over outer dimensions stay bounded even for empty tensors).
func checkShape(shape []int) error {
	if len(shape) > MaxRank {
		return fmt.Errorf("rank %d is over the limit of %d", len(shape), MaxRank)
	}
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d == 0 {
			continue
		}
		if d > MaxTensorElements || n*d > MaxTensorElements {
			return fmt.Errorf("shape %v is over the limit of %d elements", shape, MaxTensorElements)
		}
		n *= d
	}
	return nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// strides returns row-major strides for shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// CheckFinite reports the first NaN or Inf value in t.
func (t *Tensor) CheckFinite() error {
	for i, v := range t.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("element %d is %v: inputs must be finite numbers", i, v)
		}
	}
	return nil
}

// broadcastShape returns the numpy-style broadcast of shapes.
func broadcastShape(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch {
			case out[off+i] == d || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v are not broadcastable", shapes)
			}
		}
	}
	if err := checkShape(out); err != nil {
		return nil, fmt.Errorf("broadcast of %v: %v", shapes, err)
	}
	return out, nil
}

// broadcastsTo reports whether shape from broadcasts to shape to without changing it
// (ONNX unidirectional broadcasting).
func broadcastsTo(from, to []int) bool {
	if len(from) > len(to) {
		return false
	}
	off := len(to) - len(from)
	for i, d := range from {
		if d != 1 && d != to[off+i] {
			return false
		}
	}
	return true
}

// broadcastIndex maps each element of out shape to the flat index in a tensor of shape in
// (numpy broadcasting). It is computed once per op and reused by the float, integer and
// circuit evaluators.
func broadcastIndex(in, out []int) []int {
	n := numel(out)
	idx := make([]int, n)
	inStr := strides(in)
	off := len(out) - len(in)
	coord := make([]int, len(out))
	for i := 0; i < n; i++ {
		j := 0
		for d := off; d < len(out); d++ {
			if in[d-off] != 1 {
				j += coord[d] * inStr[d-off]
			}
		}
		idx[i] = j
		for d := len(out) - 1; d >= 0; d-- {
			coord[d]++
			if coord[d] < out[d] {
				break
			}
			coord[d] = 0
		}
	}
	return idx
}
