package quant

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// QuantizeInputs converts float inputs to integers at the input scale, rejecting values
// outside the Bits range with an error naming the input.
func (p *Program) QuantizeInputs(inputs []*model.Tensor) ([][]int64, error) {
	if len(inputs) != len(p.Inputs) {
		return nil, fmt.Errorf("%w: model has %d inputs, got %d", model.ErrBadInput, len(p.Inputs), len(inputs))
	}
	out := make([][]int64, len(inputs))
	for i, t := range inputs {
		v := p.Values[p.Inputs[i]]
		bits := p.InputBits(i)
		lim := math.Ldexp(1, bits-1)
		if len(t.Data) != numel(v.Shape) {
			return nil, fmt.Errorf("%w: input %q wants %d values (shape %v), got %d", model.ErrBadInput, p.InputNames[i], numel(v.Shape), v.Shape, len(t.Data))
		}
		out[i] = make([]int64, len(t.Data))
		var io *QuantIO
		var ch func(int) int
		if p.InputQuant != nil && p.InputQuant[i] != nil {
			io = p.InputQuant[i]
			ch = io.channels(v.Shape)
		}
		for j, x := range t.Data {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%w: input %q element %d is %v", model.ErrBadInput, p.InputNames[i], j, x)
			}
			if io != nil {
				q, err := io.quantize(x, ch(j))
				if err != nil {
					return nil, fmt.Errorf("%w: input %q element %d: %v", model.ErrBadInput, p.InputNames[i], j, err)
				}
				out[i][j] = q
				continue
			}
			q := math.Round(math.Ldexp(x, v.Scale))
			if q >= lim || q < -lim {
				return nil, fmt.Errorf("%w: input %q element %d = %g is outside ±%g representable with the %d signed bits proven for this input at scale 2^%d",
					ErrOutOfRange, p.InputNames[i], j, x, math.Ldexp(lim, -v.Scale), bits, v.Scale)
			}
			out[i][j] = int64(q)
		}
	}
	return out, nil
}

// InputBits is the signed width float input i is range-checked to (its measured width
// or Bits; see Config.Widths).
func (p *Program) InputBits(i int) int {
	for _, l := range p.Layers {
		if l.Kind == KRangeChk && l.In[0] == p.Inputs[i] {
			return l.Bits
		}
	}
	return p.Bits
}

// ParamData returns the integer data of every param, indexed like p.Params.
func (p *Program) ParamData() [][]int64 {
	out := make([][]int64, len(p.Params))
	for i, par := range p.Params {
		out[i] = par.Data
	}
	return out
}

// Result is a reference evaluation: the integer outputs and every integer value.
type Result struct {
	Outputs [][]int64
	Values  [][]int64
}

// Eval runs the integer reference evaluator.
func (p *Program) Eval(inputs [][]int64) (*Result, error) {
	vals, err := Run[int64](p, &IntArith{}, inputs, p.ParamData())
	if err != nil {
		return nil, err
	}
	r := &Result{Values: vals}
	for _, id := range p.Outputs {
		r.Outputs = append(r.Outputs, vals[id])
	}
	return r, nil
}

// Dequantize converts integer outputs back to floats at the output scales.
func (p *Program) Dequantize(outputs [][]int64) []*model.Tensor {
	res := make([]*model.Tensor, len(outputs))
	for i, o := range outputs {
		v := p.Values[p.Outputs[i]]
		t := model.NewTensor(v.Shape...)
		var io *QuantIO
		var ch func(int) int
		if p.OutputQuant != nil && p.OutputQuant[i] != nil {
			io = p.OutputQuant[i]
			ch = io.channels(v.Shape)
		}
		for j, q := range o {
			if io != nil && io.Scale != nil {
				c := ch(j)
				t.Data[j] = model.DequantizeValue(q, io.Scale[c], io.Zero[c])
				continue
			}
			t.Data[j] = math.Ldexp(float64(q), -v.Scale)
		}
		res[i] = t
	}
	return res
}

// channels maps each element of a tensor of the given shape to its index into Scale
// and Zero.
func (io *QuantIO) channels(shape []int) func(int) int {
	if len(io.Scale) <= 1 {
		return func(int) int { return 0 }
	}
	return model.AxisOf(shape, io.Axis)
}

// quantize converts an input element of channel c: QuantizeLinear for a quantized float
// input, or a range and integrality check for an integer input.
func (io *QuantIO) quantize(x float64, c int) (int64, error) {
	if io.Scale != nil {
		return model.QuantizeValue(x, io.Scale[c], io.Zero[c], io.Lo, io.Hi), nil
	}
	if x != math.Trunc(x) || x < float64(io.Lo) || x > float64(io.Hi) {
		return 0, fmt.Errorf("%v is not an integer in [%d, %d]", x, io.Lo, io.Hi)
	}
	return int64(x), nil
}
