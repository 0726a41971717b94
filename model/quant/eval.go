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
	lim := math.Ldexp(1, p.Bits-1)
	out := make([][]int64, len(inputs))
	for i, t := range inputs {
		v := p.Values[p.Inputs[i]]
		if len(t.Data) != numel(v.Shape) {
			return nil, fmt.Errorf("%w: input %q wants %d values (shape %v), got %d", model.ErrBadInput, p.InputNames[i], numel(v.Shape), v.Shape, len(t.Data))
		}
		out[i] = make([]int64, len(t.Data))
		for j, x := range t.Data {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%w: input %q element %d is %v", model.ErrBadInput, p.InputNames[i], j, x)
			}
			q := math.Round(math.Ldexp(x, v.Scale))
			if q >= lim || q < -lim {
				return nil, fmt.Errorf("%w: input %q element %d = %g is outside ±%g representable with %d bits at scale 2^%d",
					ErrOutOfRange, p.InputNames[i], j, x, math.Ldexp(lim, -v.Scale), p.Bits, v.Scale)
			}
			out[i][j] = int64(q)
		}
	}
	return out, nil
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
		for j, q := range o {
			t.Data[j] = math.Ldexp(float64(q), -v.Scale)
		}
		res[i] = t
	}
	return res
}
