package shard

import (
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
)

// crossing approximates, for a segment starting at a fixed layer whose end advances
// one layer at a time, what its boundaries cost: the values it imports (written
// before its start, read by its layers) and those it exports (written by its layers,
// read after its end), each charged its share of a commitment at its own width plus
// its range checks, and a commitment's fixed cost per group (imports: one per
// producing segment; exports: one). The planner lists candidate ends by it without
// building segments (budgetCuts); the exact estimate confirms them.
type crossing struct {
	p  *quant.Program
	lv *liveness
	n  int
	// Per value id: the constraints one value costs where it crosses (imported or
	// exported alike), and its element count.
	valCost   []float64
	size      []int
	groupCost int64
	// Per layer k: the whole values it reads (not params, not carried by element),
	// the elements it reads of values carried by element, the whole values and the
	// elements last read by it.
	wholeReads [][]int
	elemReads  [][]elemRef
	lastWhole  [][]int
	lastElems  [][]elemAt
	// State for the current start.
	first, end int
	bounds     []int
	stamp      int32
	wholeSeen  []int32
	elemSeen   map[int][]int32
	producers  map[int]bool
	imp, exp   float64
}

type elemRef struct {
	id    int
	elems []int32
}

type elemAt struct {
	id int
	j  int32
}

func newCrossing(p *quant.Program, lv *liveness, sys circuits.System) *crossing {
	n := len(p.Layers)
	x := &crossing{p: p, lv: lv, n: n, valCost: make([]float64, len(p.Values)),
		size: make([]int, len(p.Values)), wholeReads: make([][]int, n), elemReads: make([][]elemRef, n),
		lastWhole: make([][]int, n), lastElems: make([][]elemAt, n), wholeSeen: make([]int32, len(p.Values)),
		elemSeen: map[int][]int32{}}
	// A value of width w costs its share of the packed field elements' permutations
	// and packing, and one range check: an export the commitment gadget's, an import
	// its boundary range check (which the commitment then relies on,
	// circuits.Prechecked). A range check is charged one constraint per 16-bit limb and
	// two more (its queries and its share of the argument: TestPlannerApproximations
	// finds whole segments within a few percent of the exact estimate).
	const perm = 1 << 20
	for id, v := range p.Values {
		x.size[id] = model.Numel(v.Shape)
		w := signedWidth(v.Bound)
		share := float64(bench.CommitmentCost(sys, w, perm)-bench.CommitmentCost(sys, w, 0)) / perm
		check := float64((w+15)/16 + 2)
		x.valCost[id] = share + check
	}
	x.groupCost = bench.CommitmentCost(sys, 16, 0)
	for k, l := range p.Layers {
		for _, id := range l.In {
			if !lv.param[id] && !lv.elem[id] {
				x.wholeReads[k] = append(x.wholeReads[k], id)
			}
		}
	}
	for id, rs := range lv.reads {
		for _, r := range rs {
			x.elemReads[r.layer] = append(x.elemReads[r.layer], elemRef{id, r.elems})
		}
	}
	for id, last := range lv.last {
		if !lv.param[id] && !lv.elem[id] && last >= 0 && last < n {
			x.lastWhole[last] = append(x.lastWhole[last], id)
		}
	}
	for id, lr := range lv.lastRead {
		for j, k := range lr {
			if k >= 0 && int(k) < n {
				x.lastElems[k] = append(x.lastElems[k], elemAt{id, int32(j)})
			}
		}
		if lr != nil {
			x.elemSeen[id] = make([]int32, len(lr))
		}
	}
	return x
}

// start resets x for a segment starting at first after cuts (the segments before it).
func (x *crossing) start(first int, cuts []int) {
	x.first, x.end = first, first
	x.bounds = append(append([]int{0}, cuts...), first)
	x.stamp++
	x.producers = map[int]bool{}
	x.imp, x.exp = 0, 0
}

// imported reports whether a value or element written at layer w (-1: a model input)
// comes into the segment from an earlier one.
func (x *crossing) imported(w int) bool {
	return w < x.first && (w >= 0 || x.first > 0)
}

func (x *crossing) producer(w int) {
	x.producers[segmentOf(x.bounds, w)] = true
}

// advance adds layer x.end to the segment.
func (x *crossing) advance() {
	k := x.end
	l := x.p.Layers[k]
	lv := x.lv
	for _, id := range x.wholeReads[k] {
		if x.wholeSeen[id] != x.stamp && x.imported(lv.def[id]) {
			x.wholeSeen[id] = x.stamp
			x.imp += float64(x.size[id]) * x.valCost[id]
			x.producer(lv.def[id])
		}
	}
	for _, r := range x.elemReads[k] {
		seen, w := x.elemSeen[r.id], lv.writer[r.id]
		for _, j := range r.elems {
			if seen[j] != x.stamp && x.imported(int(w[j])) {
				seen[j] = x.stamp
				x.imp += x.valCost[r.id]
				x.producer(int(w[j]))
			}
		}
	}
	// What layer k writes and a later layer reads is exported; what the segment wrote
	// and layer k read last is no longer.
	if w := lv.writer[l.Out]; w != nil {
		lo, hi := 0, len(w)
		if l.Restricted() {
			lo, hi = l.OutLo, l.OutHi
		}
		for j := lo; j < hi; j++ {
			if int(w[j]) == k && int(lv.lastRead[l.Out][j]) > k {
				x.exp += x.valCost[l.Out]
			}
		}
	} else if !lv.param[l.Out] && lv.def[l.Out] == k && lv.last[l.Out] > k {
		x.exp += float64(x.size[l.Out]) * x.valCost[l.Out]
	}
	for _, id := range x.lastWhole[k] {
		if d := lv.def[id]; d >= x.first && d < k {
			x.exp -= float64(x.size[id]) * x.valCost[id]
		}
	}
	for _, e := range x.lastElems[k] {
		if w := int(lv.writer[e.id][e.j]); w >= x.first && w < k {
			x.exp -= x.valCost[e.id]
		}
	}
	x.end++
}

// cost is the boundary cost of segment [first, end): imports, and exports unless it
// is the last segment.
func (x *crossing) cost() int64 {
	c := x.imp + float64(int64(len(x.producers))*x.groupCost)
	if x.end < x.n {
		c += x.exp + float64(x.groupCost)
	}
	return int64(c)
}
