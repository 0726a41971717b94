package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/zkml/zkml/model"
)

// Lowering of int8 quantized models: QuantizeLinear, DequantizeLinear, QLinearMatMul,
// QLinearConv, MatMulInteger, ConvInteger, and QDQ-format graphs (DequantizeLinear ->
// float operator -> QuantizeLinear), as standard quantization tools write them.
//
// Integer tensors are program values at scale 0. A DequantizeLinear of a runtime
// integer tensor makes a quantized view (the integers with their scale and zero point)
// that is converted to fixed point only if a float operator reads it. A Conv, Gemm or
// MatMul whose operands are quantized views or dequantized constants and whose result
// is quantized again (directly or through a Relu) is proven as the integer arithmetic
// the model defines, like QLinearConv: the exact accumulator of zero-point-shifted
// integers (plus the int32 bias), times the float32 multiplier x_scale*w_scale/y_scale,
// rounded half to even and saturated. Nothing is re-quantized from float. Movement
// operators, max pooling and Relu on a quantized view act on the integers, with which
// they commute. A float model input read only by a QuantizeLinear, and a model output
// computed by a DequantizeLinear, are converted outside the circuit (QuantIO): the
// proof is over their integers.

// qview is a runtime integer tensor seen through a DequantizeLinear.
type qview struct {
	id    int           // the integer value
	scale *model.Tensor // float32 scales: one, or one per channel of axis
	zero  *model.Tensor // nil: zero
	axis  int
}

func (q *qview) perTensor() bool {
	return q.scale.Numel() == 1 && (q.zero == nil || q.zero.Numel() == 1)
}

func zeroAt(z *model.Tensor, c int) int64 {
	if z == nil {
		return 0
	}
	if z.Numel() == 1 {
		c = 0
	}
	return int64(z.Data[c])
}

// chain is a Conv, Gemm, MatMul or Add whose only reader is a QuantizeLinear, directly or
// through a Relu.
type chain struct {
	relu, q *model.Node
}

// planQuant finds the QDQ patterns before lowering: float inputs quantized on entry
// and linear nodes whose result is quantized again.
func (lw *lowering) planQuant() {
	uses := map[string][]*model.Node{}
	for _, n := range lw.g.Nodes {
		for _, in := range n.Inputs {
			uses[in] = append(uses[in], n)
		}
	}
	for _, o := range lw.g.Outputs {
		uses[o.Name] = append(uses[o.Name], nil) // read by the caller
	}
	only := func(name string) *model.Node {
		if u := uses[name]; len(u) == 1 {
			return u[0]
		}
		return nil
	}
	for _, in := range lw.g.Inputs {
		if q := only(in.Name); q != nil && q.Op == "QuantizeLinear" && q.Inputs[0] == in.Name {
			if _, _, isInt := model.IntRange(in.DType); !isInt {
				lw.inputQ[in.Name] = q
			}
		}
	}
	for _, n := range lw.g.Nodes {
		if n.Op != "Conv" && n.Op != "Gemm" && n.Op != "MatMul" && n.Op != "Add" {
			continue
		}
		c := &chain{q: only(n.Outputs[0])}
		if c.q != nil && c.q.Op == "Relu" {
			c.relu, c.q = c.q, only(c.q.Outputs[0])
		}
		if c.q != nil && c.q.Op == "QuantizeLinear" {
			lw.chains[n] = c
		}
	}
}

// quantIO returns the QuantIO of scale and zero point tensors for an integer type.
func quantIO(scale, zero *model.Tensor, axis int, lo, hi int64) *QuantIO {
	io := &QuantIO{Lo: lo, Hi: hi, Axis: axis}
	for c := range scale.Data {
		io.Scale = append(io.Scale, scale.Data[c])
		io.Zero = append(io.Zero, zeroAt(zero, c))
	}
	return io
}

