package model

import (
	"fmt"
	"maps"
	"slices"
)

// FoldBatchNorm returns g with every inference-mode BatchNormalization that directly
// follows a Conv, or a Gemm over constant weights, folded into that layer's weights and
// bias: W'[c] = W[c]*scale[c], b'[c] = b[c]*scale[c] + shift[c]. A BatchNormalization
// is folded only when the producer's output feeds nothing else and is not a graph
// output, so no other reader sees the changed value; every other BatchNormalization is
// kept (and lowered on its own). The float function is unchanged up to rounding. g is
// not modified: the result shares its tensors but has its own node list and constant
// map.
func FoldBatchNorm(g *Graph) *Graph {
	uses := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	for _, o := range g.Outputs {
		uses[o.Name]++
	}
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = i
		}
	}
	out := *g
	out.Consts = make(map[string]*Tensor, len(g.Consts))
	for k, v := range g.Consts {
		out.Consts[k] = v
	}
	out.Nodes = append([]*Node(nil), g.Nodes...)
	drop := map[int]bool{}
	for i, n := range out.Nodes {
		if n.Op != "BatchNormalization" || len(n.Inputs) < 5 || n.Attrs.Int("training_mode", 0) != 0 {
			continue
		}
		if len(n.Outputs) > 1 && n.Outputs[1] != "" || len(n.Outputs) > 2 && n.Outputs[2] != "" {
			continue
		}
		x := n.Inputs[0]
		pi, ok := producer[x]
		if !ok || uses[x] != 1 || drop[pi] {
			continue
		}
		consts := make([]*Tensor, 5)
		for k := 1; k < 5; k++ {
			consts[k] = out.Consts[n.Inputs[k]]
		}
		scale, shift, err := BatchNormAffine(n, consts)
		if err != nil {
			continue
		}
		folded, err := foldInto(&out, out.Nodes[pi], scale, shift)
		if err != nil || folded == nil {
			continue
		}
		// The producer now writes the BatchNormalization's output directly.
		folded.Outputs = append([]string{n.Outputs[0]}, folded.Outputs[1:]...)
		out.Nodes[pi] = folded
		drop[i] = true
	}
	if len(drop) == 0 {
		return g
	}
	kept := out.Nodes[:0]
	for i, n := range out.Nodes {
		if !drop[i] {
			kept = append(kept, n)
		}
	}
	out.Nodes = kept
	return &out
}

// foldInto returns a copy of Conv or Gemm node p with the per-output-channel affine map
// (scale, shift) applied to its weights and bias, adding the new constants to g. It
// returns nil when p cannot absorb the map.
func foldInto(g *Graph, p *Node, scale, shift []float64) (*Node, error) {
	c := len(scale)
	if len(p.Inputs) < 2 {
		return nil, nil
	}
	w, ok := g.Consts[p.Inputs[1]]
	if !ok {
		return nil, nil
	}
	var bias *Tensor
	if len(p.Inputs) > 2 && p.Inputs[2] != "" {
		if bias, ok = g.Consts[p.Inputs[2]]; !ok {
			return nil, nil
		}
	}
	if _, aConst := g.Consts[p.Inputs[0]]; aConst {
		return nil, nil
	}
	nw := w.Clone()
	var nb *Tensor
	attrs := Attrs{}
	for k, v := range p.Attrs {
		attrs[k] = v
	}
	switch p.Op {
	case "Conv":
		if len(w.Shape) < 3 || w.Shape[0] != c {
			return nil, nil
		}
		per := numel(w.Shape[1:])
		for i := range nw.Data {
			nw.Data[i] *= scale[i/per]
		}
		nb = NewTensor(c)
		for m := 0; m < c; m++ {
			b := 0.0
			if bias != nil {
				if numel(bias.Shape) != c {
					return nil, nil
				}
				b = bias.Data[m]
			}
			nb.Data[m] = b*scale[m] + shift[m]
		}
	case "Gemm":
		if len(w.Shape) != 2 {
			return nil, nil
		}
		tb := p.Attrs.Int("transB", 0) != 0
		rows, cols := w.Shape[0], w.Shape[1]
		if (tb && rows != c) || (!tb && cols != c) {
			return nil, nil
		}
		for i := range nw.Data {
			j := i % cols
			if tb {
				j = i / cols
			}
			nw.Data[i] *= scale[j]
		}
		out := g.Shapes[p.Outputs[0]]
		if len(out) != 2 || out[1] != c {
			return nil, nil
		}
		beta := p.Attrs.Float("beta", 1)
		bshape := []int{1, c}
		if bias != nil && !broadcastsTo(bias.Shape, bshape) {
			bshape = out // C varies over rows
		}
		if bias != nil && !broadcastsTo(bias.Shape, bshape) {
			return nil, nil
		}
		nb = NewTensor(bshape...)
		var bi []int
		if bias != nil {
			bi = broadcastIndex(bias.Shape, bshape)
		}
		for i := range nb.Data {
			j := i % c
			b := 0.0
			if bias != nil {
				b = beta * bias.Data[bi[i]]
			}
			nb.Data[i] = b*scale[j] + shift[j]
		}
		attrs["beta"] = Attr{Kind: AttrFloat, Float: 1}
	default:
		return nil, nil
	}
	wName := uniqueConst(g, p.Name+".W+bn")
	g.Consts[wName] = nw
	bName := uniqueConst(g, p.Name+".B+bn")
	g.Consts[bName] = nb
	np := &Node{Name: p.Name, Op: p.Op, Inputs: []string{p.Inputs[0], wName, bName}, Outputs: append([]string(nil), p.Outputs...), Attrs: attrs}
	return np, nil
}

