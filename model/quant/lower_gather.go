package quant

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// gatherRows lowers Gather of a constant tensor E by runtime indices (an embedding
// lookup) from existing layer kinds, one-hot style:
//
//  1. two range checks prove each index i in [0, V) (at the activation scale): an index
//     outside is an out-of-range error, as the float reference's;
//  2. Equal against the positions 0..V-1 (two clamps per position, as the Equal
//     lowering) gives a one-hot row h, proven: at most one position equals i;
//  3. out = h · E, a linear layer whose terms read E's rows: with fixed parameters
//     the products are constant multiples, free in R1CS.
//
// A wrong index or row cannot prove: every step is a proven function of the index.
// Cost per index: 2 range checks plus 2·V clamps; an index that is not an integer at
// the activation scale selects no row (zeros).
func (lw *lowering) gatherRows(n *model.Node) error {
	p := lw.p
	e := lw.g.Consts[n.Inputs[0]]
	rank := len(e.Shape)
	axis := n.Attrs.Int("axis", 0)
	if axis < -int64(rank) || axis >= int64(rank) {
		return fmt.Errorf("%w: %s: axis %d out of range for rank %d", model.ErrInvalidModel, n.Label(), axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	ax := int(axis)
	V := e.Shape[ax]
	idx, _, err := lw.operand(n, 1, p.Scale)
	if err != nil {
		return err
	}
	is := p.Values[idx].Shape
	K := numel(is)
	if p.Values[idx].Scale != p.Scale {
		return lw.unsupported(n, "indices at a scale other than the activation scale")
	}
	// 1. 0 <= i <= M, M = (V-1)·2^Scale: i - 2^(b-1) and i + 2^(b-1) - M - 1 both lie in
	// b signed bits, with 2^(b-1) > M.
	M := int64(V-1) << p.Scale
	b := bitsFor(float64(M+1)) + 1
	half := int64(1) << (b - 1)
	checked := idx
	for _, fill := range []int64{-half, half - M - 1} {
		checked = lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KRangeChk, In: []int{checked}, Bits: b, Fill: fill}, is, p.Scale, float64(M))
	}
	// 2. h[k, j] = [i_k == j], by the Equal lowering on i as a column [K, 1] against
	// the positions [V].
	col := n.Outputs[0] + "/index"
	lw.ids[col] = lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: []int{checked}, Index: int32s(identity(K))}, []int{K, 1}, p.Scale, float64(M))
	positions := n.Outputs[0] + "/positions"
	pos := model.NewTensor(V)
	for j := range pos.Data {
		pos.Data[j] = float64(j)
	}
	lw.g.Consts[positions] = pos
	hot := n.Outputs[0] + "/onehot"
	eq := &model.Node{Name: n.Name, Op: "Equal", Inputs: []string{col, positions}, Outputs: []string{hot}, Attrs: model.Attrs{}}
	err = lw.compare(eq)
	h := lw.ids[hot]
	delete(lw.ids, col)
	delete(lw.ids, hot)
	delete(lw.g.Consts, positions)
	if err != nil {
		return err
	}
	// 3. out[o, k, r] = sum_j h[k, j] · E[o, j, r].
	eid, _, err := lw.operand(n, 0, p.Scale)
	if err != nil {
		return err
	}
	outer, inner := numel(e.Shape[:ax]), numel(e.Shape[ax+1:])
	shape := append(append(append([]int{}, e.Shape[:ax]...), is...), e.Shape[ax+1:]...)
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{h, eid}}
	for o := range outer {
		for k := range K {
			for r := range inner {
				l.TermStart = append(l.TermStart, int32(len(l.TA)))
				for j := range V {
					l.TA = append(l.TA, int32(k*V+j))
					l.TB = append(l.TB, int32((o*V+j)*inner+r))
				}
			}
		}
	}
	l.TermStart = append(l.TermStart, int32(len(l.TA)))
	out, err := lw.accumulate(n, l, shape, p.Scale)
	if err != nil {
		return err
	}
	// At most one h[k, j] is 1, so the output is bounded by E's largest entry, not by
	// the sum accumulate assumes.
	p.Values[out].Bound = math.Min(p.Values[out].Bound, p.Values[eid].Bound)
	lw.ids[n.Outputs[0]] = out
	return nil
}
