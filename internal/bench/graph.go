package bench

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// ErrUnmodeled is wrapped by EstimateGraph when a graph has a node whose cost the
// structural model does not know: the caller falls back to lowering the model and
// estimating its program (EstimateProgram).
var ErrUnmodeled = errors.New("not modeled by the structural estimate")

// GraphEstimate is the structural estimate of a loaded model: what its circuit costs,
// computed from the graph's shapes and constants without lowering it (no
// per-multiply-accumulate index lists are built, so it runs in memory proportional to
// the model's parameters, not to its MACs). Each node is charged what the lowering
// (quant.Lower: Conv/Gemm sums, rescales and their range checks, fused ReLUs,
// MaxPool comparisons, average pools, LRN's square sums and table) and the circuit
// make of it, through the same counting arithmetic as EstimateProgram, run on one
// representative element of each distinct shape of work and multiplied out; range
// checks are costed after choosing the widths' rounding the way quant.Lower does
// (the cheapest of the unrounded, global and per-limb-width plans).
type GraphEstimate struct {
	// MACs counts the multiply-accumulates of the linear layers (Conv, Gemm, MatMul);
	// the estimates' Terms count every sum's terms (pools and LRN too).
	MACs   int64 `json:"macs"`
	Params int64 `json:"params"`
	// Activations counts the elements of every node's output.
	Activations int64 `json:"activations"`
	// Groth16 and Plonk are the estimates in the form of EstimateProgram's (Terms:
	// the MACs of the lowered program, pooling sums included).
	Groth16 *Estimate `json:"groth16"`
	Plonk   *Estimate `json:"plonk"`
	// Nodes is the per-node breakdown, in graph order (after BatchNormalization
	// folding; a ReLU fused into the rescale of the layer before it is part of that
	// layer's row, Op "Conv+Relu"; data movement has no row), between a first row for
	// the inputs' range checks (Op "Input"), and last rows for the output equalities
	// ("Output") and for what no node owns: the range argument's table, lookup tables,
	// commitments and hashes ("Arguments").
	Nodes []NodeEstimate `json:"nodes"`
}

// NodeEstimate is one node's share of a GraphEstimate.
type NodeEstimate struct {
	Name        string `json:"name"`
	Op          string `json:"op"`
	Shape       []int  `json:"shape"`
	MACs        int64  `json:"macs"`
	Params      int64  `json:"params"`
	Activations int64  `json:"activations"`
	// R1CS and SCS are the node's constraints in each system, its range checks'
	// queries included (the range argument's table and commitment are not any node's).
	R1CS int64 `json:"r1cs"`
	SCS  int64 `json:"scs"`
	// Bytes is the node's share of the Groth16 compile memory: its terms' bytes plus
	// EstimateGroth16BytesPerSlot per constraint.
	Bytes int64 `json:"bytes"`
}

// Estimate returns the estimate for sys.
func (e *GraphEstimate) Estimate(sys circuits.System) *Estimate {
	if sys == circuits.Plonk {
		return e.Plonk
	}
	return e.Groth16
}

// Largest returns the n nodes of most Groth16 compile memory, largest first.
func (e *GraphEstimate) Largest(n int) []NodeEstimate {
	out := append([]NodeEstimate(nil), e.Nodes...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out[:min(n, len(out))]
}

// Structural memory margin: the estimate's memory is EstimateProgram's formula applied
// to the structural counts with the constraints raised by 1/graphMarginDiv (3%) (the domain
// is rounded up from there), so that it bounds the program estimate's memory (which
// bounds the compile's) even where the structural constraint count falls a little
// short of the program's.
const graphMarginDiv = 32

// EstimateGraph estimates g's circuit at settings cfg in both proving systems without
// lowering it. It wraps ErrUnmodeled for a node it cannot cost.
func EstimateGraph(g *model.Graph, cfg quant.Config) (res *GraphEstimate, err error) {
	// The estimate runs before lowering on any uploaded model: a graph it misreads is
	// reported as unmodeled (and the caller lowers it and estimates the program
	// instead) rather than failing the process.
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: %v", ErrUnmodeled, r)
		}
	}()
	cfg = cfg.Normalized()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	folded := model.FoldBatchNorm(g)
	geo := &geometry{taps: map[*model.Node]map[int]int64{}, sums: map[string]*weightSums{}, params: map[string]int{}}
	out := &GraphEstimate{}
	for _, name := range sortedConsts(g) {
		if t := g.Consts[name]; isWeight(t) && constUsed(g, name) {
			out.Params += int64(len(t.Data))
		}
	}
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		var best *graphRun
		for _, plan := range plans(cfg) {
			r := &graphRun{cfg: cfg, plonk: sys == circuits.Plonk, plan: plan, g: folded, geo: geo}
			if err := r.run(); err != nil {
				return nil, err
			}
			if best == nil || r.est.Constraints < best.est.Constraints {
				best = r
			}
		}
		est := best.est
		if sys == circuits.Plonk {
			out.Plonk = est
			for i := range out.Nodes {
				out.Nodes[i].SCS = best.nodes[i].SCS
			}
			continue
		}
		out.Groth16 = est
		out.Nodes = best.nodes
		for _, n := range out.Nodes {
			if strings.HasPrefix(n.Op, "Conv") || strings.HasPrefix(n.Op, "Gemm") || strings.HasPrefix(n.Op, "MatMul") {
				out.MACs += n.MACs
			}
			out.Activations += n.Activations
		}
	}
	return out, nil
}

