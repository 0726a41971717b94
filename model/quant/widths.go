package quant

// Per-tensor widths (#15).
//
// Every rescaled activation and every float input is range-checked to a width of its
// own: the width its static bound needs (interval bounds propagated through the
// program: exact weights for fixed params, declared widths for witness params), capped
// by its measured width (Config.Widths, from calibration inputs with a 2x margin) or,
// without one, by Bits. The width a value is checked to is the bound every later layer
// relies on, so a measured width is enforced like any other: a value outside it has no
// proof, and the integer evaluator rejects it first.
//
// Narrower is not always cheaper: the range argument (circuits/rangearg.go) splits a
// b-bit check into t-bit limbs and queries a top limb narrower than t twice, so a
// 20-bit check costs 3 queries at t = 12 where a 24-bit one costs 2. Lower therefore
// chooses the widths jointly with t: for each t it rounds every width up to the next
// one that t checks at no extra cost (never above the tensor's cap), counts the range
// argument that program needs exactly (as RangeCheckWidths would), and keeps the
// cheapest program. The unrounded program and the rounding for the old global width's
// best t are among the candidates, so no program costs more than with one global width.
// The graph is lowered once: the candidates are costed from a summary of the unrounded
// program's range checks and the chosen widths are written into its layers (lowerWidths).

import (
	"fmt"
	"math"

	"github.com/zkml/zkml/model"
)

// WidthMargin is the factor CalibrateWidths allows beyond the largest |value| a tensor
// takes on the calibration inputs (2: one spare bit).
const WidthMargin = 2

// Limb widths the range argument chooses from (circuits/rangearg.go).
const (
	MinLimbBits = 4
	MaxLimbBits = 16
)

// maxRoundedWidth bounds the widths rounding gives comparisons (whose gadgets check up
// to Bits+2): far below the field size, and within the integer evaluator's int64.
const maxRoundedWidth = 60

// LimbQueries is the number of range-argument queries a b-bit check costs with t-bit
// limbs: one per limb, and one more for a top limb narrower than t (queried shifted).
// Checks of 0 or 1 bits cost none (an equality or a boolean constraint).
func LimbQueries(b, t int) int {
	if b <= 1 {
		return 0
	}
	n := (b + t - 1) / t
	if b%t != 0 {
		n++
	}
	return n
}

// widthPlan says how lowering rounds widths.
type widthPlan struct {
	t    int             // limb width to round to; 0: no rounding
	relu map[string]bool // keys of rescales a ReLU fuses into (they check Bits-1 bits)
	// global gives every rescale and input Bits, as before per-tensor widths: the
	// reference the chosen widths must not cost more than.
	global bool
}

// rescaleKey names the next rescale of node n for Config.Widths.
func (lw *lowering) rescaleKey(n *model.Node) string {
	name := n.Name
	if len(n.Outputs) > 0 && n.Outputs[0] != "" {
		name = n.Outputs[0]
	}
	k := lw.rescales[name]
	lw.rescales[name]++
	if k == 0 {
		return name + "/rescale"
	}
	return fmt.Sprintf("%s/rescale#%d", name, k)
}

// width is the signed width of the range-checked tensor key whose static bound needs
// need bits: the narrower of need and its cap (its measured width, else Bits), at
// least 2, rounded up for the plan's limb width within max(cap, Bits). relu: the
// tensor is checked through a fused ReLU, whose check is one bit narrower.
func (lw *lowering) width(key string, need int, relu bool) int {
	return planWidth(lw.p.Config, lw.plan, key, need, relu)
}

// planWidth is lowering.width for settings cfg and plan.
func planWidth(cfg Config, plan widthPlan, key string, need int, relu bool) int {
	if plan.global {
		return cfg.Bits
	}
	limit, measured := cfg.Widths[key]
	if !measured {
		limit = cfg.Bits
	}
	w := max(2, min(need, limit))
	off := 0
	if relu {
		off = -1
	}
	return roundUp(w, max(limit, cfg.Bits), plan.t, off)
}

