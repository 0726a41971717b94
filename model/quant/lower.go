package quant

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/zkml/zkml/model"
)

// internalScale is the fractional precision of constants zkml itself introduces
// (averaging weights), independent of the user's ParamScale.
const internalScale = 16

// ErrUnsupported is wrapped when a node cannot be proven (the op, or one of its forms).
var ErrUnsupported = model.ErrUnsupportedOp

type lowering struct {
	g      *model.Graph
	p      *Program
	ids    map[string]int // runtime value ids by ONNX name
	consts map[string]int // param value ids by ONNX name and scale key
	tables map[string]*Table

	// Quantized models (lower_qdq.go).
	qviews map[string]*qview      // DequantizeLinear outputs of runtime integers
	ints   map[int][2]int64       // integer values and their ranges
	skip   map[*model.Node]bool   // nodes lowered as part of another
	chains map[*model.Node]*chain // linear nodes whose result is quantized again
	inputQ map[string]*model.Node // float inputs read only by a QuantizeLinear

	plan     widthPlan      // how widths are rounded (widths.go)
	rescales map[string]int // rescales lowered so far per node output, for their keys
	// sites records what every width lowering chose needs, for choosing the rounding
	// afterwards (widths.go).
	sites map[*Layer]*widthSite
}

// Lower turns a float graph into a fixed-point program with the given settings, its
// range-checked widths chosen jointly with the range argument's limb size (widths.go).
func Lower(g *model.Graph, cfg Config) (*Program, error) {
	return lowerWidths(g, cfg)
}

// lowerPlanned is Lower with the widths rounded as plan says.
func lowerPlanned(g *model.Graph, cfg Config, plan widthPlan) (*Program, error) {
	p, _, err := lowerFused(g, cfg, plan)
	return p, err
}

// lowerFused is lowerPlanned returning the lowering's record of its width sites too.
func lowerFused(g *model.Graph, cfg Config, plan widthPlan) (*Program, *lowering, error) {
	p, lw, err := lowerWith(g, cfg, plan)
	if err != nil {
		return nil, nil, err
	}
	foldConstAdds(p, lw.refold)
	fuseRescaleRelu(p)
	roundConsumers(p, plan.t)
	return p, lw, nil
}

// lowerGraph is Lower without the fusion passes, which compute the same integers with
// fewer layers (tests compare the two), and with unrounded widths.
func lowerGraph(g *model.Graph, cfg Config) (*Program, error) {
	p, _, err := lowerWith(g, cfg, widthPlan{})
	return p, err
}