func sortedConsts(g *model.Graph) []string {
	names := make([]string, 0, len(g.Consts))
	for k := range g.Consts {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// isWeight: a float constant (not an int64 shape or index tensor).
func isWeight(t *model.Tensor) bool {
	return t != nil && (t.DType == 0 || t.DType == 1 || t.DType == 10 || t.DType == 11 || t.DType == 16)
}

func constUsed(g *model.Graph, name string) bool {
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == name {
				return true
			}
		}
	}
	return false
}

// widthPlan mirrors quant's: global (every width Bits), or widths rounded for t-bit
// limbs (t = 0: unrounded).
type widthPlan struct {
	global bool
	t      int
}

func plans(cfg quant.Config) []widthPlan {
	out := []widthPlan{{}}
	if cfg.RangeCheck == "bits" {
		return out
	}
	if len(cfg.Widths) == 0 {
		out = append(out, widthPlan{global: true})
	}
	for t := quant.MinLimbBits; t <= quant.MaxLimbBits; t++ {
		out = append(out, widthPlan{t: t})
	}
	return out
}

// width is quant's planWidth for a tensor whose static bound needs need bits.
func (r *graphRun) width(key string, need int, relu bool) int {
	if r.plan.global {
		return r.cfg.Bits
	}
	limit, measured := r.cfg.Widths[key]
	if !measured {
		limit = r.cfg.Bits
	}
	w := max(2, min(need, limit))
	off := 0
	if relu {
		off = -1
	}
	if r.plan.t == 0 {
		return w
	}
	for x := w; x <= max(limit, r.cfg.Bits); x++ {
		if (x+off)%r.plan.t == 0 {
			return x
		}
	}
	return w
}

// consumer is quant's consumerBits: the width in [bits, bits+t] whose checks (at the
// given offsets from it) cost the fewest queries.
func (r *graphRun) consumer(bits int, offs ...int) int {
	t := r.plan.t
	if t == 0 {
		return bits
	}
	best, bestCost := bits, -1
	for b := bits; b <= min(bits+t, 60); b++ {
		c := 0
		for _, o := range offs {
			c += quant.LimbQueries(b+o, t)
		}
		if bestCost < 0 || c < bestCost {
			best, bestCost = b, c
		}
	}
	return best
}

// bitsFor is quant's: the smallest signed width holding every |v| <= bound.
func bitsFor(bound float64) int {
	b := 1
	for math.Ldexp(1, b-1) <= bound {
		b++
	}
	return b
}

// geometry caches what every plan's run needs of the graph: per node, the histogram
// of input taps per output position (taps -> positions), and per weight the bounds of
// its quantized rows.
type geometry struct {
	taps   map[*model.Node]map[int]int64
	sums   map[string]*weightSums
	params map[string]int // quantized width of each weight (for witness params)
}

type weightSums struct {
	maxRow float64 // the largest sum of |w| over one output's weights, quantized
	maxAbs float64
	// maxZeros and minZeros are the most and fewest weights of one output that
	// quantize to 0: the circuit's sum has no term for them, which can keep it below
	// circuits.WireSumTerms or gnark's compress threshold (then it costs more memory,
	// see EstimateBytesPerTerm, and one constraint less).
	maxZeros, minZeros int
}

// tapHistogram counts the output positions of window w by their number of taps
// inside the input.
func (geo *geometry) tapHistogram(n *model.Node, w *model.Window) map[int]int64 {
	if h, ok := geo.taps[n]; ok {
		return h
	}
	// Taps factor per spatial axis: count each axis's valid taps per output index and
	// convolve the per-axis histograms.
	h := map[int]int64{1: 1}
	for i := range w.In {
		axis := map[int]int64{}
		for o := 0; o < w.Out[i]; o++ {
			st := o*w.S[i] - w.PadBegin[i]
			c := 0
			for k := 0; k < w.K[i]; k++ {
				if x := st + k*w.D[i]; x >= 0 && x < w.In[i] {
					c++
				}
			}
			axis[c]++
		}
		next := map[int]int64{}
		for a, na := range h {
			for b, nb := range axis {
				next[a*b] += na * nb
			}
		}
		h = next
	}
	geo.taps[n] = h
	return h
}

// rows bounds the quantized rows of weight t at scale: out is the number of outputs
// (rows), each the sum of |round(w * 2^scale)| over the elements row(i) maps to it.
func (geo *geometry) rows(name string, t *model.Tensor, scale int, row func(i int) int, nrows int) *weightSums {
	key := fmt.Sprintf("%s@%d", name, scale)
	if s, ok := geo.sums[key]; ok {
		return s
	}
	acc := make([]float64, nrows)
	zeros := make([]int, nrows)
	s := &weightSums{}
	for i, v := range t.Data {
		q := math.Abs(math.Round(math.Ldexp(v, scale)))
		acc[row(i)] += q
		if q == 0 {
			zeros[row(i)]++
		}
		s.maxAbs = math.Max(s.maxAbs, q)
	}
	for i, a := range acc {
		s.maxRow = math.Max(s.maxRow, a)
		s.maxZeros = max(s.maxZeros, zeros[i])
		if i == 0 || zeros[i] < s.minZeros {
			s.minZeros = zeros[i]
		}
	}
	geo.sums[key] = s
	return s
}

