package quant

import (
	"fmt"
	"math"
	"slices"
)

// Splitting one layer into parts (#16). A layer whose circuit alone is too large for
// one process is replaced by consecutive restricted layers (Layer.OutLo, OutHi), each
// computing a contiguous range of the same output value; quant.Run allocates the value
// once and each part fills its range, so the program is the same function. A sharded
// proof (prover/shard) may then place cuts between the parts, and carry across a cut
// only the elements the later parts read (ElemDeps).

// Restricted reports whether the layer computes only a range of its output value.
func (l *Layer) Restricted() bool { return l.OutHi > 0 }

// Splittable reports whether layers of kind k may be restricted to an output range.
// Softmax and ArgMax rows (ArgMax's one-hot writes outside its row's index) are not.
func Splittable(k Kind) bool {
	switch k {
	case KLinear, KAdd, KRescale, KRelu, KRangeChk, KMax, KMove, KClamp, KLookup, KRequant, KDiv:
		return true
	}
	return false
}

// ElementWise reports whether output i of a layer of kind k reads element i of each
// input.
func ElementWise(k Kind) bool {
	switch k {
	case KRescale, KRelu, KRangeChk, KClamp, KLookup, KRequant, KDiv:
		return true
	}
	return false
}

// checkRange reports a restricted layer that cannot run: a kind that cannot be
// split, a range outside its value, per-output lists of the wrong length, or a value
// that an earlier layer wrote whole.
func checkRange[V any](p *Program, l *Layer, vals [][]V) error {
	if !l.Restricted() {
		if l.OutLo != 0 {
			return fmt.Errorf("output range starts at %d but has no end", l.OutLo)
		}
		return nil
	}
	if !Splittable(l.Kind) {
		return fmt.Errorf("a %s layer cannot be restricted to an output range", l.Kind)
	}
	n := numel(p.Values[l.Out].Shape)
	if l.OutLo < 0 || l.OutLo >= l.OutHi || l.OutHi > n {
		return fmt.Errorf("output range [%d, %d) outside its value's %d elements", l.OutLo, l.OutHi, n)
	}
	if v := vals[l.Out]; v != nil && len(v) != n {
		return fmt.Errorf("output value has %d elements, want %d", len(v), n)
	}
	m := l.OutHi - l.OutLo
	bad := func(what string, got int) error {
		return fmt.Errorf("%s has %d entries for an output range of %d", what, got, m)
	}
	switch l.Kind {
	case KLinear:
		if l.structure() == nil && len(l.TermStart) != m+1 {
			return bad("TermStart", len(l.TermStart)-1)
		}
		if len(l.In) > 2 && len(l.Bias) != m {
			return bad("Bias", len(l.Bias))
		}
	case KAdd:
		if len(l.IA) != m || len(l.IB) != m {
			return bad("IA/IB", min(len(l.IA), len(l.IB)))
		}
	case KMax:
		if len(l.Groups) != m {
			return bad("Groups", len(l.Groups))
		}
	case KMove:
		if len(l.Index) != m {
			return bad("Index", len(l.Index))
		}
	case KRequant:
		if l.IA != nil && len(l.IA) != m {
			return bad("IA", len(l.IA))
		}
	}
	if ElementWise(l.Kind) {
		for _, id := range l.In {
			if len(vals[id]) != n {
				return fmt.Errorf("element-wise input has %d elements, output %d", len(vals[id]), n)
			}
		}
	}
	return nil
}