// intInput appends a range-checked integer program input holding [lo, hi] and returns
// the checked value.
func (lw *lowering) intInput(name string, shape []int, io *QuantIO) int {
	p := lw.p
	// Every ONNX integer range has a power-of-two size: check v + fill in b signed bits.
	b := bitsFor(float64(io.Hi - io.Lo)) // hi - lo + 1 = 2^(b-1)
	b--
	fill := -(io.Lo + int64(1)<<(b-1))
	raw := p.newValue(shape, 0, float64(max(-io.Lo, io.Hi)))
	p.Inputs = append(p.Inputs, raw)
	p.InputNames = append(p.InputNames, name)
	p.InputQuant = append(p.InputQuant, io)
	id := lw.layer(&Layer{Name: "input " + name, Op: "Input", Kind: KRangeChk, In: []int{raw}, Bits: b, Fill: fill},
		shape, 0, p.Values[raw].Bound)
	lw.ints[id] = [2]int64{io.Lo, io.Hi}
	return id
}

// quantInput lowers graph input in when it is an integer tensor or a float read only
// by a QuantizeLinear; it reports whether it did.
func (lw *lowering) quantInput(in model.Value) (bool, error) {
	if lo, hi, ok := model.IntRange(in.DType); ok {
		lw.ids[in.Name] = lw.intInput(in.Name, in.Shape, &QuantIO{Lo: lo, Hi: hi})
		return true, nil
	}
	q := lw.inputQ[in.Name]
	if q == nil {
		return false, nil
	}
	scale, zero := lw.g.Consts[q.Inputs[1]], lw.constAt(q, 2)
	lo, hi, ok := model.IntRange(model.QuantType(q, zero))
	if !ok {
		return false, nil
	}
	axis, err := lw.quantAxis(q, in.Shape, scale)
	if err != nil {
		return true, err
	}
	lw.ids[q.Outputs[0]] = lw.intInput(in.Name, in.Shape, quantIO(scale, zero, axis, lo, hi))
	lw.skip[q] = true
	return true, nil
}

func (lw *lowering) constAt(n *model.Node, i int) *model.Tensor {
	if i < len(n.Inputs) && n.Inputs[i] != "" {
		return lw.g.Consts[n.Inputs[i]]
	}
	return nil
}

// quantAxis returns a (De)QuantizeLinear's normalized axis and checks its parameters.
func (lw *lowering) quantAxis(n *model.Node, shape []int, scale *model.Tensor) (int, error) {
	if scale == nil {
		return 0, lw.unsupported(n, "scale must be a constant")
	}
	if n.Attrs.Int("block_size", 0) != 0 {
		return 0, lw.unsupported(n, "blocked quantization (block_size) is not supported")
	}
	axis := int(n.Attrs.Int("axis", 1))
	if axis < 0 {
		axis += len(shape)
	}
	if _, err := model.AxisIndex(shape, scale, axis); err != nil {
		return 0, fmt.Errorf("%s: %w", n.Label(), err)
	}
	for _, s := range scale.Data {
		if !(s > 0) || math.IsInf(s, 0) {
			return 0, fmt.Errorf("%w: %s: scale %v must be positive and finite", model.ErrInvalidModel, n.Label(), s)
		}
	}
	return axis, nil
}

// channels returns, per element of shape, its index on axis, or nil when n == 1.
func channels(shape []int, axis, n int) []int32 {
	if n == 1 {
		return nil
	}
	at := model.AxisOf(shape, axis)
	ch := make([]int32, numel(shape))
	for i := range ch {
		ch[i] = int32(at(i))
	}
	return ch
}

// quantNode lowers the quantized operators and the QDQ patterns; it reports whether n
// was one of them.
func (lw *lowering) quantNode(n *model.Node) (bool, error) {
	switch n.Op {
	case "DequantizeLinear":
		return true, lw.dequantizeLinear(n)
	case "QuantizeLinear":
		return true, lw.quantizeLinear(n)
	case "QLinearMatMul", "QLinearConv", "MatMulInteger", "ConvInteger":
		return true, lw.qlinear(n)
	case "Conv", "Gemm", "MatMul":
		if c := lw.chains[n]; c != nil {
			return lw.fuseLinear(n, c)
		}
	case "Add":
		if c := lw.chains[n]; c != nil {
			return lw.fuseAdd(n, c)
		}
	case "Cast":
		return lw.castInt(n)
	case "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual":
		return true, lw.compare(n)
	case "Where":
		return true, lw.where(n)
	}
	if len(n.Inputs) > 0 {
		if q, ok := lw.qviews[n.Inputs[0]]; ok && q.perTensor() {
			if ok, err := lw.propagate(n, q); ok {
				return true, err
			}
		}
	}
	for _, in := range n.Inputs {
		if id, ok := lw.ids[in]; ok && n.Op != "Identity" && n.Op != "Dropout" {
			if _, isInt := lw.ints[id]; isInt {
				return true, lw.unsupported(n, fmt.Sprintf("input %q is an integer tensor; only quantized operators, movement, max pooling and Relu read integers (add a DequantizeLinear)", in))
			}
		}
	}
	return false, nil
}

