package quant

import (
	"fmt"
)

// Arith is the arithmetic a program is written against. V is int64 for the reference
// evaluator and a gnark variable in the circuit. Every method with a bit width relies
// on (and, in a circuit, enforces) that width.
type Arith[V any] interface {
	Const(c int64) V
	Add(a, b V) V
	MulConst(a V, c int64) V
	// Dot returns sum a[i]*b[i] + c.
	Dot(a, b []V, c V) V
	// Rescale returns floor((x + 2^(k-1)) / 2^k) (round half up), proven to satisfy
	// |out| < 2^(bits-1); with relu it returns max of that and 0.
	Rescale(x V, k, bits int, relu bool) V
	// RoundEven returns x / 2^k rounded half to even (ONNX's rounding), proven to
	// satisfy |out| < 2^(bits-1).
	RoundEven(x V, k, bits int) V
	// Relu returns max(x, 0) for |x| < 2^(bits-1).
	Relu(x V, bits int) V
	// RangeCheck proves |x| < 2^(bits-1).
	RangeCheck(x V, bits int)
	// Lookup returns t.Values[x - t.Lo] for x in the table's domain.
	Lookup(t *Table, x V) V
	// DivFloor returns floor(a / b) for 0 <= a < 2^aBits and 0 < b < 2^bBits; the
	// quotient is proven below 2^qBits.
	DivFloor(a, b V, aBits, bBits, qBits int) V
	// Layer is called before each layer runs (for statistics and error context).
	Layer(l *Layer)
	// Err returns the first error met (out-of-range values in the reference evaluator).
	Err() error
}

// CheckedLinear is implemented by an Arith that proves linear layers with RLC set by a
// random-linear-combination check (rlc.go) instead of computing their products: the
// circuit. It returns the layer's outputs, equal to the direct form's, or nil to have
// Run compute the layer directly. An Arith without it (the integer reference) computes
// every layer directly, which gives the same values.
type CheckedLinear[V any] interface {
	CheckedLinear(p *Program, l *Layer, x, w, bias []V) []V
}

// Run executes the program. inputs and params are indexed like p.Inputs and p.Params;
// it returns every value (nil where unused) so callers can read outputs and
// intermediates.
func Run[V any](p *Program, a Arith[V], inputs [][]V, params [][]V) ([][]V, error) {
	if len(inputs) != len(p.Inputs) || len(params) != len(p.Params) {
		return nil, fmt.Errorf("program wants %d inputs and %d params, got %d and %d", len(p.Inputs), len(p.Params), len(inputs), len(params))
	}
	vals := make([][]V, len(p.Values))
	for i, id := range p.Inputs {
		if len(inputs[i]) != numel(p.Values[id].Shape) {
			return nil, fmt.Errorf("input %d has %d values, want %d", i, len(inputs[i]), numel(p.Values[id].Shape))
		}
		vals[id] = inputs[i]
	}
	for i, par := range p.Params {
		vals[par.Value] = params[i]
	}
	for _, l := range p.Layers {
		if err := checkRange(p, l, vals); err != nil {
			return nil, fmt.Errorf("layer %s (%s): %w", l.Name, l.Op, err)
		}
		a.Layer(l)
		out := runLayer(p, a, l, vals)
		if l.Restricted() {
			// Restricted layers fill their range of a value allocated once; elements
			// no layer writes are zero constants (never read, no constraint).
			full := vals[l.Out]
			if full == nil {
				full = make([]V, numel(p.Values[l.Out].Shape))
				zero := a.Const(0)
				for i := range full {
					full[i] = zero
				}
			}
			copy(full[l.OutLo:], out)
			out = full
		}
		vals[l.Out] = out
		if err := a.Err(); err != nil {
			return nil, fmt.Errorf("layer %s (%s, output at scale 2^-%d): %w", l.Name, l.Op, p.Values[l.Out].Scale, err)
		}
	}
	return vals, nil
}

