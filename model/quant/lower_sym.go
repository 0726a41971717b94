package quant

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// Range reduction by symmetry: where the table of a function over the whole input
// range would exceed 2^maxTableBits entries, a function with one of the symmetries
// below is tabulated on x >= 0 only. The sign split is proven by the ReLU gadget (a
// comparison): p = max(x, 0) and q = p - x = max(-x, 0) are both >= 0 and one of them
// is 0, so a prover that claims the wrong sign, or reads the wrong half, fails.
//
//   - odd about f(0) (f(x) + f(-x) = 2 f(0): tanh, erf, sigmoid, hardsigmoid with
//     beta 0.5): y = G(p) - G(q) + f(0), with G(t) = f(t) - f(0) tabulated for t >= 0
//     (G(0) = 0, so the term of the other half vanishes exactly);
//   - shifted by the identity (f(x) - f(-x) = x: softplus, both GELUs):
//     y = F(p + q) - q, with F = f tabulated for t >= 0 (p + q = |x|).

type symmetry int

const (
	symNone  symmetry = iota
	symOdd            // f(x) + f(-x) = 2 f(0)
	symShift          // f(x) - f(-x) = x
)

// symTolerance is how far (in output steps) a function may stray from a symmetry on the
// sampled points and still be reduced by it; the deviation seen is added to the
// reported error bound.
const symTolerance = 1e-3

// symmetryOf classifies f on the fixed-point inputs |x| <= B at scale s (sampled at
// every point near 0 and geometrically beyond), returning the largest deviation seen
// from the symmetry, in output steps. Points where f is not finite are skipped.
func symmetryOf(f func(float64) float64, s int, B int64) (symmetry, float64) {
	c := f(0)
	if math.IsNaN(c) || math.IsInf(c, 0) || B < 1 {
		return symNone, 0
	}
	oddDev, shiftDev := 0.0, 0.0
	for d := int64(1); d <= B; {
		x := math.Ldexp(float64(d), -s)
		a, b := f(x), f(-x)
		if !math.IsNaN(a) && !math.IsInf(a, 0) && !math.IsNaN(b) && !math.IsInf(b, 0) {
			oddDev = math.Max(oddDev, math.Abs(math.Ldexp(a+b-2*c, s)))
			shiftDev = math.Max(shiftDev, math.Abs(math.Ldexp(a-b-x, s)))
		}
		switch {
		case d == B:
			d++
		case d < 4096:
			d++
		default:
			d = min(B, d+d/256)
		}
	}
	switch {
	case oddDev <= symTolerance:
		return symOdd, oddDev
	case shiftDev <= symTolerance:
		return symShift, shiftDev
	}
	return symNone, 0
}

// symmetricLookup lowers y = f(x) through a table of f on x >= 0 when f has a
// symmetry; ok is false when it has none (or fn is a strict or one-sided table).
// The output's layer reports the worst-case error: the half table's, plus the
// rounding of f(0) and the symmetry deviation measured by symmetryOf.
func (lw *lowering) symmetricLookup(n *model.Node, x int, fn tableFn) (int, bool, error) {
	p := lw.p
	v := p.Values[x]
	if fn.strictHi || fn.inLo != 0 || fn.inHi != 0 {
		return 0, false, nil
	}
	s := p.Scale
	B := int64(math.Min(math.Floor(v.Bound), MaxBound))
	sym, dev := symmetryOf(fn.f, s, B)
	if sym == symNone {
		return 0, false, nil
	}
	f := fn.f
	half := fn
	half.lo, half.inLo, half.inHi, half.slopeLo = 0, 0, B, 0
	half.hi = max(fn.hi, 0)
	c := f(0)
	C := int64(0)
	if sym == symOdd {
		half.name = fn.name + "-f(0)|x>=0"
		half.f = func(t float64) float64 { return f(t) - c }
		C = int64(math.Round(math.Ldexp(c, s)))
	} else {
		half.name = fn.name + "|x>=0"
	}
	plan, err := lw.planTable(n, half, v.Bound)
	if err != nil {
		return 0, true, err
	}
	maxErr := plan.maxErr
	pos := lw.relu(n, x)
	neg := lw.addv(n, pos, 1, x, -1, nil) // max(-x, 0)
	p.Values[neg].Bound = v.Bound
	var out int
	if sym == symOdd {
		a, err := lw.applyPlan(n, pos, plan, 0)
		if err != nil {
			return 0, true, err
		}
		b, err := lw.applyPlan(n, neg, plan, 0)
		if err != nil {
			return 0, true, err
		}
		out = lw.addv(n, a, 1, b, -1, nil)
		if C != 0 {
			k, err := lw.newParam(half.name+"(0)", &model.Tensor{Shape: []int{1}, Data: []float64{math.Ldexp(float64(C), -s)}}, s, true)
			if err != nil {
				return 0, true, err
			}
			out = lw.addv(n, out, 1, k, 1, make([]int, numel(v.Shape)))
		}
	} else {
		abs := lw.addv(n, pos, 1, neg, 1, nil)
		p.Values[abs].Bound = v.Bound
		t, err := lw.applyPlan(n, abs, plan, 0)
		if err != nil {
			return 0, true, err
		}
		out = lw.addv(n, t, 1, neg, -1, nil)
	}
	last := p.Layers[len(p.Layers)-1]
	round := 0.0 // f(0)'s rounding, added back in the odd case
	if sym == symOdd {
		round = math.Abs(float64(C) - math.Ldexp(c, s))
	}
	last.MaxError = maxErr + math.Ldexp(round+dev, -s)
	return out, true, nil
}