func (lw *lowering) dequantizeLinear(n *model.Node) error {
	id, ok := lw.ids[n.Inputs[0]]
	if _, isInt := lw.ints[id]; !ok || !isInt {
		return lw.unsupported(n, "input must be an integer tensor")
	}
	scale := lw.constAt(n, 1)
	axis, err := lw.quantAxis(n, lw.p.Values[id].Shape, scale)
	if err != nil {
		return err
	}
	lw.qviews[n.Outputs[0]] = &qview{id: id, scale: scale, zero: lw.constAt(n, 2), axis: axis}
	return nil
}

// dequant converts a quantized view to fixed point at the activation scale, once:
// round((q - zero) * scale * 2^Scale), exact since a float32 scale times a power of
// two is a dyadic rational.
func (lw *lowering) dequant(name string, q *qview) (int, error) {
	if id, ok := lw.ids[name]; ok {
		return id, nil
	}
	p := lw.p
	v := p.Values[q.id]
	spec := requantSpec{name: "dequantize " + name, op: "DequantizeLinear", scale: p.Scale,
		ch: channels(v.Shape, q.axis, q.scale.Numel())}
	for c, s := range q.scale.Data {
		spec.mults = append(spec.mults, math.Ldexp(float64(float32(s)), p.Scale))
		spec.pre = append(spec.pre, -zeroAt(q.zero, c))
	}
	id, err := lw.requant(q.id, spec)
	if err != nil {
		return 0, err
	}
	if b := p.Values[id].Bound; b >= math.Ldexp(1, p.Bits-1) {
		return 0, fmt.Errorf("%w: %s: dequantized values up to %.4g do not fit %d bits at scale 2^-%d; raise bits",
			ErrOutOfRange, name, math.Ldexp(b, -p.Scale), p.Bits, p.Scale)
	}
	lw.ids[name] = id
	return id, nil
}

func (lw *lowering) quantizeLinear(n *model.Node) error {
	p := lw.p
	scale, zero := lw.constAt(n, 1), lw.constAt(n, 2)
	lo, hi, ok := model.IntRange(model.QuantType(n, zero))
	if !ok {
		return lw.unsupported(n, "output type is not an 8, 16 or 32-bit integer")
	}
	if zero != nil && zero.Numel() > 1 && slices.Min(zero.Data) != slices.Max(zero.Data) {
		return lw.unsupported(n, "per-channel zero points of activations")
	}
	spec := requantSpec{name: n.Name, op: n.Op, zero: zeroAt(zero, 0), lo: lo, hi: hi, saturate: true}
	if q, ok := lw.qviews[n.Inputs[0]]; ok {
		// QuantizeLinear(DequantizeLinear(v)): the identity when nothing changes, else a
		// requantization by s_in / s_out.
		r := lw.ints[q.id]
		if q.perTensor() && scale.Numel() == 1 && float32(q.scale.Data[0]) == float32(scale.Data[0]) &&
			zeroAt(q.zero, 0) == spec.zero && r[0] >= lo && r[1] <= hi {
			lw.ids[n.Outputs[0]] = q.id
			return nil
		}
		if scale.Numel() != 1 {
			return lw.unsupported(n, "per-channel requantization")
		}
		v := p.Values[q.id]
		spec.ch = channels(v.Shape, q.axis, q.scale.Numel())
		for c, s := range q.scale.Data {
			spec.mults = append(spec.mults, model.RequantScale(s, 1, scale.Data[0]))
			spec.pre = append(spec.pre, -zeroAt(q.zero, c))
		}
		return lw.setInt(n, q.id, spec)
	}
	x, _, err := lw.operand(n, 0, p.Scale)
	if err != nil {
		return err
	}
	v := p.Values[x]
	axis, err := lw.quantAxis(n, v.Shape, scale)
	if err != nil {
		return err
	}
	// A fixed-point x stands for x / 2^scale: multiply by 2^-scale / s, in float32.
	spec.ch = channels(v.Shape, axis, scale.Numel())
	for _, s := range scale.Data {
		spec.mults = append(spec.mults, float64(float32(math.Ldexp(1/float64(float32(s)), -v.Scale))))
		spec.pre = append(spec.pre, 0)
	}
	return lw.setInt(n, x, spec)
}