// runLayer returns the layer's outputs: every element of its output value, or those
// of its range (Layer.OutHi) when it is restricted.
func runLayer[V any](p *Program, a Arith[V], l *Layer, vals [][]V) []V {
	n := numel(p.Values[l.Out].Shape)
	lo := 0
	if l.Restricted() {
		lo, n = l.OutLo, l.OutHi-l.OutLo
	}
	out := make([]V, n)
	in := func(i int) []V { return vals[l.In[i]] }
	// ew is input i's elements read by an element-wise kind: those of the range.
	ew := func(i int) []V { return vals[l.In[i]][lo : lo+n] }
	switch l.Kind {
	case KLinear:
		x, w := in(0), in(1)
		var bias []V
		if len(l.In) > 2 {
			bias = in(2)
		}
		if l.RLC > 0 && !l.Restricted() {
			if c, ok := a.(CheckedLinear[V]); ok {
				if out := c.CheckedLinear(p, l, x, w, bias); out != nil {
					return out
				}
			}
		}
		zero := a.Const(0)
		var xs, ws []V
		var buf TermBuf
		for o := range out {
			xs, ws = xs[:0], ws[:0]
			ta, tb := l.Terms(o, &buf)
			for t := range ta {
				xs = append(xs, x[ta[t]])
				ws = append(ws, w[tb[t]])
			}
			c := zero
			if bias != nil && l.Bias[o] >= 0 {
				c = bias[l.Bias[o]]
			}
			out[o] = a.Dot(xs, ws, c)
		}
	case KAdd:
		x, y := in(0), in(1)
		for i := range out {
			out[i] = a.Add(a.MulConst(x[l.IA[i]], l.MA), a.MulConst(y[l.IB[i]], l.MB))
		}
	case KRescale:
		for i, v := range ew(0) {
			out[i] = a.Rescale(v, l.Shift, l.Bits, l.Relu)
		}
	case KRelu:
		for i, v := range ew(0) {
			out[i] = a.Relu(v, l.Bits)
		}
	case KRangeChk:
		for i, v := range ew(0) {
			if l.Fill != 0 {
				a.RangeCheck(a.Add(v, a.Const(l.Fill)), l.Bits)
			} else {
				a.RangeCheck(v, l.Bits)
			}
			out[i] = v
		}
	case KMax:
		x := in(0)
		for o, g := range l.Groups {
			m := x[g[0]]
			for _, j := range g[1:] {
				y := x[j]
				if l.Min {
					// min(m, y) = y - relu(y - m); |y - m| < 2^l.Bits.
					m = a.Add(y, a.MulConst(a.Relu(a.Add(y, a.MulConst(m, -1)), l.Bits+1), -1))
				} else {
					// max(m, y) = y + relu(m - y); |m - y| < 2^l.Bits.
					m = a.Add(y, a.Relu(a.Add(m, a.MulConst(y, -1)), l.Bits+1))
				}
			}
			out[o] = m
		}
	case KClamp:
		for i, v := range ew(0) {
			out[i] = clamp(a, v, l.Lo, l.Hi, l.Bits)
		}
	case KRequant:
		for i, v := range ew(0) {
			c := 0
			if l.IA != nil {
				c = int(l.IA[i])
			}
			t := a.Add(a.MulConst(v, l.Mult[c]), a.Const(l.Off[c]))
			q := a.RoundEven(t, l.Shift, l.NumBits)
			out[i] = clamp(a, a.Add(q, a.Const(l.Zero)), l.Lo, l.Hi, l.Bits)
		}
	case KArgMax:
		argmax(p, a, l, in(0), out)
	case KDiv:
		// round(x*MA / d) = floor((2*x*MA + d) / (2d)). Soundness: DivFloor proves the
		// quotient and remainder; its operand widths come from the static bounds of
		// x >= 0 and d > 0 (the lowering only builds this for such operands).
		x, y := ew(0), ew(1)
		for i := range out {
			d := a.Add(y[i], a.Const(l.MB))
			num := a.Add(a.MulConst(x[i], 2*l.MA), d)
			out[i] = a.DivFloor(num, a.MulConst(d, 2), l.NumBits, l.DenBits, l.Bits)
		}
	case KMove:
		var src []V
		for k := range l.In {
			src = append(src, in(k)...)
		}
		fill := a.Const(l.Fill)
		for i, j := range l.Index {
			if j < 0 {
				out[i] = fill
			} else {
				out[i] = src[j]
			}
		}
	case KLookup:
		tlo, thi := l.Table.Lo, l.Table.Lo+int64(len(l.Table.Values))-1
		for i, v := range ew(0) {
			out[i] = lookup(a, l, v, tlo, thi)
		}
	case KSoftmax:
		softmax(p, a, l, in(0), out)
	default:
		panic("quant: unknown layer kind " + string(l.Kind))
	}
	return out
}

// clamp returns min(max(v, lo), hi); a side at or beyond ±2^(bits-1) cannot bind and
// costs nothing. Soundness: |v|, |lo|, |hi| < 2^(bits-1) (static bounds), so the
// differences below are < 2^bits in magnitude, within the relus' bits+1 widths.
func clamp[V any](a Arith[V], v V, lo, hi int64, bits int) V {
	lim := int64(1) << (bits - 1)
	if lo > -lim {
		v = a.Add(a.Const(lo), a.Relu(a.Add(v, a.Const(-lo)), bits+1))
	}
	if hi < lim {
		v = a.Add(a.Const(hi), a.MulConst(a.Relu(a.Add(a.Const(hi), a.MulConst(v, -1)), bits+1), -1))
	}
	return v
}