func uniqueConst(g *Graph, name string) string {
	for i := 0; ; i++ {
		n := name
		if i > 0 {
			n = fmt.Sprintf("%s#%d", name, i)
		}
		if _, ok := g.Consts[n]; !ok {
			if _, ok := g.Shapes[n]; !ok {
				return n
			}
		}
	}
}

// ExpandInstanceNorm rewrites every InstanceNormalization into operators the circuit
// lowering already proves: m = GlobalAveragePool(x), d = x - m,
// v = GlobalAveragePool(d*d), y = d / Sqrt(v + epsilon) * scale + B (scale and B per
// channel). The returned graph shares g's tensors; g is not modified.
func ExpandInstanceNorm(g *Graph) *Graph {
	return expandNodes(g, "InstanceNormalization", func(out *Graph, n *Node, name func(string) string) {
		rank := len(g.Shapes[n.Inputs[0]])
		perChannel := func(in, s string) string {
			t := g.Consts[in].Clone()
			t.Shape = append([]int{t.Numel()}, slices.Repeat([]int{1}, rank-2)...)
			out.Consts[name(s)] = t
			return name(s)
		}
		mean := func(in, o string) *Node {
			return &Node{Op: "GlobalAveragePool", Inputs: []string{in}, Outputs: []string{o}, Attrs: Attrs{}}
		}
		normalize(out, n, name, mean, perChannel(n.Inputs[1], "scale"), perChannel(n.Inputs[2], "B"))
	})
}

// expandNodes returns g with every node of op replaced by the nodes expand appends to
// out (name prefixes a name with the node's). The returned graph shares g's tensors
// and has its own constant map; g is not modified.
func expandNodes(g *Graph, op string, expand func(out *Graph, n *Node, name func(string) string)) *Graph {
	if !slices.ContainsFunc(g.Nodes, func(n *Node) bool { return n.Op == op }) {
		return g
	}
	out := *g
	out.Consts = maps.Clone(g.Consts)
	out.Nodes = nil
	for _, n := range g.Nodes {
		if n.Op != op {
			out.Nodes = append(out.Nodes, n)
			continue
		}
		expand(&out, n, func(s string) string { return n.Name + "/" + s })
	}
	return &out
}

// normalize appends y = (x - m) / Sqrt(v + epsilon) * scale + bias for node n (x its
// first input, y its first output), m = mean(x) and v = mean((x - m)^2) over the axes
// that mean(in, out) averages; bias "" adds nothing, scale "" (with bias "")
// multiplies by nothing.
func normalize(out *Graph, n *Node, name func(string) string, mean func(in, out string) *Node, scale, bias string) {
	x, y := n.Inputs[0], n.Outputs[0]
	out.Consts[name("epsilon")] = &Tensor{Shape: []int{1}, Data: []float64{float64(float32(n.Attrs.Float("epsilon", 1e-5)))}}
	steps := []struct {
		op  string
		in  []string
		out string
	}{
		{"mean", []string{x}, "mean"},
		{"Sub", []string{x, name("mean")}, "centered"},
		{"Mul", []string{name("centered"), name("centered")}, "squared"},
		{"mean", []string{name("squared")}, "variance"},
		{"Add", []string{name("variance"), name("epsilon")}, "variance+epsilon"},
		{"Sqrt", []string{name("variance+epsilon")}, "stddev"},
		{"Div", []string{name("centered"), name("stddev")}, "normalized"},
		{"Mul", []string{name("normalized"), scale}, "scaled"},
		{"Add", []string{name("scaled"), bias}, ""},
	}
	if bias == "" {
		steps = steps[:len(steps)-1]
		steps[len(steps)-1].out = ""
	}
	if scale == "" {
		// No scale (and then no bias): the normalized value is the output.
		steps = steps[:len(steps)-1]
		steps[len(steps)-1].out = ""
	}
	for _, step := range steps {
		o := name(step.out)
		if step.out == "" {
			o = y
		}
		nd := &Node{Op: step.op, Inputs: step.in, Outputs: []string{o}, Attrs: Attrs{}}
		if step.op == "mean" {
			nd = mean(step.in[0], o)
		}
		nd.Name = name(nd.Op + "(" + step.out + ")")
		out.Nodes = append(out.Nodes, nd)
	}
}
