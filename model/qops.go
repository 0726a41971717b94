package model

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// Quantized operators: QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv,
// MatMulInteger and ConvInteger. The reference follows the ONNX definitions: scales are
// float32, rounding is half to even and results saturate to the output type. The
// requantization of QLinearMatMul and QLinearConv (an int32 accumulator times
// x_scale*w_scale/y_scale) is computed exactly in integers, as the circuit proves it:
// the float32 multiplier is a dyadic rational m / 2^k (Dyadic), so
// round(acc * multiplier) = RoundShiftEven(acc*m, k).

func init() {
	for op, a := range map[string]arity{
		"QuantizeLinear": {2, 3}, "DequantizeLinear": {2, 3},
		"QLinearMatMul": {8, 8}, "QLinearConv": {8, 9},
		"MatMulInteger": {2, 4}, "ConvInteger": {2, 4},
	} {
		arities[op] = a
	}
	for op, f := range map[string]floatOp{
		"QuantizeLinear": evalQuantize, "DequantizeLinear": evalDequantize,
		"QLinearMatMul": evalQLinear, "QLinearConv": evalQLinear,
		"MatMulInteger": evalInteger, "ConvInteger": evalInteger,
	} {
		extraOps[op] = f
	}
	// Scales and zero points are model constants.
	for op, pos := range map[string][]int{
		"QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2},
		"QLinearMatMul": {1, 2, 4, 5, 6, 7}, "QLinearConv": {1, 2, 4, 5, 6, 7},
		"MatMulInteger": {2, 3}, "ConvInteger": {2, 3},
	} {
		constParams[op] = pos
	}
}

// IntRange is the range of an ONNX integer element type.
func IntRange(dt int32) (lo, hi int64, ok bool) {
	switch onnx.TensorProto_DataType(dt) {
	case onnx.TensorProto_UINT8:
		return 0, math.MaxUint8, true
	case onnx.TensorProto_INT8:
		return math.MinInt8, math.MaxInt8, true
	case onnx.TensorProto_UINT16:
		return 0, math.MaxUint16, true
	case onnx.TensorProto_INT16:
		return math.MinInt16, math.MaxInt16, true
	case onnx.TensorProto_INT32:
		return math.MinInt32, math.MaxInt32, true
	case onnx.TensorProto_BOOL:
		return 0, 1, true
	}
	return 0, 0, false
}

// QuantType is the integer type QuantizeLinear produces: its zero point's type, else
// the output_dtype attribute (opset 21), else uint8.
func QuantType(n *Node, zero *Tensor) int32 {
	if zero != nil && zero.DType != 0 {
		return zero.DType
	}
	return int32(n.Attrs.Int("output_dtype", int64(onnx.TensorProto_UINT8)))
}

// QuantizeValue is QuantizeLinear on one element: clamp(round_half_even(x / scale) +
// zero, lo, hi), with x and scale in float32.
func QuantizeValue(x, scale float64, zero, lo, hi int64) int64 {
	q := math.RoundToEven(float64(float32(x) / float32(scale)))
	q = math.Max(float64(lo-zero), math.Min(float64(hi-zero), q)) // also bounds ±Inf
	return int64(q) + zero
}

// DequantizeValue is DequantizeLinear on one element: (q - zero) * scale in float32.
func DequantizeValue(q int64, scale float64, zero int64) float64 {
	return float64(float32(float32(q-zero) * float32(scale)))
}

// Dyadic writes a positive finite f exactly as m / 2^k with k >= 0 and m odd unless
// k == 0. A float32 value has m < 2^24.
func Dyadic(f float64) (m int64, k int, err error) {
	if !(f > 0) || math.IsInf(f, 0) {
		return 0, 0, fmt.Errorf("scale %v must be positive and finite", f)
	}
	frac, exp := math.Frexp(f) // f = frac * 2^exp, frac in [0.5, 1)
	m, k = int64(math.Ldexp(frac, 53)), 53-exp
	for k > 0 && m&1 == 0 {
		m >>= 1
		k--
	}
	for ; k < 0; k++ {
		if m > math.MaxInt64/2 {
			return 0, 0, fmt.Errorf("scale %v is too large", f)
		}
		m <<= 1
	}
	return m, k, nil
}

// RoundShiftEven returns t / 2^k rounded half to even.
func RoundShiftEven(t int64, k int) int64 {
	if k == 0 {
		return t
	}
	if k > 62 {
		return 0 // |t| < 2^63 <= 2^(k-1): |t / 2^k| < 1/2
	}
	q := t >> k // floor
	r := t - q<<k
	half := int64(1) << (k - 1)
	if r > half || (r == half && q&1 == 1) {
		q++
	}
	return q
}