// lookup returns the table's function at v: the table at min(max(v, lo), hi), plus the
// layer's linear tails beyond the domain (Strict layers: at max(v, lo), which must not
// exceed hi). Soundness: |v| < 2^(Bits-1) by the input's
// static bound and lo, hi lie within that range, so every relu argument below is
// < 2^Bits in magnitude (checked at width Bits+1); the clamped index lies in [lo, hi],
// and the lookup argument itself rejects any index outside the table.
func lookup[V any](a Arith[V], l *Layer, v V, lo, hi int64) V {
	// rl = relu(v - lo), so max(v, lo) = lo + rl.
	rl := a.Relu(a.Add(v, a.Const(-lo)), l.Bits+1)
	w := a.Add(a.Const(lo), rl)
	if l.Strict {
		return a.Lookup(l.Table, w) // w > hi is not in the table: no proof, and an error
	}
	// rh = relu(hi - w), so min(w, hi) = hi - rh.
	rh := a.Relu(a.Add(a.Const(hi), a.MulConst(w, -1)), l.Bits+1)
	y := a.Lookup(l.Table, a.Add(a.Const(hi), a.MulConst(rh, -1)))
	if l.TailLo == 0 && l.TailHi == 0 {
		return y
	}
	// The tails reuse the clamp's relus: relu(lo - v) = rl - (v - lo) and
	// relu(v - hi) = relu(w - hi) = rh - (hi - w); both are exact, no new comparison.
	below := a.Add(rl, a.Add(a.MulConst(v, -1), a.Const(lo)))
	above := a.Add(rh, a.Add(w, a.Const(-hi)))
	t := a.Add(a.MulConst(above, l.TailHi), a.MulConst(below, -l.TailLo))
	if l.TailShift > 0 {
		t = a.Rescale(t, l.TailShift, l.TailBits, false)
	}
	return a.Add(y, t)
}

// argmax selects, per row, the index of the first maximum (the last with l.Last; of
// the minimum with l.Min) by a running comparison: c_k = [x_k > m] (or >= for Last),
// m <- m + c_k*(x_k - m), idx <- idx + c_k*(k - idx). Soundness: c_k is computed, not
// claimed: for integer d, [d > 0] = relu(d) - relu(d - 1), and |d| <= |x_k - m| + 1 <
// 2^Bits + 1 because x_k and m (always one of the row's elements) are below
// 2^(Bits-1) by the input's static bound, so the relus at width Bits+2 are exact. The
// strict comparison keeps the earliest maximum, as ONNX requires: the selected element
// equals the maximum and every earlier element is strictly smaller.
func argmax[V any](p *Program, a Arith[V], l *Layer, x, out []V) {
	one := int64(1) << p.Values[l.Out].Scale
	zero := a.Const(0)
	w := l.Bits + 2
	for o, row := range l.Groups {
		m := x[row[0]]
		idx := zero
		cs := make([]V, len(row))
		cs[0] = a.Const(1)
		for k := 1; k < len(row); k++ {
			y := x[row[k]]
			d := a.Add(y, a.MulConst(m, -1))
			if l.Min {
				d = a.MulConst(d, -1)
			}
			if l.Last {
				d = a.Add(d, a.Const(1)) // y >= m  <=>  d + 1 > 0
			}
			c := a.Add(a.Relu(d, w), a.MulConst(a.Relu(a.Add(d, a.Const(-1)), w), -1))
			cs[k] = c
			m = a.Dot([]V{c}, []V{a.Add(y, a.MulConst(m, -1))}, m)
			idx = a.Dot([]V{c}, []V{a.Add(a.Const(int64(k)*one), a.MulConst(idx, -1))}, idx)
		}
		if !l.OneHot {
			out[o] = idx
			continue
		}
		// The selected position is the last k with c_k = 1: y_k = c_k * prod_{j>k}(1 - c_j).
		alive := a.Const(1)
		for k := len(row) - 1; k >= 0; k-- {
			sel := a.Dot([]V{cs[k]}, []V{alive}, zero)
			out[row[k]] = a.MulConst(sel, one)
			alive = a.Add(alive, a.MulConst(sel, -1))
		}
	}
}

// softmax computes, per row, e_i = exp(x_i - max) by lookup (clamped below) and
// y_i = floor(e_i * 2^Scale / sum e).
func softmax[V any](p *Program, a Arith[V], l *Layer, x, out []V) {
	t := l.Table
	lo := t.Lo
	one := int64(1) << p.Scale
	for _, row := range l.Groups {
		m := x[row[0]]
		for _, j := range row[1:] {
			y := x[j]
			m = a.Add(y, a.Relu(a.Add(m, a.MulConst(y, -1)), l.Bits+1))
		}
		es := make([]V, len(row))
		sum := a.Const(0)
		for k, j := range row {
			d := a.Add(x[j], a.MulConst(m, -1)) // in (-2^Bits, 0]
			// max(d, lo) = lo + relu(d - lo)
			d = a.Add(a.Const(lo), a.Relu(a.Add(d, a.Const(-lo)), l.Bits+2))
			es[k] = a.Lookup(t, d)
			sum = a.Add(sum, es[k])
		}
		// e_i <= 2^Scale and sum <= len*2^Scale; the max element contributes exactly 2^Scale.
		sumBits := bitsFor(float64(int64(len(row))*one)) - 1
		for k, j := range row {
			out[j] = a.DivFloor(a.MulConst(es[k], one), sum, 2*p.Scale+1, sumBits+1, p.Scale+1)
		}
	}
}
