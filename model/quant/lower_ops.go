package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/zkml/zkml/model"
)

// Lowerings of activations, elementwise and reduction ops, composed from the existing
// layer kinds wherever possible.

// tableFn describes an elementwise function lowered to a clamped table lookup over
// [Lo, Hi] (integers at the activation scale), with linear tails beyond the domain.
type tableFn struct {
	name   string                // identifies the function and its attributes (tables are shared by name)
	f      func(float64) float64 // set from model.UnaryFunc
	lo, hi int64
	// Slopes of the function below lo and above hi (0: flat, the clamp is exact at this
	// precision).
	slopeLo, slopeHi float64
	// strictHi makes an input above hi an out-of-range error instead of a clamp, for
	// functions that keep growing there (exp, sqrt).
	strictHi bool
	// inLo, inHi bound the input when more is known than its symmetric static bound
	// (both 0: use the bound): exp of x - max(row) is never positive.
	inLo, inHi int64
}

// defaultDomain is the symmetric table domain [-2^(LookupBits-1), 2^(LookupBits-1)).
func (lw *lowering) defaultDomain() (lo, hi int64) {
	half := int64(1) << (lw.p.LookupBits - 1)
	return -half, half - 1
}

// tailSlopes converts float tail slopes to integer multipliers at shift (0 when exact
// integers suffice). The shift keeps the slope's rounding below half a step over the
// whole input range |x| <= bound (at least internalScale bits).
func tailSlopes(lo, hi, bound float64) (mlo, mhi int64, shift int) {
	if lo == math.Trunc(lo) && hi == math.Trunc(hi) {
		return int64(lo), int64(hi), 0
	}
	shift = max(internalScale, bitsFor(bound)+1)
	return int64(math.Round(math.Ldexp(lo, shift))), int64(math.Round(math.Ldexp(hi, shift))), shift
}

// lookupFn lowers n's first input through fn.
func (lw *lowering) lookupFn(n *model.Node, fn tableFn) error {
	p := lw.p
	x, _, err := lw.operand(n, 0, p.Scale)
	if err != nil {
		return err
	}
	lw.ids[n.Outputs[0]], err = lw.lookupValue(n, x, fn)
	return err
}

func (lw *lowering) lookupValue(n *model.Node, x int, fn tableFn) (int, error) {
	direct := fn
	maxErr, err := lw.fitDomain(n, &direct, lw.p.Values[x].Bound)
	if err != nil {
		// Too big for one table: a symmetric function needs only its half x >= 0.
		if id, ok, serr := lw.expSplit(n, x, fn); ok {
			return id, serr
		}
		if id, ok, serr := lw.symmetricLookup(n, x, fn); ok {
			return id, serr
		}
		// Else a coarser table (lower_sym.go), or the refusal.
		plan, err := lw.planTable(n, fn, lw.p.Values[x].Bound)
		if err != nil {
			return 0, err
		}
		return lw.applyPlan(n, x, plan, plan.maxErr)
	}
	if direct.hi-direct.lo < int64(1)<<lw.p.LookupBits {
		return lw.lookupLayer(n, x, direct, maxErr), nil
	}
	// More entries than --lookup-bits allows: a range-reduced form where it is cheaper
	// and as accurate (lower_choice.go).
	return lw.cheapest(func() (int, bool, error) { return lw.lookupLayer(n, x, direct, maxErr), true, nil },
		func() (int, bool, error) { return lw.expSplit(n, x, fn) },
		func() (int, bool, error) { return lw.symmetricLookup(n, x, fn) })
}

// lookupLayer appends the lookup of x through fn, whose domain fitDomain has fixed.
func (lw *lowering) lookupLayer(n *model.Node, x int, fn tableFn, maxErr float64) int {
	p := lw.p
	v := p.Values[x]
	t := lw.table(fn.name, fn.lo, fn.hi, fn.f)
	bound := 0.0
	for _, y := range t.Values {
		bound = math.Max(bound, math.Abs(float64(y)))
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLookup, In: []int{x}, Table: t, Strict: fn.strictHi, MaxError: maxErr,
		Bits: max(bitsFor(v.Bound), bitsFor(math.Max(math.Abs(float64(fn.lo)), math.Abs(float64(fn.hi)))))}
	if fn.slopeLo != 0 || fn.slopeHi != 0 {
		l.TailLo, l.TailHi, l.TailShift = tailSlopes(fn.slopeLo, fn.slopeHi, v.Bound)
		// below = relu(lo - x) <= Bound + |lo|, above = relu(x - hi) <= Bound + |hi|.
		tb := math.Abs(float64(l.TailLo))*(v.Bound+math.Abs(float64(fn.lo))) + math.Abs(float64(l.TailHi))*(v.Bound+math.Abs(float64(fn.hi)))
		tb = math.Ceil(math.Ldexp(tb, -l.TailShift)) + 1
		l.TailBits = bitsFor(tb)
		bound += tb
	}
	return lw.layer(l, v.Shape, p.Scale, bound)
}