// RequantScale is the float32 multiplier a*b/y of QLinearMatMul and QLinearConv,
// computed in float32 as the ONNX reference does.
func RequantScale(a, b, y float64) float64 {
	return float64(float32(float32(float32(a)*float32(b)) / float32(y)))
}

// Requantize returns round(acc * scale) for a positive float scale, exactly.
func Requantize(acc int64, scale float64) (int64, error) {
	m, k, err := Dyadic(scale)
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(uint64(max(acc, -acc)), uint64(m))
	if hi != 0 || lo >= 1<<62 {
		return 0, fmt.Errorf("accumulator %d times scale %v overflows", acc, scale)
	}
	return RoundShiftEven(acc*m, k), nil
}

// AxisIndex maps each element of a tensor of shape x to its entry of a quantization
// parameter p: a scalar (or one-element) p maps every element to 0; a 1-D p of length
// x[axis] maps by the element's coordinate on that axis (axis may be negative).
func AxisIndex(x []int, p *Tensor, axis int) (func(i int) int, error) {
	if p == nil || p.Numel() == 1 {
		return func(int) int { return 0 }, nil
	}
	if axis < 0 {
		axis += len(x)
	}
	if len(p.Shape) != 1 || axis < 0 || axis >= len(x) || p.Shape[0] != x[axis] {
		return nil, fmt.Errorf("quantization parameter of shape %v does not match axis %d of %v", p.Shape, axis, x)
	}
	return AxisOf(x, axis), nil
}

// AxisOf maps each element of a tensor of the given shape (row-major) to its
// coordinate on axis, 0 <= axis < len(shape).
func AxisOf(shape []int, axis int) func(i int) int {
	inner, d := numel(shape[axis+1:]), shape[axis]
	return func(i int) int { return (i / inner) % d }
}

func optional(in []*Tensor, i int) *Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// at is element i of a per-channel parameter, or its only element.
func at(t *Tensor, i int) float64 {
	if t == nil {
		return 0
	}
	if t.Numel() == 1 {
		return t.Data[0]
	}
	return t.Data[i]
}

// quantChannels maps each element of x to its scale and zero point for QuantizeLinear
// and DequantizeLinear (axis attribute; the blocked form of opset 21 is rejected).
func quantChannels(n *Node, x, scale, zero *Tensor) (func(int) int, error) {
	if n.Attrs.Int("block_size", 0) != 0 {
		return nil, fmt.Errorf("%w: %s: blocked quantization (block_size) is not supported", ErrUnsupportedOp, n.Label())
	}
	ch, err := AxisIndex(x.Shape, scale, int(n.Attrs.Int("axis", 1)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Label(), err)
	}
	if zero != nil && zero.Numel() != 1 && zero.Numel() != scale.Numel() {
		return nil, fmt.Errorf("%s: zero point has %d values for %d scales", n.Label(), zero.Numel(), scale.Numel())
	}
	return ch, nil
}

func evalQuantize(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	x, scale, zero := in[0], in[1], optional(in, 2)
	dt := QuantType(n, zero)
	lo, hi, ok := IntRange(dt)
	if !ok {
		return nil, fmt.Errorf("%w: %s: output type %v is not supported", ErrUnsupportedOp, n.Label(), onnx.TensorProto_DataType(dt))
	}
	ch, err := quantChannels(n, x, scale, zero)
	if err != nil {
		return nil, err
	}
	out := NewTensor(x.Shape...)
	out.DType = dt
	for i, v := range x.Data {
		c := ch(i)
		if !(scale.Data[c] > 0) {
			return nil, fmt.Errorf("%s: scale %v must be positive", n.Label(), scale.Data[c])
		}
		out.Data[i] = float64(QuantizeValue(v, scale.Data[c], int64(at(zero, c)), lo, hi))
	}
	return []*Tensor{out}, nil
}

func evalDequantize(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	x, scale, zero := in[0], in[1], optional(in, 2)
	ch, err := quantChannels(n, x, scale, zero)
	if err != nil {
		return nil, err
	}
	out := NewTensor(x.Shape...)
	for i, v := range x.Data {
		c := ch(i)
		out.Data[i] = DequantizeValue(int64(v), scale.Data[c], int64(at(zero, c)))
	}
	return []*Tensor{out}, nil
}

// ZeroPointAxis is the axis of a per-channel zero point or scale of operand k of a
// MatMulInteger/QLinearMatMul (0: A, per row; 1: B, per column) or ConvInteger/QLinearConv
// (0: X, per tensor only; 1: W, per output channel), for operand shape x.
func ZeroPointAxis(op string, k int, x []int) int {
	conv := op == "Conv" || op == "ConvInteger" || op == "QLinearConv"
	switch {
	case conv && k == 1:
		return 0
	case k == 0:
		return len(x) - 2
	}
	return len(x) - 1
}