// Restrict returns the part of l that computes outputs [lo, hi) of its value: a copy
// restricted to that range (per-output lists cut to it; a KLinear part is computed
// directly, RLC cleared). l may itself be restricted; [lo, hi) must lie in its range.
func (p *Program) Restrict(l *Layer, lo, hi int) (*Layer, error) {
	if !Splittable(l.Kind) {
		return nil, fmt.Errorf("layer %s: a %s layer cannot be split into output ranges", l.Name, l.Kind)
	}
	base, end := 0, numel(p.Values[l.Out].Shape)
	if l.Restricted() {
		base, end = l.OutLo, l.OutHi
	}
	if lo < base || lo >= hi || hi > end {
		return nil, fmt.Errorf("layer %s: output range [%d, %d) outside [%d, %d)", l.Name, lo, hi, base, end)
	}
	c := *l
	c.OutLo, c.OutHi = lo, hi
	a, b := lo-base, hi-base
	switch l.Kind {
	case KLinear:
		c.RLC = 0
		if l.structure() == nil {
			s, e := l.TermStart[a], l.TermStart[b]
			c.TA, c.TB = l.TA[s:e:e], l.TB[s:e:e]
			c.TermStart = make([]int32, b-a+1)
			for i := range c.TermStart {
				c.TermStart[i] = l.TermStart[a+i] - s
			}
		}
		if l.Bias != nil {
			c.Bias = l.Bias[a:b:b]
		}
	case KAdd:
		c.IA, c.IB = l.IA[a:b:b], l.IB[a:b:b]
	case KMax:
		c.Groups = l.Groups[a:b:b]
	case KMove:
		c.Index = l.Index[a:b:b]
	case KRequant:
		if l.IA != nil {
			c.IA = l.IA[a:b:b]
		}
	}
	return &c, nil
}

// ElemDeps calls f(k, j) for every element j of input l.In[k] the layer reads (of its
// range when it is restricted), possibly more than once, in no particular order.
// Params are included (callers skip them). Softmax and ArgMax read every element.
func (p *Program) ElemDeps(l *Layer, f func(k, j int)) {
	p.ElemDepsIn(l, nil, f)
}

// ElemDepsIn is ElemDeps for the inputs l.In[k] with want(k) only (nil: all), so that
// a caller skipping params does not pay for their elements.
func (p *Program) ElemDepsIn(l *Layer, want func(k int) bool, f func(k, j int)) {
	lo, hi := 0, numel(p.Values[l.Out].Shape)
	if l.Restricted() {
		lo, hi = l.OutLo, l.OutHi
	}
	wanted := make([]bool, len(l.In))
	for k := range wanted {
		wanted[k] = want == nil || want(k)
	}
	all := func(k int) {
		for j := range numel(p.Values[l.In[k]].Shape) {
			f(k, j)
		}
	}
	switch {
	case ElementWise(l.Kind):
		for k := range l.In {
			for j := lo; j < hi && wanted[k]; j++ {
				f(k, j)
			}
		}
	case l.Kind == KLinear:
		if !wanted[0] && !wanted[1] && (len(l.In) <= 2 || !wanted[2]) {
			return
		}
		var buf TermBuf
		for o := range hi - lo {
			ta, tb := l.Terms(o, &buf)
			for t := range ta {
				if wanted[0] {
					f(0, int(ta[t]))
				}
				if wanted[1] {
					f(1, int(tb[t]))
				}
			}
			if len(l.In) > 2 && wanted[2] && l.Bias[o] >= 0 {
				f(2, int(l.Bias[o]))
			}
		}
	case l.Kind == KAdd:
		for i := range l.IA {
			if wanted[0] {
				f(0, int(l.IA[i]))
			}
			if wanted[1] {
				f(1, int(l.IB[i]))
			}
		}
	case l.Kind == KMax:
		if !wanted[0] {
			return
		}
		for _, g := range l.Groups {
			for _, j := range g {
				f(0, int(j))
			}
		}
	case l.Kind == KMove:
		var starts []int
		n := 0
		for _, id := range l.In {
			starts = append(starts, n)
			n += numel(p.Values[id].Shape)
		}
		for _, j := range l.Index {
			if j >= 0 {
				k, _ := slices.BinarySearch(starts, int(j)+1)
				if wanted[k-1] {
					f(k-1, int(j)-starts[k-1])
				}
			}
		}
	default:
		for k := range l.In {
			if wanted[k] {
				all(k)
			}
		}
	}
}