// maxTableBits caps a lookup table at 2^16 entries (the largest --lookup-bits).
const maxTableBits = 16

// fitDomain makes fn's table domain [lo, hi] (at least the configured one) reach every
// input |x| <= bound can take, or far enough that beyond it the function continues as
// the lookup computes it there (the edge value, plus the linear tail) to within one
// output step. An input beyond the domain is clamped, so a table that stops where the
// function still changes proves a different function: at --scale 12 the default table
// covered tanh only on [-0.5, 0.5). Where no table of at most 2^maxTableBits entries
// suffices, lowering fails naming the layer and the setting to change; nothing is
// clamped silently. It returns the layer's worst-case absolute error against the float
// function of its fixed-point input: half a step of table rounding, plus, where inputs
// can leave the domain, the tail error and the tail's own rounding.
//
// Inputs above a strict domain are not clamped (the proof fails), and inputs where the
// float function is undefined or overflows (sqrt of rounding noise below 0; softplus
// of 8192, computed as log(1 + exp(x))) are not counted.
func (lw *lowering) fitDomain(n *model.Node, fn *tableFn, bound float64) (float64, error) {
	s := lw.p.Scale
	B := int64(math.Min(math.Floor(bound), MaxBound))
	minIn, maxIn := -B, B
	if fn.inLo != 0 || fn.inHi != 0 {
		minIn, maxIn = max(minIn, fn.inLo), min(maxIn, fn.inHi)
	}
	F := func(x int64) float64 { return math.Ldexp(fn.f(math.Ldexp(float64(x), -s)), s) }
	// tailErr is the largest |F(x) - F(edge) - slope*(x - edge)| over x from edge+dir
	// to far (dir = +1 or -1), sampled at every point near the edge and geometrically
	// beyond, up to far itself.
	tailErr := func(edge, far, dir int64, slope float64) float64 {
		worst := 0.0
		fe := F(edge)
		at := func(x int64) {
			e := math.Abs(F(x) - fe - slope*float64(x-edge))
			if !math.IsNaN(e) && !math.IsInf(e, 0) {
				worst = math.Max(worst, e)
			}
		}
		dist := (far - edge) * dir
		for d := int64(1); d <= dist; {
			at(edge + d*dir)
			if d < 1024 {
				d++
			} else {
				d += d / 64
			}
		}
		if dist > 0 {
			at(far)
		}
		return worst
	}
	// extend moves edge outwards (towards far) to the nearest point beyond which the
	// tail error is at most one step, or to far.
	extend := func(edge, far, dir int64, slope float64) int64 {
		ok := func(e int64) bool { return (far-e)*dir <= 0 || tailErr(e, far, dir, slope) <= 1 }
		if ok(edge) {
			return edge
		}
		good, bad := edge, edge
		for step := int64(1); ; step *= 2 {
			bad, good = good, edge+step*dir
			if (far-good)*dir <= 0 {
				good = far
				break
			}
			if ok(good) {
				break
			}
			if step > 1<<(maxTableBits+1) {
				return good // too far: the size check refuses
			}
		}
		for (good-bad)*dir > 1 {
			mid := bad + (good-bad)/2
			if ok(mid) {
				good = mid
			} else {
				bad = mid
			}
		}
		return good
	}
	// The tails as the circuit computes them: slopes rounded to TailShift bits.
	mlo, mhi, shift := tailSlopes(fn.slopeLo, fn.slopeHi, bound)
	slopeLo, slopeHi := math.Ldexp(float64(mlo), -shift), math.Ldexp(float64(mhi), -shift)
	lo := extend(fn.lo, minIn, -1, slopeLo)
	hi := fn.hi
	if !fn.strictHi {
		hi = extend(fn.hi, maxIn, 1, slopeHi)
	}
	if size := hi - lo + 1; size > 1<<maxTableBits {
		return 0, fmt.Errorf("%w: %w: %s: its input reaches ±%g, and at scale 2^-%d %s changes by more than one step (2^-%d) beyond a table of 2^%d entries (it would need [%g, %g]); lower --scale or bound the input",
			model.ErrInvalidModel, ErrOutOfRange, n.Label(), math.Ldexp(float64(max(-minIn, maxIn)), -s), s, fn.name, s, maxTableBits, math.Ldexp(float64(lo), -s), math.Ldexp(float64(hi), -s))
	}
	fn.lo, fn.hi = lo, hi
	worst := 0.5
	if lo > minIn {
		worst = math.Max(worst, tailErr(lo, minIn, -1, slopeLo)+1)
	}
	if hi < maxIn && !fn.strictHi {
		worst = math.Max(worst, tailErr(hi, maxIn, 1, slopeHi)+1)
	}
	return math.Ldexp(worst, -s), nil
}