// tval is what a run knows of a runtime tensor: its shape, scale, static bound and a
// representative element (its R1CS linear expression's size).
type tval struct {
	shape []int
	scale int
	bound float64
	s     sym
}

// graphRun estimates one proving system at one width plan.
type graphRun struct {
	cfg   quant.Config
	plonk bool
	plan  widthPlan
	g     *model.Graph
	geo   *geometry

	total    *counter
	node     *counter // the current node's counts
	vals     map[string]tval
	uses     map[string]int
	fused    map[*model.Node]bool
	witness  map[string]bool // witness params range-checked already
	tables   map[string]*quant.Table
	nodes    []NodeEstimate
	counts   []*counter // each node's counts
	est      *Estimate
	nbParams int64 // witness params (range-checked once each)
	// paramWidth, inWidth and outWidth are the packing widths of hashed groups
	// (circuits.Layout: the widest value's signed width by its bound).
	paramWidth, inWidth, outWidth int
}

func newCounter(plonk, bitsMode bool) *counter {
	return &counter{plonk: plonk, bitsMode: bitsMode, checks: map[int]int64{}, tables: map[*quant.Table]int64{}}
}

// merge adds n times c's counts to dst.
func (dst *counter) merge(c *counter, n int64) {
	dst.c += n * c.c
	dst.w += n * c.w
	dst.terms += n * c.terms
	dst.memory += n * c.memory
	dst.wideChecks += n * c.wideChecks
	dst.one = dst.one || c.one // one wire per circuit, however many sums use it
	for b, k := range c.checks {
		dst.checks[b] += n * k
	}
	for t, k := range c.tables {
		dst.tables[t] += n * k
	}
}

// rep charges n times what f costs on one element (f runs once, on a fresh counter).
func (r *graphRun) rep(n int64, f func(c *counter)) {
	if n <= 0 {
		return
	}
	c := newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	f(c)
	r.node.merge(c, n)
}

func (r *graphRun) witnessParams() bool { return r.cfg.ParamVis != quant.Fixed }

// param returns the sym of a weight element (a constant, or a range-checked witness
// charged once per tensor) and its quantized bounds.
func (r *graphRun) param(name string, t *model.Tensor, scale int, row func(int) int, nrows int) (sym, *weightSums) {
	ws := r.geo.rows(name, t, scale, row, nrows)
	if !r.witnessParams() {
		return sym{konst: true, zero: ws.maxAbs == 0}, ws
	}
	key := fmt.Sprintf("%s@%d", name, scale)
	if !r.witness[key] {
		r.witness[key] = true
		nb := bitsFor(ws.maxAbs)
		r.paramWidth = max(r.paramWidth, nb)
		r.rep(int64(len(t.Data)), func(c *counter) { c.RangeCheck(sym{terms: 1}, nb) })
		r.nbParams += int64(len(t.Data))
	}
	return sym{terms: 1}, ws
}