// subZero returns x - zero, with zero per tensor or per channel of operand k.
func subZero(n *Node, x, zero *Tensor, k int) (*Tensor, error) {
	out := x.Clone()
	if zero == nil {
		return out, nil
	}
	ch, err := AxisIndex(x.Shape, zero, ZeroPointAxis(n.Op, k, x.Shape))
	if err != nil {
		return nil, fmt.Errorf("%s: zero point: %w", n.Label(), err)
	}
	for i := range out.Data {
		out.Data[i] -= zero.Data[ch(i)]
	}
	out.DType = int32(onnx.TensorProto_INT32)
	return out, nil
}

// integerProduct computes the exact int32 accumulator of MatMul or Conv on
// zero-point-shifted operands (plus an int32 bias for Conv).
func integerProduct(n *Node, x, xz, w, wz, bias *Tensor) (*Tensor, error) {
	a, err := subZero(n, x, xz, 0)
	if err != nil {
		return nil, err
	}
	b, err := subZero(n, w, wz, 1)
	if err != nil {
		return nil, err
	}
	var out []*Tensor
	if n.Op == "MatMulInteger" || n.Op == "QLinearMatMul" {
		out, err = evalMatMul(n, []*Tensor{a, b}, 0)
	} else {
		args := []*Tensor{a, b}
		if bias != nil {
			args = append(args, bias)
		}
		out, err = evalConv(n, args, 0)
	}
	if err != nil {
		return nil, err
	}
	out[0].DType = int32(onnx.TensorProto_INT32)
	return out[0], nil
}

func evalInteger(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	acc, err := integerProduct(n, in[0], optional(in, 2), in[1], optional(in, 3), nil)
	if err != nil {
		return nil, err
	}
	return []*Tensor{acc}, nil
}

// QLinearParams names the inputs of QLinearMatMul and QLinearConv, which share one
// layout: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point
// (and QLinearConv's int32 bias).
type QLinearParams struct {
	X, XScale, XZero, W, WScale, WZero, YScale, YZero, Bias *Tensor
}

// QLinearInputs reads a QLinearMatMul or QLinearConv node's inputs.
func QLinearInputs(in []*Tensor) QLinearParams {
	return QLinearParams{in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], optional(in, 8)}
}

// OutputRange checks that x and y are quantized per tensor (only the weight may be per
// channel) and returns the range of the output's integer type.
func (q QLinearParams) OutputRange(n *Node) (lo, hi int64, err error) {
	if q.XScale.Numel() != 1 || q.YScale.Numel() != 1 || q.YZero.Numel() != 1 {
		return 0, 0, fmt.Errorf("%w: %s: only the weight may be quantized per channel", ErrUnsupportedOp, n.Label())
	}
	dt := QuantType(n, q.YZero)
	lo, hi, ok := IntRange(dt)
	if !ok {
		return 0, 0, fmt.Errorf("%w: %s: output type %v is not supported", ErrUnsupportedOp, n.Label(), onnx.TensorProto_DataType(dt))
	}
	return lo, hi, nil
}

// Multipliers returns the requantization multiplier per output channel (one entry when
// the weight scale is per tensor).
func (q QLinearParams) Multipliers() []float64 {
	ms := make([]float64, q.WScale.Numel())
	for c := range ms {
		ms[c] = RequantScale(q.XScale.Data[0], q.WScale.Data[c], q.YScale.Data[0])
	}
	return ms
}

func evalQLinear(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	q := QLinearInputs(in)
	lo, hi, err := q.OutputRange(n)
	if err != nil {
		return nil, err
	}
	acc, err := integerProduct(n, q.X, q.XZero, q.W, q.WZero, q.Bias)
	if err != nil {
		return nil, err
	}
	// The multiplier follows the weight's channel: output axis 1 for Conv, the last
	// axis (columns) for MatMul.
	axis := 1
	if n.Op == "QLinearMatMul" {
		axis = len(acc.Shape) - 1
	}
	ch, err := AxisIndex(acc.Shape, q.WScale, axis)
	if err != nil {
		return nil, fmt.Errorf("%s: weight scale: %w", n.Label(), err)
	}
	ms := q.Multipliers()
	out := NewTensor(acc.Shape...)
	out.DType = QuantType(n, q.YZero)
	for i, v := range acc.Data {
		r, err := Requantize(int64(v), ms[ch(i)])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Label(), err)
		}
		y := r + int64(q.YZero.Data[0])
		out.Data[i] = float64(min(max(y, lo), hi))
	}
	return []*Tensor{out}, nil
}