// activation lowers the elementwise ops computed by table lookups.
func (lw *lowering) activation(n *model.Node) (bool, error) {
	s := lw.p.Scale
	lo, hi := lw.defaultDomain()
	a := n.Attrs
	fn := tableFn{lo: lo, hi: hi}
	switch n.Op {
	case "Tanh":
		fn.name = "tanh"
	case "Erf":
		fn.name = "erf"
	case "HardSigmoid":
		alpha, beta := a.Float("alpha", 0.2), a.Float("beta", 0.5)
		fn.name = fmt.Sprintf("hardsigmoid(%g,%g)", alpha, beta)
	case "Softplus":
		fn.name, fn.slopeHi = "softplus", 1
	case "Gelu":
		approx := a.String("approximate", "none")
		fn.name, fn.slopeHi = "gelu-"+approx, 1
	case "HardSwish":
		fn.name, fn.slopeHi = "hardswish", 1
	case "Mish":
		fn.name, fn.slopeHi = "mish", 1
	case "Celu":
		alpha := a.Float("alpha", 1)
		fn.name, fn.slopeHi = fmt.Sprintf("celu(%g)", alpha), 1
	case "Elu":
		alpha := a.Float("alpha", 1)
		fn.name, fn.slopeHi = fmt.Sprintf("elu(%g)", alpha), 1
	case "Selu":
		alpha, gamma := a.Float("alpha", 1.67326319217681884765625), a.Float("gamma", 1.05070102214813232421875)
		fn.name, fn.slopeHi = fmt.Sprintf("selu(%g,%g)", alpha, gamma), gamma
	case "ThresholdedRelu":
		alpha := a.Float("alpha", 1)
		if math.Ldexp(alpha, s) >= float64(hi) {
			return true, lw.unsupported(n, "alpha lies beyond the lookup domain")
		}
		fn.name, fn.slopeHi = fmt.Sprintf("thresholdedrelu(%g)", alpha), 1
	case "Shrink":
		l, b := a.Float("lambd", 0.5), a.Float("bias", 0)
		if math.Ldexp(l, s) >= float64(hi) {
			return true, lw.unsupported(n, "lambd lies beyond the lookup domain")
		}
		fn.name, fn.slopeLo, fn.slopeHi = fmt.Sprintf("shrink(%g,%g)", l, b), 1, 1
	case "Sign":
		// Exact: clamp to [-1, 1] ulps and read a three-entry table.
		fn.name, fn.lo, fn.hi = "sign", -1, 1
	case "Exp":
		// exp is negligible (< 2^-(Scale+1)) below -(Scale+1)·ln 2; the domain starts
		// there and covers 2^LookupBits entries, but stops where exp would leave the
		// Bits range. An input above the domain is an out-of-range error naming the
		// layer (models needing larger inputs need a larger LookupBits).
		fn.name, fn.strictHi = "exp", true
		fn.lo = -int64(math.Ceil(math.Ldexp(float64(s+1)*math.Ln2, s)))
		fn.hi = fn.lo + int64(1)<<lw.p.LookupBits - 1
		top := int64(math.Floor(math.Ldexp(math.Log(math.Ldexp(1, lw.p.Bits-1-s)-1), s)))
		fn.hi = min(fn.hi, top)
	case "Sqrt":
		// The domain is [0, 2^LookupBits); negative inputs (rounding noise below 0) read
		// sqrt(0) = 0 and an input above the domain is an out-of-range error.
		fn.name, fn.lo, fn.hi, fn.strictHi = "sqrt", 0, int64(1)<<lw.p.LookupBits-1, true
	default:
		return false, nil
	}
	// The table tabulates the float reference's own function.
	fn.f = model.UnaryFunc(n.Op, a)
	return true, lw.lookupFn(n, fn)
}

// addv appends out = a*ma + b*mb elementwise (same shape, or b broadcast by ib).
func (lw *lowering) addv(n *model.Node, a int, ma int64, b int, mb int64, ib []int) int {
	p := lw.p
	va, vb := p.Values[a], p.Values[b]
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KAdd, In: []int{a, b}, MA: ma, MB: mb}
	for i := 0; i < numel(va.Shape); i++ {
		l.IA = append(l.IA, int32(i))
		j := i
		if ib != nil {
			j = ib[i]
		}
		l.IB = append(l.IB, int32(j))
	}
	bound := math.Abs(float64(ma))*va.Bound + math.Abs(float64(mb))*vb.Bound
	return lw.layer(l, va.Shape, va.Scale, bound)
}

// relu appends out = max(x, 0).
func (lw *lowering) relu(n *model.Node, x int) int {
	v := lw.p.Values[x]
	return lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KRelu, In: []int{x}, Bits: bitsFor(v.Bound)}, v.Shape, v.Scale, v.Bound)
}

