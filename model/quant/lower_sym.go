package quant

import (
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
	maxErr, err := lw.fitDomain(n, &half, v.Bound)
	if err != nil {
		return 0, true, err
	}
	pos := lw.relu(n, x)
	neg := lw.addv(n, pos, 1, x, -1, nil) // max(-x, 0)
	p.Values[neg].Bound = v.Bound
	var out int
	if sym == symOdd {
		a := lw.lookupLayer(n, pos, half, 0)
		b := lw.lookupLayer(n, neg, half, 0)
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
		t := lw.lookupLayer(n, abs, half, 0)
		out = lw.addv(n, t, 1, neg, -1, nil)
	}
	last := p.Layers[len(p.Layers)-1]
	last.MaxError = maxErr + math.Ldexp(math.Abs(float64(C)-math.Ldexp(c, s))+dev, -s)
	return out, true, nil
}