// widthSite records a width lowering chose (a rescale's or a float input's, Layer.Key),
// so that the rounding can be chosen and applied after lowering.
type widthSite struct {
	// need is the signed width the tensor's static bound needs: MaxWidth for an input;
	// a rescale's bound, or the sum's when a constant add folded into it (refold).
	need int
	// free: rounding the width for any limb width leaves the tensor's bound, and so
	// every later layer, as lowered without rounding. The bound is the smaller of the
	// static one and 2^(width-1); rounding only raises the width, so the bound moves
	// only when the width is below need (capped) and rounding can raise the cap, which
	// only a measured width below Bits allows (the rounding stays within max(cap, Bits)).
	free bool
}

// site records l, whose Bits lw.width chose for a tensor that needs need bits.
func (lw *lowering) site(l *Layer, need int) {
	cfg := lw.p.Config
	limit, measured := cfg.Widths[l.Key]
	if !measured {
		limit = cfg.Bits
	}
	lw.sites[l] = &widthSite{need: need, free: need <= limit || limit >= cfg.Bits}
}

// roundUp returns the smallest width x in [w, hi] whose check of x+off bits the limb
// width t proves without a shifted top limb, or w if there is none (or t is 0).
func roundUp(w, hi, t, off int) int {
	if t == 0 {
		return w
	}
	for x := w; x <= hi; x++ {
		if (x+off)%t == 0 {
			return x
		}
	}
	return w
}

// refold widens the width of a rescale r that foldConstAdds made check the sum of its
// result and a constant (bound: the sum's bound; old: r's former output value), when
// r's width came from its static bound: the sum may need more. A width that came from
// its cap stays (a measured width was measured on the sum).
func (lw *lowering) refold(r *Layer, old int, bound float64) {
	if lw.p.Values[old].Bound >= math.Ldexp(1, r.Bits-1) {
		return
	}
	r.Bits = max(r.Bits, lw.width(r.Key, bitsFor(bound), lw.plan.relu[r.Key]))
	// planWidth is monotone in need, so the folded width is that of the larger need.
	if s := lw.sites[r]; s != nil {
		s.need = max(s.need, bitsFor(bound))
	}
}

// consumerChecks lists, per layer kind whose Bits only bounds its input, the offsets
// from Bits of the checks its gadgets make (run.go: Relu(x, b) checks b-1 bits; max,
// lookups and clamps compare through Relu(x, Bits+1); argmax through Relu(x, Bits+2);
// softmax through both).
var consumerChecks = map[Kind][]int{
	KRelu:    {-1},
	KMax:     {0},
	KLookup:  {0},
	KArgMax:  {1},
	KSoftmax: {0, 1},
}

// roundConsumers raises the Bits of layers that only read a bound (consumerChecks) to
// the width in [Bits, Bits+t] whose checks cost the fewest t-bit queries. A wider
// Bits is sound: the layer needs |input| < 2^(Bits-1), which then still holds.
func roundConsumers(p *Program, t int) {
	if t == 0 {
		return
	}
	for _, l := range p.Layers {
		if isConsumer(l) {
			l.Bits = consumerBits(l.Kind, l.Bits, t)
		}
	}
}

// isConsumer reports whether roundConsumers rounds l.
func isConsumer(l *Layer) bool {
	_, ok := consumerChecks[l.Kind]
	return ok && l.Bits >= 1
}

// consumerBits is the width roundConsumers gives a layer of kind k with Bits bits.
func consumerBits(k Kind, bits, t int) int {
	if t == 0 {
		return bits
	}
	offs := consumerChecks[k]
	best, bestCost := bits, -1
	for b := bits; b <= min(bits+t, maxRoundedWidth); b++ {
		c := 0
		for _, o := range offs {
			c += LimbQueries(b+o, t)
		}
		if bestCost < 0 || c < bestCost {
			best, bestCost = b, c
		}
	}
	return best
}