// linearOut appends the linear layer l and its rescale, returning the rescaled value.
func (lw *lowering) linearOut(n *model.Node, l *Layer, shape []int, accScale int) (int, error) {
	tmp := &model.Node{Name: n.Name, Op: n.Op, Inputs: n.Inputs, Outputs: []string{"\x00tmp"}, Attrs: n.Attrs}
	if err := lw.finishLinear(tmp, l, shape, accScale); err != nil {
		return 0, err
	}
	id := lw.ids["\x00tmp"]
	delete(lw.ids, "\x00tmp")
	return id, nil
}

// floor lowers Floor and Ceil of a fixed-point X (x = X / 2^s): floor(x) =
// 2^s * floor(X / 2^s), where floor(X / 2^s) is a rescale (which rounds half up) of
// X - 2^(s-1); ceil(x) = -floor(-x). Both are exact on the fixed-point value.
func (lw *lowering) floor(n *model.Node, x int) (int, error) {
	p := lw.p
	v := p.Values[x]
	s := v.Scale
	if s == 0 {
		return x, nil
	}
	sign := int64(1)
	if n.Op == "Ceil" {
		sign = -1
	}
	half, err := lw.newParam("-1/2", &model.Tensor{Shape: []int{1}, Data: []float64{-0.5}}, s, true)
	if err != nil {
		return 0, err
	}
	q := lw.rescale(n, lw.addv(n, x, sign, half, 1, make([]int, numel(v.Shape))), s)
	out := lw.addv(n, q, sign<<s, q, 0, nil)
	p.Values[out].Scale = s
	return out, nil
}

// elementwise lowers Neg, Abs, LeakyRelu and PRelu exactly, from ReLU, additions and
// one constant multiply with rescale.
func (lw *lowering) elementwise(n *model.Node) (bool, error) {
	p := lw.p
	switch n.Op {
	case "Neg", "Abs", "LeakyRelu", "PRelu", "Softsign", "Floor", "Ceil":
	default:
		return false, nil
	}
	x, _, err := lw.operand(n, 0, p.Scale)
	if err != nil {
		return true, err
	}
	out := n.Outputs[0]
	switch n.Op {
	case "Neg":
		lw.ids[out] = lw.addv(n, x, -1, x, 0, nil)
		return true, nil
	case "Abs":
		// |x| = 2*relu(x) - x.
		lw.ids[out] = lw.addv(n, lw.relu(n, x), 2, x, -1, nil)
		return true, nil
	case "Softsign":
		lw.ids[out] = lw.softsign(n, x)
		return true, nil
	case "Floor", "Ceil":
		lw.ids[out], err = lw.floor(n, x)
		return true, err
	}
	// y = relu(x) - slope*relu(-x), with relu(-x) = relu(x) - x.
	r := lw.relu(n, x)
	neg := lw.addv(n, r, 1, x, -1, nil)
	negBound := p.Values[x].Bound
	p.Values[neg].Bound = negBound
	shape := p.Values[x].Shape
	var slope int
	var slopeShape []int
	if n.Op == "LeakyRelu" {
		alpha := n.Attrs.Float("alpha", 0.01)
		slope, err = lw.newParam(fmt.Sprintf("leakyrelu.alpha(%g)", alpha), &model.Tensor{Shape: []int{}, Data: []float64{alpha}}, internalScale, true)
		if err != nil {
			return true, err
		}
	} else {
		if slope, _, err = lw.operand(n, 1, p.ParamScale); err != nil {
			return true, err
		}
	}
	slopeShape = p.Values[slope].Shape
	if bs, err := model.BroadcastShape(slopeShape, shape); err != nil || numel(bs) != numel(shape) || len(bs) != len(shape) {
		return true, fmt.Errorf("%w: %s: slope shape %v does not broadcast to %v", model.ErrInvalidModel, n.Label(), slopeShape, shape)
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{neg, slope}}
	ib := model.BroadcastIndex(slopeShape, shape)
	for i := range ib {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(i))
		l.TB = append(l.TB, int32(ib[i]))
	}
	l.TermStart = append(l.TermStart, int32(len(ib)))
	prod, err := lw.linearOut(n, l, shape, p.Values[neg].Scale+p.Values[slope].Scale)
	if err != nil {
		return true, err
	}
	lw.ids[out] = lw.addv(n, r, 1, prod, -1, nil)
	return true, nil
}