func lowerWith(g *model.Graph, cfg Config, plan widthPlan) (*Program, *lowering, error) {
	lowerings.Add(1)
	cfg = cfg.Normalized()
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	p := &Program{Config: cfg}
	// Fold BatchNormalization into the Conv/Gemm before it: one rescale instead of two,
	// and the normalization costs nothing.
	g = model.ExpandLayerNorm(model.ExpandInstanceNorm(model.FoldBatchNorm(g)))
	g = model.ExpandReduceNorms(model.ExpandMVN(model.ExpandGroupNorm(g)))
	// Attention masks' "minus infinity" (-1e9, float32's lowest) as a value Softmax
	// still maps to exactly 0 and the fixed-point range holds.
	g = model.BoundSoftmaxMasks(g, math.Min(1e4, math.Ldexp(1, cfg.Bits-3-cfg.Scale)))
	lw := &lowering{g: g, p: p, ids: map[string]int{}, consts: map[string]int{}, tables: map[string]*Table{},
		qviews: map[string]*qview{}, ints: map[int][2]int64{}, skip: map[*model.Node]bool{},
		chains: map[*model.Node]*chain{}, inputQ: map[string]*model.Node{}, plan: plan, rescales: map[string]int{},
		sites: map[*Layer]*widthSite{}}
	lw.planQuant()
	for _, in := range g.Inputs {
		if ok, err := lw.quantInput(in); ok || err != nil {
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		p.InputQuant = append(p.InputQuant, nil)
		// An input has no static bound: its measured width, else Bits.
		key := "input " + in.Name
		w := lw.width(key, MaxWidth, false)
		inBound := math.Ldexp(1, w-1)
		raw := p.newValue(in.Shape, cfg.Scale, inBound)
		p.Inputs = append(p.Inputs, raw)
		p.InputNames = append(p.InputNames, in.Name)
		// Inputs are witness values: prove they are in range before anything relies on it.
		l := &Layer{Name: key, Op: "Input", Kind: KRangeChk, In: []int{raw}, Bits: w, Key: key}
		lw.site(l, MaxWidth)
		lw.ids[in.Name] = lw.layer(l, in.Shape, cfg.Scale, inBound)
	}
	for _, n := range g.Nodes {
		if err := lw.node(n); err != nil {
			if errors.Is(err, model.ErrUnsupportedOp) || errors.Is(err, model.ErrInvalidModel) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("%w: %v", model.ErrInvalidModel, err)
		}
	}
	for _, out := range g.Outputs {
		id, ok := lw.ids[out.Name]
		var io *QuantIO
		if q, isQ := lw.qviews[out.Name]; isQ {
			// A dequantized output: prove the integers, dequantize outside the circuit.
			r := lw.ints[q.id]
			id, ok, io = q.id, true, quantIO(q.scale, q.zero, q.axis, r[0], r[1])
		}
		p.OutputQuant = append(p.OutputQuant, io)
		if !ok {
			c, isConst := g.Consts[out.Name]
			if !isConst {
				return nil, nil, fmt.Errorf("%w: graph output %q is never computed", model.ErrInvalidModel, out.Name)
			}
			// A constant output (such as ConstantOfShape's) is proven as a fixed constant
			// copied to the output.
			cid, err := lw.newParam(out.Name, c, cfg.Scale, true)
			if err != nil {
				return nil, nil, err
			}
			v := p.Values[cid]
			id = lw.layer(&Layer{Name: "output " + out.Name, Op: "Constant", Kind: KMove, In: []int{cid}, Index: int32s(identity(numel(v.Shape)))},
				v.Shape, v.Scale, v.Bound)
		}
		p.Outputs = append(p.Outputs, id)
		p.OutputNames = append(p.OutputNames, out.Name)
	}
	if !slices.ContainsFunc(p.InputQuant, func(q *QuantIO) bool { return q != nil }) {
		p.InputQuant = nil
	}
	if !slices.ContainsFunc(p.OutputQuant, func(q *QuantIO) bool { return q != nil }) {
		p.OutputQuant = nil
	}
	return p, lw, nil
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// layer appends l with a new output value and returns the value id.
func (lw *lowering) layer(l *Layer, shape []int, scale int, bound float64) int {
	l.Out = lw.p.newValue(shape, scale, bound)
	lw.p.Layers = append(lw.p.Layers, l)
	return l.Out
}

// param quantizes a model constant at scale and returns its value id (deduplicated).
func (lw *lowering) param(name string, t *model.Tensor, scale int) (int, error) {
	return lw.newParam(name, t, scale, false)
}

func (lw *lowering) newParam(name string, t *model.Tensor, scale int, internal bool) (int, error) {
	key := fmt.Sprintf("%s@%d", name, scale)
	if id, ok := lw.consts[key]; ok {
		return id, nil
	}
	data := make([]int64, len(t.Data))
	bound := 0.0
	for i, v := range t.Data {
		q := math.Round(math.Ldexp(v, scale))
		if math.IsNaN(q) || math.Abs(q) > 1<<40 {
			return 0, fmt.Errorf("%w: constant %q has value %g that does not fit at scale 2^%d", ErrOutOfRange, name, v, scale)
		}
		data[i] = int64(q)
		bound = math.Max(bound, math.Abs(q))
	}
	nbits := bitsFor(bound)
	if !internal && lw.p.ParamVis != Fixed {
		// A witness param is only known to lie within its range-checked width.
		bound = math.Ldexp(1, nbits-1)
	}
	id := lw.p.newValue(t.Shape, scale, bound)
	lw.p.Params = append(lw.p.Params, &Param{Name: name, Value: id, Data: data, Bits: nbits, Internal: internal})
	lw.consts[key] = id
	return id, nil
}

// operand returns the value id of a node input: a runtime value, or a constant
// quantized at constScale. isConst tells which.
func (lw *lowering) operand(n *model.Node, i int, constScale int) (id int, isConst bool, err error) {
	name := n.Inputs[i]
	if id, ok, err := lw.runtime(name); ok || err != nil {
		return id, false, err
	}
	if c, ok := lw.g.Consts[name]; ok {
		id, err := lw.param(name, c, constScale)
		return id, true, err
	}
	return 0, false, fmt.Errorf("%s: input %q is undefined", n.Label(), name)
}

// runtime returns the value id of a runtime tensor, converting a quantized view to
// fixed point on first use.
func (lw *lowering) runtime(name string) (int, bool, error) {
	if id, ok := lw.ids[name]; ok {
		return id, true, nil
	}
	if q, ok := lw.qviews[name]; ok {
		id, err := lw.dequant(name, q)
		return id, true, err
	}
	return 0, false, nil
}

func (lw *lowering) unsupported(n *model.Node, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrUnsupported, n.Label(), why)
}

func (lw *lowering) node(n *model.Node) error {
	p := lw.p
	if len(n.Outputs) == 0 {
		return nil
	}
	out := n.Outputs[0]
	if lw.skip[n] {
		return nil
	}
	if ok, err := lw.quantNode(n); ok {
		return err
	}
	switch n.Op {
	case "Identity", "Dropout", "Cast", "CastLike":
		id, _, err := lw.operand(n, 0, p.Scale)
		lw.ids[out] = id
		return err
	case "Gemm", "MatMul", "Conv", "ConvTranspose":
		return lw.linear(n)
	case "Add", "Sub":
		return lw.add(n)
	case "Mul", "Div":
		return lw.mul(n)
	case "Relu":
		x, _, err := lw.operand(n, 0, p.Scale)
		if err != nil {
			return err
		}
		v := p.Values[x]
		lw.ids[out] = lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KRelu, In: []int{x}, Bits: bitsFor(v.Bound)}, v.Shape, v.Scale, v.Bound)
		return nil
	case "Sigmoid":
		lo, hi := lw.defaultDomain()
		return lw.lookupFn(n, tableFn{name: "sigmoid", f: model.UnaryFunc(n.Op, n.Attrs), lo: lo, hi: hi})
	case "Softmax":
		return lw.softmax(n)
	case "MaxPool", "GlobalMaxPool":
		return lw.maxPool(n)
	case "AveragePool", "GlobalAveragePool":
		return lw.avgPool(n)
	case "BatchNormalization":
		return lw.batchNorm(n)
	case "Clip":
		return lw.clip(n)
	case "Max", "Min", "Sum", "Mean":
		return lw.variadic(n)
	case "ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceMax", "ReduceMin":
		return lw.reduce(n)
	case "ArgMax", "ArgMin", "Hardmax":
		return lw.argMax(n)
	case "LogSoftmax":
		return lw.logSoftmax(n)
	case "Split":
		return lw.split(n)
	case "Pow":
		return lw.pow(n)
	case "LRN":
		return lw.lrn(n)
	case "Gather":
		if model.IsRowLookup(n, lw.g.Consts) {
			return lw.gatherRows(n)
		}
	}
	if ok, err := lw.activation(n); ok {
		return err
	}
	if ok, err := lw.elementwise(n); ok {
		return err
	}
	if model.IsMovement(n.Op) {
		return lw.move(n)
	}
	return lw.unsupported(n, "operator is not supported in circuits")
}