// setInt requantizes x into the node's integer output.
func (lw *lowering) setInt(n *model.Node, x int, spec requantSpec) error {
	id, err := lw.requant(x, spec)
	if err != nil {
		return err
	}
	lw.ids[n.Outputs[0]] = id
	return nil
}

// requantSpec describes a KRequant layer: out = clamp(round((in + pre[c]) * mults[c]) +
// zero, lo, hi), rounding half to even.
type requantSpec struct {
	name, op string
	mults    []float64 // positive, exactly representable as m / 2^k
	pre      []int64
	ch       []int32 // channel per element; nil: one channel
	zero     int64
	lo, hi   int64
	saturate bool // clamp to [lo, hi]; else the result is unclamped
	scale    int  // the output's fixed-point scale (0 for integers)
}

// maxRequantShift bounds the multiplier's precision so that 2^(shift+1) stays far
// inside int64.
const maxRequantShift = 58

func (lw *lowering) requant(x int, s requantSpec) (int, error) {
	p := lw.p
	v := p.Values[x]
	ms, ks := make([]int64, len(s.mults)), make([]int, len(s.mults))
	k := 0
	for c, f := range s.mults {
		m, kc, err := model.Dyadic(f)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", model.ErrInvalidModel, s.name, err)
		}
		ms[c], ks[c], k = m, kc, max(k, kc)
	}
	if k > maxRequantShift {
		return 0, fmt.Errorf("%w: %s: multiplier %g needs %d fractional bits, over %d", ErrOutOfRange, s.name, slices.Min(s.mults), k, maxRequantShift)
	}
	l := &Layer{Name: s.name, Op: s.op, Kind: KRequant, In: []int{x}, Shift: k, Zero: s.zero, IA: s.ch}
	tb := 0.0
	for c := range ms {
		mult := math.Ldexp(float64(ms[c]), k-ks[c])
		tb = math.Max(tb, (v.Bound+math.Abs(float64(s.pre[c])))*mult)
		if mult >= MaxBound || tb >= MaxBound {
			return 0, fmt.Errorf("%w: %s: requantized values reach %.3g, over 2^62", ErrOutOfRange, s.name, tb)
		}
		l.Mult = append(l.Mult, ms[c]<<(k-ks[c]))
		l.Off = append(l.Off, s.pre[c]*l.Mult[c])
	}
	qb := math.Floor(math.Ldexp(tb, -k)) + 1 // |round(t / 2^k)|
	vb := qb + math.Abs(float64(s.zero))     // |result| before the clamp
	l.NumBits = bitsFor(qb)
	bound := vb
	if s.saturate {
		l.Bits = bitsFor(math.Max(vb, math.Max(math.Abs(float64(s.lo)), math.Abs(float64(s.hi)))))
		bound = math.Min(vb, math.Max(math.Abs(float64(s.lo)), math.Abs(float64(s.hi))))
	} else {
		l.Bits = bitsFor(vb)
	}
	lim := int64(1) << (l.Bits - 1)
	l.Lo, l.Hi = -lim, lim // sides that cannot bind cost nothing
	if s.saturate && float64(s.lo) > -vb {
		l.Lo = s.lo
	}
	if s.saturate && float64(s.hi) < vb {
		l.Hi = s.hi
	}
	id := lw.layer(l, v.Shape, s.scale, bound)
	if s.scale == 0 {
		r := [2]int64{-int64(vb), int64(vb)}
		if s.saturate {
			r = [2]int64{max(r[0], s.lo), min(r[1], s.hi)}
		}
		lw.ints[id] = r
	}
	return id, nil
}