// SplitLayer returns p with layer li replaced by parts restricted to the output
// ranges of ranges (disjoint, covering its outputs, in any order: the parts run in
// that order). With follow, the next layer, which must be element-wise over li's
// output (a rescale, a ReLU) and have the same shape, is split at the same ranges and
// its parts interleaved with li's (part i of li, then part i of it), so that a cut
// between parts never carries li's unfinished values (a linear layer's accumulator).
// Values keep their ids. p itself is not modified.
func SplitLayer(p *Program, li int, ranges [][2]int, follow bool) (*Program, error) {
	if li < 0 || li >= len(p.Layers) {
		return nil, fmt.Errorf("split: no layer %d", li)
	}
	l := p.Layers[li]
	if l.Restricted() {
		return nil, fmt.Errorf("split: layer %s is already restricted", l.Name)
	}
	n := numel(p.Values[l.Out].Shape)
	sorted := slices.Clone(ranges)
	slices.SortFunc(sorted, func(a, b [2]int) int { return a[0] - b[0] })
	at := 0
	for _, r := range sorted {
		if r[0] != at || r[1] <= r[0] {
			break
		}
		at = r[1]
	}
	if at != n || len(ranges) == 0 {
		return nil, fmt.Errorf("split: layer %s: ranges %v do not cover its %d outputs", l.Name, ranges, n)
	}
	var next *Layer
	if follow {
		if li+1 >= len(p.Layers) {
			return nil, fmt.Errorf("split: layer %s has no next layer", l.Name)
		}
		next = p.Layers[li+1]
		if !ElementWise(next.Kind) || next.Restricted() || len(next.In) != 1 || next.In[0] != l.Out ||
			numel(p.Values[next.Out].Shape) != n {
			return nil, fmt.Errorf("split: layer %s after %s is not element-wise over its output", next.Name, l.Name)
		}
	}
	var parts []*Layer
	for _, r := range ranges {
		a, err := p.Restrict(l, r[0], r[1])
		if err != nil {
			return nil, err
		}
		parts = append(parts, a)
		if next != nil {
			b, err := p.Restrict(next, r[0], r[1])
			if err != nil {
				return nil, err
			}
			parts = append(parts, b)
		}
	}
	q := *p
	end := li + 1
	if next != nil {
		end++
	}
	q.Layers = slices.Concat(p.Layers[:li:li], parts, p.Layers[end:])
	return &q, nil
}

// BandRanges cuts the outputs of a value of shape into about bands bands of
// contiguous rows: for a value of rank 3 or more ([N, C, H, ...]), band b holds rows
// [b*H/bands, (b+1)*H/bands) of every (n, c) block, one range per block, bands in
// order (so the parts of a band read one band of a convolution's or pool's input, with
// its halo); for a lower rank, bands equal flat ranges. Empty bands are dropped.
func BandRanges(shape []int, bands int) [][2]int {
	n := numel(shape)
	var out [][2]int
	if len(shape) < 3 {
		bands = max(1, min(bands, n))
		for b := range bands {
			if lo, hi := b*n/bands, (b+1)*n/bands; hi > lo {
				out = append(out, [2]int{lo, hi})
			}
		}
		return out
	}
	rows, rowLen, blocks := shape[2], numel(shape[3:]), shape[0]*shape[1]
	bands = max(1, min(bands, rows))
	for b := range bands {
		r0, r1 := b*rows/bands, (b+1)*rows/bands
		if r1 == r0 {
			continue
		}
		for blk := range blocks {
			base := blk * rows * rowLen
			out = append(out, [2]int{base + r0*rowLen, base + r1*rowLen})
		}
	}
	return out
}