func (lw *lowering) shapeOf(name string) []int {
	if id, ok := lw.ids[name]; ok {
		return lw.p.Values[id].Shape
	}
	if s, ok := lw.g.Shapes[name]; ok {
		return s
	}
	return lw.g.Consts[name].Shape
}

// linear lowers Gemm, MatMul and Conv to a sum of products followed by a rescale.
func (lw *lowering) linear(n *model.Node) error {
	p := lw.p
	if len(n.Inputs) < 2 {
		return lw.unsupported(n, "needs two operands")
	}
	aName, bName := n.Inputs[0], n.Inputs[1]
	_, aConst := lw.g.Consts[aName]
	_, bConst := lw.g.Consts[bName]
	if aConst && bConst {
		return lw.unsupported(n, "both operands constant")
	}
	consts := map[string]*model.Tensor{}
	// Gemm's alpha is folded into a constant operand, beta into the bias.
	alpha, beta := 1.0, 1.0
	if n.Op == "Gemm" {
		alpha, beta = n.Attrs.Float("alpha", 1), n.Attrs.Float("beta", 1)
	}
	scaled := func(name string, f float64) *model.Tensor {
		t := lw.g.Consts[name]
		if f == 1 {
			return t
		}
		c := t.Clone()
		for i := range c.Data {
			c.Data[i] *= f
		}
		return c
	}
	switch {
	case bConst:
		consts[bName] = scaled(bName, alpha)
	case aConst:
		consts[aName] = scaled(aName, alpha)
	}
	if (n.Op == "Conv" || n.Op == "ConvTranspose") && !bConst {
		return lw.unsupported(n, "weights must be constant")
	}
	opnd := func(name string) (int, error) {
		if id, ok, err := lw.runtime(name); ok || err != nil {
			return id, err
		}
		return lw.param(fmt.Sprintf("%s*%g", name, alpha), consts[name], p.ParamScale)
	}
	a, err := opnd(aName)
	if err != nil {
		return err
	}
	b, err := opnd(bName)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{a, b}}
	outShape, cols, err := linearTerms(n, n.Op, l, p.Values[a].Shape, p.Values[b].Shape)
	if err != nil {
		return err
	}
	p.chooseRLC(l, cols)
	accScale := p.Values[a].Scale + p.Values[b].Scale
	// Bias: Gemm's C (broadcast to the output), Conv's per-channel B.
	if len(n.Inputs) > 2 && n.Inputs[2] != "" && n.Op != "MatMul" {
		c, ok := lw.g.Consts[n.Inputs[2]]
		if !ok {
			return lw.unsupported(n, "bias must be constant")
		}
		cid, err := lw.param(fmt.Sprintf("%s*%g", n.Inputs[2], beta), scaled(n.Inputs[2], beta), accScale)
		if err != nil {
			return err
		}
		l.In = append(l.In, cid)
		if l.Bias, err = biasIndex(n, n.Op, c.Shape, outShape); err != nil {
			return err
		}
	}
	if err := lw.finishLinear(n, l, outShape, accScale); err != nil {
		return err
	}
	if !aConst && !bConst && alpha != 1 {
		// Two runtime operands: scale the (rescaled) product by alpha afterwards.
		return lw.scaleBy(n, alpha)
	}
	return nil
}

