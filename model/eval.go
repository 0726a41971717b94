package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// ErrUnsupportedOp is wrapped by errors for operators zkml cannot evaluate or prove.
var ErrUnsupportedOp = errors.New("unsupported operator")

type floatOp func(n *Node, in []*Tensor, opset int64) ([]*Tensor, error)

var unaryFloat = map[string]func(x float64, a Attrs) float64{
	"Relu":    func(x float64, _ Attrs) float64 { return math.Max(x, 0) },
	"Sigmoid": func(x float64, _ Attrs) float64 { return 1 / (1 + math.Exp(-x)) },
	"Tanh":    func(x float64, _ Attrs) float64 { return math.Tanh(x) },
	"Exp":     func(x float64, _ Attrs) float64 { return math.Exp(x) },
	"Neg":     func(x float64, _ Attrs) float64 { return -x },
	"Abs":     func(x float64, _ Attrs) float64 { return math.Abs(x) },
	"Erf":     func(x float64, _ Attrs) float64 { return math.Erf(x) },
	"Sqrt":    func(x float64, _ Attrs) float64 { return math.Sqrt(x) },
	"Floor":   func(x float64, _ Attrs) float64 { return math.Floor(x) },
	"Ceil":    func(x float64, _ Attrs) float64 { return math.Ceil(x) },
	"Softplus": func(x float64, _ Attrs) float64 {
		return math.Log1p(math.Exp(x))
	},
	"LeakyRelu": func(x float64, a Attrs) float64 {
		if x < 0 {
			return x * a.Float("alpha", 0.01)
		}
		return x
	},
	"HardSigmoid": func(x float64, a Attrs) float64 {
		return math.Max(0, math.Min(1, a.Float("alpha", 0.2)*x+a.Float("beta", 0.5)))
	},
	"Cast": castFloat,
}

// UnaryFunc is the float reference of an elementwise operator with attributes a (nil
// when op is not one), so that lookup tables tabulate exactly the reference function.
func UnaryFunc(op string, a Attrs) func(float64) float64 {
	f, ok := unaryFloat[op]
	if !ok {
		return nil
	}
	return func(x float64) float64 { return f(x, a) }
}

// castFloat converts x to Cast's target type: integers truncate toward zero, FLOAT and
// FLOAT16 round to their precision (FLOAT16 approximately, through float32), BOOL is x != 0.
func castFloat(x float64, a Attrs) float64 {
	switch onnx.TensorProto_DataType(a.Int("to", int64(onnx.TensorProto_FLOAT))) {
	case onnx.TensorProto_FLOAT, onnx.TensorProto_FLOAT16, onnx.TensorProto_BFLOAT16:
		return float64(float32(x))
	case onnx.TensorProto_INT8, onnx.TensorProto_INT16, onnx.TensorProto_INT32, onnx.TensorProto_INT64,
		onnx.TensorProto_UINT8, onnx.TensorProto_UINT16, onnx.TensorProto_UINT32, onnx.TensorProto_UINT64:
		return math.Trunc(x)
	case onnx.TensorProto_BOOL:
		if x != 0 {
			return 1
		}
		return 0
	}
	return x
}

// MaxNodeWork bounds the multiply-adds (or window taps) of one node, so that loading and
// evaluating a hostile model stays cheap. Models this large are far beyond what can be proved.
// It is a variable only for tools that load such models on purpose to estimate them
// (zkml bench --arch: VGG-16's 224x224 convolutions need up to 1.85e9); a service or
// CLI that proves models leaves it alone.
var MaxNodeWork int64 = 1 << 30

// checkOutput checks an output shape against the tensor limits before it is allocated.
func checkOutput(n *Node, shape []int) error {
	if err := checkShape(shape); err != nil {
		return fmt.Errorf("%s: output: %v", n.Label(), err)
	}
	return nil
}

// checkWork rejects nodes needing more than MaxNodeWork steps: outputs x steps per output.
func checkWork(n *Node, outputs int, perOutput ...int) error {
	w := float64(outputs)
	for _, p := range perOutput {
		w *= float64(p)
	}
	if w > float64(MaxNodeWork) {
		return fmt.Errorf("%w: %s needs about %.3g operations, over the limit of %d", ErrUnsupportedOp, n.Label(), w, MaxNodeWork)
	}
	return nil
}