// SplitChain returns p with the count consecutive layers from first each split into
// about bands bands of output rows (BandRanges), their parts interleaved band by
// band: a band of a layer runs as soon as the bands of the chain's earlier layers it
// reads have run (a pool's band after the convolution bands under its window). A
// sharded proof cut between bands then carries a band's outputs and halo rows, not a
// whole layer's. It also returns the indices (in the returned program) between two
// bands, where a cut may go. Values keep their ids (a global pool in the chain adds
// the values of its partial sums and a param 1: splitReductions); p itself is not
// modified.
func SplitChain(p *Program, first, count, bands int) (*Program, []int, error) {
	if first < 0 || count < 1 || first+count > len(p.Layers) {
		return nil, nil, fmt.Errorf("split: layers [%d, %d) outside the program", first, first+count)
	}
	// A global pool's bands are partial sums (splitReductions): p gains values and a
	// param, so work on a copy of its lists.
	pc := *p
	p = &pc
	p.Values, p.Params = slices.Clip(p.Values), slices.Clip(p.Params)
	chain := splitReductions(p, p.Layers[first:first+count], bands)
	tail := p.Layers[first+count:]
	count = len(chain)
	// parts[i][b] are layer i's parts of band b; band[v][j] is the band of the chain
	// layer writing element j of value v, layer[v] that layer's chain index.
	parts := make([][][]*Layer, count)
	band := map[int][]int32{}
	layer := map[int]int{}
	for i, l := range chain {
		if l.Restricted() {
			return nil, nil, fmt.Errorf("split: layer %s is already restricted", l.Name)
		}
		if _, ok := layer[l.Out]; ok {
			return nil, nil, fmt.Errorf("split: layer %s writes a value another layer of the chain writes", l.Name)
		}
		shape := p.Values[l.Out].Shape
		per := 1
		if len(shape) >= 3 {
			per = shape[0] * shape[1]
		}
		rs := BandRanges(shape, bands)
		w := make([]int32, numel(shape))
		for k := 0; k < len(rs); k += per {
			var bp []*Layer
			for _, r := range rs[k : k+per] {
				c, err := p.Restrict(l, r[0], r[1])
				if err != nil {
					return nil, nil, err
				}
				bp = append(bp, c)
				for j := r[0]; j < r[1]; j++ {
					w[j] = int32(len(parts[i]))
				}
			}
			parts[i] = append(parts[i], bp)
		}
		band[l.Out], layer[l.Out] = w, i
	}
	// need[i][b][j] is the last band of chain layer j that band b of layer i reads (-1:
	// none).
	need := make([][][]int, count)
	for i := range chain {
		for _, bp := range parts[i] {
			n := make([]int, count)
			for j := range n {
				n[j] = -1
			}
			for _, c := range bp {
				p.ElemDeps(c, func(k, e int) {
					if w, ok := band[c.In[k]]; ok {
						j := layer[c.In[k]]
						if j >= i {
							return
						}
						n[j] = max(n[j], int(w[e]))
					}
				})
			}
			need[i] = append(need[i], n)
		}
	}
	for i := range chain {
		for _, id := range chain[i].In {
			if j, ok := layer[id]; ok && j >= i {
				return nil, nil, fmt.Errorf("split: layer %s reads a value written later in the chain", chain[i].Name)
			}
		}
	}
	emitted := make([]int, count)
	var out []*Layer
	var cuts []int
	// One band of each layer a round, when what it reads has run: band-major order.
	for {
		left, progress := false, false
		for i := range chain {
			if emitted[i] < len(parts[i]) {
				ok := true
				for j, b := range need[i][emitted[i]] {
					ok = ok && b < emitted[j]
				}
				if ok {
					out = append(out, parts[i][emitted[i]]...)
					cuts = append(cuts, first+len(out))
					emitted[i]++
					progress = true
				}
			}
			left = left || emitted[i] < len(parts[i])
		}
		if left && !progress {
			return nil, nil, fmt.Errorf("split: the bands of layers [%d, %d) cannot be ordered", first, first+count)
		}
		if !left {
			break
		}
	}
	cuts = cuts[:len(cuts)-1] // the end of the chain is no cut inside it
	q := *p
	q.Layers = slices.Concat(p.Layers[:first:first], out, tail)
	return &q, cuts, nil
}