// linearTerms describes l's sum-of-products terms for a node shaped like shapeOp
// (Gemm, MatMul, Conv or ConvTranspose) with operand shapes sa and sb, and returns the
// output shape and the width of its matrix-product rows (the columns n of Gemm and
// MatMul's m x n results, a convolution's spatial outputs per channel; 0 for
// ConvTranspose), the rows a random-linear-combination check uses (rlc.go). Gemm,
// MatMul and Conv get their structure (Layer.Mat, Layer.Conv: the terms are generated
// when read), ConvTranspose its lists (linearTermsListed).
func linearTerms(n *model.Node, shapeOp string, l *Layer, sa, sb []int) ([]int, int, error) {
	switch shapeOp {
	case "Gemm":
		m, k, nn, err := model.GemmDims(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		l.Mat = &MatGeom{M: m, K: k, N: nn, TransA: n.Attrs.Int("transA", 0) != 0, TransB: n.Attrs.Int("transB", 0) != 0,
			AOff: []int{0}, BOff: []int{0}}
		return []int{m, nn}, nn, nil
	case "MatMul":
		pl, err := model.PlanMatMul(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		l.Mat = &MatGeom{M: pl.M, K: pl.K, N: pl.N, AOff: slices.Clone(pl.AOff), BOff: slices.Clone(pl.BOff)}
		return pl.Shape, pl.N, nil
	case "Conv":
		pl, err := model.PlanConv(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		l.Conv = newConvGeom(pl)
		return pl.OutShape(), pl.Outputs(), nil
	}
	return linearTermsListed(n, shapeOp, l, sa, sb)
}

// linearTermsListed fills l's sum-of-products index lists for a node shaped like shapeOp
// (Gemm, MatMul, Conv or ConvTranspose) with operand shapes sa and sb, and returns the
// output shape and the width of its matrix-product rows (the columns n of Gemm and
// MatMul's m x n results, a convolution's spatial outputs per channel; 0 for
// ConvTranspose), the rows a random-linear-combination check uses (rlc.go). It is how
// every linear node was lowered before layers had structure (terms.go); the lowering
// now uses it for ConvTranspose only, and tests compare the structured layers with it.
func linearTermsListed(n *model.Node, shapeOp string, l *Layer, sa, sb []int) ([]int, int, error) {
	var outShape []int
	cols := 0
	addTerms := func(ta, tb int) {
		l.TA = append(l.TA, int32(ta))
		l.TB = append(l.TB, int32(tb))
	}
	switch shapeOp {
	case "Gemm":
		m, k, nn, err := model.GemmDims(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		ta, tb := n.Attrs.Int("transA", 0) != 0, n.Attrs.Int("transB", 0) != 0
		outShape, cols = []int{m, nn}, nn
		for i := 0; i < m; i++ {
			for j := 0; j < nn; j++ {
				l.TermStart = append(l.TermStart, int32(len(l.TA)))
				for x := 0; x < k; x++ {
					ai, bi := i*k+x, x*nn+j
					if ta {
						ai = x*m + i
					}
					if tb {
						bi = j*k + x
					}
					addTerms(ai, bi)
				}
			}
		}
	case "MatMul":
		pl, err := model.PlanMatMul(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		outShape, cols = pl.Shape, pl.N
		for bt := range pl.AOff {
			for i := 0; i < pl.M; i++ {
				for j := 0; j < pl.N; j++ {
					l.TermStart = append(l.TermStart, int32(len(l.TA)))
					for x := 0; x < pl.K; x++ {
						addTerms(pl.AOff[bt]+i*pl.K+x, pl.BOff[bt]+x*pl.N+j)
					}
				}
			}
		}
	case "ConvTranspose":
		pl, err := model.PlanConvTranspose(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		outShape = pl.Shape()
		cols = model.Numel(outShape[2:])
		// Taps runs over the inputs; group the products by output.
		per := make([][][2]int, model.Numel(outShape))
		pl.Taps(func(o, xi, wi int) { per[o] = append(per[o], [2]int{xi, wi}) })
		for _, ts := range per {
			l.TermStart = append(l.TermStart, int32(len(l.TA)))
			for _, t := range ts {
				addTerms(t[0], t[1])
			}
		}
	case "Conv":
		pl, err := model.PlanConv(n, sa, sb)
		if err != nil {
			return nil, 0, err
		}
		outShape, cols = pl.OutShape(), pl.Outputs()
		mPerG, ks, sp, outs := pl.M/pl.Group, pl.KernelSize(), pl.Spatial(), pl.Outputs()
		var ti, tk []int
		for bb := 0; bb < pl.N; bb++ {
			for m := 0; m < pl.M; m++ {
				g := m / mPerG
				for op := range outs {
					ti, tk, _ = pl.Taps(op, ti, tk)
					l.TermStart = append(l.TermStart, int32(len(l.TA)))
					for c := 0; c < pl.CPerG; c++ {
						xb := (bb*pl.C + g*pl.CPerG + c) * sp
						wb := (m*pl.CPerG + c) * ks
						for t := range ti {
							addTerms(xb+ti[t], wb+tk[t])
						}
					}
				}
			}
		}
	}
	l.TermStart = append(l.TermStart, int32(len(l.TA)))
	return outShape, cols, nil
}

// biasIndex maps each output of a linear node to its bias element: Conv's bias is per
// output channel, Gemm's broadcasts to the output.
func biasIndex(n *model.Node, shapeOp string, bias, out []int) ([]int32, error) {
	var idx []int32
	nOut := model.Numel(out)
	if shapeOp == "Conv" || shapeOp == "ConvTranspose" {
		per := nOut / out[1] / out[0]
		for o := 0; o < nOut; o++ {
			idx = append(idx, int32((o/per)%out[1]))
		}
		return idx, nil
	}
	if _, err := model.BroadcastShape(bias, out); err != nil {
		return nil, fmt.Errorf("%s: bias: %w", n.Label(), err)
	}
	for _, j := range model.BroadcastIndex(bias, out) {
		idx = append(idx, int32(j))
	}
	return idx, nil
}

// scaleBy multiplies the node's (already lowered) output by a constant factor.
func (lw *lowering) scaleBy(n *model.Node, f float64) error {
	p := lw.p
	x := lw.ids[n.Outputs[0]]
	fid, err := lw.newParam(fmt.Sprintf("%s.alpha", n.Name), &model.Tensor{Shape: []int{1}, Data: []float64{f}}, p.ParamScale, true)
	if err != nil {
		return err
	}
	v := p.Values[x]
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{x, fid}}
	total := numel(v.Shape)
	for i := 0; i < total; i++ {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(i))
		l.TB = append(l.TB, 0)
	}
	l.TermStart = append(l.TermStart, int32(total))
	return lw.finishLinear(n, l, v.Shape, v.Scale+p.ParamScale)
}

// finishLinear bounds a linear layer's accumulator, appends it and rescales back to
// the activation scale.
func (lw *lowering) finishLinear(n *model.Node, l *Layer, shape []int, accScale int) error {
	acc, err := lw.accumulate(n, l, shape, accScale)
	if err != nil {
		return err
	}
	lw.ids[n.Outputs[0]] = lw.rescale(n, acc, accScale-lw.p.Scale)
	return nil
}

// elemBound bounds the elements of a linear layer's operand: |data[i]| for a
// constant param, else the value's bound.
type elemBound struct {
	konst bool
	data  []int64
	bound float64
}

func (e elemBound) at(i int32) float64 {
	if e.konst {
		return math.Abs(float64(e.data[i]))
	}
	return e.bound
}

// accumulate bounds a linear layer's accumulator and appends it.
func (lw *lowering) accumulate(n *model.Node, l *Layer, shape []int, accScale int) (int, error) {
	p := lw.p
	bound := 0.0
	// Each operand's element bound: |data| of a constant param, else the value's bound
	// (resolved once per operand, not per term).
	elems := make([]elemBound, len(l.In))
	for i, id := range l.In {
		if par := lw.paramOf(id); par != nil && !p.Witness(par) {
			elems[i] = elemBound{konst: true, data: par.Data}
		} else {
			elems[i] = elemBound{bound: p.Values[id].Bound}
		}
	}
	var buf TermBuf
	for o := range l.LinearOutputs() {
		s := 0.0
		ta, tb := l.Terms(o, &buf)
		for t := range ta {
			s += elems[0].at(ta[t]) * elems[1].at(tb[t])
		}
		if len(l.In) > 2 && l.Bias[o] >= 0 {
			s += elems[2].at(l.Bias[o])
		}
		bound = math.Max(bound, s)
	}
	if bound >= MaxBound {
		return 0, fmt.Errorf("%w: %s: accumulator bound %.3g exceeds 2^62; lower scale or param_scale", ErrOutOfRange, n.Label(), bound)
	}
	return lw.layer(l, shape, accScale, bound), nil
}

// rescale divides value id by 2^shift (rounding) with a range check to the width the
// result needs (lowering.width): its static bound, else its measured width or Bits.
func (lw *lowering) rescale(n *model.Node, id, shift int) int {
	p := lw.p
	v := p.Values[id]
	key := lw.rescaleKey(n)
	static := math.Ceil(math.Ldexp(v.Bound, -shift)) + 1
	w := lw.width(key, bitsFor(static), lw.plan.relu[key])
	bound := math.Min(math.Ldexp(1, w-1), static)
	l := &Layer{Name: n.Name, Op: "Rescale", Kind: KRescale, In: []int{id}, Shift: shift, Bits: w, Key: key}
	lw.site(l, bitsFor(static))
	return lw.layer(l, v.Shape, v.Scale-shift, bound)
}

func (lw *lowering) paramOf(id int) *Param {
	for _, par := range lw.p.Params {
		if par.Value == id {
			return par
		}
	}
	return nil
}

func (lw *lowering) add(n *model.Node) error {
	p := lw.p
	a, _, err := lw.operand(n, 0, p.Scale)
	if err != nil {
		return err
	}
	b, _, err := lw.operand(n, 1, p.Scale)
	if err != nil {
		return err
	}
	va, vb := p.Values[a], p.Values[b]
	shape, err := model.BroadcastShape(va.Shape, vb.Shape)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Label(), err)
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KAdd, In: []int{a, b}, MA: 1, MB: 1}
	if n.Op == "Sub" {
		l.MB = -1
	}
	for _, j := range model.BroadcastIndex(va.Shape, shape) {
		l.IA = append(l.IA, int32(j))
	}
	for _, j := range model.BroadcastIndex(vb.Shape, shape) {
		l.IB = append(l.IB, int32(j))
	}
	lw.ids[n.Outputs[0]] = lw.layer(l, shape, p.Scale, va.Bound+vb.Bound)
	return nil
}

// mul lowers elementwise Mul (and Div by a constant) to one-term linear layers.
func (lw *lowering) mul(n *model.Node) error {
	p := lw.p
	if n.Op == "Div" {
		c, ok := lw.g.Consts[n.Inputs[1]]
		if !ok {
			return lw.divide(n)
		}
		inv := c.Clone()
		for i, v := range inv.Data {
			if v == 0 {
				return fmt.Errorf("%w: %s: division by zero", model.ErrInvalidModel, n.Label())
			}
			inv.Data[i] = 1 / v
		}
		name := "1/" + n.Inputs[1]
		lw.g.Consts[name] = inv
		n = &model.Node{Name: n.Name, Op: n.Op, Inputs: []string{n.Inputs[0], name}, Outputs: n.Outputs, Attrs: n.Attrs}
	}
	a, _, err := lw.operand(n, 0, p.ParamScale)
	if err != nil {
		return err
	}
	b, _, err := lw.operand(n, 1, p.ParamScale)
	if err != nil {
		return err
	}
	sa, sb := p.Values[a].Shape, p.Values[b].Shape
	shape, err := model.BroadcastShape(sa, sb)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Label(), err)
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{a, b}}
	ia, ib := model.BroadcastIndex(sa, shape), model.BroadcastIndex(sb, shape)
	for i := range ia {
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(ia[i]))
		l.TB = append(l.TB, int32(ib[i]))
	}
	l.TermStart = append(l.TermStart, int32(len(ia)))
	return lw.finishLinear(n, l, shape, p.Values[a].Scale+p.Values[b].Scale)
}