func (r *graphRun) run() error {
	r.total = newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	r.vals, r.uses, r.fused, r.witness, r.tables = map[string]tval{}, map[string]int{}, map[*model.Node]bool{}, map[string]bool{}, map[string]*quant.Table{}
	for _, n := range r.g.Nodes {
		for _, in := range n.Inputs {
			r.uses[in]++
		}
	}
	outputs := map[string]bool{}
	for _, o := range r.g.Outputs {
		r.uses[o.Name]++
		outputs[o.Name] = true
	}
	// Inputs: witnesses range-checked to their width (Bits unless measured).
	r.node = newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	var inElems int64
	for _, in := range r.g.Inputs {
		w := r.width("input "+in.Name, quant.MaxWidth, false)
		n := int64(model.Numel(in.Shape))
		inElems += n
		r.rep(n, func(c *counter) { c.RangeCheck(sym{terms: 1}, w) })
		r.vals[in.Name] = tval{shape: in.Shape, scale: r.cfg.Scale, bound: math.Ldexp(1, w-1), s: sym{terms: 1}}
		r.inWidth = max(r.inWidth, bitsFor(math.Ldexp(1, w-1)))
	}
	r.flush("input", "Input", nil, 0, 0, inElems)
	for _, n := range r.g.Nodes {
		if r.fused[n] {
			continue
		}
		if err := r.lowerNode(n, outputs); err != nil {
			return err
		}
	}
	// Outputs: one equality per element.
	r.node = newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	var outElems int64
	for _, o := range r.g.Outputs {
		v, ok := r.vals[o.Name]
		if !ok {
			return fmt.Errorf("%w: graph output %q", ErrUnmodeled, o.Name)
		}
		outElems += int64(model.Numel(v.shape))
		r.outWidth = max(r.outWidth, bitsFor(v.bound))
	}
	r.node.c += outElems
	r.flush("output", "Output", nil, 0, 0, outElems)
	// Public inputs and secret witnesses (the layout's slots); a hashed group is
	// secret, plus its public hash, whose Poseidon2 permutations are charged.
	var pub, sec int64
	for _, g := range []struct {
		vis   quant.Visibility
		n     int64
		width int
	}{{r.cfg.InputVis, inElems, r.inWidth}, {r.cfg.OutputVis, outElems, r.outWidth}, {r.cfg.ParamVis, r.nbParams, r.paramWidth}} {
		switch g.vis {
		case quant.Public:
			pub += g.n
		case quant.Hashed:
			sec += g.n
			if g.n > 0 {
				pub++
				r.total.hash(g.width, int(g.n), nil, false)
			}
		default:
			sec += g.n
		}
	}
	t := 0
	if len(r.total.checks) > 0 {
		t = tableBits(r.total.checks)
	}
	r.total.deferred()
	r.finish(t, r.total.c)
	io := pub + sec + 1
	e := &Estimate{System: string(circuits.Groth16), Constraints: r.total.c, Wires: r.total.w + io, Terms: r.total.terms}
	if r.plonk {
		e.System = string(circuits.Plonk)
	}
	slots := e.Constraints + e.Constraints/graphMarginDiv
	if r.plonk {
		slots += io
	}
	e.Domain = int64(1) << bits.Len64(uint64(max(slots, 2)-1))
	e.MemoryBytes = EstimateBaseMemory + BytesPerSlot(r.plonk)*e.Domain + r.total.memory
	r.est = e
	return nil
}

// flush closes the current node; finish costs its range checks once the range
// argument's limb width is known.
func (r *graphRun) flush(name, op string, shape []int, macs, params, acts int64) {
	r.total.merge(r.node, 1)
	r.nodes = append(r.nodes, NodeEstimate{Name: name, Op: op, Shape: shape, MACs: macs, Params: params, Activations: acts})
	r.counts = append(r.counts, r.node)
	r.node = newCounter(r.plonk, r.cfg.RangeCheck == "bits")
}

// finish charges each node its constraints, its range checks' queries at the limb
// width t the range argument chooses, and adds a last row for what no node owns (the
// argument's table, lookup tables, commitments, hashes).
func (r *graphRun) finish(t int, total int64) {
	var sum int64
	for i, c := range r.counts {
		var q, limbs int64
		if !c.bitsMode {
			for b, k := range c.checks {
				q += k * int64(queriesFor(b, t))
				limbs += k * int64((b+t-1)/t-1)
			}
		}
		cons := c.c
		if r.plonk {
			cons += 4*q + 2*limbs
			r.nodes[i].SCS = cons
		} else {
			cons += q + c.wideChecks
			r.nodes[i].R1CS = cons
			r.nodes[i].Bytes = c.memory + EstimateGroth16BytesPerSlot*cons
		}
		sum += cons
	}
	rest := NodeEstimate{Name: "range and lookup arguments", Op: "Arguments"}
	if r.plonk {
		rest.SCS = total - sum
	} else {
		rest.R1CS = total - sum
		rest.Bytes = EstimateGroth16BytesPerSlot * rest.R1CS
	}
	r.nodes = append(r.nodes, rest)
}

// rescale charges quant's rescale of n accumulators (scale acc.scale, bound acc.bound)
// down by shift bits, with a fused ReLU when relu; it returns the result.
func (r *graphRun) rescale(key string, n int64, acc tval, shift int, relu bool) tval {
	static := math.Ceil(math.Ldexp(acc.bound, -shift)) + 1
	w := r.width(key, bitsFor(static), relu)
	out := tval{shape: acc.shape, scale: acc.scale - shift, bound: math.Min(math.Ldexp(1, w-1), static)}
	r.rep(n, func(c *counter) { out.s = c.Rescale(acc.s, shift, w, relu) })
	return out
}

// fusesRelu reports whether the rescale of node n's output takes the ReLU after it
// (quant's fuseRescaleRelu): the output's one reader is a Relu, and it is no graph
// output. It marks that Relu and returns its output name.
func (r *graphRun) fusesRelu(n *model.Node, outputs map[string]bool) (string, bool) {
	o := n.Outputs[0]
	if r.uses[o] != 1 || outputs[o] {
		return o, false
	}
	for _, m := range r.g.Nodes {
		if len(m.Inputs) > 0 && m.Inputs[0] == o && m.Op == "Relu" {
			r.fused[m] = true
			return m.Outputs[0], true
		}
	}
	return o, false
}