// intOperand returns operand k of an integer linear node minus its zero point: a
// constant folds the zero point into its data; a runtime integer tensor subtracts it
// (a free linear combination).
func (lw *lowering) intOperand(n *model.Node, name string, zero *model.Tensor, k int) (int, error) {
	p := lw.p
	shift := zero != nil && slices.ContainsFunc(zero.Data, func(z float64) bool { return z != 0 })
	if c, ok := lw.g.Consts[name]; ok {
		t := c
		if shift {
			t = c.Clone()
			ch, err := model.AxisIndex(c.Shape, zero, model.ZeroPointAxis(n.Op, k, c.Shape))
			if err != nil {
				return 0, fmt.Errorf("%w: %s: zero point: %v", model.ErrInvalidModel, n.Label(), err)
			}
			for i := range t.Data {
				t.Data[i] -= zero.Data[ch(i)]
			}
		}
		return lw.param(name+"-zero", t, 0)
	}
	id, ok := lw.ids[name]
	if _, isInt := lw.ints[id]; !ok || !isInt {
		return 0, lw.unsupported(n, fmt.Sprintf("operand %q must be an integer tensor", name))
	}
	if !shift {
		return id, nil
	}
	v := p.Values[id]
	axis := model.ZeroPointAxis(n.Op, k, v.Shape)
	ch, err := model.AxisIndex(v.Shape, zero, axis)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: zero point: %v", model.ErrInvalidModel, n.Label(), err)
	}
	zid, err := lw.newParam(n.Name+"."+name+".zero", zero, 0, true)
	if err != nil {
		return 0, err
	}
	l := &Layer{Name: n.Name, Op: "SubZeroPoint", Kind: KAdd, In: []int{id, zid}, MA: 1, MB: -1}
	for i := range numel(v.Shape) {
		l.IA = append(l.IA, int32(i))
		l.IB = append(l.IB, int32(ch(i)))
	}
	r := lw.ints[id]
	zb := slices.Max(zero.Data)
	out := lw.layer(l, v.Shape, 0, v.Bound+math.Max(zb, -slices.Min(zero.Data)))
	lw.ints[out] = [2]int64{r[0] - int64(zb), r[1] - int64(slices.Min(zero.Data))}
	return out, nil
}

// intLinear appends the exact integer accumulator of a node shaped like shapeOp:
// sum (x - xz)(w - wz) (+ an int32 bias), at scale 0.
func (lw *lowering) intLinear(n *model.Node, shapeOp, xName, wName, biasName string, xz, wz *model.Tensor) (int, error) {
	p := lw.p
	x, err := lw.intOperand(n, xName, xz, 0)
	if err != nil {
		return 0, err
	}
	w, err := lw.intOperand(n, wName, wz, 1)
	if err != nil {
		return 0, err
	}
	if shapeOp == "Conv" && lw.g.Consts[wName] == nil {
		return 0, lw.unsupported(n, "weights must be constant")
	}
	op := n.Op
	if op == "Conv" || op == "Gemm" || op == "MatMul" {
		op += "Integer" // the accumulation of a fused QDQ chain
	}
	l := &Layer{Name: n.Name, Op: op, Kind: KLinear, In: []int{x, w}}
	shape, cols, err := linearTerms(n, shapeOp, l, p.Values[x].Shape, p.Values[w].Shape)
	if err != nil {
		return 0, err
	}
	p.chooseRLC(l, cols)
	if biasName != "" {
		b, ok := lw.g.Consts[biasName]
		if !ok {
			return 0, lw.unsupported(n, "bias must be constant")
		}
		bid, err := lw.param(biasName, b, 0)
		if err != nil {
			return 0, err
		}
		l.In = append(l.In, bid)
		if l.Bias, err = biasIndex(n, shapeOp, b.Shape, shape); err != nil {
			return 0, err
		}
	}
	acc, err := lw.accumulate(n, l, shape, 0)
	if err != nil {
		return 0, err
	}
	b := int64(p.Values[acc].Bound)
	lw.ints[acc] = [2]int64{-b, b}
	return acc, nil
}

// outputAxis is the axis of an integer linear node's output that follows the weight's
// channels: 1 for Conv, the last (columns) for MatMul and Gemm.
func outputAxis(shapeOp string, shape []int) int {
	if shapeOp == "Conv" {
		return 1
	}
	return len(shape) - 1
}