func (lw *lowering) move(n *model.Node) error {
	p := lw.p
	shapes := make([][]int, len(n.Inputs))
	consts := make([]*model.Tensor, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		shapes[i] = lw.shapeOf(name)
		consts[i] = lw.g.Consts[name]
	}
	m, _, err := model.PlanMovement(n, shapes, consts, lw.g.Opset)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KMove, Fill: int64(math.Round(math.Ldexp(m.Fill, p.Scale)))}
	bound := math.Abs(float64(l.Fill))
	scale := p.Scale
	for _, k := range m.Data {
		id, _, err := lw.operand(n, k, p.Scale)
		if err != nil {
			return err
		}
		// Integer tensors (of quantized models) move at their own scale, 0.
		scale = p.Values[id].Scale
		l.In = append(l.In, id)
		bound = math.Max(bound, p.Values[id].Bound)
	}
	for _, j := range m.Index {
		l.Index = append(l.Index, int32(j))
	}
	lw.ids[n.Outputs[0]] = lw.layer(l, m.Shape, scale, bound)
	return nil
}

// table tabulates f (float in, float out) at the activation scale on the domain
// [lo, hi] (integers at that scale), memoized by name.
func (lw *lowering) table(name string, lo, hi int64, f func(float64) float64) *Table {
	key := fmt.Sprintf("%s[%d,%d]", name, lo, hi)
	if t, ok := lw.tables[key]; ok {
		return t
	}
	s := lw.p.Scale
	t := &Table{Name: key, Lo: lo}
	for x := lo; x <= hi; x++ {
		t.Values = append(t.Values, int64(math.Round(math.Ldexp(f(math.Ldexp(float64(x), -s)), s))))
	}
	lw.tables[key] = t
	lw.p.Tables = append(lw.p.Tables, t)
	return t
}

