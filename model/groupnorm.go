package model

import (
	"fmt"
	"math"
	"slices"
)

// GroupNormalization (opsets 18 and 21) and MeanVarianceNormalization: float references
// and expansions into operators the circuit lowering proves.

func init() {
	arities["GroupNormalization"] = arity{3, 3}
	extraOps["GroupNormalization"] = evalGroupNorm
	arities["MeanVarianceNormalization"] = arity{1, 1}
	extraOps["MeanVarianceNormalization"] = evalMVN
	for _, op := range []string{"ReduceL1", "ReduceL2"} {
		arities[op] = arity{1, 2}
		extraOps[op] = evalReduce
		constParams[op] = []int{1}
	}
}

// ExpandReduceNorms rewrites ReduceL1 into Abs then ReduceSum, and ReduceL2 into
// ReduceSumSquare then Sqrt (the reduction keeps the node's axes and keepdims).
func ExpandReduceNorms(g *Graph) *Graph {
	g = expandNodes(g, "ReduceL1", func(out *Graph, n *Node, name func(string) string) {
		sum := &Node{Name: name("ReduceSum"), Op: "ReduceSum", Inputs: append([]string{name("abs")}, n.Inputs[1:]...), Outputs: n.Outputs, Attrs: n.Attrs}
		if axes := n.Attrs.Ints("axes", nil); axes != nil && g.Opset >= 13 {
			// ReduceSum takes its axes as an input from opset 13, ReduceL1 from 18.
			out.Consts[name("axes")] = &Tensor{Shape: []int{len(axes)}, Data: floats(axes)}
			sum.Inputs = []string{name("abs"), name("axes")}
		}
		out.Nodes = append(out.Nodes,
			&Node{Name: name("Abs"), Op: "Abs", Inputs: n.Inputs[:1], Outputs: []string{name("abs")}, Attrs: Attrs{}}, sum)
	})
	return expandNodes(g, "ReduceL2", func(out *Graph, n *Node, name func(string) string) {
		out.Nodes = append(out.Nodes,
			&Node{Name: name("ReduceSumSquare"), Op: "ReduceSumSquare", Inputs: n.Inputs, Outputs: []string{name("sum_square")}, Attrs: n.Attrs},
			&Node{Name: name("Sqrt"), Op: "Sqrt", Inputs: []string{name("sum_square")}, Outputs: n.Outputs, Attrs: Attrs{}})
	})
}

// groupNormParams resolves GroupNormalization for input x: the group count, and scale
// and bias expanded to one value per channel (opset 18 gives them per group, 21 per
// channel).
func groupNormParams(n *Node, x []int, scale, bias *Tensor) (groups int, sc, bi []float64, err error) {
	groups = int(n.Attrs.Int("num_groups", 0))
	if len(x) < 3 || groups < 1 || x[1]%groups != 0 {
		return 0, nil, nil, fmt.Errorf("%s: %d groups for input %v", n.Label(), groups, x)
	}
	c := x[1]
	expand := func(t *Tensor) ([]float64, error) {
		switch t.Numel() {
		case c:
			return t.Data, nil
		case groups:
			out := make([]float64, c)
			for i := range out {
				out[i] = t.Data[i/(c/groups)]
			}
			return out, nil
		}
		return nil, fmt.Errorf("%s: parameter of %d values for %d channels in %d groups", n.Label(), t.Numel(), c, groups)
	}
	if sc, err = expand(scale); err != nil {
		return 0, nil, nil, err
	}
	bi, err = expand(bias)
	return groups, sc, bi, err
}

// normalizeRows normalizes every row of rows elements of x (mean 0, variance 1 with
// eps), then applies y = v*scale(i) + bias(i) for the element's flat index i.
func normalizeRows(x *Tensor, rows int, eps float64, affine func(i int, v float64) float64) *Tensor {
	out := NewTensor(x.Shape...)
	for r := 0; r*rows < len(x.Data); r++ {
		row := x.Data[r*rows : (r+1)*rows]
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(rows)
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(rows)
		for i, v := range row {
			out.Data[r*rows+i] = affine(r*rows+i, (v-mean)/math.Sqrt(vr+eps))
		}
	}
	return out
}

func evalGroupNorm(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	x := in[0]
	groups, sc, bi, err := groupNormParams(n, x.Shape, in[1], in[2])
	if err != nil {
		return nil, err
	}
	spatial := numel(x.Shape[2:])
	eps := float64(float32(n.Attrs.Float("epsilon", 1e-5)))
	return []*Tensor{normalizeRows(x, x.Shape[1]/groups*spatial, eps, func(i int, v float64) float64 {
		c := i / spatial % x.Shape[1]
		return v*sc[c] + bi[c]
	})}, nil
}

// mvnAxes resolves MeanVarianceNormalization's axes (default 0, 2, 3) for rank.
func mvnAxes(n *Node, rank int) ([]int, error) {
	var axes []int
	for _, a := range n.Attrs.Ints("axes", []int64{0, 2, 3}) {
		ax, err := normAxis(n, a, rank)
		if err != nil {
			return nil, err
		}
		axes = append(axes, ax)
	}
	slices.Sort(axes)
	return slices.Compact(axes), nil
}

