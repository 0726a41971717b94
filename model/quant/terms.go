package quant

import (
	"encoding/json"

	"github.com/zkml/zkml/model"
)

// Structured linear layers (#16).
//
// A KLinear layer's outputs are sums of products X0[ta]*X1[tb] over terms (ta, tb). The
// terms were always materialized as lists (TermStart, TA, TB: about 8 bytes per
// multiply-accumulate), which a full-size network cannot afford (ResNet-50 has 3.7 G
// of them). The terms of a convolution or a matrix product follow from its geometry,
// so a Conv layer carries its geometry (Layer.Conv), a Gemm or MatMul layer its
// (Layer.Mat), instead of the lists, and every consumer reads the terms
// through Layer.Terms, which generates them on the fly in exactly the order the lists
// held them. The program is the same function, circuit and model ID either way: the
// canonical encoding streams the generated lists where it wrote the stored ones.

// ConvGeom is the geometry of a Conv layer: an [N, C, In...] input (In[0]'s operand,
// row-major), [M, C/Group, K...] weights (In[1]), [N, M, Out...] outputs. Output
// (b, m, o) with m in group g = m / (M/Group) sums, for c < C/Group and every kernel
// position k (row-major over K) whose input position falls inside the input (padding
// taps are skipped, not multiplied by zero), the products
//
//	X[b, g*C/Group + c, pos(o, k)] * W[m, c, k],   pos(o, k)_i = o_i*S_i - PadBegin_i + k_i*D_i,
//
// in the order c, then k.
type ConvGeom struct {
	N, C, M, Group int
	// Per spatial axis: input size, kernel size, stride, dilation, begin padding and
	// output size.
	In, K, S, D, PadBegin, Out []int
}

func newConvGeom(pl *model.ConvPlan) *ConvGeom {
	c := func(v []int) []int { return append([]int(nil), v...) }
	return &ConvGeom{N: pl.N, C: pl.C, M: pl.M, Group: pl.Group,
		In: c(pl.In), K: c(pl.K), S: c(pl.S), D: c(pl.D), PadBegin: c(pl.PadBegin), Out: c(pl.Out)}
}

// Outputs is the number of outputs, N*M*prod(Out).
func (g *ConvGeom) Outputs() int { return g.N * g.M * numel(g.Out) }

// maxSpatial is the number of spatial axes whose per-call scratch lives on the stack.
const maxSpatial = 8

// taps appends the kernel taps of spatial output position op that fall inside the
// input: the flat input offset plus xb to ta, the flat kernel offset plus wb to tb.
func (g *ConvGeom) taps(op int, ta, tb []int32, xb, wb int) ([]int32, []int32) {
	k := len(g.In)
	var stBuf, strBuf [maxSpatial]int
	st, inStr := stBuf[:0], strBuf[:0]
	if k > maxSpatial {
		st, inStr = make([]int, 0, k), make([]int, 0, k)
	}
	st, inStr = st[:k], inStr[:k]
	s := 1
	for i := k - 1; i >= 0; i-- {
		st[i] = (op%g.Out[i])*g.S[i] - g.PadBegin[i]
		op /= g.Out[i]
		inStr[i] = s
		s *= g.In[i]
	}
	ks := numel(g.K)
	for kk := 0; kk < ks; kk++ {
		off, r := 0, kk
		inside := true
		for i := k - 1; i >= 0; i-- {
			x := st[i] + (r%g.K[i])*g.D[i]
			r /= g.K[i]
			if x < 0 || x >= g.In[i] {
				inside = false
				break
			}
			off += x * inStr[i]
		}
		if inside {
			ta = append(ta, int32(xb+off))
			tb = append(tb, int32(wb+kk))
		}
	}
	return ta, tb
}

// terms appends output o's terms to ta and tb.
func (g *ConvGeom) terms(o int, ta, tb []int32) ([]int32, []int32) {
	outs := numel(g.Out)
	op, m, b := o%outs, (o/outs)%g.M, o/outs/g.M
	cPerG, sp, ks := g.C/g.Group, numel(g.In), numel(g.K)
	grp := m / (g.M / g.Group)
	start := len(ta)
	ta, tb = g.taps(op, ta, tb, (b*g.C+grp*cPerG)*sp, m*cPerG*ks)
	n := len(ta) - start
	for c := 1; c < cPerG; c++ {
		for t := start; t < start+n; t++ {
			ta = append(ta, ta[t]+int32(c*sp))
			tb = append(tb, tb[t]+int32(c*ks))
		}
	}
	return ta, tb
}

// termCounts returns, per output (in order), its number of terms, through f.
func (g *ConvGeom) termCounts(f func(n int)) {
	outs := numel(g.Out)
	per := make([]int, outs)
	var ta, tb []int32
	for op := range per {
		ta, tb = g.taps(op, ta[:0], tb[:0], 0, 0)
		per[op] = len(ta) * (g.C / g.Group)
	}
	for range g.N * g.M {
		for _, n := range per {
			f(n)
		}
	}
}