// arity is how many inputs an operator takes: the first Min must be present, at most Max
// are allowed (Max < 0: any number, all present).
type arity struct{ Min, Max int }

var arities = map[string]arity{
	"Gemm": {2, 3}, "MatMul": {2, 2}, "Conv": {2, 3},
	"MaxPool": {1, 1}, "AveragePool": {1, 1}, "GlobalAveragePool": {1, 1}, "GlobalMaxPool": {1, 1},
	"BatchNormalization": {5, 5}, "Softmax": {1, 1}, "Shape": {1, 1}, "Constant": {0, 0},
	"Identity": {1, 1}, "Dropout": {1, 3}, "Reshape": {2, 2}, "Flatten": {1, 1},
	"Squeeze": {1, 2}, "Unsqueeze": {1, 2}, "Transpose": {1, 1}, "Gather": {2, 2},
	"Pad": {1, 4}, "Concat": {1, -1}, "Slice": {1, 5},
}

func opArity(op string) arity {
	if a, ok := arities[op]; ok {
		return a
	}
	if _, ok := binaryFloat[op]; ok {
		return arity{2, 2}
	}
	return arity{1, 1}
}

// checkArity checks the number and presence of a node's inputs.
func checkArity(n *Node, in []*Tensor) error {
	a := opArity(n.Op)
	if len(in) < a.Min || (a.Max >= 0 && len(in) > a.Max) {
		want := fmt.Sprintf("%d to %d", a.Min, a.Max)
		switch {
		case a.Max < 0:
			want = fmt.Sprintf("at least %d", a.Min)
		case a.Min == a.Max:
			want = fmt.Sprint(a.Min)
		}
		return invalidf("%s: has %d inputs, want %s", n.Label(), len(in), want)
	}
	required := a.Min
	if a.Max < 0 {
		required = len(in)
	}
	for i := 0; i < required; i++ {
		if in[i] == nil {
			return invalidf("%s: required input %d is missing", n.Label(), i)
		}
	}
	return nil
}

var binaryFloat = map[string]func(a, b float64) float64{
	"Add": func(a, b float64) float64 { return a + b },
	"Sub": func(a, b float64) float64 { return a - b },
	"Mul": func(a, b float64) float64 { return a * b },
	"Div": func(a, b float64) float64 { return a / b },
}

func floatOps(op string) (floatOp, bool) {
	if f, ok := unaryFloat[op]; ok {
		return func(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
			out := in[0].Clone()
			for i, v := range out.Data {
				out.Data[i] = f(v, n.Attrs)
			}
			if n.Op == "Cast" {
				out.DType = int32(n.Attrs.Int("to", int64(onnx.TensorProto_FLOAT)))
			}
			return []*Tensor{out}, nil
		}, true
	}
	if f, ok := binaryFloat[op]; ok {
		return func(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
			if len(in) != 2 {
				return nil, fmt.Errorf("%s: want 2 inputs", n.Label())
			}
			shape, err := broadcastShape(in[0].Shape, in[1].Shape)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.Label(), err)
			}
			if err := checkOutput(n, shape); err != nil {
				return nil, err
			}
			ia, ib := broadcastIndex(in[0].Shape, shape), broadcastIndex(in[1].Shape, shape)
			out := NewTensor(shape...)
			for i := range out.Data {
				out.Data[i] = f(in[0].Data[ia[i]], in[1].Data[ib[i]])
			}
			return []*Tensor{out}, nil
		}, true
	}
	if _, ok := movementOps[op]; ok {
		return evalMovement, true
	}
	f, ok := map[string]floatOp{
		"Gemm":               evalGemm,
		"MatMul":             evalMatMul,
		"Conv":               evalConv,
		"MaxPool":            evalPool,
		"AveragePool":        evalPool,
		"GlobalAveragePool":  evalPool,
		"GlobalMaxPool":      evalPool,
		"BatchNormalization": evalBatchNorm,
		"Softmax":            evalSoftmax,
		"Shape":              evalShape,
		"Constant":           evalConstant,
	}[op]
	if !ok {
		f, ok = extraOps[op]
	}
	return f, ok
}

