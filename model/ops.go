package model

import (
	"fmt"
	"math"
)

// Float reference for activations, variadic elementwise ops, reductions, ArgMax,
// Hardmax, LogSoftmax, Clip, Split and ConstantOfShape.

func init() {
	for op, f := range map[string]func(x float64, a Attrs) float64{
		"Elu": func(x float64, a Attrs) float64 {
			if x < 0 {
				return a.Float("alpha", 1) * (math.Exp(x) - 1)
			}
			return x
		},
		"Selu": func(x float64, a Attrs) float64 {
			alpha, gamma := a.Float("alpha", 1.67326319217681884765625), a.Float("gamma", 1.05070102214813232421875)
			if x <= 0 {
				return gamma * alpha * (math.Exp(x) - 1)
			}
			return gamma * x
		},
		"Softsign": func(x float64, _ Attrs) float64 { return x / (1 + math.Abs(x)) },
		"Mish": func(x float64, _ Attrs) float64 {
			sp := math.Log1p(math.Exp(x))
			if math.IsInf(sp, 1) {
				sp = x
			}
			return x * math.Tanh(sp)
		},
		"Celu": func(x float64, a Attrs) float64 {
			alpha := a.Float("alpha", 1)
			return math.Max(0, x) + math.Min(0, alpha*(math.Exp(x/alpha)-1))
		},
		"Gelu": func(x float64, a Attrs) float64 {
			if a.String("approximate", "none") == "tanh" {
				return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
			}
			return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
		},
		"ThresholdedRelu": func(x float64, a Attrs) float64 {
			if x > a.Float("alpha", 1) {
				return x
			}
			return 0
		},
		"Shrink": func(x float64, a Attrs) float64 {
			l, b := a.Float("lambd", 0.5), a.Float("bias", 0)
			switch {
			case x < -l:
				return x + b
			case x > l:
				return x - b
			}
			return 0
		},
		"Sign": func(x float64, _ Attrs) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		},
		"Reciprocal": func(x float64, _ Attrs) float64 { return 1 / x },
		"HardSwish": func(x float64, _ Attrs) float64 {
			return x * math.Max(0, math.Min(1, x/6+0.5))
		},
	} {
		unaryFloat[op] = f
	}
	binaryFloat["Pow"] = math.Pow
	binaryFloat["PRelu"] = func(x, slope float64) float64 {
		if x < 0 {
			return slope * x
		}
		return x
	}
	for op, a := range map[string]arity{
		"Max": {1, -1}, "Min": {1, -1}, "Sum": {1, -1}, "Mean": {1, -1},
		"Clip": {1, 3}, "Split": {1, 2}, "Expand": {2, 2}, "ConstantOfShape": {1, 1},
		"ReduceSum": {1, 2}, "ReduceMean": {1, 2}, "ReduceMax": {1, 2}, "ReduceMin": {1, 2},
		"ReduceSumSquare": {1, 2}, "ArgMax": {1, 1}, "ArgMin": {1, 1}, "Hardmax": {1, 1}, "LogSoftmax": {1, 1},
	} {
		arities[op] = a
	}
	movementOps["Expand"] = moveExpand
	movementOps["GatherElements"] = moveGatherElements
	for op, f := range map[string]func(a, b float64) bool{
		"Greater": func(a, b float64) bool { return a > b }, "Less": func(a, b float64) bool { return a < b },
		"Equal": func(a, b float64) bool { return a == b }, "GreaterOrEqual": func(a, b float64) bool { return a >= b },
		"LessOrEqual": func(a, b float64) bool { return a <= b },
	} {
		binaryFloat[op] = func(a, b float64) float64 {
			if f(a, b) {
				return 1
			}
			return 0
		}
	}
	arities["Where"] = arity{3, 3}
	arities["InstanceNormalization"] = arity{3, 3}
	extraOps["InstanceNormalization"] = evalInstanceNorm
	constParams["InstanceNormalization"] = []int{1, 2}
	extraOps["Where"] = evalWhere
	arities["GatherElements"] = arity{2, 2}
	for op, f := range map[string]floatOp{
		"Max": evalVariadic, "Min": evalVariadic, "Sum": evalVariadic, "Mean": evalVariadic,
		"Clip": evalClip, "Split": evalSplit, "ConstantOfShape": evalConstantOfShape,
		"ReduceSum": evalReduce, "ReduceMean": evalReduce, "ReduceMax": evalReduce, "ReduceMin": evalReduce,
		"ReduceSumSquare": evalReduce, "ArgMax": evalArgMax, "ArgMin": evalArgMax, "Hardmax": evalArgMax,
		"LogSoftmax": evalLogSoftmax,
	} {
		extraOps[op] = f
	}
}