// clip lowers Clip with constant bounds to a clamp.
func (lw *lowering) clip(n *model.Node) error {
	p := lw.p
	consts := make([]*model.Tensor, len(n.Inputs))
	for i, name := range n.Inputs {
		if i > 0 && name != "" {
			c, ok := lw.g.Consts[name]
			if !ok {
				return lw.unsupported(n, "clip bounds must be constants")
			}
			consts[i] = c
		}
	}
	lo, hi, err := model.ClipBounds(n, consts, lw.g.Opset)
	if err != nil {
		return err
	}
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	q := func(f float64) float64 { return math.Round(math.Ldexp(f, p.Scale)) }
	ql, qh := q(lo), q(hi)
	if ql > qh {
		return fmt.Errorf("%w: %s: min %g is above max %g", model.ErrInvalidModel, n.Label(), lo, hi)
	}
	// A side binds only when it lies inside the input's static range; the clamp then
	// works at a width holding the input and the binding bounds.
	bindLo, bindHi := ql > -v.Bound, qh < v.Bound
	m := v.Bound
	if bindLo {
		m = math.Max(m, math.Abs(ql))
	}
	if bindHi {
		m = math.Max(m, math.Abs(qh))
	}
	bits := bitsFor(m)
	lim := math.Ldexp(1, bits-1)
	if !bindLo {
		ql = -lim // marks a skipped side
	}
	if !bindHi {
		qh = lim
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KClamp, In: []int{x}, Bits: bits, Lo: int64(ql), Hi: int64(qh)}
	bound := math.Max(math.Abs(math.Max(ql, -v.Bound)), math.Abs(math.Min(qh, v.Bound)))
	lw.ids[n.Outputs[0]] = lw.layer(l, v.Shape, p.Scale, bound)
	return nil
}

// gather appends a movement layer concatenating the broadcast inputs of a variadic op:
// element k*N + i is input k at output position i.
func (lw *lowering) stack(n *model.Node) (id int, shape []int, k int, err error) {
	p := lw.p
	var ids []int
	var shapes [][]int
	for i := range n.Inputs {
		if n.Inputs[i] == "" {
			continue
		}
		x, _, err := lw.operand(n, i, p.Scale)
		if err != nil {
			return 0, nil, 0, err
		}
		ids = append(ids, x)
		shapes = append(shapes, p.Values[x].Shape)
	}
	shape, index, err := model.VariadicPlan(n, shapes)
	if err != nil {
		return 0, nil, 0, err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: ids}
	base, bound := 0, 0.0
	for j, x := range ids {
		for _, s := range index[j] {
			l.Index = append(l.Index, int32(base+s))
		}
		base += numel(p.Values[x].Shape)
		bound = math.Max(bound, p.Values[x].Bound)
	}
	all := append([]int{len(ids)}, shape...)
	return lw.layer(l, all, p.Scale, bound), shape, len(ids), nil
}

// variadic lowers Max, Min, Sum and Mean over broadcast inputs.
func (lw *lowering) variadic(n *model.Node) error {
	p := lw.p
	st, shape, k, err := lw.stack(n)
	if err != nil {
		return err
	}
	size := numel(shape)
	v := p.Values[st]
	switch n.Op {
	case "Max", "Min":
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KMax, In: []int{st}, Bits: bitsFor(v.Bound), Min: n.Op == "Min"}
		for i := 0; i < size; i++ {
			g := make([]int32, k)
			for j := range g {
				g[j] = int32(j*size + i)
			}
			l.Groups = append(l.Groups, g)
		}
		lw.ids[n.Outputs[0]] = lw.layer(l, shape, p.Scale, v.Bound)
		return nil
	}
	groups := make([][]int, size)
	for i := range groups {
		for j := 0; j < k; j++ {
			groups[i] = append(groups[i], j*size+i)
		}
	}
	id, err := lw.sumGroups(n, st, groups, shape, n.Op == "Mean", false)
	lw.ids[n.Outputs[0]] = id
	return err
}

// sumGroups appends out[o] = sum over groups[o] of x (of x^2 with square; divided by
// the group size with mean), rescaled to the activation scale.
func (lw *lowering) sumGroups(n *model.Node, x int, groups [][]int, shape []int, mean, square bool) (int, error) {
	p := lw.p
	v := p.Values[x]
	maxLen := 0
	for _, g := range groups {
		maxLen = max(maxLen, len(g))
	}
	var w, accScale int
	var err error
	switch {
	case square:
		w, accScale = x, 2*v.Scale
	case mean:
		inv := model.NewTensor(maxLen + 1)
		for c := 1; c <= maxLen; c++ {
			inv.Data[c] = 1 / float64(c)
		}
		w, err = lw.newParam(fmt.Sprintf("1/k(%d)", maxLen), inv, internalScale, true)
		accScale = v.Scale + internalScale
	default:
		w, err = lw.newParam("1(internal)", &model.Tensor{Shape: []int{1}, Data: []float64{1}}, 0, true)
		accScale = v.Scale
	}
	if err != nil {
		return 0, err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{x, w}}
	for _, g := range groups {
		l.TermStart = append(l.TermStart, int32(len(l.TA)))
		for _, i := range g {
			l.TA = append(l.TA, int32(i))
			switch {
			case square:
				l.TB = append(l.TB, int32(i))
			case mean:
				l.TB = append(l.TB, int32(len(g)))
			default:
				l.TB = append(l.TB, 0)
			}
		}
	}
	l.TermStart = append(l.TermStart, int32(len(l.TA)))
	return lw.linearOut(n, l, shape, accScale)
}