func shapeOpOf(op string) string {
	switch op {
	case "Conv", "ConvInteger", "QLinearConv":
		return "Conv"
	case "Gemm":
		return "Gemm"
	}
	return "MatMul"
}

// qlinear lowers QLinearMatMul, QLinearConv, MatMulInteger and ConvInteger.
func (lw *lowering) qlinear(n *model.Node) error {
	p := lw.p
	in := func(i int) string {
		if i < len(n.Inputs) {
			return n.Inputs[i]
		}
		return ""
	}
	op := shapeOpOf(n.Op)
	if n.Op == "MatMulInteger" || n.Op == "ConvInteger" {
		acc, err := lw.intLinear(n, op, in(0), in(1), "", lw.constAt(n, 2), lw.constAt(n, 3))
		if err != nil {
			return err
		}
		if b := p.Values[acc].Bound; b > math.MaxInt32 {
			return fmt.Errorf("%w: %s: the int32 result may overflow (bound %.3g)", ErrOutOfRange, n.Label(), b)
		}
		lw.ids[n.Outputs[0]] = acc
		return nil
	}
	var consts []*model.Tensor
	for i := range 9 {
		if c := lw.constAt(n, i); c != nil || i == 0 || i == 3 || i == 8 {
			consts = append(consts, c)
		} else {
			return lw.unsupported(n, fmt.Sprintf("input %d (a scale or zero point) must be a constant", i))
		}
	}
	q := model.QLinearInputs(consts)
	lo, hi, err := q.OutputRange(n)
	if err != nil {
		return err
	}
	acc, err := lw.intLinear(n, op, in(0), in(3), in(8), q.XZero, q.WZero)
	if err != nil {
		return err
	}
	shape := p.Values[acc].Shape
	return lw.setInt(n, acc, requantSpec{name: n.Name, op: n.Op, mults: q.Multipliers(), pre: make([]int64, q.WScale.Numel()),
		ch: channels(shape, outputAxis(op, shape), q.WScale.Numel()), zero: int64(q.YZero.Data[0]), lo: lo, hi: hi, saturate: true})
}

// fuseLinear proves a QDQ Conv/Gemm/MatMul chain as integer arithmetic when its
// operands are quantized: it reports false (leaving n to the float lowering) otherwise.
func (lw *lowering) fuseLinear(n *model.Node, c *chain) (bool, error) {
	g := lw.g
	if n.Op == "Gemm" && (n.Attrs.Float("alpha", 1) != 1 || n.Attrs.Float("beta", 1) != 1) {
		return false, nil
	}
	x, ok := lw.qviews[n.Inputs[0]]
	if !ok || !x.perTensor() {
		return false, nil
	}
	// The weight: a dequantized constant, or (MatMul) a quantized view, quantized per
	// tensor or per output channel.
	var wName string
	var wScale, wZero *model.Tensor
	wAxis := -1
	if d, ok := g.Dequantized[n.Inputs[1]]; ok {
		wName, wScale, wZero = n.Inputs[1]+".int", d.Scale, d.Zero
		g.Consts[wName] = d.Int
		if d.Scale.Numel() > 1 {
			wAxis = int(d.Node.Attrs.Int("axis", 1))
			if wAxis < 0 {
				wAxis += len(d.Int.Shape)
			}
		}
	} else if w, ok := lw.qviews[n.Inputs[1]]; ok && n.Op == "MatMul" && w.perTensor() {
		wName, wScale, wZero = "\x00int:"+n.Inputs[1], w.scale, w.zero
		lw.ids[wName] = w.id
	} else {
		return false, nil
	}
	op := shapeOpOf(n.Op)
	if wAxis >= 0 {
		want := map[string]int{"Conv": 0, "MatMul": len(g.Consts[wName].Shape) - 1, "Gemm": 1}[op]
		if op == "Gemm" && n.Attrs.Int("transB", 0) != 0 {
			want = 0
		}
		if wAxis != want {
			return false, nil
		}
	}
	if op == "Gemm" && wZero != nil && wZero.Numel() > 1 && slices.ContainsFunc(wZero.Data, func(z float64) bool { return z != 0 }) {
		return false, nil // Gemm's zero points per channel would need transB-aware indexing
	}
	ys, yz, lo, hi, ok := lw.outQuant(c)
	if !ok {
		return false, nil
	}
	xs := x.scale.Data[0]
	mults := make([]float64, wScale.Numel())
	for i := range mults {
		mults[i] = model.RequantScale(xs, wScale.Data[i], ys)
	}
	// The bias must be int32 at scale x_scale*w_scale with zero point 0.
	biasName := ""
	if len(n.Inputs) > 2 && n.Inputs[2] != "" {
		d, ok := g.Dequantized[n.Inputs[2]]
		if !ok || d.Scale.Numel() != wScale.Numel() || (d.Zero != nil && slices.ContainsFunc(d.Zero.Data, func(z float64) bool { return z != 0 })) {
			return false, nil
		}
		for i, s := range d.Scale.Data {
			want := float64(float32(float32(xs) * float32(wScale.Data[i])))
			if math.Abs(s-want) > 1e-6*want {
				return false, nil
			}
		}
		biasName = n.Inputs[2] + ".int"
		g.Consts[biasName] = d.Int
	}
	xName := "\x00int:" + n.Inputs[0]
	lw.ids[xName] = x.id
	acc, err := lw.intLinear(n, op, xName, wName, biasName, x.zero, wZero)
	if err != nil {
		return true, err
	}
	shape := lw.p.Values[acc].Shape
	spec := requantSpec{name: n.Name, op: "QLinear" + n.Op, mults: mults, pre: make([]int64, len(mults)),
		ch: channels(shape, outputAxis(op, shape), len(mults)), zero: yz, lo: lo, hi: hi, saturate: true}
	return true, lw.finishChain(c, acc, spec)
}