func (lw *lowering) softmax(n *model.Node) error {
	p := lw.p
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	starts, length, stride, err := model.SoftmaxGroups(n, v.Shape, lw.g.Opset)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KSoftmax, In: []int{x}, Bits: bitsFor(v.Bound)}
	for _, s := range starts {
		row := make([]int32, length)
		for i := range row {
			row[i] = int32(s + i*stride)
		}
		l.Groups = append(l.Groups, row)
	}
	// exp reads x - max(row), in [-2*Bound, 0].
	size := int64(1) << p.LookupBits
	fn := tableFn{name: "exp", f: math.Exp, lo: -(size - 1), hi: 0, inLo: math.MinInt64, inHi: 0}
	expErr, err := lw.fitDomain(n, &fn, 2*v.Bound)
	if err != nil {
		// Too big for the gadget's one table: composed, with a reduced exp.
		return lw.softmaxReduced(n, x, starts, length, stride)
	}
	gadget := func() (int, bool, error) {
		l := *l
		l.Table = lw.table(fn.name, fn.lo, fn.hi, fn.f)
		// Each exp is off by at most expErr and the row's sum (at least 1, from the
		// maximum) by len*expErr, so an output e/sum by at most (len+1)*expErr, plus the
		// division's floor (one step).
		l.MaxError = float64(length+1)*expErr + math.Ldexp(1, -p.Scale)
		return lw.layer(&l, v.Shape, p.Scale, math.Ldexp(1, p.Scale)), true, nil
	}
	if fn.hi-fn.lo < size {
		id, _, _ := gadget()
		lw.ids[n.Outputs[0]] = id
		return nil
	}
	// An exp table larger than --lookup-bits allows: composed with a reduced exp where
	// that is cheaper and as accurate (lower_choice.go).
	id, err := lw.cheapest(gadget, func() (int, bool, error) {
		if err := lw.softmaxReduced(n, x, starts, length, stride); err != nil {
			return 0, false, err
		}
		return lw.ids[n.Outputs[0]], true, nil
	})
	lw.ids[n.Outputs[0]] = id
	return err
}