// MatGeom is the geometry of a Gemm or MatMul layer: len(AOff) matrix products of
// M x K by K x N, the b-th of In[0] at offset AOff[b] (row-major M x K, or K x M with
// TransA) and In[1] at BOff[b] (K x N, or N x K with TransB), outputs row-major
// [b][M][N]. Output (b, i, j) sums over x < K the products
//
//	A[AOff[b] + i*K + x (TransA: x*M + i)] * B[BOff[b] + x*N + j (TransB: j*K + x)].
type MatGeom struct {
	M, K, N        int
	TransA, TransB bool
	AOff, BOff     []int
}

// Outputs is the number of outputs, len(AOff)*M*N.
func (g *MatGeom) Outputs() int { return len(g.AOff) * g.M * g.N }

func (g *MatGeom) terms(o int, ta, tb []int32) ([]int32, []int32) {
	j, i, b := o%g.N, (o/g.N)%g.M, o/g.N/g.M
	ab, bb := g.AOff[b], g.BOff[b]
	for x := 0; x < g.K; x++ {
		ai, bi := ab+i*g.K+x, bb+x*g.N+j
		if g.TransA {
			ai = ab + x*g.M + i
		}
		if g.TransB {
			bi = bb + j*g.K + x
		}
		ta = append(ta, int32(ai))
		tb = append(tb, int32(bi))
	}
	return ta, tb
}

func (g *MatGeom) termCounts(f func(n int)) {
	for range g.Outputs() {
		f(g.K)
	}
}

// structure is a layer's term structure (ConvGeom or MatGeom).
type structure interface {
	Outputs() int
	terms(o int, ta, tb []int32) ([]int32, []int32)
	termCounts(f func(n int))
}

// structure returns l's structure, nil for a layer with lists.
func (l *Layer) structure() structure {
	switch {
	case l.Conv != nil:
		return l.Conv
	case l.Mat != nil:
		return l.Mat
	}
	return nil
}

// termCounts calls f with the number of terms of each of l's outputs (of its range
// when it is restricted), in order.
func (l *Layer) termCounts(s structure, f func(n int)) {
	if !l.Restricted() {
		s.termCounts(f)
		return
	}
	o := 0
	s.termCounts(func(n int) {
		if o >= l.OutLo && o < l.OutHi {
			f(n)
		}
		o++
	})
}

// TermBuf is scratch storage for Layer.Terms; its zero value is ready to use.
type TermBuf struct{ ta, tb []int32 }

// Terms returns output o's terms of a KLinear layer: the indices into In[0] and In[1]
// of its products, in order. For a layer with stored lists they are sub-slices of
// TA and TB; otherwise they are generated into buf. Either way they are valid until
// the next call with buf, and must not be modified.
func (l *Layer) Terms(o int, buf *TermBuf) (ta, tb []int32) {
	if s := l.structure(); s != nil {
		buf.ta, buf.tb = s.terms(l.OutLo+o, buf.ta[:0], buf.tb[:0])
		return buf.ta, buf.tb
	}
	s, e := l.TermStart[o], l.TermStart[o+1]
	return l.TA[s:e:e], l.TB[s:e:e]
}

// LinearOutputs is the number of outputs of a KLinear layer (of its range when it is
// restricted, Layer.OutHi).
func (l *Layer) LinearOutputs() int {
	if l.Restricted() {
		return l.OutHi - l.OutLo
	}
	if s := l.structure(); s != nil {
		return s.Outputs()
	}
	return len(l.TermStart) - 1
}

// NumTerms is the number of terms (multiply-accumulates) of a KLinear layer.
func (l *Layer) NumTerms() int {
	if s := l.structure(); s != nil {
		n := 0
		l.termCounts(s, func(c int) { n += c })
		return n
	}
	return len(l.TA)
}

// Materialized returns l with its terms as lists (TermStart, TA, TB) and no
// structure: l itself when it has no structure, else a copy. It costs the lists'
// memory; the program it belongs to is the same function with either.
func (l *Layer) Materialized() *Layer {
	if l.structure() == nil {
		return l
	}
	c := *l
	c.Conv, c.Mat = nil, nil
	n := l.LinearOutputs()
	c.TermStart = make([]int32, 0, n+1)
	var buf TermBuf
	for o := 0; o < n; o++ {
		c.TermStart = append(c.TermStart, int32(len(c.TA)))
		ta, tb := l.Terms(o, &buf)
		c.TA = append(c.TA, ta...)
		c.TB = append(c.TB, tb...)
	}
	c.TermStart = append(c.TermStart, int32(len(c.TA)))
	return &c
}

// layerJSON is Layer without its methods (for MarshalJSON).
type layerJSON Layer

// MarshalJSON writes the layer with its terms as lists, as zkml did before layers had
// structure: the JSON encoding of a program is the one earlier versions hashed into
// their model IDs (prover's legacy IDs), which must not change.
func (l *Layer) MarshalJSON() ([]byte, error) {
	return json.Marshal((*layerJSON)(l.Materialized()))
}