// lowerWidths lowers g once with the narrowest widths, then chooses a limb width t and
// the widths rounded for it, and returns the program whose range argument and lookup
// tables are smallest (R1CS constraints: one per query and per table entry). The
// candidates are the unrounded widths, one global width (below) and, for each t, every
// width rounded for t; each is costed from a summary of the lowered program (widthSummary:
// the checks no choice changes, by width, and per layer the checks that move with its
// width) and the chosen one is applied to the lowered program in place. With range_check
// "bits" (binary decomposition, cost linear in the width) the narrowest widths are the
// cheapest.
//
// Without measured widths the program of one global width (Bits, as before per-tensor
// widths) is the reference: a candidate is only taken if it also makes no more range
// queries and no more low limbs than that one, and that one is kept if none does. A
// PLONK circuit pays more gates for a query (and for a low limb's recomposition) than
// for a table entry, so a program that trades entries for queries could be smaller in
// R1CS and larger in PLONK; this rules that out.
//
// Rounding leaves every static bound as lowered unless a measured width below Bits caps
// a tensor's bound (widthSite.free): the rounded width is then that tensor's bound, and
// the layers after it may change. A candidate that rounds such a width is lowered on its
// own to be costed (the programs lowered before are dropped first, so that no two are
// alive at once), and the chosen program is then lowered once more unless it was the
// last one lowered.
func lowerWidths(g *model.Graph, cfg Config) (*Program, error) {
	p, lw, err := lowerFused(g, cfg, widthPlan{})
	if err != nil || p.RangeCheck == "bits" {
		return p, err
	}
	s, err := summarize(p, lw)
	if err != nil {
		return nil, err
	}
	lw = nil
	best, bestSize := widthPlan{}, s.size(widthPlan{})
	var ref *rangeSize
	if len(cfg.Widths) == 0 {
		global := widthPlan{global: true}
		ref = s.size(global)
		if !ref.covers(bestSize) {
			best, bestSize = global, ref
		}
	}
	// Widths rounded for a limb width whose table alone is as large as the best
	// program's whole range argument are not tried (nor for any wider one): they aim at
	// a range argument that cannot be the cheapest.
	var last *Program // the candidate lowered last (limb width lastT), once p is dropped
	lastT := 0
	for t := MinLimbBits; t <= MaxLimbBits && 1<<t < bestSize.cost; t++ {
		plan := widthPlan{t: t, relu: s.relu}
		var size *rangeSize
		if s.exact(plan) {
			size = s.size(plan)
		} else {
			p, last = nil, nil
			q, err := lowerPlanned(g, cfg, plan)
			if err != nil {
				return nil, err
			}
			size = sizeOf(q)
			last, lastT = q, t
		}
		if size.cost < bestSize.cost && (ref == nil || ref.covers(size)) {
			best, bestSize = plan, size
		}
	}
	switch {
	case p != nil:
		s.apply(p, best)
		return p, nil
	case last != nil && !best.global && best.t == lastT:
		return last, nil
	}
	return lowerPlanned(g, cfg, best)
}

// widthSummary is what choosing the widths needs of a program lowered without rounding:
// its range checks split into those no width choice changes and, per layer whose Bits
// the choice sets, the checks at offsets from its Bits.
type widthSummary struct {
	cfg    Config
	fixed  map[int]int // checks by width that no choice changes
	tables int         // lookup-table entries
	layers []widthLayer
	relu   map[string]bool // keys of rescales a ReLU fuses into
}

// widthLayer is a layer whose Bits a width choice sets: a width site (a rescale or a
// float input) or a consumer (roundConsumers).
type widthLayer struct {
	index int         // in Program.Layers
	kind  Kind        // consumers: their kind
	key   string      // sites: Layer.Key
	site  *widthSite  // nil for consumers
	bits  int         // consumers: Bits as lowered
	offs  map[int]int // checks by offset from Bits
}

// checkOffsetBase is a width no range check reaches (widths stay below 64): a layer run
// with Bits at it shows which of its checks move with its Bits (at widths near it).
const checkOffsetBase = 1 << 10