func (r *graphRun) in(n *model.Node, i int) (tval, error) {
	if i >= len(n.Inputs) {
		return tval{}, fmt.Errorf("%w: %s: missing input %d", ErrUnmodeled, n.Label(), i)
	}
	v, ok := r.vals[n.Inputs[i]]
	if !ok {
		if c, isConst := r.g.Consts[n.Inputs[i]]; isConst {
			// A constant operand at the activation scale (quant's operand).
			ws := r.geo.rows(n.Inputs[i], c, r.cfg.Scale, func(int) int { return 0 }, 1)
			s := sym{konst: true, zero: ws.maxAbs == 0}
			if r.witnessParams() {
				s, _ = r.param(n.Inputs[i], c, r.cfg.Scale, func(int) int { return 0 }, 1)
			}
			return tval{shape: c.Shape, scale: r.cfg.Scale, bound: ws.maxAbs, s: s}, nil
		}
		return tval{}, fmt.Errorf("%w: %s: input %q is not a runtime value", ErrUnmodeled, n.Label(), n.Inputs[i])
	}
	return v, nil
}

func (r *graphRun) lowerNode(n *model.Node, outputs map[string]bool) error {
	cfg := r.cfg
	out := n.Outputs[0]
	numel := func(s []int) int64 { return int64(model.Numel(s)) }
	switch n.Op {
	case "Conv", "Gemm", "MatMul":
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		if len(n.Inputs) < 2 {
			return fmt.Errorf("%w: %s: needs two operands", ErrUnmodeled, n.Label())
		}
		wt, ok := r.g.Consts[n.Inputs[1]]
		if !ok {
			return fmt.Errorf("%w: %s: runtime right operand", ErrUnmodeled, n.Label())
		}
		// hist: terms per output -> outputs; nrows and row map the weight to outputs.
		var hist map[int]int64
		var shape []int
		var nrows int
		var row func(int) int
		var rowLen int // weights per output (a border output sums fewer of them)
		alpha := 1.0
		switch n.Op {
		case "Conv":
			p, err := model.PlanConv(n, x.shape, wt.Shape)
			if err != nil {
				return err
			}
			shape = p.OutShape()
			hist = map[int]int64{}
			for taps, k := range r.geo.tapHistogram(n, &p.Window) {
				hist[taps*p.CPerG] += k * int64(p.N*p.M)
			}
			per := model.Numel(wt.Shape[1:])
			nrows, rowLen = p.M, per
			row = func(i int) int { return i / per }
		case "Gemm":
			m, k, nn, err := model.GemmDims(n, x.shape, wt.Shape)
			if err != nil {
				return err
			}
			if n.Attrs.Int("transA", 0) != 0 {
				return fmt.Errorf("%w: %s: transA", ErrUnmodeled, n.Label())
			}
			alpha = n.Attrs.Float("alpha", 1)
			shape, hist, nrows, rowLen = []int{m, nn}, map[int]int64{k: int64(m * nn)}, nn, k
			if n.Attrs.Int("transB", 0) != 0 {
				row = func(i int) int { return i / k }
			} else {
				row = func(i int) int { return i % nn }
			}
		case "MatMul":
			p, err := model.PlanMatMul(n, x.shape, wt.Shape)
			if err != nil {
				return err
			}
			shape, hist, nrows, rowLen = p.Shape, map[int]int64{p.K: numel(p.Shape)}, p.N, p.K
			row = func(i int) int { return i % p.N }
		}
		w := wt
		if alpha != 1 {
			w = wt.Clone()
			for i := range w.Data {
				w.Data[i] *= alpha
			}
		}
		ws, wsum := r.param(fmt.Sprintf("%s*%g", n.Inputs[1], alpha), w, cfg.ParamScale, row, nrows)
		accScale := x.scale + cfg.ParamScale
		bias := sym{konst: true, zero: true}
		biasBound := 0.0
		var params = int64(len(wt.Data))
		if len(n.Inputs) > 2 && n.Inputs[2] != "" && n.Op != "MatMul" {
			bt, ok := r.g.Consts[n.Inputs[2]]
			if !ok {
				return fmt.Errorf("%w: %s: runtime bias", ErrUnmodeled, n.Label())
			}
			params += int64(len(bt.Data))
			var bs *weightSums
			bias, bs = r.param(n.Inputs[2], bt, accScale, func(int) int { return 0 }, 1)
			biasBound = bs.maxAbs
		}
		// Fixed weights that quantize to 0 add no term: the sum's constraints are
		// charged with as few of them as an output has (a longer sum may be
		// materialized as one wire or compressed: one constraint more; a border
		// output of k taps may miss rowLen-k of its row's zeros), its memory with as
		// many as an output has (a shorter sum may stay a linear expression and cost
		// more bytes a term).
		minZeros, maxZeros := 0, 0
		if ws.konst {
			minZeros, maxZeros = wsum.minZeros, wsum.maxZeros
		}
		dot := func(c *counter, k, zeros int) {
			xs, wv := make([]sym, k), make([]sym, k)
			for i := range xs {
				xs[i], wv[i] = x.s, ws
				if i < zeros {
					wv[i] = sym{konst: true, zero: true}
				}
			}
			c.Dot(xs, wv, bias)
		}
		var macs int64
		for k, cnt := range hist {
			macs += int64(k) * cnt
			r.rep(cnt, func(c *counter) {
				lo := max(0, minZeros-(rowLen-k))
				if r.plonk {
					lo = maxZeros // PLONK's estimate is left as it was
				}
				dot(c, k, lo)
				if maxZeros != lo {
					sparse := newCounter(r.plonk, r.cfg.RangeCheck == "bits")
					dot(sparse, k, maxZeros)
					c.memory = max(c.memory, sparse.memory)
				}
			})
		}
		acc := tval{shape: shape, scale: accScale, bound: wsum.maxRow*x.bound + biasBound, s: sym{terms: 1}}
		// The accumulator's representative: a sum of the widest row's terms.
		acc.s = r.accSym(hist, x.s, ws, bias)
		name, relu := r.fusesRelu(n, outputs)
		res := r.rescale(n.Outputs[0]+"/rescale", numel(shape), acc, accScale-cfg.Scale, relu)
		r.vals[name] = res
		op := n.Op
		if relu {
			op += "+Relu"
		}
		r.flush(n.Name, op, shape, macs, params, numel(shape))
	case "BatchNormalization":
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		consts := make([]*model.Tensor, len(n.Inputs))
		for i := 1; i < len(n.Inputs); i++ {
			consts[i] = r.g.Consts[n.Inputs[i]]
		}
		scale, shift, err := model.BatchNormAffine(n, consts)
		if err != nil {
			return err
		}
		st := &model.Tensor{Shape: []int{len(scale)}, Data: scale}
		sh := &model.Tensor{Shape: []int{len(shift)}, Data: shift}
		ss, sb := r.param(n.Name+".scale", st, cfg.ParamScale, func(int) int { return 0 }, 1)
		bs, bb := r.param(n.Name+".shift", sh, cfg.Scale+cfg.ParamScale, func(int) int { return 0 }, 1)
		acc := tval{shape: x.shape, scale: x.scale + cfg.ParamScale, bound: sb.maxAbs*x.bound + bb.maxAbs}
		r.rep(numel(x.shape), func(c *counter) { acc.s = c.Dot([]sym{x.s}, []sym{ss}, bs) })
		name, relu := r.fusesRelu(n, outputs)
		r.vals[name] = r.rescale(out+"/rescale", numel(x.shape), acc, acc.scale-cfg.Scale, relu)
		r.flush(n.Name, n.Op, x.shape, numel(x.shape), int64(2*len(scale)), numel(x.shape))
	case "Relu":
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		b := r.consumer(bitsFor(x.bound), -1)
		res := x
		r.rep(numel(x.shape), func(c *counter) { res.s = c.Relu(x.s, b) })
		r.vals[out] = res
		r.flush(n.Name, n.Op, x.shape, 0, 0, numel(x.shape))
	case "MaxPool", "GlobalMaxPool":
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		w, err := model.PlanPool(n, x.shape)
		if err != nil {
			return err
		}
		b := r.consumer(bitsFor(x.bound), 0)
		res := x
		res.shape = w.OutShape(w.C)
		for taps, cnt := range r.geo.tapHistogram(n, w) {
			r.rep(cnt*int64(w.N*w.C), func(c *counter) {
				m := x.s
				for range taps - 1 {
					m = c.Add(x.s, c.Relu(c.Add(m, c.MulConst(x.s, -1)), b+1))
				}
				if m.terms > res.s.terms {
					res.s = m
				}
			})
		}
		r.vals[out] = res
		r.flush(n.Name, n.Op, res.shape, 0, 0, numel(res.shape))
	case "AveragePool", "GlobalAveragePool":
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		w, err := model.PlanPool(n, x.shape)
		if err != nil {
			return err
		}
		const internalScale = 16
		shape := w.OutShape(w.C)
		hist := map[int]int64{}
		var macs int64
		for taps, cnt := range r.geo.tapHistogram(n, w) {
			hist[taps] += cnt * int64(w.N*w.C)
			macs += int64(taps) * cnt * int64(w.N*w.C)
		}
		wsym := sym{konst: true}
		for k, cnt := range hist {
			r.rep(cnt, func(c *counter) {
				xs, wv := make([]sym, k), make([]sym, k)
				for i := range xs {
					xs[i], wv[i] = x.s, wsym
				}
				c.Dot(xs, wv, sym{konst: true, zero: true})
			})
		}
		// sum of the window at weights round(2^16/count): about 2^16 times the bound.
		acc := tval{shape: shape, scale: x.scale + internalScale, bound: x.bound * math.Ldexp(1, internalScale) * 1.0001,
			s: r.accSym(hist, x.s, wsym, sym{konst: true, zero: true})}
		name, relu := r.fusesRelu(n, outputs)
		r.vals[name] = r.rescale(out+"/rescale", numel(shape), acc, acc.scale-cfg.Scale, relu)
		r.flush(n.Name, n.Op, shape, macs, 0, numel(shape))
	case "Add", "Sub":
		a, err := r.in(n, 0)
		if err != nil {
			return err
		}
		b, err := r.in(n, 1)
		if err != nil {
			return err
		}
		shape, err := model.BroadcastShape(a.shape, b.shape)
		if err != nil {
			return err
		}
		res := tval{shape: shape, scale: cfg.Scale, bound: a.bound + b.bound}
		r.rep(numel(shape), func(c *counter) { res.s = c.Add(c.MulConst(a.s, 1), c.MulConst(b.s, -1)) })
		r.vals[out] = res
		r.flush(n.Name, n.Op, shape, 0, 0, numel(shape))
	case "LRN":
		return r.lrn(n)
	case "Concat":
		var res tval
		var elems int64
		for i := range n.Inputs {
			v, err := r.in(n, i)
			if err != nil {
				return err
			}
			elems += numel(v.shape)
			res.scale = v.scale
			res.bound = math.Max(res.bound, v.bound)
			if v.s.terms > res.s.terms {
				res.s = v.s
			}
		}
		res.shape = r.g.Shapes[out]
		r.vals[out] = res
		r.flush(n.Name, n.Op, res.shape, 0, 0, elems)
	default:
		if !model.IsMovement(n.Op) || model.IsRowLookup(n, r.g.Consts) {
			return fmt.Errorf("%w: %s", ErrUnmodeled, n.Label())
		}
		x, err := r.in(n, 0)
		if err != nil {
			return err
		}
		x.shape = r.g.Shapes[out]
		r.vals[out] = x
	}
	return nil
}