// input0 resolves a node's first input as an activation-scale value.
func (lw *lowering) input0(n *model.Node) (int, Value, error) {
	x, _, err := lw.operand(n, 0, lw.p.Scale)
	if err != nil {
		return 0, Value{}, err
	}
	return x, lw.p.Values[x], nil
}

// pooled resolves a pooling node's activation input and window.
func (lw *lowering) pooled(n *model.Node) (int, Value, *model.Window, error) {
	x, v, err := lw.input0(n)
	if err != nil {
		return 0, Value{}, nil, err
	}
	w, err := model.PlanPool(n, v.Shape)
	return x, v, w, err
}

func (lw *lowering) maxPool(n *model.Node) error {
	x, v, w, err := lw.pooled(n)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KMax, In: []int{x}, Bits: bitsFor(v.Bound)}
	sp := w.Spatial()
	var ti, tk []int
	for bc := 0; bc < w.N*w.C; bc++ {
		for op := range w.Outputs() {
			ti, tk, _ = w.Taps(op, ti, tk)
			if len(ti) == 0 {
				return lw.unsupported(n, "a pooling window lies entirely in padding")
			}
			g := make([]int32, len(ti))
			for i, t := range ti {
				g[i] = int32(bc*sp + t)
			}
			l.Groups = append(l.Groups, g)
		}
	}
	lw.ids[n.Outputs[0]] = lw.layer(l, w.OutShape(w.C), v.Scale, v.Bound)
	return nil
}

// avgPool lowers average pooling to a sum times a constant 1/count, then a rescale.
func (lw *lowering) avgPool(n *model.Node) error {
	x, v, w, err := lw.pooled(n)
	if err != nil {
		return err
	}
	// weights[c] = 1/c for each window size c that occurs.
	maxCount := w.KernelSize()
	inv := model.NewTensor(maxCount + 1)
	for c := 1; c <= maxCount; c++ {
		inv.Data[c] = 1 / float64(c)
	}
	wid, err := lw.newParam(fmt.Sprintf("1/k(%d)", maxCount), inv, internalScale, true)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{x, wid}}
	sp := w.Spatial()
	var ti, tk []int
	for bc := 0; bc < w.N*w.C; bc++ {
		for op := range w.Outputs() {
			var pad int
			ti, tk, pad = w.Taps(op, ti, tk)
			cnt := len(ti)
			if w.CountIncludePad {
				cnt += pad
			}
			if cnt == 0 {
				return lw.unsupported(n, "a pooling window lies entirely in padding")
			}
			l.TermStart = append(l.TermStart, int32(len(l.TA)))
			for _, t := range ti {
				l.TA = append(l.TA, int32(bc*sp+t))
				l.TB = append(l.TB, int32(cnt))
			}
		}
	}
	l.TermStart = append(l.TermStart, int32(len(l.TA)))
	return lw.finishLinear(n, l, w.OutShape(w.C), v.Scale+internalScale)
}