// extraOps are node evaluators registered by init functions.
var extraOps = map[string]floatOp{}

// constParams lists input positions that fix output shapes and so must be constants.
var constParams = map[string][]int{
	"ReduceSum": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceSumSquare": {1},
	"Split": {1},
}

// VariadicPlan broadcasts the inputs of Max, Min, Sum or Mean: output shape and, per
// input, the source index of every output element.
func VariadicPlan(n *Node, shapes [][]int) (shape []int, index [][]int, err error) {
	shape, err = broadcastShape(shapes...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", n.Label(), err)
	}
	if err := checkOutput(n, shape); err != nil {
		return nil, nil, err
	}
	if err := checkWork(n, numel(shape), len(shapes)); err != nil {
		return nil, nil, err
	}
	for _, s := range shapes {
		index = append(index, broadcastIndex(s, shape))
	}
	return shape, index, nil
}

func evalVariadic(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	shapes := make([][]int, len(in))
	for i, t := range in {
		shapes[i] = t.Shape
	}
	shape, index, err := VariadicPlan(n, shapes)
	if err != nil {
		return nil, err
	}
	out := NewTensor(shape...)
	for i := range out.Data {
		acc := in[0].Data[index[0][i]]
		for k := 1; k < len(in); k++ {
			v := in[k].Data[index[k][i]]
			switch n.Op {
			case "Max":
				acc = math.Max(acc, v)
			case "Min":
				acc = math.Min(acc, v)
			default:
				acc += v
			}
		}
		if n.Op == "Mean" {
			acc /= float64(len(in))
		}
		out.Data[i] = acc
	}
	return []*Tensor{out}, nil
}

// ClipBounds returns Clip's bounds: attributes before opset 11, optional scalar inputs
// 1 and 2 from then on (consts holds them; nil where absent). A missing bound is ±Inf.
func ClipBounds(n *Node, consts []*Tensor, opset int64) (lo, hi float64, err error) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if opset < 11 {
		return n.Attrs.Float("min", lo), n.Attrs.Float("max", hi), nil
	}
	for i, dst := range []*float64{&lo, &hi} {
		k := i + 1
		if k >= len(n.Inputs) || n.Inputs[k] == "" {
			continue
		}
		if k >= len(consts) || consts[k] == nil {
			return 0, 0, fmt.Errorf("%s: clip bound (input %d) must be a constant", n.Label(), k)
		}
		if len(consts[k].Data) != 1 {
			return 0, 0, fmt.Errorf("%s: clip bound (input %d) has %d values, want a scalar", n.Label(), k, len(consts[k].Data))
		}
		*dst = consts[k].Data[0]
	}
	return lo, hi, nil
}

func evalClip(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	lo, hi, err := ClipBounds(n, in, opset)
	if err != nil {
		return nil, err
	}
	out := in[0].Clone()
	for i, v := range out.Data {
		out.Data[i] = math.Min(math.Max(v, lo), hi)
	}
	return []*Tensor{out}, nil
}

// reduceAxes returns the axes of a Reduce node: the axes attribute before opset
// inputFrom (13 for ReduceSum, 18 for the others), the optional second input from then
// on. all is true when the node reduces over every axis; none when it is the identity
// (noop_with_empty_axes with no axes).
func reduceAxes(n *Node, consts []*Tensor, rank int, opset int64) (axes []bool, err error) {
	inputFrom := int64(18)
	if n.Op == "ReduceSum" {
		inputFrom = 13
	}
	var raw []int64
	given := false
	if opset < inputFrom {
		raw = n.Attrs.Ints("axes", nil)
		given = raw != nil
	} else if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		t, err := constInput(n, consts, 1, "axes")
		if err != nil {
			return nil, err
		}
		if raw, err = intParams(n, t, "axes"); err != nil {
			return nil, err
		}
		given = len(raw) > 0
	}
	axes = make([]bool, rank)
	if !given {
		if opset >= inputFrom && n.Attrs.Int("noop_with_empty_axes", 0) != 0 {
			return axes, nil // identity
		}
		for i := range axes {
			axes[i] = true
		}
		return axes, nil
	}
	for _, a := range raw {
		ax, err := normAxis(n, a, rank)
		if err != nil {
			return nil, err
		}
		axes[ax] = true
	}
	return axes, nil
}