// accSym is the representative accumulator of a linear layer: the Dot of its most
// frequent term count.
func (r *graphRun) accSym(hist map[int]int64, x, w, bias sym) sym {
	best, bestN := 0, int64(-1)
	for k, n := range hist {
		if n > bestN || n == bestN && k > best {
			best, bestN = k, n
		}
	}
	c := newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	xs, ws := make([]sym, best), make([]sym, best)
	for i := range xs {
		xs[i], ws[i] = x, w
	}
	return c.Dot(xs, ws, bias)
}

// lrn charges quant's LRN lowering (lower_lrn.go): the square sums over the channel
// window (products of two witnesses), their rescale to the table's scale, a strict
// lookup (one comparison), and the product with the input, rescaled.
func (r *graphRun) lrn(n *model.Node) error {
	prm, err := model.ParseLRN(n)
	if err != nil {
		return err
	}
	x, err := r.in(n, 0)
	if err != nil {
		return err
	}
	if len(x.shape) < 2 {
		return fmt.Errorf("%w: %s: rank %d", ErrUnmodeled, n.Label(), len(x.shape))
	}
	N, C := x.shape[0], x.shape[1]
	sp := int64(model.Numel(x.shape) / max(1, N*C))
	hist := map[int]int64{}
	for c := range C {
		lo, hi := prm.Window(c, C)
		hist[hi-lo] += int64(N) * sp
	}
	var macs int64
	for k, cnt := range hist {
		macs += int64(k) * cnt
		r.rep(cnt, func(c *counter) {
			xs := make([]sym, k)
			for i := range xs {
				xs[i] = x.s
			}
			c.Dot(xs, xs, sym{konst: true, zero: true})
		})
	}
	maxWin := 0
	for k := range hist {
		maxWin = max(maxWin, k)
	}
	s := r.cfg.Scale
	acc := tval{shape: x.shape, scale: 2 * x.scale, bound: float64(maxWin) * x.bound * x.bound, s: r.accSymProducts(maxWin, x.s)}
	t := 2 * x.scale
	if d := prm.MaxSlope(); d > 0 {
		t = min(t, int(math.Ceil(float64(s)+math.Log2(d))))
	} else {
		t = min(t, 2*x.scale-60)
	}
	t = max(t, 2*x.scale-60)
	elems := int64(model.Numel(x.shape))
	sum := acc
	if shift := 2*x.scale - t; shift > 0 {
		sum = r.rescale(n.Outputs[0]+"/rescale", elems, acc, shift, false)
	}
	hi := int64(1)<<r.cfg.LookupBits - 1
	key := fmt.Sprintf("lrn(size=%d,alpha=%g,beta=%g,bias=%g,t=%d)", prm.Size, prm.Alpha, prm.Beta, prm.Bias, t)
	tab, ok := r.tables[key]
	if !ok {
		tab = &quant.Table{Name: key, Values: make([]int64, hi+1)}
		r.tables[key] = tab
	}
	b := r.consumer(max(bitsFor(sum.bound), bitsFor(float64(hi))), 0)
	f := tval{shape: x.shape, scale: s, bound: math.Ceil(math.Ldexp(math.Pow(prm.Bias, -prm.Beta), s)) + 1}
	r.rep(elems, func(c *counter) {
		// lookup() of a strict table over [0, hi]: max(v, 0) = relu(v), then the lookup.
		rl := c.Relu(c.Add(sum.s, c.Const(0)), b+1)
		f.s = c.Lookup(tab, c.Add(c.Const(0), rl))
	})
	prod := tval{shape: x.shape, scale: x.scale + s, bound: x.bound * f.bound}
	r.rep(elems, func(c *counter) { prod.s = c.Dot([]sym{x.s}, []sym{f.s}, sym{konst: true, zero: true}) })
	r.vals[n.Outputs[0]] = r.rescale(n.Outputs[0]+"/rescale", elems, prod, prod.scale-r.cfg.Scale, false)
	r.flush(n.Name, n.Op, x.shape, macs+elems, 0, elems)
	return nil
}