// batchNorm lowers inference-mode BatchNormalization to a per-channel affine map.
func (lw *lowering) batchNorm(n *model.Node) error {
	p := lw.p
	scale, shift, err := model.BatchNormAffine(n, lw.paramConsts(n))
	if err != nil {
		return err
	}
	x, v, err := lw.input0(n)
	if err != nil {
		return err
	}
	if len(v.Shape) < 2 || v.Shape[1] != len(scale) {
		return fmt.Errorf("%w: %s: input %v does not have %d channels", model.ErrInvalidModel, n.Label(), v.Shape, len(scale))
	}
	sid, err := lw.param(n.Name+".scale", &model.Tensor{Shape: []int{len(scale)}, Data: scale}, p.ParamScale)
	if err != nil {
		return err
	}
	bid, err := lw.param(n.Name+".shift", &model.Tensor{Shape: []int{len(shift)}, Data: shift}, p.Scale+p.ParamScale)
	if err != nil {
		return err
	}
	l := &Layer{Name: n.Name, Op: n.Op, Kind: KLinear, In: []int{x, sid, bid}}
	inner := model.Numel(v.Shape[2:])
	total := model.Numel(v.Shape)
	for i := 0; i < total; i++ {
		c := (i / inner) % len(scale)
		l.TermStart = append(l.TermStart, int32(i))
		l.TA = append(l.TA, int32(i))
		l.TB = append(l.TB, int32(c))
		l.Bias = append(l.Bias, int32(c))
	}
	l.TermStart = append(l.TermStart, int32(total))
	return lw.finishLinear(n, l, v.Shape, p.Scale+p.ParamScale)
}

// foldConstAdds moves the addition of a fixed constant that follows a rescale to before
// it, at the accumulator scale: round((x + c*2^k) / 2^k) = round(x / 2^k) + c exactly
// (adding a multiple of 2^k does not change the rounding), so the program computes the
// same integers, and a Relu after the addition can then fuse into the rescale
// (fuseRescaleRelu). Older exporters write Conv -> Add(bias) -> Relu and
// Gemm -> Add -> Relu; those become one rescale+ReLU. Only fixed constants fold: a
// witness param is committed to at its own scale.
//
// The folded rescale then checks the sum: refold (nil: none) widens its width when the
// width came from the static bound of the rescale alone.
func foldConstAdds(p *Program, refold func(r *Layer, old int, bound float64)) {
	uses := make([]int, len(p.Values))
	producer := map[int]int{} // value id -> layer index
	for i, l := range p.Layers {
		for _, in := range l.In {
			uses[in]++
		}
		producer[l.Out] = i
	}
	for _, o := range p.Outputs {
		uses[o]++
	}
	consts := map[int]*Param{}
	for _, par := range p.Params {
		if !p.Witness(par) {
			consts[par.Value] = par
		}
	}
	isIdentity := func(idx []int32) bool {
		for i, j := range idx {
			if int(j) != i {
				return false
			}
		}
		return true
	}
	for ai, a := range p.Layers {
		if a.Kind != KAdd {
			continue
		}
		for side := range 2 {
			ri, ok := producer[a.In[side]]
			if !ok {
				continue
			}
			r, c := p.Layers[ri], a.In[1-side]
			mr, mc, ir, ic := a.MA, a.MB, a.IA, a.IB
			if side == 1 {
				mr, mc, ir, ic = a.MB, a.MA, a.IB, a.IA
			}
			if r.Kind != KRescale || r.Relu || uses[r.Out] != 1 || consts[c] == nil || mr != 1 ||
				len(ir) != numel(p.Values[r.Out].Shape) || !isIdentity(ir) {
				continue
			}
			cb := math.Ldexp(math.Abs(float64(mc))*p.Values[c].Bound, r.Shift)
			x := p.Values[r.In[0]]
			if x.Bound+cb >= MaxBound {
				continue
			}
			// a: acc = x + (mc*2^k)*c at x's scale; r: round(acc / 2^k), into a's old value.
			acc := p.newValue(x.Shape, x.Scale, x.Bound+cb)
			out := a.Out
			if refold != nil {
				refold(r, r.Out, p.Values[out].Bound)
			}
			a.In, a.MA, a.MB, a.IA, a.IB, a.Out = []int{r.In[0], c}, 1, mc<<r.Shift, ir, ic, acc
			r.In, r.Out = []int{acc}, out
			// The addition now runs first: swap the two layers (nothing between them
			// read the rescaled value, its only reader was a).
			p.Layers[ri], p.Layers[ai] = a, r
			producer[acc], producer[out] = ri, ai
			break
		}
	}
}

// fuseRescaleRelu merges a ReLU into the rescale that feeds it when nothing else reads
// the rescaled value: the rescale's range check then yields the sign for free.
func fuseRescaleRelu(p *Program) {
	uses := make([]int, len(p.Values))
	producer := map[int]*Layer{}
	for _, l := range p.Layers {
		for _, in := range l.In {
			uses[in]++
		}
		producer[l.Out] = l
	}
	for _, o := range p.Outputs {
		uses[o]++
	}
	kept := p.Layers[:0]
	for _, l := range p.Layers {
		if l.Kind == KRelu {
			if r := producer[l.In[0]]; r != nil && r.Kind == KRescale && !r.Relu && uses[l.In[0]] == 1 {
				r.Relu = true
				r.Op = "Rescale+Relu"
				r.Out = l.Out
				continue
			}
		}
		kept = append(kept, l)
	}
	p.Layers = kept
}