func evalMVN(n *Node, in []*Tensor, _ int64) ([]*Tensor, error) {
	x := in[0]
	axes, err := mvnAxes(n, len(x.Shape))
	if err != nil {
		return nil, err
	}
	// Move the normalized axes last, normalize rows, move them back.
	var perm []int
	for d := range x.Shape {
		if !slices.Contains(axes, d) {
			perm = append(perm, d)
		}
	}
	perm = append(perm, axes...)
	shape := make([]int, len(perm))
	for i, d := range perm {
		shape[i] = x.Shape[d]
	}
	inStr := strides(x.Shape)
	src := make([]int, numel(shape))
	coord := make([]int, len(shape))
	for i := range src {
		for k, d := range perm {
			src[i] += coord[k] * inStr[d]
		}
		increment(coord, shape)
	}
	moved := NewTensor(shape...)
	for i, j := range src {
		moved.Data[i] = x.Data[j]
	}
	rows := 1
	for _, a := range axes {
		rows *= x.Shape[a]
	}
	// ONNX's function body uses no epsilon: Sqrt(variance) with a 1e-9 guard in Div.
	norm := normalizeRows(moved, rows, 0, func(_ int, v float64) float64 { return v })
	out := NewTensor(x.Shape...)
	for i, j := range src {
		out.Data[j] = norm.Data[i]
	}
	return []*Tensor{out}, nil
}

// ExpandGroupNorm rewrites every GroupNormalization into Reshape to [N, groups, rest],
// the normalization over the last axis (as LayerNormalization), Reshape back, and a
// per-channel scale and bias.
func ExpandGroupNorm(g *Graph) *Graph {
	return expandNodes(g, "GroupNormalization", func(out *Graph, n *Node, name func(string) string) {
		x := g.Shapes[n.Inputs[0]]
		groups, sc, bi, _ := groupNormParams(n, x, g.Consts[n.Inputs[1]], g.Consts[n.Inputs[2]]) // checked at load
		perChannel := func(v []float64, s string) string {
			out.Consts[name(s)] = &Tensor{Shape: append([]int{len(v)}, slices.Repeat([]int{1}, len(x)-2)...), Data: v}
			return name(s)
		}
		shapeOf := func(s string, dims ...int) string {
			out.Consts[name(s)] = &Tensor{Shape: []int{len(dims)}, Data: floats(int64s(dims))}
			return name(s)
		}
		grouped, normalized := name("grouped"), name("grouped_normalized")
		out.Nodes = append(out.Nodes, &Node{Name: name("Reshape(grouped)"), Op: "Reshape", Inputs: []string{n.Inputs[0], shapeOf("grouped_shape", x[0], groups, -1)}, Outputs: []string{grouped}, Attrs: Attrs{}})
		sub := &Node{Name: n.Name, Op: n.Op, Inputs: []string{grouped}, Outputs: []string{normalized}, Attrs: n.Attrs}
		normalize(out, sub, name, lastAxisMean(g.Opset, out, name, 2), "", "")
		back := name("normalized")
		out.Nodes = append(out.Nodes,
			&Node{Name: name("Reshape(normalized)"), Op: "Reshape", Inputs: []string{normalized, shapeOf("shape", x...)}, Outputs: []string{back}, Attrs: Attrs{}},
			&Node{Name: name("Mul(scaled)"), Op: "Mul", Inputs: []string{back, perChannel(sc, "scale")}, Outputs: []string{name("scaled")}, Attrs: Attrs{}},
			&Node{Name: name("Add()"), Op: "Add", Inputs: []string{name("scaled"), perChannel(bi, "B")}, Outputs: []string{n.Outputs[0]}, Attrs: Attrs{}})
	})
}

// lastAxisMean returns a mean(in, out) node builder for normalize: ReduceMean over the
// given axes, keeping them (an attribute before opset 18, an input from 18).
func lastAxisMean(opset int64, out *Graph, name func(string) string, axes ...int) func(in, o string) *Node {
	ax := int64s(axes)
	return func(in, o string) *Node {
		if opset < 18 {
			return &Node{Op: "ReduceMean", Inputs: []string{in}, Outputs: []string{o}, Attrs: Attrs{"axes": {Kind: AttrInts, Ints: ax}}}
		}
		out.Consts[name("axes")] = &Tensor{Shape: []int{len(ax)}, Data: floats(ax)}
		return &Node{Op: "ReduceMean", Inputs: []string{in, name("axes")}, Outputs: []string{o}, Attrs: Attrs{}}
	}
}

// ExpandMVN rewrites every MeanVarianceNormalization into the normalization over its
// axes (epsilon 0, as ONNX's function body).
func ExpandMVN(g *Graph) *Graph {
	return expandNodes(g, "MeanVarianceNormalization", func(out *Graph, n *Node, name func(string) string) {
		axes, _ := mvnAxes(n, len(g.Shapes[n.Inputs[0]])) // checked at load
		sub := &Node{Name: n.Name, Op: n.Op, Inputs: n.Inputs, Outputs: n.Outputs, Attrs: Attrs{"epsilon": {Kind: AttrFloat, Float: 0}}}
		normalize(out, sub, name, lastAxisMean(g.Opset, out, name, axes...), "", "")
	})
}

func int64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