// outQuant returns the scale, zero point and integer range of a chain's final
// QuantizeLinear, which must quantize per tensor (ok false otherwise).
func (lw *lowering) outQuant(c *chain) (scale float64, zero, lo, hi int64, ok bool) {
	ys, yz := lw.constAt(c.q, 1), lw.constAt(c.q, 2)
	if ys == nil || ys.Numel() != 1 || (yz != nil && yz.Numel() != 1) {
		return 0, 0, 0, 0, false
	}
	lo, hi, ok = model.IntRange(model.QuantType(c.q, yz))
	return ys.Data[0], zeroAt(yz, 0), lo, hi, ok
}

// finishChain requantizes a chain's integer result into its QuantizeLinear's output,
// folding a Relu between them into the lower saturation bound:
// Q(relu(f)) = clamp(round(f / s) + zero, max(lo, zero), hi).
func (lw *lowering) finishChain(c *chain, x int, spec requantSpec) error {
	if c.relu != nil {
		spec.lo = max(spec.lo, spec.zero)
		spec.op += "+Relu"
		lw.skip[c.relu] = true
	}
	lw.skip[c.q] = true
	return lw.setInt(c.q, x, spec)
}

// fuseAdd proves a QDQ Add of two per-tensor quantized views as integers, like
// QLinearAdd: round((a - za)*sa/sy + (b - zb)*sb/sy) + zy, with the float32 ratios as
// dyadic rationals over a common 2^k, so the sum before rounding is exact.
func (lw *lowering) fuseAdd(n *model.Node, c *chain) (bool, error) {
	p := lw.p
	a, okA := lw.qviews[n.Inputs[0]]
	b, okB := lw.qviews[n.Inputs[1]]
	if !okA || !okB || !a.perTensor() || !b.perTensor() {
		return false, nil
	}
	ys, yz, lo, hi, ok := lw.outQuant(c)
	if !ok {
		return false, nil
	}
	ma, ka, err := model.Dyadic(model.RequantScale(a.scale.Data[0], 1, ys))
	if err != nil {
		return true, fmt.Errorf("%w: %s: %v", model.ErrInvalidModel, n.Label(), err)
	}
	mb, kb, err := model.Dyadic(model.RequantScale(b.scale.Data[0], 1, ys))
	if err != nil {
		return true, fmt.Errorf("%w: %s: %v", model.ErrInvalidModel, n.Label(), err)
	}
	k := max(ka, kb)
	if k > maxRequantShift || ma > 1<<30 || mb > 1<<30 {
		return false, nil
	}
	va, vb := p.Values[a.id], p.Values[b.id]
	shape, err := model.BroadcastShape(va.Shape, vb.Shape)
	if err != nil {
		return true, fmt.Errorf("%s: %w", n.Label(), err)
	}
	l := &Layer{Name: n.Name, Op: "Add", Kind: KAdd, In: []int{a.id, b.id}, MA: ma << (k - ka), MB: mb << (k - kb)}
	for _, j := range model.BroadcastIndex(va.Shape, shape) {
		l.IA = append(l.IA, int32(j))
	}
	for _, j := range model.BroadcastIndex(vb.Shape, shape) {
		l.IB = append(l.IB, int32(j))
	}
	bound := va.Bound*float64(l.MA) + vb.Bound*float64(l.MB)
	if bound >= MaxBound {
		return false, nil
	}
	sum := lw.layer(l, shape, 0, bound)
	lw.ints[sum] = [2]int64{-int64(bound), int64(bound)}
	pre := -(zeroAt(a.zero, 0)*l.MA + zeroAt(b.zero, 0)*l.MB)
	spec := requantSpec{name: n.Name, op: "QLinearAdd", mults: []float64{math.Ldexp(1, -k)}, pre: []int64{pre},
		zero: yz, lo: lo, hi: hi, saturate: true}
	return true, lw.finishChain(c, sum, spec)
}