// reduce lowers ReduceSum, ReduceMean, ReduceSumSquare, ReduceMax and ReduceMin.
func (lw *lowering) reduce(n *model.Node) error {
	p := lw.p
	consts := lw.paramConsts(n)
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	shape, groups, err := model.PlanReduce(n, v.Shape, consts, lw.g.Opset)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if len(g) == 0 {
			return lw.unsupported(n, "reducing an empty tensor")
		}
	}
	switch n.Op {
	case "ReduceMax", "ReduceMin":
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KMax, In: []int{x}, Bits: bitsFor(v.Bound), Min: n.Op == "ReduceMin"}
		for _, g := range groups {
			l.Groups = append(l.Groups, int32s(g))
		}
		lw.ids[n.Outputs[0]] = lw.layer(l, shape, p.Scale, v.Bound)
		return nil
	}
	id, err := lw.sumGroups(n, x, groups, shape, n.Op == "ReduceMean", n.Op == "ReduceSumSquare")
	lw.ids[n.Outputs[0]] = id
	return err
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// argMax lowers ArgMax, ArgMin and Hardmax to the comparison chain of KArgMax.
func (lw *lowering) argMax(n *model.Node) error {
	p := lw.p
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	shape, rows, err := model.PlanArgMax(n, v.Shape, lw.g.Opset)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KArgMax, In: []int{x}, Bits: bitsFor(v.Bound),
		Min: n.Op == "ArgMin", Last: n.Attrs.Int("select_last_index", 0) != 0, OneHot: n.Op == "Hardmax"}
	maxLen := 1
	for _, r := range rows {
		l.Groups = append(l.Groups, int32s(r))
		maxLen = max(maxLen, len(r))
	}
	bound := math.Ldexp(float64(maxLen-1), p.Scale)
	if l.OneHot {
		bound = math.Ldexp(1, p.Scale)
	}
	lw.ids[n.Outputs[0]] = lw.layer(l, shape, p.Scale, bound)
	return nil
}

// logSoftmax lowers y = x - max - log(sum exp(x - max)) per row. exp is a clamped
// table on (x - max) <= 0 as in Softmax. The sum S is at least 2^Scale (the maximum
// contributes exp(0)) and at most len·2^Scale; log is tabulated on S / 2^k, with k the
// smallest shift fitting the range into 2^LookupBits entries. Precision: the rounding
// of S/2^k perturbs log S by at most 2^(k-1)/S <= 2^(k-1-Scale), so k = 0 (rows up to
// 2^(LookupBits-Scale) long) is exact to the table's half-ulp rounding; longer rows
// lose about log2(len) - (LookupBits - Scale) bits.
func (lw *lowering) logSoftmax(n *model.Node) error {
	p := lw.p
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	starts, length, stride, err := model.SoftmaxGroups(n, v.Shape, lw.g.Opset)
	if err != nil {
		return err
	}
	// m[r] = max of row r; d = x - m[row]; e = exp(d).
	d, e, groups, rowOf, err := lw.rowExp(n, x, starts, length, stride)
	if err != nil {
		return err
	}
	size := int64(1) << p.LookupBits
	// S[r] = sum of e over row r, in [2^Scale, len*2^Scale].
	sum, err := lw.sumGroups(n, e, groups, []int{len(starts)}, false, false)
	if err != nil {
		return err
	}
	one := math.Ldexp(1, p.Scale)
	k := 0
	var lo, hi int64
	for {
		lo = max(1, int64(math.Floor(math.Ldexp(one, -k))))
		hi = int64(math.Ceil(math.Ldexp(float64(length)*one, -k))) + 1
		if hi-lo+1 <= size {
			break
		}
		k++
	}
	if k > 0 {
		sum = lw.rescale(n, sum, k)
	}
	logT := tableFn{name: fmt.Sprintf("log-sum(%d)", k), lo: lo, hi: hi, inLo: lo, inHi: hi,
		f: func(s float64) float64 { return math.Log(math.Ldexp(s, k)) }}
	ls, err := lw.lookupValue(n, sum, logT)
	if err != nil {
		return err
	}
	// y = d - log S[row].
	lw.ids[n.Outputs[0]] = lw.addv(n, d, 1, ls, -1, rowOf)
	return nil
}

// split lowers Split to one movement layer per output.
func (lw *lowering) split(n *model.Node) error {
	consts := lw.paramConsts(n)
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	ms, err := model.PlanSplit(n, v.Shape, consts, lw.g.Opset)
	if err != nil {
		return err
	}
	for k, m := range ms {
		if n.Outputs[k] == "" {
			continue
		}
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: []int{x}, Index: int32s(m.Index)}
		lw.ids[n.Outputs[k]] = lw.layer(l, m.Shape, v.Scale, v.Bound)
	}
	return nil
}