func evalMovement(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	shapes := make([][]int, len(in))
	for i, t := range in {
		if t != nil {
			shapes[i] = t.Shape
		}
	}
	m, err := movementOps[n.Op](n, shapes, in, opset)
	if err != nil {
		return nil, err
	}
	if err := checkOutput(n, m.Shape); err != nil {
		return nil, err
	}
	var src []float64
	for _, k := range m.Data {
		src = append(src, in[k].Data...)
	}
	out := NewTensor(m.Shape...)
	for i, j := range m.Index {
		if j < 0 {
			out.Data[i] = m.Fill
		} else {
			out.Data[i] = src[j]
		}
	}
	return []*Tensor{out}, nil
}

// GemmDims resolves Gemm's transposes: A is MxK, B is KxN.
func GemmDims(n *Node, a, b []int) (m, k, nn int, err error) {
	if len(a) != 2 || len(b) != 2 {
		return 0, 0, 0, fmt.Errorf("%s: Gemm needs 2-D operands, got %v and %v", n.Label(), a, b)
	}
	m, k = a[0], a[1]
	if n.Attrs.Int("transA", 0) != 0 {
		m, k = k, m
	}
	kb, nn := b[0], b[1]
	if n.Attrs.Int("transB", 0) != 0 {
		kb, nn = nn, kb
	}
	if k != kb {
		return 0, 0, 0, fmt.Errorf("%s: inner dimensions differ (%v x %v)", n.Label(), a, b)
	}
	return m, k, nn, nil
}

func evalGemm(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("%s: want at least 2 inputs", n.Label())
	}
	a, b := in[0], in[1]
	m, k, nn, err := GemmDims(n, a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	ta, tb := n.Attrs.Int("transA", 0) != 0, n.Attrs.Int("transB", 0) != 0
	alpha, beta := n.Attrs.Float("alpha", 1), n.Attrs.Float("beta", 1)
	if err := checkOutput(n, []int{m, nn}); err != nil {
		return nil, err
	}
	if err := checkWork(n, m*nn, k); err != nil {
		return nil, err
	}
	out := NewTensor(m, nn)
	var ci []int
	if len(in) > 2 && in[2] != nil {
		if !broadcastsTo(in[2].Shape, out.Shape) {
			return nil, fmt.Errorf("%s: bias shape %v does not broadcast to %v", n.Label(), in[2].Shape, out.Shape)
		}
		ci = broadcastIndex(in[2].Shape, out.Shape)
	}
	for i := 0; i < m; i++ {
		for j := 0; j < nn; j++ {
			s := 0.0
			for x := 0; x < k; x++ {
				av := a.Data[i*k+x]
				if ta {
					av = a.Data[x*m+i]
				}
				bv := b.Data[x*nn+j]
				if tb {
					bv = b.Data[j*k+x]
				}
				s += av * bv
			}
			s *= alpha
			if ci != nil {
				s += beta * in[2].Data[ci[i*nn+j]]
			}
			out.Data[i*nn+j] = s
		}
	}
	return []*Tensor{out}, nil
}

// MatMulPlan is the batched-matmul geometry of MatMul: Batch products of (M x K)(K x N)
// with per-batch offsets into A and B after numpy broadcasting.
type MatMulPlan struct {
	Shape      []int
	M, K, N    int
	AOff, BOff []int
}

// PlanMatMul resolves MatMul's numpy semantics for operand shapes a and b.
func PlanMatMul(n *Node, a, b []int) (*MatMulPlan, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("%s: scalar operands are not supported", n.Label())
	}
	a1, b1 := len(a) == 1, len(b) == 1
	if a1 {
		a = []int{1, a[0]}
	}
	if b1 {
		b = []int{b[0], 1}
	}
	p := &MatMulPlan{M: a[len(a)-2], K: a[len(a)-1], N: b[len(b)-1]}
	if b[len(b)-2] != p.K {
		return nil, fmt.Errorf("%s: inner dimensions differ (%v x %v)", n.Label(), a, b)
	}
	batch, err := broadcastShape(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Label(), err)
	}
	if err := checkOutput(n, append(append([]int{}, batch...), p.M, p.N)); err != nil {
		return nil, err
	}
	ia, ib := broadcastIndex(a[:len(a)-2], batch), broadcastIndex(b[:len(b)-2], batch)
	for i := range ia {
		p.AOff = append(p.AOff, ia[i]*p.M*p.K)
		p.BOff = append(p.BOff, ib[i]*p.K*p.N)
	}
	p.Shape = append([]int{}, batch...)
	if !a1 {
		p.Shape = append(p.Shape, p.M)
	}
	if !b1 {
		p.Shape = append(p.Shape, p.N)
	}
	if err := checkOutput(n, p.Shape); err != nil {
		return nil, err
	}
	if err := checkWork(n, numel(p.Shape), p.K); err != nil {
		return nil, err
	}
	return p, nil
}