// PlanReduce resolves a Reduce node on an input of shape in: the output shape and, for
// every output element, the input elements it reduces in row-major order.
func PlanReduce(n *Node, in []int, consts []*Tensor, opset int64) (shape []int, groups [][]int, err error) {
	axes, err := reduceAxes(n, consts, len(in), opset)
	if err != nil {
		return nil, nil, err
	}
	keep := n.Attrs.Int("keepdims", 1) != 0
	var full []int // output shape with reduced axes as 1
	for i, d := range in {
		if axes[i] {
			full = append(full, 1)
			if keep {
				shape = append(shape, 1)
			}
			continue
		}
		full = append(full, d)
		shape = append(shape, d)
	}
	if err := checkOutput(n, shape); err != nil {
		return nil, nil, err
	}
	if err := checkWork(n, numel(in), 1); err != nil {
		return nil, nil, err
	}
	groups = make([][]int, numel(full))
	fs := strides(full)
	coord := make([]int, len(in))
	for i := 0; i < numel(in); i++ {
		o := 0
		for d, c := range coord {
			if !axes[d] {
				o += c * fs[d]
			}
		}
		groups[o] = append(groups[o], i)
		increment(coord, in)
	}
	if shape == nil {
		shape = []int{}
	}
	return shape, groups, nil
}

func evalReduce(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	shape, groups, err := PlanReduce(n, in[0].Shape, in, opset)
	if err != nil {
		return nil, err
	}
	x := in[0].Data
	out := NewTensor(shape...)
	for o, g := range groups {
		if len(g) == 0 {
			return nil, fmt.Errorf("%w: %s: reducing an empty tensor", ErrUnsupportedOp, n.Label())
		}
		acc := 0.0
		switch n.Op {
		case "ReduceMax":
			acc = math.Inf(-1)
		case "ReduceMin":
			acc = math.Inf(1)
		}
		for _, i := range g {
			switch n.Op {
			case "ReduceMax":
				acc = math.Max(acc, x[i])
			case "ReduceMin":
				acc = math.Min(acc, x[i])
			case "ReduceSumSquare", "ReduceL2":
				acc += x[i] * x[i]
			case "ReduceL1":
				acc += math.Abs(x[i])
			default:
				acc += x[i]
			}
		}
		switch n.Op {
		case "ReduceMean":
			acc /= float64(len(g))
		case "ReduceL2":
			acc = math.Sqrt(acc)
		}
		out.Data[o] = acc
	}
	return []*Tensor{out}, nil
}

// PlanArgMax resolves ArgMax, ArgMin and Hardmax: the output shape and the rows (input
// indices in axis order) whose extreme element is selected. Hardmax uses Softmax's axis
// rules (flattening before opset 13); its output has the input's shape.
func PlanArgMax(n *Node, in []int, opset int64) (shape []int, rows [][]int, err error) {
	if n.Op == "Hardmax" {
		starts, length, stride, err := SoftmaxGroups(n, in, opset)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range starts {
			row := make([]int, length)
			for i := range row {
				row[i] = s + i*stride
			}
			rows = append(rows, row)
		}
		return in, rows, nil
	}
	if len(in) == 0 {
		return nil, nil, fmt.Errorf("%s: scalar input", n.Label())
	}
	axis, err := normAxis(n, n.Attrs.Int("axis", 0), len(in))
	if err != nil {
		return nil, nil, err
	}
	if in[axis] == 0 {
		return nil, nil, fmt.Errorf("%s: empty axis", n.Label())
	}
	outer, length, inner := numel(in[:axis]), in[axis], numel(in[axis+1:])
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			row := make([]int, length)
			for k := range row {
				row[k] = (o*length+k)*inner + i
			}
			rows = append(rows, row)
		}
	}
	shape = append([]int{}, in[:axis]...)
	if n.Attrs.Int("keepdims", 1) != 0 {
		shape = append(shape, 1)
	}
	shape = append(shape, in[axis+1:]...)
	return shape, rows, nil
}

