package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/zkml/zkml/model"
)

// maxPowExponent is the largest integer exponent Pow is lowered for (products by
// repeated squaring: at most 2·log2 of it multiplications per element).
const maxPowExponent = 64

// pow lowers Pow with a constant exponent: positive integers by repeated squaring
// from exact products (each a one-term linear layer and a rescale, as Mul), 0.5 by the
// Sqrt table. An exponent tensor holding several such values computes each power once
// and selects per element (a movement, free in the circuit). A runtime exponent, and
// any other constant (negative, zero, fractional), is refused naming the node.
func (lw *lowering) pow(n *model.Node) error {
	e, ok := lw.g.Consts[n.Inputs[1]]
	if !ok {
		return lw.unsupported(n, "the exponent is a runtime value (only constant exponents are supported)")
	}
	var exps []float64
	for _, v := range e.Data {
		if v != 0.5 && (v != math.Trunc(v) || v < 1 || v > maxPowExponent) {
			return lw.unsupported(n, fmt.Sprintf("exponent %g (supported: the integers 1 to %d and 0.5)", v, maxPowExponent))
		}
		if !slices.Contains(exps, v) {
			exps = append(exps, v)
		}
	}
	slices.Sort(exps)
	x, _, err := lw.operand(n, 0, lw.p.Scale)
	if err != nil {
		return err
	}
	xs := lw.p.Values[x].Shape
	shape, err := model.BroadcastShape(xs, e.Shape)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", model.ErrInvalidModel, n.Label(), err)
	}
	powers := map[int]int{1: x}
	ids := make([]int, len(exps))
	for i, v := range exps {
		if v == 0.5 {
			if ids[i], err = lw.sqrtOf(n, x); err != nil {
				return err
			}
			continue
		}
		if ids[i], err = lw.power(n, powers, int(v)); err != nil {
			return err
		}
	}
	if len(ids) == 1 && slices.Equal(shape, xs) {
		lw.ids[n.Outputs[0]] = ids[0]
		return nil
	}
	// out[i] = power(e[i]) of x[i], both broadcast to the output shape.
	ix, ie := model.BroadcastIndex(xs, shape), model.BroadcastIndex(e.Shape, shape)
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: ids}
	bound := 0.0
	for _, id := range ids {
		bound = math.Max(bound, lw.p.Values[id].Bound)
	}
	per := numel(xs)
	for i := range ix {
		k := slices.Index(exps, e.Data[ie[i]])
		l.Index = append(l.Index, int32(k*per+ix[i]))
	}
	lw.ids[n.Outputs[0]] = lw.layer(l, shape, lw.p.Scale, bound)
	return nil
}

// power returns x^k (k >= 1) by repeated squaring, memoizing the powers computed.
func (lw *lowering) power(n *model.Node, powers map[int]int, k int) (int, error) {
	if id, ok := powers[k]; ok {
		return id, nil
	}
	var a, b int
	var err error
	if k%2 == 0 {
		if a, err = lw.power(n, powers, k/2); err != nil {
			return 0, err
		}
		b = a
	} else {
		if a, err = lw.power(n, powers, k-1); err != nil {
			return 0, err
		}
		b = powers[1]
	}
	id, err := lw.product(n, a, b)
	if err != nil {
		return 0, err
	}
	powers[k] = id
	return id, nil
}

// product appends a*b elementwise for two values of the same shape at the activation
// scale, rescaled back to it.
func (lw *lowering) product(n *model.Node, a, b int) (int, error) {
	p := lw.p
	shape := p.Values[a].Shape
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{a, b}}
	for i := range numel(shape) {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(i))
		l.TB = append(l.TB, int32(i))
	}
	l.TermStart = append(l.TermStart, int32(numel(shape)))
	accScale := p.Values[a].Scale + p.Values[b].Scale
	acc, err := lw.accumulate(n, l, shape, accScale)
	if err != nil {
		return 0, err
	}
	return lw.rescale(n, acc, accScale-p.Scale), nil
}

// sqrtOf lowers sqrt(x) with the Sqrt table (the same table, domain and error
// accounting as a Sqrt node).
func (lw *lowering) sqrtOf(n *model.Node, x int) (int, error) {
	tmp := n.Outputs[0] + "/sqrt"
	sq := &model.Node{Name: n.Name, Op: "Sqrt", Inputs: n.Inputs[:1], Outputs: []string{tmp}, Attrs: model.Attrs{}}
	if _, err := lw.activation(sq); err != nil {
		return 0, err
	}
	id := lw.ids[tmp]
	delete(lw.ids, tmp)
	return id, nil
}
