package model

import (
	"fmt"
	"math"
)

// LayerNormalization (opset 17): the float reference and its expansion into operators
// the circuit lowering proves.

func init() {
	arities["LayerNormalization"] = arity{2, 3}
	extraOps["LayerNormalization"] = evalLayerNorm
}

// layerNormAxis resolves LayerNormalization's axis for rank: normalization runs over
// axes [axis, rank).
func layerNormAxis(n *Node, rank int) (int, error) {
	return normAxis(n, n.Attrs.Int("axis", -1), rank)
}

func evalLayerNorm(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	for _, o := range n.Outputs[1:] {
		if o != "" {
			return nil, fmt.Errorf("%w: %s: the Mean and InvStdDev outputs are not supported", ErrUnsupportedOp, n.Label())
		}
	}
	x := in[0]
	axis, err := layerNormAxis(n, len(x.Shape))
	if err != nil {
		return nil, err
	}
	norm := x.Shape[axis:]
	params := []*Tensor{in[1]}
	if len(in) > 2 && in[2] != nil {
		params = append(params, in[2])
	}
	idx := make([][]int, len(params))
	for i, t := range params {
		if s, err := broadcastShape(t.Shape, norm); err != nil || !sameShape(s, norm) {
			return nil, fmt.Errorf("%s: parameter shape %v does not broadcast to the normalized shape %v", n.Label(), t.Shape, norm)
		}
		idx[i] = broadcastIndex(t.Shape, norm)
	}
	eps := float64(float32(n.Attrs.Float("epsilon", 1e-5)))
	inner := numel(norm)
	return []*Tensor{normalizeRows(x, inner, eps, func(i int, v float64) float64 {
		y := v * params[0].Data[idx[0][i%inner]]
		if len(params) > 1 {
			y += params[1].Data[idx[1][i%inner]]
		}
		return y
	})}, nil
}

// ExpandLayerNorm rewrites every LayerNormalization into ReduceMean over the normalized
// axes, Sub, Mul, Add, Sqrt and Div, as ExpandInstanceNorm. Scale and B broadcast
// against the normalized (trailing) axes as they do against x. The returned graph
// shares g's tensors; g is not modified.
func ExpandLayerNorm(g *Graph) *Graph {
	return expandNodes(g, "LayerNormalization", func(out *Graph, n *Node, name func(string) string) {
		rank := len(g.Shapes[n.Inputs[0]])
		axis, _ := layerNormAxis(n, rank) // checked by the float reference at load
		var axes []int
		for a := axis; a < rank; a++ {
			axes = append(axes, a)
		}
		mean := lastAxisMean(g.Opset, out, name, axes...)
		bias := ""
		if len(n.Inputs) > 2 {
			bias = n.Inputs[2]
		}
		normalize(out, n, name, mean, n.Inputs[1], bias)
	})
}

// floats converts integers to a float tensor's data.
func floats(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func init() {
	arities["Range"] = arity{3, 3}
	extraOps["Range"] = evalRange
	constParams["Range"] = []int{0, 1, 2}
}

// evalRange is Range (opset 11): start, start+delta, ... up to but excluding limit. Its
// inputs must be constants (shapes are static), so it only ever folds.
func evalRange(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	var v [3]float64
	for i, t := range in {
		if t.Numel() != 1 {
			return nil, fmt.Errorf("%s: input %d has shape %v, want a scalar", n.Label(), i, t.Shape)
		}
		v[i] = t.Data[0]
	}
	start, limit, delta := v[0], v[1], v[2]
	if delta == 0 || math.IsNaN(start+limit+delta) || math.IsInf(start+limit+delta, 0) {
		return nil, fmt.Errorf("%s: start %v, limit %v, delta %v", n.Label(), start, limit, delta)
	}
	count := max(0, math.Ceil((limit-start)/delta))
	if count > MaxTensorElements {
		return nil, fmt.Errorf("%s: %v elements, over the limit", n.Label(), count)
	}
	out := NewTensor(int(count))
	for i := range out.Data {
		out.Data[i] = start + float64(i)*delta
	}
	out.DType = in[0].DType
	return []*Tensor{out}, nil
}