func (r *graphRun) accSymProducts(k int, x sym) sym {
	c := newCounter(r.plonk, r.cfg.RangeCheck == "bits")
	xs := make([]sym, k)
	for i := range xs {
		xs[i] = x
	}
	return c.Dot(xs, xs, sym{konst: true, zero: true})
}

// CheckGraph is Check of e's estimate for each of syss (both systems when none is
// given): a model over a limit is refused before it is lowered. The error (wrapping
// ErrOverBudget) names the structural estimate, the limit and where it comes from, and
// the largest layers.
func (l Limits) CheckGraph(e *GraphEstimate, syss ...circuits.System) error {
	if len(syss) == 0 {
		syss = []circuits.System{circuits.Groth16, circuits.Plonk}
	}
	for _, sys := range syss {
		if err := l.Check(e.Estimate(sys)); err != nil {
			var b strings.Builder
			for i, n := range e.Largest(3) {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s %q %v (%d MACs, %d MiB)", n.Op, n.Name, n.Shape, n.MACs, n.Bytes>>20)
			}
			return fmt.Errorf("%w (structural estimate, before lowering: %d MACs, %d params); largest layers: %s",
				err, e.MACs, e.Params, b.String())
		}
	}
	return nil
}

// EstimateProgramBytesPerTerm bounds what lowering a model costs per multiply-accumulate
// term held as index lists (pools, LRN, ConvTranspose, an unfused BatchNormalization):
// the lowered program's index entries (about 9 bytes a term) and the lowering's
// working copies (the quantize peak measured 14-20 bytes a term; docs/bench-notes.md,
// "#16 memory"). Conv, Gemm and MatMul hold no lists: their terms are generated from
// their geometry when read (quant.ConvGeom, quant.MatGeom), so lowering them costs
// what their parameters and outputs cost, not their terms.
const EstimateProgramBytesPerTerm = 32

