package quant

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// lrn lowers LRN: y = x * (bias + alpha/size * S)^-beta, S the square sum over the
// channel window.
//
//  1. S is exact integer arithmetic: one linear layer whose terms are the products
//     x[i]*x[i] over each window, at scale 2s (s the activation scale).
//  2. S is rounded to the table's scale t (a rescale by 2s - t bits; none when t = 2s)
//     and the factor f(S) = (bias + alpha/size*S)^-beta is looked up in a table over
//     [0, 2^LookupBits) at scale t, output at scale s. The lookup is strict: a square sum
//     beyond the table fails the proof instead of being clamped.
//  3. y = x * f, an exact product rescaled to scale s.
//
// t is the coarsest scale at which rounding S costs at most half an output step:
// |f'| <= beta*alpha/size*bias^(-beta-1) =: D, so t = ceil(s + log2 D), at most 2s. The
// factor's error is then at most 2^-(s+1) (table rounding) + D*2^-(t+1) <= 2^-s, recorded
// as the lookup layer's MaxError; y is within |x|*MaxError + 2^-(s+1) of the float LRN
// of the fixed-point input. The table covers square sums up to (2^LookupBits-1)*2^-t.
func (lw *lowering) lrn(n *model.Node) error {
	p := lw.p
	prm, err := model.ParseLRN(n)
	if err != nil {
		return err
	}
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	if len(v.Shape) < 2 {
		return fmt.Errorf("%w: %s: input rank %d, want [N, C, ...]", model.ErrInvalidModel, n.Label(), len(v.Shape))
	}
	N, C := v.Shape[0], v.Shape[1]
	sp := numel(v.Shape) / max(1, N*C)
	sq := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{x, x}}
	for b := range N {
		for c := range C {
			lo, hi := prm.Window(c, C)
			for s := range sp {
				sq.TermStart = append(sq.TermStart, int32(len(sq.TA)))
				for i := lo; i < hi; i++ {
					idx := int32((b*C+i)*sp + s)
					sq.TA = append(sq.TA, idx)
					sq.TB = append(sq.TB, idx)
				}
			}
		}
	}
	sq.TermStart = append(sq.TermStart, int32(len(sq.TA)))
	acc, err := lw.accumulate(n, sq, v.Shape, 2*v.Scale)
	if err != nil {
		return err
	}
	s := p.Scale
	D := prm.MaxSlope()
	t := 2 * v.Scale
	if D > 0 {
		t = min(t, int(math.Ceil(float64(s)+math.Log2(D))))
	} else {
		t = min(t, 2*v.Scale-60) // a constant factor: any square sum reads the same entry
	}
	t = max(t, 2*v.Scale-60)
	sum := acc
	if shift := 2*v.Scale - t; shift > 0 {
		sum = lw.rescale(n, acc, shift)
	}
	hi := int64(1)<<p.LookupBits - 1
	name := fmt.Sprintf("lrn(size=%d,alpha=%g,beta=%g,bias=%g,t=%d)", prm.Size, prm.Alpha, prm.Beta, prm.Bias, t)
	// The table reads its input as x*2^-s; the square sum it stands for is x*2^-t.
	tab := lw.table(name, 0, hi, func(u float64) float64 { return prm.Factor(math.Ldexp(u, s-t)) })
	maxErr := math.Ldexp(1, -s-1)
	if t < 2*v.Scale {
		maxErr += D * math.Ldexp(1, -t-1)
	}
	sv := p.Values[sum]
	look := &Layer{Name: n.Name, Op: n.Op, Kind: KLookup, In: []int{sum}, Table: tab, Strict: true, MaxError: maxErr,
		Bits: max(bitsFor(sv.Bound), bitsFor(float64(hi)))}
	f := lw.layer(look, v.Shape, s, math.Ceil(math.Ldexp(math.Pow(prm.Bias, -prm.Beta), s))+1)
	y, err := lw.product(n, x, f)
	if err != nil {
		return err
	}
	lw.ids[n.Outputs[0]] = y
	return nil
}

// LRNFactorError is the error bound of the factor (bias + alpha/size*S)^-beta that the
// lowering of LRN node name recorded (the lookup layer's MaxError), and whether p has
// such a layer.
func LRNFactorError(p *Program, name string) (float64, bool) {
	for _, l := range p.Layers {
		if l.Op == "LRN" && l.Name == name && l.Kind == KLookup {
			return l.MaxError, true
		}
	}
	return 0, false
}