// summarize records p's range checks (as RangeCheckWidths counts them) for choosing
// widths; lw is p's lowering (unrounded, fused), with its width sites.
func summarize(p *Program, lw *lowering) (*widthSummary, error) {
	s := &widthSummary{cfg: p.Config, relu: map[string]bool{}}
	for _, l := range p.Layers {
		if l.Kind == KRescale && l.Relu && l.Key != "" {
			s.relu[l.Key] = true
		}
	}
	vars := map[*Layer]bool{}
	for i, l := range p.Layers {
		if site := lw.sites[l]; site != nil {
			s.layers = append(s.layers, widthLayer{index: i, key: l.Key, site: site})
		} else if isConsumer(l) {
			s.layers = append(s.layers, widthLayer{index: i, kind: l.Kind, bits: l.Bits})
		} else {
			continue
		}
		vars[l] = true
	}
	// Every other layer's checks, and witness params', in one run that skips the layers
	// a choice changes.
	c := &checkCounter{hist: map[int]int{}, skip: vars}
	s.fixed = c.hist
	if err := c.run(p); err != nil {
		return nil, fmt.Errorf("counting range checks: %w", err)
	}
	// Each changing layer run alone with Bits at checkOffsetBase: its checks near there
	// move with Bits, the others do not.
	vals := make([][]none, len(p.Values))
	for i, v := range p.Values {
		vals[i] = make([]none, numel(v.Shape))
	}
	for k := range s.layers {
		wl := &s.layers[k]
		l := p.Layers[wl.index]
		bits := l.Bits
		l.Bits = checkOffsetBase
		lc := &checkCounter{hist: map[int]int{}}
		runLayer(p, lc, l, vals)
		l.Bits = bits
		wl.offs = map[int]int{}
		for w, n := range lc.hist {
			if w > checkOffsetBase/2 {
				wl.offs[w-checkOffsetBase] += n
			} else {
				s.fixed[w] += n
			}
		}
	}
	for _, tb := range p.Tables {
		s.tables += len(tb.Values)
	}
	return s, nil
}

// bits is the Bits plan gives layer wl.
func (s *widthSummary) bits(wl *widthLayer, plan widthPlan) int {
	if wl.site == nil {
		return consumerBits(wl.kind, wl.bits, plan.t)
	}
	return planWidth(s.cfg, plan, wl.key, wl.site.need, s.relu[wl.key] && !plan.global)
}

// exact reports whether plan leaves every static bound as lowered, so that the
// summary costs it exactly: it raises no width that bounds its tensor (widthSite.free).
func (s *widthSummary) exact(plan widthPlan) bool {
	for k := range s.layers {
		wl := &s.layers[k]
		if wl.site != nil && !wl.site.free && s.bits(wl, plan) != s.bits(wl, widthPlan{}) {
			return false
		}
	}
	return true
}

// size is sizeOf of the program lowered with plan (exact(plan) must hold).
func (s *widthSummary) size(plan widthPlan) *rangeSize {
	hist := make(map[int]int, len(s.fixed)+8)
	for w, n := range s.fixed {
		hist[w] += n
	}
	for k := range s.layers {
		wl := &s.layers[k]
		b := s.bits(wl, plan)
		for o, n := range wl.offs {
			hist[b+o] += n
		}
	}
	return sizeOfHist(hist, s.tables)
}

// apply gives p's layers the widths plan chooses: p becomes the program lowered with
// plan (exact(plan) must hold; p is the summarized program).
func (s *widthSummary) apply(p *Program, plan widthPlan) {
	for k := range s.layers {
		wl := &s.layers[k]
		p.Layers[wl.index].Bits = s.bits(wl, plan)
	}
}

// rangeSize is the size of a program's range argument at the limb width the circuit
// chooses, plus its lookup tables.
type rangeSize struct {
	cost     int // table entries plus queries, plus lookup-table entries
	queries  int
	lowLimbs int // limbs below the top one (each recomposed in the circuit)
}