// softsign computes x / (1 + |x|) exactly (to rounding) on the whole input range:
// with p = relu(x) and q = relu(-x), y = round(p*2^s / (2^s + p + q)) -
// round(q*2^s / (2^s + p + q)); one of the two numerators is 0.
func (lw *lowering) softsign(n *model.Node, x int) int {
	p := lw.p
	v := p.Values[x]
	one := int64(1) << p.Scale
	pos := lw.relu(n, x)
	neg := lw.addv(n, pos, 1, x, -1, nil) // relu(-x)
	p.Values[neg].Bound = v.Bound
	abs := lw.addv(n, pos, 1, neg, 1, nil) // |x|
	p.Values[abs].Bound = v.Bound
	// Numerator 2*a*2^s + d <= 2*B*2^s + B + 2^s, divisor 2d <= 2(B + 2^s), quotient <= 2^s.
	num := 2*v.Bound*float64(one) + v.Bound + float64(one)
	den := 2 * (v.Bound + float64(one))
	div := func(a int) int {
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KDiv, In: []int{a, abs}, MA: one, MB: one,
			NumBits: bitsFor(num) - 1, DenBits: bitsFor(den) - 1, Bits: p.Scale + 1}
		return lw.layer(l, v.Shape, p.Scale, float64(one))
	}
	return lw.addv(n, div(pos), 1, div(neg), -1, nil)
}

// sameScale resolves inputs i and j of n at one scale: the runtime operand's (a
// constant is quantized at it), the activation scale when both are constants.
func (lw *lowering) sameScale(n *model.Node, i, j int) (a, b int, err error) {
	scale := lw.p.Scale
	for _, k := range []int{i, j} {
		if id, ok, err := lw.runtime(n.Inputs[k]); err != nil {
			return 0, 0, err
		} else if ok {
			scale = lw.p.Values[id].Scale
		}
	}
	if a, _, err = lw.operand(n, i, scale); err != nil {
		return 0, 0, err
	}
	if b, _, err = lw.operand(n, j, scale); err != nil {
		return 0, 0, err
	}
	if lw.p.Values[a].Scale != lw.p.Values[b].Scale {
		return 0, 0, lw.unsupported(n, "operands at different scales (an integer and a float tensor)")
	}
	return a, b, nil
}

// diff appends ma*a + mb*b broadcast to shape.
func (lw *lowering) diff(n *model.Node, a int, ma int64, b int, mb int64, shape []int) int {
	p := lw.p
	va, vb := p.Values[a], p.Values[b]
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KAdd, In: []int{a, b}, MA: ma, MB: mb}
	for _, j := range model.BroadcastIndex(va.Shape, shape) {
		l.IA = append(l.IA, int32(j))
	}
	for _, j := range model.BroadcastIndex(vb.Shape, shape) {
		l.IB = append(l.IB, int32(j))
	}
	return lw.layer(l, shape, va.Scale, math.Abs(float64(ma))*va.Bound+math.Abs(float64(mb))*vb.Bound)
}

// compare lowers Greater, Less, Equal, GreaterOrEqual and LessOrEqual to a boolean
// integer tensor. On integers (fixed-point values at one scale) [d > 0] = clamp(d, 0, 1),
// so Greater is clamp(a - b, 0, 1); the others combine two such tests.
func (lw *lowering) compare(n *model.Node) error {
	p := lw.p
	a, b, err := lw.sameScale(n, 0, 1)
	if err != nil {
		return err
	}
	shape, err := model.BroadcastShape(p.Values[a].Shape, p.Values[b].Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Label(), err)
	}
	gt := func(x, y int) int { // [x > y]
		d := lw.diff(n, x, 1, y, -1, shape)
		bits := bitsFor(p.Values[d].Bound)
		id := lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KClamp, In: []int{d}, Lo: 0, Hi: 1, Bits: bits}, shape, 0, 1)
		lw.ints[id] = [2]int64{0, 1}
		return id
	}
	one, err := lw.newParam("1", &model.Tensor{Shape: []int{1}, Data: []float64{1}}, 0, true)
	if err != nil {
		return err
	}
	var out int
	switch n.Op {
	case "Greater":
		out = gt(a, b)
	case "Less":
		out = gt(b, a)
	case "GreaterOrEqual": // 1 - [b > a]
		out = lw.diff(n, one, 1, gt(b, a), -1, shape)
	case "LessOrEqual":
		out = lw.diff(n, one, 1, gt(a, b), -1, shape)
	case "Equal": // 1 - [a > b] - [b > a]
		out = lw.diff(n, lw.diff(n, one, 1, gt(a, b), -1, shape), 1, gt(b, a), -1, shape)
	}
	p.Values[out].Scale, p.Values[out].Bound = 0, 1
	lw.ints[out] = [2]int64{0, 1}
	lw.ids[n.Outputs[0]] = out
	return nil
}

