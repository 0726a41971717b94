package quant

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// softmaxReduced lowers Softmax when the exp table of the Softmax gadget (KSoftmax)
// would exceed 2^maxTableBits entries: composed like LogSoftmax, so that exp goes
// through the range reductions of lookupValue (expSplit), then
// y = round(e·2^s / S) by the range-checked division. Per row: m = max(x), d = x - m
// in [-2·Bound, 0], e = exp(d) (the maximum contributes exactly exp(0) = 2^s, so
// S = Σ e >= 2^s > 0 and every e <= S: the quotient is at most 2^s).
func (lw *lowering) softmaxReduced(n *model.Node, x int, starts []int, length, stride int) error {
	p := lw.p
	v := p.Values[x]
	_, e, groups, rowOf, err := lw.rowExp(n, x, starts, length, stride)
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

// expSplit lowers e = exp(d) for d <= 0 (Softmax's and LogSoftmax's x - max) when one
// table would be too big, as exp(d) = exp(r·2^c)·exp(l) with r = round(d / 2^c) (a
// range-checked rescale, which proves d = r·2^c + l with l in [-2^(c-1), 2^(c-1))):
// a table H of exp(r·2^c) for r <= 0 (flat 0 below where it underflows), a table L of
// exp(l) of 2^c entries, one product per element and its rescale. c minimizes the two
// tables' entries. With H and L off by at most eh and el steps, the product is off by
// at most el·1 + eh·max(L)/2^s, plus half a step for the rescale. ok is false when fn
// is not exp of a non-positive input.
func (lw *lowering) expSplit(n *model.Node, x int, fn tableFn) (int, bool, error) {
	p := lw.p
	if fn.name != "exp" || fn.strictHi || fn.inHi != 0 {
		return 0, false, nil
	}
	s := p.Scale
	v := p.Values[x]
	var hi tableFn
	var herr float64
	best := -1
	for c := 1; c <= maxTableBits; c++ {
		h := tableFn{name: fmt.Sprintf("exp(r*2^%d)", c), f: func(u float64) float64 { return math.Exp(math.Ldexp(u, c)) },
			lo: -1, hi: 0, inLo: math.MinInt64, inHi: 0}
		e, err := lw.fitDomain(n, &h, lw.rescaledBound(v.Bound, c))
		if err != nil {
			continue
		}
		if best < 0 || (h.hi-h.lo+1)+(int64(1)<<c) < (hi.hi-hi.lo+1)+(int64(1)<<best) {
			best, hi, herr = c, h, e
		}
	}
	if best < 0 {
		return 0, true, fmt.Errorf("%w: %w: %s: exp of inputs down to %g does not fit two tables of 2^%d entries at scale 2^-%d; lower --scale or bound the input",
			model.ErrInvalidModel, ErrOutOfRange, n.Label(), -math.Ldexp(v.Bound, -s), maxTableBits, s)
	}
	c := best
	half := int64(1) << (c - 1)
	lo := tableFn{name: "exp", f: math.Exp, lo: -half, hi: half - 1, inLo: -half, inHi: half - 1}
	lerr, err := lw.fitDomain(n, &lo, float64(half))
	if err != nil {
		return 0, true, err
	}
	r := lw.rescale(n, x, c)
	if err := lw.fitted(n, r, lw.rescaledBound(v.Bound, c)); err != nil {
		return 0, true, err
	}
	rest := lw.addv(n, x, 1, r, -(int64(1) << c), nil) // l = d - r·2^c, proven in [-half, half) by the rescale
	p.Values[rest].Bound = float64(half)
	eh := lw.lookupLayer(n, r, hi, 0)
	el := lw.lookupLayer(n, rest, lo, 0)
	maxL := 0.0
	for _, y := range lw.table(lo.name, lo.lo, lo.hi, lo.f).Values {
		maxL = math.Max(maxL, float64(y))
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{eh, el}}
	for i := 0; i < numel(v.Shape); i++ {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(i))
		l.TB = append(l.TB, int32(i))
	}
	l.TermStart = append(l.TermStart, int32(numel(v.Shape)))
	out, err := lw.linearOut(n, l, v.Shape, 2*s)
	if err != nil {
		return 0, true, err
	}
	// In steps: el·H/2^s with H <= 2^s, eh·L/2^s, and the rescale's half step.
	steps := math.Ldexp(lerr, s) + math.Ldexp(herr, s)*maxL/math.Ldexp(1, s) + 0.5
	p.Layers[len(p.Layers)-1].MaxError = math.Ldexp(steps, -s)
	return out, true, nil
}

// rowExp lowers the common start of Softmax and LogSoftmax over the rows of x (row r:
// starts[r] + i·stride, i < length): m[r] = max of row r, d = x - m[row] in
// [-2·Bound, 0], and e = exp(d) through an exp table clamped below at -(2^LookupBits - 1)
// steps (lookupValue applies its range reductions). It returns d, e, the rows' element
// indices and each element's row.
func (lw *lowering) rowExp(n *model.Node, x int, starts []int, length, stride int) (d, e int, groups [][]int, rowOf []int, err error) {
	p := lw.p
	v := p.Values[x]
	ml := &Layer{Name: n.Name, Op: n.Op, Kind: KMax, In: []int{x}, Bits: bitsFor(v.Bound)}
	rowOf = make([]int, numel(v.Shape))
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
	d = lw.addv(n, x, 1, m, -1, rowOf)
	size := int64(1) << p.LookupBits
	e, err = lw.lookupValue(n, d, tableFn{name: "exp", f: math.Exp, lo: -(size - 1), hi: 0, inLo: math.MinInt64, inHi: 0})
	return d, e, groups, rowOf, err
}