// splitReductions returns chain with every layer that reduces a value the chain
// writes in bands of rows to a single row (a global average pool: a KLinear with
// term lists and one output row, reading a value of several rows written by an
// earlier layer of the chain) replaced by three layers computing the same integers:
// the partial sums of each band's rows (a KLinear writing one row of outputs per
// band, a new value), their range check (a KRescale by 2^0, so that a partial can
// cross a segment boundary as a value of its own width), and their sum (a KLinear
// writing the layer's own accumulator, with its bias). Banded, a segment then exports
// one partial per output for its band instead of the band's rows, and the sum imports
// bands times outputs values instead of the whole input (SqueezeNet's final pool reads
// 169,000 values at full width; its sum reads 13,000). The sum is only reassociated:
// the accumulator, and every value after it, is the same integer. New values and an
// internal param 1 are appended to p's lists.
func splitReductions(p *Program, chain []*Layer, bands int) []*Layer {
	written := map[int]bool{}
	var out []*Layer
	one := -1
	// reduces reports whether l is such a layer.
	reduces := func(l *Layer) bool {
		shape := p.Values[l.Out].Shape
		if l.Kind != KLinear || l.Restricted() || l.structure() != nil || l.RLC > 0 || len(shape) < 3 || shape[2] != 1 || !written[l.In[0]] {
			return false
		}
		xs := p.Values[l.In[0]].Shape
		return len(xs) >= 3 && xs[2] >= 2
	}
	for _, l := range chain {
		if !reduces(l) {
			written[l.Out] = true
			out = append(out, l)
			continue
		}
		x := l.In[0]
		xs := p.Values[x].Shape
		// band[h] is the band of row h of x, as BandRanges cuts it.
		rows, rowLen := xs[2], numel(xs[3:])
		nb := min(bands, rows)
		band := make([]int, rows)
		for b := range nb {
			for h := b * rows / nb; h < (b+1)*rows/nb; h++ {
				band[h] = b
			}
		}
		// The weights' element bounds, for the partials' bound.
		wb := func(int32) float64 { return p.Values[l.In[1]].Bound }
		for _, par := range p.Params {
			if par.Value == l.In[1] && !p.Witness(par) {
				wb = func(i int32) float64 { return math.Abs(float64(par.Data[i])) }
			}
		}
		outs := l.LinearOutputs()
		part := &Layer{Name: l.Name, Op: l.Op, Kind: KLinear, In: []int{x, l.In[1]}}
		bound := 0.0
		xb := p.Values[x].Bound
		for b := range nb {
			for o := range outs {
				part.TermStart = append(part.TermStart, int32(len(part.TA)))
				s := 0.0
				s0, s1 := l.TermStart[o], l.TermStart[o+1]
				for t := s0; t < s1; t++ {
					if band[(int(l.TA[t])/rowLen)%rows] == b {
						part.TA = append(part.TA, l.TA[t])
						part.TB = append(part.TB, l.TB[t])
						s += xb * wb(l.TB[t])
					}
				}
				bound = max(bound, s)
			}
		}
		part.TermStart = append(part.TermStart, int32(len(part.TA)))
		acc := p.Values[l.Out]
		pshape := []int{1, 1, nb, outs}
		part.Out = p.newValue(pshape, acc.Scale, bound)
		bits := bitsFor(math.Ceil(bound) + 1)
		check := &Layer{Name: l.Name, Op: "Rescale", Kind: KRescale, In: []int{part.Out}, Bits: bits}
		check.Out = p.newValue(pshape, acc.Scale, bound)
		if one < 0 {
			one = p.newValue([]int{1}, 0, 1)
			p.Params = append(p.Params, &Param{Name: "1", Value: one, Data: []int64{1}, Bits: bitsFor(1), Internal: true})
		}
		sum := &Layer{Name: l.Name, Op: l.Op, Kind: KLinear, In: []int{check.Out, one}, Out: l.Out}
		if len(l.In) > 2 {
			sum.In = append(sum.In, l.In[2])
			sum.Bias = l.Bias
		}
		for o := range outs {
			sum.TermStart = append(sum.TermStart, int32(len(sum.TA)))
			for b := range nb {
				sum.TA = append(sum.TA, int32(b*outs+o))
				sum.TB = append(sum.TB, 0)
			}
		}
		sum.TermStart = append(sum.TermStart, int32(len(sum.TA)))
		written[part.Out], written[check.Out], written[l.Out] = true, true, true
		out = append(out, part, check, sum)
	}
	return out
}