// covers reports whether s is no larger than r in every respect: cost, queries and
// low limbs.
func (r *rangeSize) covers(s *rangeSize) bool {
	return s.cost <= r.cost && s.queries <= r.queries && s.lowLimbs <= r.lowLimbs
}

// sizeOf measures p's range argument as circuits/rangearg.go builds it: the limb width
// t minimizing 2^t plus queries.
func sizeOf(p *Program) *rangeSize {
	tables := 0
	for _, tb := range p.Tables {
		tables += len(tb.Values)
	}
	return sizeOfHist(p.RangeCheckWidths(), tables)
}

// sizeOfHist is sizeOf for range checks counted by width (hist; widths below 2 cost
// nothing) and tables lookup-table entries.
func sizeOfHist(hist map[int]int, tables int) *rangeSize {
	s := &rangeSize{}
	for w, n := range hist {
		if w < 2 || n == 0 {
			delete(hist, w)
		}
	}
	if len(hist) > 0 {
		s.cost = -1
		for t := MinLimbBits; t <= MaxLimbBits; t++ {
			q, low := 0, 0
			for w, n := range hist {
				q += n * LimbQueries(w, t)
				low += n * ((w+t-1)/t - 1)
			}
			if c := 1<<t + q; s.cost < 0 || c < s.cost {
				s.cost, s.queries, s.lowLimbs = c, q, low
			}
		}
	}
	s.cost += tables
	return s
}

// RangeCheckWidths counts the range checks p's circuit makes, by width (bits >= 2: narrower
// checks are plain constraints), as circuits/arith.go makes them: witness params at
// their Bits, then every layer.
func (p *Program) RangeCheckWidths() map[int]int {
	c := &checkCounter{hist: map[int]int{}}
	if err := c.run(p); err != nil {
		return nil
	}
	delete(c.hist, 0)
	delete(c.hist, 1)
	return c.hist
}

// checkCounter is an Arith that computes nothing and counts range checks by width,
// mirroring the circuit's gadgets (circuits/arith.go; TestCheckWidthsMatchCircuit).
type checkCounter struct {
	hist map[int]int
	skip map[*Layer]bool // layers whose checks are not counted
	off  bool            // the current layer's checks are not counted
}

type none = struct{}

// run counts the checks of p's witness params and layers (but the skipped ones).
func (c *checkCounter) run(p *Program) error {
	inputs := make([][]none, len(p.Inputs))
	for i, id := range p.Inputs {
		inputs[i] = make([]none, numel(p.Values[id].Shape))
	}
	params := make([][]none, len(p.Params))
	for i, par := range p.Params {
		params[i] = make([]none, len(par.Data))
		if p.Witness(par) {
			c.hist[par.Bits] += len(par.Data)
		}
	}
	_, err := Run[none](p, c, inputs, params)
	return err
}

func (c *checkCounter) check(b int) {
	if !c.off {
		c.hist[b]++
	}
}
func (c *checkCounter) Const(int64) none              { return none{} }
func (c *checkCounter) Add(none, none) none           { return none{} }
func (c *checkCounter) MulConst(none, int64) none     { return none{} }
func (c *checkCounter) Dot([]none, []none, none) none { return none{} }
func (c *checkCounter) Lookup(*Table, none) none      { return none{} }
func (c *checkCounter) Layer(l *Layer)                { c.off = c.skip[l] }
func (c *checkCounter) Err() error                    { return nil }
func (c *checkCounter) RangeCheck(_ none, bits int)   { c.check(bits) }
func (c *checkCounter) DivFloor(_, _ none, _, b, q int) none {
	c.check(q)
	c.check(b)
	c.check(b)
	return none{}
}

func (c *checkCounter) Rescale(x none, k, bits int, relu bool) none {
	switch {
	case k == 0 && relu:
		return c.Relu(x, bits)
	case k == 0:
		c.check(bits)
	case relu:
		c.check(bits - 1)
		c.check(k)
	default:
		c.check(bits)
		c.check(k)
	}
	return none{}
}