func evalArgMax(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	shape, rows, err := PlanArgMax(n, in[0].Shape, opset)
	if err != nil {
		return nil, err
	}
	x := in[0].Data
	last := n.Attrs.Int("select_last_index", 0) != 0
	sign := 1.0
	if n.Op == "ArgMin" {
		sign = -1
	}
	out := NewTensor(shape...)
	for r, row := range rows {
		best := 0
		for k := 1; k < len(row); k++ {
			v, b := sign*x[row[k]], sign*x[row[best]]
			if v > b || (last && v == b) {
				best = k
			}
		}
		if n.Op == "Hardmax" {
			out.Data[row[best]] = 1
		} else {
			out.Data[r] = float64(best)
		}
	}
	return []*Tensor{out}, nil
}

func evalLogSoftmax(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	return softmaxRows(n, in, opset, func(x, m, sum float64) float64 { return x - m - math.Log(sum) })
}

// PlanSplit resolves Split into one Movement per output: split sizes from the split
// attribute before opset 13, the optional second input from then on, num_outputs (opset
// 18) or equal parts.
func PlanSplit(n *Node, in []int, consts []*Tensor, opset int64) ([]*Movement, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%s: scalar input", n.Label())
	}
	axis, err := normAxis(n, n.Attrs.Int("axis", 0), len(in))
	if err != nil {
		return nil, err
	}
	outs := len(n.Outputs)
	var sizes []int64
	if opset < 13 {
		sizes = n.Attrs.Ints("split", nil)
	} else if len(n.Inputs) > 1 && n.Inputs[1] != "" {
		t, err := constInput(n, consts, 1, "split")
		if err != nil {
			return nil, err
		}
		if sizes, err = intParams(n, t, "split"); err != nil {
			return nil, err
		}
	}
	dim := in[axis]
	if sizes == nil {
		if k := n.Attrs.Int("num_outputs", 0); k > 0 {
			outs = int(k)
		}
		if outs < 1 {
			return nil, fmt.Errorf("%s: no outputs", n.Label())
		}
		part := (dim + outs - 1) / outs
		if opset < 18 && dim%outs != 0 {
			return nil, fmt.Errorf("%s: axis size %d does not split into %d equal parts", n.Label(), dim, outs)
		}
		for k := 0; k < outs; k++ {
			sizes = append(sizes, int64(min(part, max(0, dim-k*part))))
		}
	}
	total := int64(0)
	for _, s := range sizes {
		if s < 0 {
			return nil, fmt.Errorf("%s: negative split %d", n.Label(), s)
		}
		total += s
	}
	if total != int64(dim) || len(sizes) != len(n.Outputs) {
		return nil, fmt.Errorf("%s: split %v does not match axis size %d and %d outputs", n.Label(), sizes, dim, len(n.Outputs))
	}
	outer, inner := numel(in[:axis]), numel(in[axis+1:])
	var ms []*Movement
	begin := 0
	for _, s := range sizes {
		shape := append([]int{}, in...)
		shape[axis] = int(s)
		idx := make([]int, 0, numel(shape))
		for o := 0; o < outer; o++ {
			for k := 0; k < int(s); k++ {
				base := (o*dim + begin + k) * inner
				for i := 0; i < inner; i++ {
					idx = append(idx, base+i)
				}
			}
		}
		ms = append(ms, &Movement{Shape: shape, Index: idx, Data: []int{0}})
		begin += int(s)
	}
	return ms, nil
}

func evalSplit(n *Node, in []*Tensor, opset int64) ([]*Tensor, error) {
	ms, err := PlanSplit(n, in[0].Shape, in, opset)
	if err != nil {
		return nil, err
	}
	var outs []*Tensor
	for _, m := range ms {
		t := NewTensor(m.Shape...)
		for i, j := range m.Index {
			t.Data[i] = in[0].Data[j]
		}
		outs = append(outs, t)
	}
	return outs, nil
}

// moveExpand broadcasts the input to the constant shape input (numpy rules: the
// result has the broadcast of both shapes).
func moveExpand(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	raw, err := constInts(n, consts, 1, "shape")
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxRank {
		return nil, fmt.Errorf("%s: target rank %d is over the limit of %d", n.Label(), len(raw), MaxRank)
	}
	target := make([]int, len(raw))
	for i, v := range raw {
		if v < 0 || v > MaxTensorElements {
			return nil, fmt.Errorf("%s: bad dimension %d", n.Label(), v)
		}
		target[i] = int(v)
	}
	out, err := broadcastShape(shapes[0], target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Label(), err)
	}
	if err := checkOutput(n, out); err != nil {
		return nil, err
	}
	return &Movement{Shape: out, Index: broadcastIndex(shapes[0], out), Data: []int{0}}, nil
}