// EstimateLoweringBytesPerParam and EstimateLoweringBytesPerActivation bound the
// lowering's memory per model parameter (the loaded graph's float64, the program's
// int64, the model file's float32, a folded or scaled float64 copy: 28 bytes) and per
// element of a node's output (the per-element index lists of the layers that keep
// them: a linear layer's bias indices, 4 bytes an output, an addition's broadcast
// indices, 8, a move's, 4; the load's float shape inference, 8), with a margin: what
// loading and lowering SqueezeNet 64x64/4 allocates in all is 51 bytes per parameter
// or activation (TestLoweringBytes), and full-size ResNet-50 (25.6 M parameters, about
// 27 M activations, 3.7 G multiply-accumulates) lowered in a 0.88 GB Go heap peak,
// 1.0 GB resident, against an estimate of 3.6 GB (docs/bench-notes.md, "Structured
// convolutions").
const (
	EstimateLoweringBytesPerParam      = 64
	EstimateLoweringBytesPerActivation = 64
)

// structuredOp reports whether a node row of a GraphEstimate (Op, "+Relu" when fused)
// is lowered to a structured layer, whose terms are not held as lists.
func structuredOp(op string) bool {
	switch strings.TrimSuffix(op, "+Relu") {
	case "Conv", "Gemm", "MatMul":
		return true
	}
	return false
}

// ListedTerms is the number of multiply-accumulate terms the lowered program holds as
// index lists: those of every node but the structured ones (Conv, Gemm, MatMul).
func (e *GraphEstimate) ListedTerms() int64 {
	var n int64
	for _, r := range e.Nodes {
		if !structuredOp(r.Op) {
			n += r.MACs
		}
	}
	return n
}

// LoweringBytes bounds the memory of lowering the whole model (what a sharded model
// needs before it is split, in one process): its listed terms, parameters and
// activations; a structured layer's terms cost nothing.
func (e *GraphEstimate) LoweringBytes() int64 {
	return EstimateBaseMemory + e.ListedTerms()*EstimateProgramBytesPerTerm +
		e.Params*EstimateLoweringBytesPerParam + e.Activations*EstimateLoweringBytesPerActivation
}

// CheckGraphSharded is CheckGraph for a model that will be split into segments: the
// whole model may exceed the budget, but the lowered program must fit (the model is
// lowered whole, then split). Its layers are not checked here: a layer over the budget
// alone is split into bands of output rows by the planner (prover/shard.SplitBudget),
// which refuses, naming it, one that cannot be split or whose bands fit no segment,
// from the lowered program's estimates (a layer's structural estimate over the budget
// refused the model, "a segment holds at least one layer", until 2026-11-30).
func (l Limits) CheckGraphSharded(e *GraphEstimate) error {
	if l.MaxMemoryBytes <= 0 {
		return nil
	}
	if b := e.LoweringBytes(); b > l.MaxMemoryBytes {
		return fmt.Errorf("%w: lowering the model before it is split needs an estimated %d MiB (%d multiply-accumulate terms held as lists, %d params, %d activations), above the limit of %d MiB (%s)",
			ErrOverBudget, b>>20, e.ListedTerms(), e.Params, e.Activations, l.MaxMemoryBytes>>20, l.memorySource())
	}
	return nil
}