// propagate applies movement, max pooling and Relu to a per-tensor quantized view's
// integers (they commute with dequantization); it reports whether it did.
func (lw *lowering) propagate(n *model.Node, q *qview) (bool, error) {
	in, out := "\x00int:"+n.Inputs[0], "\x00int:"+n.Outputs[0]
	lw.ids[in] = q.id
	m := *n
	m.Inputs = slices.Clone(n.Inputs)
	m.Inputs[0], m.Outputs = in, []string{out}
	var err error
	switch {
	case n.Op == "Identity" || n.Op == "Dropout":
		lw.qviews[n.Outputs[0]] = q
		return true, nil
	case n.Op == "Relu":
		// relu(s*(v - z)) = s*(max(v, z) - z).
		v := lw.p.Values[q.id]
		z := zeroAt(q.zero, 0)
		r := lw.ints[q.id]
		// The output is max(v, z): its bound covers z too, not only v's.
		bound := math.Max(v.Bound, math.Abs(float64(z)))
		bits := bitsFor(bound)
		lw.ids[out] = lw.layer(&Layer{Name: n.Name, Op: n.Op, Kind: KClamp, In: []int{q.id}, Lo: z, Hi: int64(1) << (bits - 1), Bits: bits},
			v.Shape, 0, bound)
		lw.ints[lw.ids[out]] = [2]int64{max(r[0], z), r[1]}
	case n.Op == "MaxPool" || n.Op == "GlobalMaxPool":
		if len(n.Outputs) > 1 && n.Outputs[1] != "" {
			return false, nil
		}
		err = lw.maxPool(&m)
	case model.IsMovement(n.Op) && n.Op != "Pad" && n.Op != "Concat":
		err = lw.move(&m)
	default:
		return false, nil
	}
	if err != nil {
		return true, err
	}
	id := lw.ids[out]
	if _, ok := lw.ints[id]; !ok {
		lw.ints[id] = lw.ints[q.id]
	}
	lw.qviews[n.Outputs[0]] = &qview{id: id, scale: q.scale, zero: q.zero}
	return true, nil
}

// castInt lowers a Cast of an integer tensor: to a float type it becomes fixed point;
// to an integer type it is the identity. Other Casts are left to the float lowering.
func (lw *lowering) castInt(n *model.Node) (bool, error) {
	id, ok := lw.ids[n.Inputs[0]]
	if _, isInt := lw.ints[id]; !ok || !isInt {
		return false, nil
	}
	if _, _, toInt := model.IntRange(int32(n.Attrs.Int("to", 1))); toInt {
		lw.ids[n.Outputs[0]] = id
		return true, nil
	}
	one := &model.Tensor{Shape: []int{1}, Data: []float64{1}}
	fid, err := lw.dequant(n.Outputs[0], &qview{id: id, scale: one})
	lw.ids[n.Outputs[0]] = fid
	return true, err
}