func evalMatMul(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("%s: want 2 inputs", n.Label())
	}
	p, err := PlanMatMul(n, in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	out := NewTensor(p.Shape...)
	o := 0
	for bt := range p.AOff {
		for i := 0; i < p.M; i++ {
			for j := 0; j < p.N; j++ {
				s := 0.0
				for x := 0; x < p.K; x++ {
					s += in[0].Data[p.AOff[bt]+i*p.K+x] * in[1].Data[p.BOff[bt]+x*p.N+j]
				}
				out.Data[o] = s
				o++
			}
		}
	}
	return []*Tensor{out}, nil
}

// ConvPlan is Conv's geometry: window, groups, and channel counts.
type ConvPlan struct {
	Window
	M, Group, CPerG int // output channels, groups, input channels per group
}

// PlanConv resolves a Conv node for input shape x and weight shape w.
func PlanConv(n *Node, x, w []int) (*ConvPlan, error) {
	if len(w) != len(x) || len(w) < 3 {
		return nil, fmt.Errorf("%s: weight shape %v does not match input %v", n.Label(), w, x)
	}
	win, err := parseWindow(n, x, w[2:], false)
	if err != nil {
		return nil, err
	}
	g64 := n.Attrs.Int("group", 1)
	if g64 < 1 || g64 > MaxTensorElements {
		return nil, fmt.Errorf("%s: group %d out of range", n.Label(), g64)
	}
	g := int(g64)
	if win.C%g != 0 || w[0]%g != 0 || w[1] != win.C/g {
		return nil, fmt.Errorf("%s: group %d inconsistent with input channels %d and weight %v", n.Label(), g, win.C, w)
	}
	if ks := n.Attrs.Ints("kernel_shape", nil); ks != nil {
		if len(ks) != len(w)-2 {
			return nil, fmt.Errorf("%s: kernel_shape %v does not match weight %v", n.Label(), ks, w)
		}
		for i, k := range ks {
			if k != int64(w[2+i]) {
				return nil, fmt.Errorf("%s: kernel_shape %v does not match weight %v", n.Label(), ks, w)
			}
		}
	}
	p := &ConvPlan{Window: win, M: w[0], Group: g, CPerG: win.C / g}
	if err := checkOutput(n, p.OutShape()); err != nil {
		return nil, err
	}
	if err := checkWork(n, p.N*p.M*p.Outputs(), p.CPerG, p.KernelSize()); err != nil {
		return nil, err
	}
	return p, nil
}

// OutShape is the conv output shape [N, M, Out...].
func (p *ConvPlan) OutShape() []int { return p.Window.OutShape(p.M) }

func evalConv(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	if len(in) < 2 {
		return nil, fmt.Errorf("%s: want at least 2 inputs", n.Label())
	}
	x, w := in[0], in[1]
	p, err := PlanConv(n, x.Shape, w.Shape)
	if err != nil {
		return nil, err
	}
	var bias []float64
	if len(in) > 2 && in[2] != nil {
		if len(in[2].Shape) != 1 || in[2].Shape[0] != p.M {
			return nil, fmt.Errorf("%s: bias shape %v, want [%d]", n.Label(), in[2].Shape, p.M)
		}
		bias = in[2].Data
	}
	out := NewTensor(p.OutShape()...)
	mPerG, ks, sp, outs := p.M/p.Group, p.KernelSize(), p.Spatial(), p.Outputs()
	var ti, tk []int
	o := 0
	for b := 0; b < p.N; b++ {
		for m := 0; m < p.M; m++ {
			g := m / mPerG
			for op := range outs {
				ti, tk, _ = p.Taps(op, ti, tk)
				s := 0.0
				for c := 0; c < p.CPerG; c++ {
					xb := (b*p.C + g*p.CPerG + c) * sp
					wb := (m*p.CPerG + c) * ks
					for t := range ti {
						s += x.Data[xb+ti[t]] * w.Data[wb+tk[t]]
					}
				}
				if bias != nil {
					s += bias[m]
				}
				out.Data[o] = s
				o++
			}
		}
	}
	return []*Tensor{out}, nil
}

