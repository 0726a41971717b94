package quant

import (
	"math"

	"github.com/zkml/zkml/model"
)

// softmaxReduced lowers Softmax when the exp table of the Softmax gadget (KSoftmax)
// would exceed 2^maxTableBits entries: composed like LogSoftmax, so that exp goes
// through the range reductions of lookupValue (a coarser table), then
// y = round(e·2^s / S) by the range-checked division. Per row: m = max(x), d = x - m
// in [-2·Bound, 0], e = exp(d) (the maximum contributes exactly exp(0) = 2^s, so
// S = Σ e >= 2^s > 0 and every e <= S: the quotient is at most 2^s).
func (lw *lowering) softmaxReduced(n *model.Node, x int, starts []int, length, stride int) error {
	p := lw.p
	v := p.Values[x]
	ml := &Layer{Name: n.Name, Op: n.Op, Kind: KMax, In: []int{x}, Bits: bitsFor(v.Bound)}
	rowOf := make([]int, numel(v.Shape))
	var groups [][]int
	for r, s := range starts {
		row := make([]int, length)
		for i := range row {
			row[i] = s + i*stride
			rowOf[row[i]] = r
		}
		groups = append(groups, row)
		ml.Groups = append(ml.Groups, int32s(row))
	}
	m := lw.layer(ml, []int{len(starts)}, p.Scale, v.Bound)
	d := lw.addv(n, x, 1, m, -1, rowOf)
	size := int64(1) << p.LookupBits
	e, err := lw.lookupValue(n, d, tableFn{name: "exp", f: math.Exp, lo: -(size - 1), hi: 0, inLo: math.MinInt64, inHi: 0})
	if err != nil {
		return err
	}
	expErr := p.Layers[len(p.Layers)-1].MaxError
	sum, err := lw.sumGroups(n, e, groups, []int{len(starts)}, false, false)
	if err != nil {
		return err
	}
	// S at every element of its row.
	bl := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: []int{sum}, Index: int32s(rowOf)}
	sb := lw.layer(bl, v.Shape, p.Scale, p.Values[sum].Bound)
	one := int64(1) << p.Scale
	eb, sbb := p.Values[e].Bound, p.Values[sb].Bound
	// DivFloor(2·e·2^s + S, 2S): numerator <= 2·eb·2^s + sbb, divisor 2S <= 2·sbb.
	num := 2*eb*float64(one) + sbb
	den := 2 * sbb
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KDiv, In: []int{e, sb}, MA: one,
		NumBits: bitsFor(num) - 1, DenBits: bitsFor(den) - 1, Bits: p.Scale + 2}
	// Each exp is off by at most expErr and the row's sum (at least 1) by len·expErr,
	// so e/S by at most (len+1)·expErr, plus the division's rounding (half a step).
	l.MaxError = float64(length+1)*expErr + math.Ldexp(0.5, -p.Scale)
	lw.ids[n.Outputs[0]] = lw.layer(l, v.Shape, p.Scale, float64(one))
	return nil
}