func (c *checkCounter) RoundEven(_ none, k, bits int) none {
	if k == 0 {
		c.check(bits)
		return none{}
	}
	c.check(bits - 1)
	c.check(k + 1)
	c.check(k + 1)
	return none{}
}

func (c *checkCounter) Relu(_ none, bits int) none {
	if bits > 1 {
		c.check(bits - 1)
	}
	return none{}
}

// observer is the integer evaluator, recording the largest |value| each keyed tensor
// (Layer.Key) is range-checked at: a rescale's quotient before its fused ReLU, an
// input as given.
type observer struct {
	IntArith
	cur  *Layer
	seen map[string]int64
}

func (o *observer) Layer(l *Layer) { o.cur = l }

func (o *observer) note(v int64) {
	if o.cur != nil && o.cur.Key != "" {
		o.seen[o.cur.Key] = max(o.seen[o.cur.Key], v, -v)
	}
}

func (o *observer) Rescale(x int64, k, nbits int, relu bool) int64 {
	q := o.IntArith.Rescale(x, k, nbits, false)
	if o.cur != nil && o.cur.Kind == KRescale {
		o.note(q)
	}
	if relu {
		return max(q, 0)
	}
	return q
}

func (o *observer) RangeCheck(x int64, nbits int) {
	o.IntArith.RangeCheck(x, nbits)
	if o.cur != nil && o.cur.Kind == KRangeChk {
		o.note(x)
	}
}

// CalibrateWidths returns cfg with Widths measured on samples (each a full set of
// model inputs): every float input and rescaled activation gets the signed width of
// WidthMargin times the largest |value| it takes, at least 2. maxBits > 0 (an explicit
// --bits) caps them: a tensor that needs more is an error naming it and its width, as
// is one that needs more than MaxWidth. The program lowered with the result must run
// every sample.
func CalibrateWidths(g *model.Graph, cfg Config, samples [][]*model.Tensor, maxBits int) (Config, error) {
	if len(samples) == 0 {
		return cfg, fmt.Errorf("calibrating widths needs at least one sample")
	}
	probe := cfg
	probe.Bits, probe.Widths = MaxWidth, nil
	p, err := lowerPlanned(g, probe, widthPlan{})
	if err != nil {
		return cfg, err
	}
	seen := map[string]int64{}
	for i, s := range samples {
		qi, err := p.QuantizeInputs(s)
		if err != nil {
			return cfg, fmt.Errorf("calibration sample %d: %w", i, err)
		}
		if _, err := Run[int64](p, &observer{seen: seen}, qi, p.ParamData()); err != nil {
			return cfg, fmt.Errorf("calibration sample %d: %w", i, err)
		}
	}
	widths := map[string]int{}
	for _, l := range p.Layers { // in program order: the first tensor too wide is named
		key := l.Key
		m, ok := seen[key]
		if !ok {
			continue
		}
		w := max(2, bitsFor(float64(m)*WidthMargin))
		if w > MaxWidth || (maxBits > 0 && w > maxBits) {
			lim := MaxWidth
			if maxBits > 0 {
				lim = maxBits
			}
			return cfg, fmt.Errorf("%w: %s reaches %d at scale 2^%d on the calibration inputs and needs %d signed bits (with a %dx margin), more than %d",
				ErrOutOfRange, key, m, cfg.Scale, w, WidthMargin, lim)
		}
		widths[key] = w
	}
	out := cfg
	out.Widths = widths
	fin, err := Lower(g, out)
	if err != nil {
		return cfg, err
	}
	for i, s := range samples {
		qi, err := fin.QuantizeInputs(s)
		if err == nil {
			_, err = fin.Eval(qi)
		}
		if err != nil {
			return cfg, fmt.Errorf("calibration sample %d with the measured widths: %w", i, err)
		}
	}
	return out, nil
}