// PlanPool resolves a pooling node for input shape x.
func PlanPool(n *Node, x []int) (*Window, error) {
	if len(x) < 3 {
		return nil, fmt.Errorf("%s: input rank %d too small", n.Label(), len(x))
	}
	var kernel []int
	if n.Op == "GlobalAveragePool" || n.Op == "GlobalMaxPool" {
		w, err := parseWindow(&Node{Name: n.Name, Op: n.Op, Attrs: Attrs{}}, x, x[2:], false)
		return &w, err
	}
	for _, k := range n.Attrs.Ints("kernel_shape", nil) {
		kernel = append(kernel, int(k))
	}
	if len(kernel) != len(x)-2 {
		return nil, fmt.Errorf("%s: kernel_shape %v does not match input rank %d", n.Label(), kernel, len(x))
	}
	if n.Op == "MaxPool" && n.Attrs.Int("storage_order", 0) != 0 {
		return nil, fmt.Errorf("%w: %s: storage_order=1 is not supported", ErrUnsupportedOp, n.Label())
	}
	w, err := parseWindow(n, x, kernel, true)
	if err != nil {
		return nil, err
	}
	if err := checkOutput(n, w.OutShape(w.C)); err != nil {
		return nil, err
	}
	if err := checkWork(n, w.N*w.C*w.Outputs(), w.KernelSize()); err != nil {
		return nil, err
	}
	if w.hasEmptyWindow() {
		return nil, fmt.Errorf("%s: some pooling windows lie entirely in the padding", n.Label())
	}
	return &w, nil
}

func evalPool(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	if len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return nil, fmt.Errorf("%w: %s: the Indices output is not supported", ErrUnsupportedOp, n.Label())
	}
	x := in[0]
	w, err := PlanPool(n, x.Shape)
	if err != nil {
		return nil, err
	}
	isMax := n.Op == "MaxPool" || n.Op == "GlobalMaxPool"
	out := NewTensor(w.OutShape(w.C)...)
	sp, outs := w.Spatial(), w.Outputs()
	var ti, tk []int
	o := 0
	for bc := 0; bc < w.N*w.C; bc++ {
		base := bc * sp
		for op := range outs {
			var pad int
			ti, tk, pad = w.Taps(op, ti, tk)
			if isMax {
				m := math.Inf(-1)
				for _, t := range ti {
					m = math.Max(m, x.Data[base+t])
				}
				out.Data[o] = m
			} else {
				s := 0.0
				for _, t := range ti {
					s += x.Data[base+t]
				}
				cnt := len(ti)
				if w.CountIncludePad {
					cnt += pad
				}
				out.Data[o] = s / float64(cnt)
			}
			o++
		}
	}
	return []*Tensor{out}, nil
}

// BatchNormAffine folds BatchNormalization's constants into y = Scale[c]*x + Shift[c].
func BatchNormAffine(n *Node, consts []*Tensor) (scale, shift []float64, err error) {
	if len(consts) < 5 {
		return nil, nil, fmt.Errorf("%s: want 5 inputs", n.Label())
	}
	for i := 1; i < 5; i++ {
		if consts[i] == nil {
			return nil, nil, fmt.Errorf("%s: scale, bias, mean and var must be constants", n.Label())
		}
	}
	gamma, beta, mean, vr := consts[1].Data, consts[2].Data, consts[3].Data, consts[4].Data
	c := len(gamma)
	if len(beta) != c || len(mean) != c || len(vr) != c {
		return nil, nil, fmt.Errorf("%s: parameter lengths differ", n.Label())
	}
	eps := n.Attrs.Float("epsilon", 1e-5)
	scale, shift = make([]float64, c), make([]float64, c)
	for i := range gamma {
		scale[i] = gamma[i] / math.Sqrt(vr[i]+eps)
		shift[i] = beta[i] - mean[i]*scale[i]
	}
	return scale, shift, nil
}

