package model

import (
	"maps"
	"math"
	"slices"
)

// BoundSoftmaxMasks returns g with the "minus infinity" of attention masks made finite:
// where a Softmax reads, and is the only reader of, Where(cond, x, c) or Add(x, c) (or
// Add(c, x)) with c a constant, every value of c below -limit becomes -limit.
// Exporters write such masks as -1e4, -1e9 or float32's lowest value, which no
// fixed-point scale represents; Softmax gives the masked positions
// exp(-limit - max) / sum, zero at any precision once limit exceeds the row's range
// by a few units, exactly as for the original constant. The returned graph shares g's
// other tensors; g is not modified.
func BoundSoftmaxMasks(g *Graph, limit float64) *Graph {
	uses := map[string]int{}
	producer := map[string]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	for _, o := range g.Outputs {
		uses[o.Name]++
	}
	var out *Graph
	for _, n := range g.Nodes {
		if n.Op != "Softmax" || len(n.Inputs) == 0 || uses[n.Inputs[0]] != 1 {
			continue
		}
		p := producer[n.Inputs[0]]
		if p == nil {
			continue
		}
		var slots []int
		switch p.Op {
		case "Where":
			slots = []int{2}
		case "Add":
			slots = []int{0, 1}
		}
		for _, i := range slots {
			if i >= len(p.Inputs) {
				continue
			}
			c := g.Consts[p.Inputs[i]]
			if c == nil || !slices.ContainsFunc(c.Data, func(v float64) bool { return v < -limit }) {
				continue
			}
			if out == nil {
				cp := *g
				cp.Consts = maps.Clone(g.Consts)
				cp.Nodes = slices.Clone(g.Nodes)
				out = &cp
			}
			bounded := c.Clone()
			for k, v := range bounded.Data {
				bounded.Data[k] = math.Max(v, -limit)
			}
			name := p.Inputs[i] + "/bounded_mask"
			out.Consts[name] = bounded
			np := *p
			np.Inputs = slices.Clone(p.Inputs)
			np.Inputs[i] = name
			out.Nodes[slices.Index(out.Nodes, p)] = &np
			p = &np
		}
	}
	if out == nil {
		return g
	}
	return out
}
