package model

import (
	"fmt"
	"math"
)

// LRN (local response normalization across channels, AlexNet's and Inception v1's):
//
//	square_sum[n, c, ...] = sum of X[n, i, ...]^2 for i in [c - floor((size-1)/2), c + ceil((size-1)/2)] ∩ [0, C)
//	Y = X * (bias + alpha/size * square_sum)^-beta

func init() {
	extraOps["LRN"] = evalLRN
	arities["LRN"] = arity{1, 1}
}

// LRNParams are an LRN node's attributes, validated.
type LRNParams struct {
	Size              int
	Alpha, Beta, Bias float64
}

// ParseLRN reads and checks n's attributes: size >= 1 (required), bias > 0, alpha >= 0
// and beta >= 0, so that the base bias + alpha/size*square_sum is at least bias and the
// factor base^-beta lies in (0, bias^-beta].
func ParseLRN(n *Node) (LRNParams, error) {
	p := LRNParams{Size: int(n.Attrs.Int("size", 0)), Alpha: n.Attrs.Float("alpha", 1e-4), Beta: n.Attrs.Float("beta", 0.75), Bias: n.Attrs.Float("bias", 1)}
	if _, ok := n.Attrs["size"]; !ok || p.Size < 1 || p.Size > 1<<16 {
		return p, invalidf("%s: attribute size must be given, between 1 and %d", n.Label(), 1<<16)
	}
	if !(p.Bias > 0) || !(p.Alpha >= 0) || !(p.Beta >= 0) || math.IsInf(p.Bias+p.Alpha+p.Beta, 0) {
		return p, fmt.Errorf("%w: %s: bias %g, alpha %g, beta %g: zkml supports bias > 0, alpha >= 0 and beta >= 0",
			ErrUnsupportedOp, n.Label(), p.Bias, p.Alpha, p.Beta)
	}
	return p, nil
}

// Factor is (bias + alpha/size*s)^-beta for a square sum s.
func (p LRNParams) Factor(s float64) float64 {
	return math.Pow(p.Bias+p.Alpha/float64(p.Size)*s, -p.Beta)
}

// MaxSlope bounds |d Factor / ds| over s >= 0 (its value at s = 0).
func (p LRNParams) MaxSlope() float64 {
	return p.Beta * p.Alpha / float64(p.Size) * math.Pow(p.Bias, -p.Beta-1)
}

// Window is the channel range [lo, hi) summed for output channel c of C.
func (p LRNParams) Window(c, channels int) (lo, hi int) {
	return max(0, c-(p.Size-1)/2), min(channels, c+p.Size/2+1)
}

func evalLRN(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	p, err := ParseLRN(n)
	if err != nil {
		return nil, err
	}
	x := in[0]
	if len(x.Shape) < 2 {
		return nil, invalidf("%s: input rank %d, want [N, C, ...]", n.Label(), len(x.Shape))
	}
	if err := checkWork(n, x.Numel(), min(p.Size, x.Shape[1])); err != nil {
		return nil, err
	}
	out := NewTensor(x.Shape...)
	N, C := x.Shape[0], x.Shape[1]
	sp := x.Numel() / max(1, N*C)
	for b := range N {
		for c := range C {
			lo, hi := p.Window(c, C)
			for s := range sp {
				sum := 0.0
				for i := lo; i < hi; i++ {
					v := x.Data[(b*C+i)*sp+s]
					sum += v * v
				}
				o := (b*C+c)*sp + s
				out.Data[o] = x.Data[o] * p.Factor(sum)
			}
		}
	}
	return []*Tensor{out}, nil
}