// where lowers Where. A constant condition selects (a movement); a runtime one is a
// boolean integer tensor c (from a comparison or a bool input, proven in {0, 1}) and
// out = y + c*(x - y), one product per element.
func (lw *lowering) where(n *model.Node) error {
	p := lw.p
	x, y, err := lw.sameScale(n, 1, 2)
	if err != nil {
		return err
	}
	vx, vy := p.Values[x], p.Values[y]
	if c, ok := lw.g.Consts[n.Inputs[0]]; ok {
		shape, ic, ix, iy, err := model.WherePlan(n, c.Shape, vx.Shape, vy.Shape)
		if err != nil {
			return err
		}
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, In: []int{x, y}}
		nx := int32(numel(vx.Shape))
		for i := range ic {
			if c.Data[ic[i]] != 0 {
				l.Index = append(l.Index, int32(ix[i]))
			} else {
				l.Index = append(l.Index, nx+int32(iy[i]))
			}
		}
		lw.ids[n.Outputs[0]] = lw.layer(l, shape, vx.Scale, math.Max(vx.Bound, vy.Bound))
		return nil
	}
	c, ok, err := lw.runtime(n.Inputs[0])
	if err != nil {
		return err
	}
	if r, isInt := lw.ints[c]; !ok || !isInt || r[0] < 0 || r[1] > 1 {
		return lw.unsupported(n, "the condition must be a boolean tensor (a comparison or a bool input)")
	}
	shape, ic, _, iy, err := model.WherePlan(n, p.Values[c].Shape, vx.Shape, vy.Shape)
	if err != nil {
		return err
	}
	d := lw.diff(n, x, 1, y, -1, shape)
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{c, d, y}}
	for i := range ic {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(ic[i]))
		l.TB = append(l.TB, int32(i))
		l.Bias = append(l.Bias, int32(iy[i]))
	}
	l.TermStart = append(l.TermStart, int32(len(ic)))
	out, err := lw.accumulate(n, l, shape, vx.Scale)
	if err != nil {
		return err
	}
	p.Values[out].Bound = math.Max(vx.Bound, vy.Bound)
	if _, isInt := lw.ints[x]; isInt {
		lw.ints[out] = [2]int64{-int64(p.Values[out].Bound), int64(p.Values[out].Bound)}
	}
	lw.ids[n.Outputs[0]] = out
	return nil
}

// broadcast moves value id to shape (numpy broadcasting), or returns it as is.
func (lw *lowering) broadcast(n *model.Node, id int, shape []int) int {
	v := lw.p.Values[id]
	if slices.Equal(v.Shape, shape) {
		return id
	}
	l := &Layer{Name: n.Name, Op: "Broadcast", Kind: KMove, In: []int{id}}
	for _, j := range model.BroadcastIndex(v.Shape, shape) {
		l.Index = append(l.Index, int32(j))
	}
	return lw.layer(l, shape, v.Scale, v.Bound)
}

// divide lowers Div by a runtime value: a / b at scale s is round(A*2^s / B), computed
// on the positive and negative parts of A (one of them is 0) by the range-checked
// division, which also proves B > 0: a divisor that is not positive makes proving fail
// with an error naming the layer. The quotient must fit the activation width (Bits).
func (lw *lowering) divide(n *model.Node) error {
	p := lw.p
	a, b, err := lw.sameScale(n, 0, 1)
	if err != nil {
		return err
	}
	if _, isInt := lw.ints[a]; isInt {
		return lw.unsupported(n, "integer division")
	}
	shape, err := model.BroadcastShape(p.Values[a].Shape, p.Values[b].Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Label(), err)
	}
	a, b = lw.broadcast(n, a, shape), lw.broadcast(n, b, shape)
	va, vb := p.Values[a], p.Values[b]
	one := int64(1) << va.Scale
	pos := lw.relu(n, a)
	neg := lw.addv(n, pos, 1, a, -1, nil) // relu(-a)
	p.Values[neg].Bound = va.Bound
	// DivFloor(2*x*2^s + B, 2B): numerator < 2*bound(A)*2^s + bound(B), divisor 2B.
	num := 2*va.Bound*float64(one) + vb.Bound
	if num >= MaxBound {
		return fmt.Errorf("%w: %s: dividend bound %.3g too large; lower scale or bits", ErrOutOfRange, n.Label(), num)
	}
	div := func(x int) int {
		l := &Layer{Name: n.Name, Op: n.Op, Kind: KDiv, In: []int{x, b}, MA: one,
			NumBits: bitsFor(num) - 1, DenBits: bitsFor(2*vb.Bound) - 1, Bits: p.Bits - 1}
		return lw.layer(l, shape, va.Scale, math.Ldexp(1, p.Bits-1))
	}
	out := lw.addv(n, div(pos), 1, div(neg), -1, nil)
	p.Values[out].Bound = math.Ldexp(1, p.Bits-1)
	lw.ids[n.Outputs[0]] = out
	return nil
}

// paramConsts returns the constant operands of n after its data input (nil where an
// input is absent or not constant), for the model package's planners.
func (lw *lowering) paramConsts(n *model.Node) []*model.Tensor {
	consts := make([]*model.Tensor, len(n.Inputs))
	for i, name := range n.Inputs {
		if i > 0 && name != "" {
			consts[i] = lw.g.Consts[name]
		}
	}
	return consts
}