// A coarser table: where even a reduced table would exceed 2^maxTableBits entries, the
// input is first rescaled by 2^c (r = round(x / 2^c), range-checked like any rescale)
// and the table holds f(r·2^c), for the smallest c that fits. The output then errs by
// the table's own error plus at most Lip·2^(c-1) steps, Lip the largest change of f
// between adjacent inputs (in output steps), since |x - r·2^c| <= 2^(c-1).

// maxCoarseShift bounds c.
const maxCoarseShift = 8

// tablePlan is how a lookup of one function is laid out: fn with its fitted domain,
// read at x directly (shift 0) or at round(x / 2^shift).
type tablePlan struct {
	fn     tableFn
	shift  int
	maxErr float64
	bound  float64 // the input bound the table was fitted to (after the shift)
}

// planTable fits fn to inputs |x| <= bound: directly, or else through the coarsest
// table needed (non-strict functions only); the error is the direct fit's when no
// coarser table fits either.
func (lw *lowering) planTable(n *model.Node, fn tableFn, bound float64) (tablePlan, error) {
	direct := fn
	maxErr, err := lw.fitDomain(n, &direct, bound)
	if err == nil {
		return tablePlan{fn: direct, maxErr: maxErr, bound: bound}, nil
	}
	if fn.strictHi {
		return tablePlan{}, err
	}
	s := lw.p.Scale
	lip := lipschitz(fn, s, bound)
	f := fn.f
	for c := 1; c <= maxCoarseShift; c++ {
		cf := fn
		cf.name = fmt.Sprintf("%s@x/2^%d", fn.name, c)
		cf.f = func(u float64) float64 { return f(math.Ldexp(u, c)) }
		cf.lo, cf.hi = fn.lo>>c, fn.hi>>c
		cf.slopeLo, cf.slopeHi = math.Ldexp(fn.slopeLo, c), math.Ldexp(fn.slopeHi, c)
		if fn.inLo != 0 || fn.inHi != 0 {
			h := int64(1) << (c - 1)
			if fn.inLo != math.MinInt64 {
				cf.inLo = (fn.inLo + h) >> c
			}
			cf.inHi = (fn.inHi + h) >> c
		}
		rb := lw.rescaledBound(bound, c)
		cerr, err := lw.fitDomain(n, &cf, rb)
		if err != nil {
			continue
		}
		return tablePlan{fn: cf, shift: c, maxErr: cerr + math.Ldexp(lip*math.Ldexp(1, c-1), -s), bound: rb}, nil
	}
	return tablePlan{}, err
}

// rescaledBound bounds what lw.rescale gives for a value of bound b shifted by c: its
// static bound (the rescale's width may only lower it), which the table then covers.
func (lw *lowering) rescaledBound(b float64, c int) float64 {
	return math.Ceil(math.Ldexp(b, -c)) + 1
}

// applyPlan appends the lookup of x planned by plan (with its rescale for a coarser
// table) and returns the output; maxErr is recorded on the lookup layer.
func (lw *lowering) applyPlan(n *model.Node, x int, plan tablePlan, maxErr float64) (int, error) {
	if plan.shift > 0 {
		x = lw.rescale(n, x, plan.shift)
	}
	if err := lw.fitted(n, x, plan.bound); err != nil {
		return 0, err
	}
	return lw.lookupLayer(n, x, plan.fn, maxErr), nil
}

// fitted checks that value x is within the bound its table was fitted to: a table's
// domain reaches every input that bound allows, and no further.
func (lw *lowering) fitted(n *model.Node, x int, bound float64) error {
	if b := lw.p.Values[x].Bound; b > bound {
		return fmt.Errorf("%w: %s: a table was fitted to inputs within ±%g, its input reaches ±%g", ErrOutOfRange, n.Label(), bound, b)
	}
	return nil
}

// lipschitz is the largest |F(x+1) - F(x)| (F: f in output steps at scale s) over the
// inputs fn reads within |x| <= bound: every point up to 2^17 steps from 0, then
// geometrically, and at least the tails' slopes. Points where f is not finite are
// skipped.
func lipschitz(fn tableFn, s int, bound float64) float64 {
	B := int64(math.Min(math.Floor(bound), MaxBound))
	lo, hi := -B, B
	if fn.inLo != 0 || fn.inHi != 0 {
		lo, hi = max(lo, fn.inLo), min(hi, fn.inHi)
	}
	F := func(x int64) float64 { return math.Ldexp(fn.f(math.Ldexp(float64(x), -s)), s) }
	lip := math.Max(math.Abs(fn.slopeLo), math.Abs(fn.slopeHi))
	at := func(x int64) {
		if x < lo || x+1 > hi {
			return
		}
		if d := math.Abs(F(x+1) - F(x)); !math.IsNaN(d) && !math.IsInf(d, 0) {
			lip = math.Max(lip, d)
		}
	}
	for d := int64(0); d <= max(-lo, hi); {
		at(d)
		at(-d - 1)
		if d < 1<<17 {
			d++
		} else {
			d += d / 256
		}
	}
	return lip
}