func evalBatchNorm(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	if n.Attrs.Int("training_mode", 0) != 0 {
		return nil, fmt.Errorf("%w: %s: training_mode is not supported", ErrUnsupportedOp, n.Label())
	}
	scale, shift, err := BatchNormAffine(n, in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	if len(x.Shape) < 2 || x.Shape[1] != len(scale) {
		return nil, fmt.Errorf("%s: input %v does not have %d channels", n.Label(), x.Shape, len(scale))
	}
	out := x.Clone()
	inner := numel(x.Shape[2:])
	for i := range out.Data {
		c := (i / inner) % len(scale)
		out.Data[i] = x.Data[i]*scale[c] + shift[c]
	}
	return []*Tensor{out}, nil
}

// SoftmaxGroups returns how Softmax splits its input into independent rows: before opset
// 13 the input is flattened to 2-D at axis; from 13 on it normalizes along axis alone.
// Each row is Len elements with stride Stride; Starts are the row origins.
func SoftmaxGroups(n *Node, shape []int, opset int64) (starts []int, length, stride int, err error) {
	def := int64(-1)
	if opset < 13 {
		def = 1
	}
	axis, err := normAxis(n, n.Attrs.Int("axis", def), len(shape))
	if err != nil {
		return nil, 0, 0, err
	}
	total := numel(shape)
	if opset < 13 {
		length = numel(shape[axis:])
		for s := 0; s < total; s += length {
			starts = append(starts, s)
		}
		return starts, length, 1, nil
	}
	length, stride = shape[axis], numel(shape[axis+1:])
	for o := 0; o < numel(shape[:axis]); o++ {
		for i := 0; i < stride; i++ {
			starts = append(starts, o*length*stride+i)
		}
	}
	return starts, length, stride, nil
}

func evalSoftmax(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	return softmaxRows(n, in, opset, func(x, m, sum float64) float64 { return math.Exp(x-m) / sum })
}

// softmaxRows maps every element x of every Softmax row (SoftmaxGroups) to
// f(x, max, sum), with max the row's maximum and sum = sum of exp(x - max) over it.
// Softmax and LogSoftmax are both this one computation.
func softmaxRows(n *Node, in []*Tensor, opset int64, f func(x, m, sum float64) float64) ([]*Tensor, error) {
	x := in[0]
	starts, length, stride, err := SoftmaxGroups(n, x.Shape, opset)
	if err != nil {
		return nil, err
	}
	out := x.Clone()
	for _, s := range starts {
		m := math.Inf(-1)
		for i := 0; i < length; i++ {
			m = math.Max(m, x.Data[s+i*stride])
		}
		sum := 0.0
		for i := 0; i < length; i++ {
			sum += math.Exp(x.Data[s+i*stride] - m)
		}
		for i := 0; i < length; i++ {
			out.Data[s+i*stride] = f(x.Data[s+i*stride], m, sum)
		}
	}
	return []*Tensor{out}, nil
}

func evalShape(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	s := in[0].Shape
	start, end := int(n.Attrs.Int("start", 0)), int(n.Attrs.Int("end", int64(len(s))))
	if start < 0 {
		start += len(s)
	}
	if end < 0 {
		end += len(s)
	}
	start, end = min(max(start, 0), len(s)), min(max(end, 0), len(s))
	out := NewTensor(max(end-start, 0))
	for i := start; i < end; i++ {
		out.Data[i-start] = float64(s[i])
	}
	return []*Tensor{out}, nil
}

func evalConstant(n *Node, _ []*Tensor, _ int64) ([]*Tensor, error) {
	if a, ok := n.Attrs["value"]; ok && a.Kind == AttrTensor {
		return []*Tensor{a.Tensor.Clone()}, nil
	}
	if a, ok := n.Attrs["value_float"]; ok {
		return []*Tensor{{Shape: []int{}, Data: []float64{a.Float}}}, nil
	}
	if a, ok := n.Attrs["value_floats"]; ok {
		return []*Tensor{{Shape: []int{len(a.Floats)}, Data: append([]float64{}, a.Floats...)}}, nil
	}
	if a, ok := n.Attrs["value_int"]; ok {
		return []*Tensor{{Shape: []int{}, Data: []float64{float64(a.Int)}}}, nil
	}
	if a, ok := n.Attrs["value_ints"]; ok {
		t := NewTensor(len(a.Ints))
		for i, v := range a.Ints {
			t.Data[i] = float64(v)
		}
		return []*Tensor{t}, nil
	}
	return nil, fmt.Errorf("%w: %s: only value, value_float(s) and value_int(s) are supported", ErrUnsupportedOp, n.Label())
}

// evalNode runs the float reference for one node.
func evalNode(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	f, ok := floatOps(n.Op)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not supported", ErrUnsupportedOp, n.Label())
	}
	if err := checkArity(n, in); err != nil {
		return nil, err
	}
	out, err := f(n, in, opset)
	if err != nil {
		if errors.Is(err, ErrUnsupportedOp) || errors.Is(err, ErrInvalidModel) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	for _, t := range out {
		if n.Op == "ConstantOfShape" {
			break // bounded by MaxConstantBytes instead
		}
		if err := checkShape(t.Shape); err != nil {
			return nil, invalidf("%s: output: %v", n.Label(), err)
		}
	}
	if len(out) > len(n.Outputs) {
		out = out[:len(n.Outputs)]
	}
	return out, nil
}

// fold evaluates nodes whose inputs are all constant (and Shape nodes, whose output
// depends only on static shapes), removes them from the graph, and records the static
// shape of every remaining value by evaluating once on zero inputs.
func (g *Graph) fold() error {
	vals := map[string]*Tensor{}
	for _, in := range g.Inputs {
		vals[in.Name] = NewTensor(in.Shape...)
	}
	var kept []*Node
	for _, n := range g.Nodes {
		in := make([]*Tensor, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				continue
			}
			if c, ok := g.Consts[name]; ok {
				in[i] = c
				continue
			}
			allConst = false
			in[i] = vals[name]
		}
		if err := checkArity(n, in); err != nil {
			return err
		}
		if n.Op == "PRelu" {
			g.perChannelSlope(n, in)
		}
		if pos, ok := constParams[n.Op]; ok && !allConst {
			for _, i := range pos {
				if i < len(n.Inputs) && n.Inputs[i] != "" && g.Consts[n.Inputs[i]] == nil {
					return invalidf("%s: input %d must be a constant", n.Label(), i)
				}
			}
		}
		if IsMovement(n.Op) && !allConst && !IsRowLookup(n, g.Consts) {
			// Parameters (shape, indices, pads...) must be constants so that shapes are
			// static: plan with the constants alone, runtime inputs as nil.
			shapes, consts := make([][]int, len(in)), make([]*Tensor, len(in))
			for i, name := range n.Inputs {
				if in[i] != nil {
					shapes[i], consts[i] = in[i].Shape, g.Consts[name]
				}
			}
			if _, _, err := PlanMovement(n, shapes, consts, g.Opset); err != nil {
				return err
			}
		}
		out, err := evalNode(n, in, g.Opset)
		if err != nil {
			return err
		}
		if err := g.dropoutMask(n, out); err != nil {
			return err
		}
		if len(out) < len(n.Outputs) {
			for _, o := range n.Outputs[len(out):] {
				if _, isMask := g.Consts[o]; o != "" && !isMask {
					return fmt.Errorf("%w: %s: optional output %q is not supported", ErrUnsupportedOp, n.Label(), o)
				}
			}
		}
		if allConst && n.Op == "DequantizeLinear" {
			g.Dequantized[n.Outputs[0]] = &Dequant{Node: n, Int: in[0], Scale: in[1], Zero: optional(in, 2)}
		}
		if allConst || n.Op == "Shape" || n.Op == "Size" {
			for i, o := range n.Outputs[:len(out)] {
				if o != "" {
					g.Consts[o] = out[i]
					g.Shapes[o] = out[i].Shape
				}
			}
			continue
		}
		for i, o := range n.Outputs[:len(out)] {
			if o != "" {
				vals[o] = out[i]
				g.Shapes[o] = out[i].Shape
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	for i := range g.Outputs {
		s, ok := g.Shapes[g.Outputs[i].Name]
		if !ok {
			if c, isConst := g.Consts[g.Outputs[i].Name]; isConst {
				s = c.Shape
			}
		}
		g.Outputs[i].Shape = s
	}
	return nil
}

// IsRowLookup reports whether n is a Gather of rows of a constant tensor by runtime
// indices (an embedding lookup): not a data movement, since which rows it reads depends
// on the input. consts holds the graph's constants by name.
func IsRowLookup(n *Node, consts map[string]*Tensor) bool {
	return n.Op == "Gather" && len(n.Inputs) == 2 && consts[n.Inputs[0]] != nil && consts[n.Inputs[1]] == nil
}

// perChannelSlope rewrites PRelu's constant slope of shape [C] on an [N, C, ...] input to
// shape [C, 1, ...], the per-channel slope it meant before opset 7 (and what exporters
// still write): opsets 1-6 apply a 1-D slope per channel, while numpy broadcasting (opset
// 7 on) would align it with the last axis. From opset 7 on, the rewrite applies only when
// numpy broadcasting fails, so a model that is valid under the newer rule keeps its
// meaning. in holds the node's inputs; in[1] is updated.
func (g *Graph) perChannelSlope(n *Node, in []*Tensor) {
	if len(in) < 2 || in[0] == nil || in[1] == nil || g.Consts[n.Inputs[1]] == nil {
		return
	}
	x, s := in[0].Shape, in[1]
	if len(x) < 3 || len(s.Shape) != 1 || s.Shape[0] != x[1] || s.Shape[0] == 1 {
		return
	}
	if _, err := broadcastShape(s.Shape, x); err == nil && g.Opset >= 7 {
		return
	}
	shape := make([]int, len(x)-1)
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = s.Shape[0]
	name := n.Inputs[1] + "/per_channel"
	g.Consts[name] = &Tensor{Shape: shape, Data: s.Data, DType: s.DType}
	g.Shapes[name] = shape
	n.Inputs = append([]string{n.Inputs[0], name}, n.Inputs[2:]...)
	in[1] = g.Consts[name]
}

// Eval runs the float64 reference evaluator and returns the graph outputs.
func (g *Graph) Eval(inputs []*Tensor) ([]*Tensor, error) {
	vals, err := g.EvalAll(inputs)
	if err != nil {
		return nil, err
	}
	out := make([]*Tensor, len(g.Outputs))
	for i, o := range g.Outputs {
		out[i] = vals[o.Name]
	}
	return out, nil
}

// EvalAll runs the float64 reference evaluator and returns every value by name.
func (g *Graph) EvalAll(inputs []*Tensor) (map[string]*Tensor, error) {
	if err := g.CheckInputs(inputs); err != nil {
		return nil, err
	}
	vals := map[string]*Tensor{}
	for name, c := range g.Consts {
		vals[name] = c
	}
	for i, in := range g.Inputs {
		vals[in.Name] = inputs[i]
	}
	for _, n := range g.Nodes {
		in := make([]*Tensor, len(n.Inputs))
		for i, name := range n.Inputs {
			if name != "" {
				in[i] = vals[name]
			}
		}
		out, err := evalNode(n, in, g.Opset)
		if err != nil {
			return nil, err
		}
		for i, o := range n.Outputs[:len(out)] {
			vals[o] = out[i]
		}
	}
	return vals, nil
}

// ErrBadInput is wrapped by errors about user-supplied inputs (shape, NaN/Inf).
var ErrBadInput = errors.New("bad input")

// CheckInputs validates the count, element count and finiteness of inputs. An input
// whose element count matches the declared shape is accepted and reshaped.
func (g *Graph) CheckInputs(inputs []*Tensor) error {
	if len(inputs) != len(g.Inputs) {
		return fmt.Errorf("%w: model has %d inputs, got %d", ErrBadInput, len(g.Inputs), len(inputs))
	}
	for i, in := range g.Inputs {
		if inputs[i] == nil || len(inputs[i].Data) != numel(in.Shape) {
			got := 0
			if inputs[i] != nil {
				got = len(inputs[i].Data)
			}
			return fmt.Errorf("%w: input %q has shape %v (%d values), got %d values", ErrBadInput, in.Name, in.Shape, numel(in.Shape), got)
		}
		if err := inputs[i].CheckFinite(); err != nil {
			return fmt.Errorf("%w: input %q: %v", ErrBadInput, in.Name, err)
		}
		inputs[i].Shape = append([]int(nil), in.Shape...)
	}
	return nil
}