func evalConstantOfShape(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	raw, err := intParams(n, in[0], "shape")
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(raw))
	for i, v := range raw {
		if v < 0 || v > MaxConstantBytes {
			return nil, fmt.Errorf("%s: bad dimension %d", n.Label(), v)
		}
		shape[i] = int(v)
	}
	// A weight: bounded by memory (constbudget.go), not by MaxTensorElements.
	if err := checkConstant(n, shape); err != nil {
		return nil, err
	}
	fill := 0.0
	if a, ok := n.Attrs["value"]; ok && a.Kind == AttrTensor {
		if len(a.Tensor.Data) != 1 {
			return nil, fmt.Errorf("%s: value must hold one element", n.Label())
		}
		fill = a.Tensor.Data[0]
	}
	out := NewTensor(shape...)
	for i := range out.Data {
		out.Data[i] = fill
	}
	return []*Tensor{out}, nil
}

// moveGatherElements: out[..., j, ...] = data[..., indices[..., j, ...], ...] along axis,
// with constant indices (negative ones count from the end).
func moveGatherElements(n *Node, shapes [][]int, consts []*Tensor, _ int64) (*Movement, error) {
	in := shapes[0]
	it, axis, indices, err := gatherParams(n, in, consts)
	if err != nil {
		return nil, err
	}
	if len(it.Shape) != len(in) {
		return nil, fmt.Errorf("%s: indices rank %d differs from data rank %d", n.Label(), len(it.Shape), len(in))
	}
	for d := range in {
		if d != axis && it.Shape[d] > in[d] {
			return nil, fmt.Errorf("%s: indices shape %v exceeds data shape %v", n.Label(), it.Shape, in)
		}
	}
	ist, dst := strides(it.Shape), strides(in)
	idx := make([]int, len(indices))
	for i, v := range indices {
		k, err := gatherIndex(n, v, in[axis])
		if err != nil {
			return nil, err
		}
		off := 0
		for d := range in {
			c := (i / ist[d]) % it.Shape[d]
			if d == axis {
				c = k
			}
			off += c * dst[d]
		}
		idx[i] = off
	}
	return &Movement{Shape: append([]int(nil), it.Shape...), Index: idx, Data: []int{0}}, nil
}

// WherePlan broadcasts Where's condition, x and y: the output shape and, per output
// element, the index into each.
func WherePlan(n *Node, c, x, y []int) (shape []int, ic, ix, iy []int, err error) {
	if shape, err = broadcastShape(c, x); err == nil {
		shape, err = broadcastShape(shape, y)
	}
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%s: %w", n.Label(), err)
	}
	if err := checkOutput(n, shape); err != nil {
		return nil, nil, nil, nil, err
	}
	return shape, broadcastIndex(c, shape), broadcastIndex(x, shape), broadcastIndex(y, shape), nil
}

func evalWhere(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	shape, ic, ix, iy, err := WherePlan(n, in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, err
	}
	out := NewTensor(shape...)
	out.DType = in[1].DType
	for i := range out.Data {
		if in[0].Data[ic[i]] != 0 {
			out.Data[i] = in[1].Data[ix[i]]
		} else {
			out.Data[i] = in[2].Data[iy[i]]
		}
	}
	return []*Tensor{out}, nil
}

func evalInstanceNorm(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	x, scale, bias := in[0], in[1], in[2]
	if len(x.Shape) < 3 || scale.Numel() != x.Shape[1] || bias.Numel() != x.Shape[1] {
		return nil, fmt.Errorf("%s: input %v, scale %v and B %v do not match", n.Label(), x.Shape, scale.Shape, bias.Shape)
	}
	eps := float64(float32(n.Attrs.Float("epsilon", 1e-5)))
	inner := numel(x.Shape[2:])
	return []*Tensor{normalizeRows(x, inner, eps, func(i int, v float64) float64 {
		c := i / inner % x.Shape[1]
		return v*scale.Data[c] + bias.Data[c]
	})}, nil
}
