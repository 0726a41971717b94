// Package shard splits a model too large for one circuit into segments, each its own
// circuit and proof, and proves and verifies an inference as a bundle of segment
// proofs.
//
// A plan cuts the lowered program (quant.Program) at layer boundaries. Segment i runs
// layers [First, End) of the whole program. Its boundaries form a DAG, not a chain:
// for every pair of segments (p, c), p < c, such that c reads values p produces (or c
// is the last segment and p produces model outputs), p has one boundary output group
// for c and c one boundary input group for p, holding those values. Model inputs are
// produced by the first segment, which takes them all; model outputs produced before
// the last segment go to it. A value is committed once in its producer per consumer
// and once in each consumer, never in the segments between (a skip connection costs
// the same whatever the number of cuts it spans). The first segment's inputs are the
// model inputs, the last segment's outputs the model outputs. Each segment is a
// program of its own (carrying only the values, params and tables it uses,
// re-indexed) with its own model ID.
//
// Soundness. The two segments of a pair commit to the group's values with the same
// Poseidon2 commitment (quant.Boundary visibility, circuits.TagBoundary): same values,
// same order (increasing value id of the whole program), same packing width (the
// widest static bound among them, the same bounds in both programs), so the
// producer's output commitment for c equals the consumer's input commitment for p
// exactly when both proofs are about the same activations (Poseidon2 binding; packing
// is injective because the commitment gadget range-checks every value to its width).
// The consumer also range-checks each boundary input to its own static bound in a
// range layer of its program, so the bounds the rest of its circuit relies on hold for
// every witness, whatever the commitment. The order, count and width of the committed
// values and the group sizes are fixed by the segment programs, hence by their model
// IDs; the plan ID binds the whole program's model ID, every segment's ID in order and
// the pair table (which group of which segment meets which), so a bundle verifies only
// against the verifier's own plan: segments of another model or another split, or
// reordered, dropped or duplicated segments, are refused.
//
// Visibility: the first segment's inputs and the last segment's outputs have the
// model's visibility settings; params have the model's param visibility in every
// segment, so a model with hashed params publishes one params commitment per segment
// (each over the params that segment uses, in the order of the whole program).
package shard

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// Segment is one part of a sharded program.
type Segment struct {
	Index int `json:"index"`
	// First and End delimit the segment's layers in the whole program: [First, End).
	First int `json:"first_layer"`
	End   int `json:"end_layer"`
	// In and Out are the whole program's value ids of the segment's inputs and
	// outputs, in the segment program's order: the model inputs (first segment) or its
	// input groups one after another; the model outputs (last segment) or its output
	// groups one after another. A value exported to two segments is in Out twice.
	In  []int `json:"in"`
	Out []int `json:"out"`
	// From and To are the segments its input groups come from and its output groups go
	// to, in increasing order (the order of the groups and of their commitments).
	From []int `json:"from,omitempty"`
	To   []int `json:"to,omitempty"`
	// InElems and OutElems, parallel to In and Out, list the flat indices of the
	// elements of the value a boundary tensor carries (increasing), nil for the whole
	// value (see Pair.Elems).
	InElems  [][]int32 `json:"-"`
	OutElems [][]int32 `json:"-"`
	// ID is the segment program's model ID.
	ID      string         `json:"id"`
	Program *quant.Program `json:"-"`
}

// Pair is a boundary group: values produced in segment From and read in segment To
// (or model outputs produced in From, To being the last segment).
type Pair struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Values are the whole program's value ids, increasing.
	Values []int `json:"values"`
	// Elems, parallel to Values, lists the elements (flat indices, increasing) of each
	// value the group carries, nil for the whole value. A value written or read by a
	// layer restricted to an output range (quant.Layer.OutHi: one layer split into
	// parts) is carried by element: only the elements the consumer reads that the
	// producer writes. Both segment programs hold the lists (the producer gathers
	// them into one boundary tensor per value, the consumer scatters that tensor into
	// a full-shaped value whose other elements are never read), so the segment IDs,
	// hence the plan ID, bind them.
	Elems [][]int32 `json:"-"`
	// OutSlot and InSlot are the group's commitment among the public inputs of From
	// (an output group) and of To (an input group).
	OutSlot int `json:"out_slot"`
	InSlot  int `json:"in_slot"`
}

// Plan is a program split into segments.
type Plan struct {
	// ModelID is the whole program's model ID.
	ModelID string `json:"model_id"`
	// ID binds ModelID, every segment's ID in order and the pair table (see PlanID).
	ID       string     `json:"id"`
	Segments []*Segment `json:"segments"`
	// Pairs is the pair table, in increasing (From, To).
	Pairs []*Pair `json:"pairs"`
	// Splits are the layers of the model's program split into parts before it was
	// cut (SplitBudget), in increasing layer order; Program is that split program,
	// whose layer indices First and End refer to (the model's program when there is
	// no split). The model ID is the unsplit program's.
	Splits  []LayerSplit   `json:"splits,omitempty"`
	Program *quant.Program `json:"-"`
}

// LayerSplit is a run of Count layers of the model's program, from Layer (an index
// in the unsplit program), split together into Bands bands of output rows
// (quant.SplitChain: a convolution, its rescale and the pool after it, band by band).
type LayerSplit struct {
	Layer int `json:"layer"`
	Count int `json:"count"`
	Bands int `json:"bands"`
}

// ApplySplits returns p with the runs of layers of splits split (p itself when there
// is none).
func ApplySplits(p *quant.Program, splits []LayerSplit) (*quant.Program, error) {
	q, _, err := applySplits(p, splits)
	return q, err
}

// region is the layers [start, end) of a split program holding the parts of one
// split, and the indices inside it between two bands (the cuts allowed inside).
type region struct {
	start, end int
	cuts       []int
	split      int // index in the splits
}

// applySplits applies splits (increasing, disjoint runs of layers) and locates their
// parts in the split program.
func applySplits(p *quant.Program, splits []LayerSplit) (*quant.Program, []region, error) {
	q := p
	regs := make([]region, len(splits))
	for i := len(splits) - 1; i >= 0; i-- {
		sp := splits[i]
		if i > 0 && splits[i-1].Layer+splits[i-1].Count > sp.Layer {
			return nil, nil, fmt.Errorf("%w: splits not in increasing order of disjoint layers", ErrBadCut)
		}
		if sp.Layer < 0 || sp.Count < 1 || sp.Layer+sp.Count > len(p.Layers) || sp.Bands < 2 {
			return nil, nil, fmt.Errorf("%w: split of layers [%d, %d) into %d bands", ErrBadCut, sp.Layer, sp.Layer+sp.Count, sp.Bands)
		}
		n := len(q.Layers)
		var cuts []int
		var err error
		if q, cuts, err = quant.SplitChain(q, sp.Layer, sp.Count, sp.Bands); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadCut, err)
		}
		regs[i] = region{start: sp.Layer, end: sp.Layer + sp.Count + len(q.Layers) - n, cuts: cuts, split: i}
	}
	shift := 0
	for i := range regs {
		r := &regs[i]
		r.start += shift
		r.end += shift
		for k := range r.cuts {
			r.cuts[k] += shift
		}
		shift += r.end - r.start - splits[i].Count
	}
	return q, regs, nil
}

// Cuts returns the layer index each segment after the first starts at.
func (pl *Plan) Cuts() []int {
	var cuts []int
	for _, s := range pl.Segments[1:] {
		cuts = append(cuts, s.First)
	}
	return cuts
}

// PlanIDTag opens the plan ID's hashed bytes.
const PlanIDTag = "zkml/shard.Plan v2"

// PlanID is the plan ID of a model ID, its segments' IDs (32-byte hex SHA-256
// digests) and the pair table: the SHA-256 of
//
//	PlanIDTag (its bytes), model ID (32 bytes), segment count (32-byte big-endian),
//	every segment ID (32 bytes), pair count (32-byte big-endian), and per pair in
//	increasing (From, To): From, To, OutSlot, InSlot (each 32-byte big-endian)
//
// which is Solidity's abi.encodePacked(PlanIDTag, modelId, n, ids, k, pairs) for
// bytes32 modelId, uint256 n and k, bytes32[] ids and the flat uint256[] pairs
// (PairTable), so that ZKMLBundleVerifier recomputes it. The pair table says, for each
// segment, which segments its input groups come from and its output groups go to, in
// order, and where each group's commitment is among the public inputs.
func PlanID(modelID string, segmentIDs []string, pairs []*Pair) (string, error) {
	h := sha256.New()
	h.Write([]byte(PlanIDTag))
	word := func(v int) {
		var b [32]byte
		binary.BigEndian.PutUint64(b[24:], uint64(v))
		h.Write(b[:])
	}
	id := func(s string) error {
		b, err := hex32(s)
		h.Write(b[:])
		return err
	}
	if err := id(modelID); err != nil {
		return "", err
	}
	word(len(segmentIDs))
	for _, s := range segmentIDs {
		if err := id(s); err != nil {
			return "", err
		}
	}
	word(len(pairs))
	for _, v := range PairTable(pairs) {
		word(v)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PairTable flattens pairs as ZKMLBundleVerifier takes them: From, To, OutSlot,
// InSlot per pair.
func PairTable(pairs []*Pair) []int {
	var out []int
	for _, p := range pairs {
		out = append(out, p.From, p.To, p.OutSlot, p.InSlot)
	}
	return out
}

// planID is pl's plan ID from its segments and pair table.
func (pl *Plan) planID() (string, error) {
	var ids []string
	for _, s := range pl.Segments {
		ids = append(ids, s.ID)
	}
	return PlanID(pl.ModelID, ids, pl.Pairs)
}

// InPairs and OutPairs return segment i's input and output groups, in order.
func (pl *Plan) InPairs(i int) []*Pair {
	var out []*Pair
	for _, p := range pl.Pairs {
		if p.To == i {
			out = append(out, p)
		}
	}
	return out
}

// OutPairs returns segment i's output groups, in order.
func (pl *Plan) OutPairs(i int) []*Pair {
	var out []*Pair
	for _, p := range pl.Pairs {
		if p.From == i {
			out = append(out, p)
		}
	}
	return out
}

// ErrBadCut is wrapped when a cut is not allowed.
var ErrBadCut = errors.New("shard: bad cut")

// liveness records, per value of the whole program, the layer that produces it (-1:
// model input, -2: param) and the last layer that reads it (len(Layers): a model
// output). Values written or read by a restricted layer (a split layer's parts) are
// followed by element: the layer writing each element, the elements each layer
// reads, and the last layer reading each element.
type liveness struct {
	def, last []int
	param     []bool
	elem      []bool
	// writer[id][j] is the layer writing element j of elem value id (-1: a model
	// input; math.MaxInt32: none).
	writer [][]int32
	// reads[id] lists, for elem value id, each layer reading it and the elements it
	// reads (increasing).
	reads [][]elemRead
	// lastRead[id][j] is the last layer reading element j of elem value id (-1: none;
	// len(Layers): a model output).
	lastRead [][]int32
	// own marks private model inputs carried by element: each element belongs to the
	// segment of its first reader (writer holds that layer), which takes it as a
	// private input of its own, not committed (any choice of such elements is some
	// input); later readers import it from there like any written element.
	own []bool
	// readers[id] lists the layers reading value id (not carried by element, not a
	// param), increasing.
	readers [][]int32
}

type elemRead struct {
	layer int
	elems []int32
}

func analyze(p *quant.Program) *liveness {
	lv := &liveness{def: make([]int, len(p.Values)), last: make([]int, len(p.Values)), param: make([]bool, len(p.Values)),
		elem: make([]bool, len(p.Values)), writer: make([][]int32, len(p.Values)), reads: make([][]elemRead, len(p.Values)),
		lastRead: make([][]int32, len(p.Values)), own: make([]bool, len(p.Values))}
	for i := range lv.def {
		lv.def[i], lv.last[i] = math.MaxInt, -1
	}
	for _, id := range p.Inputs {
		lv.def[id] = -1
	}
	for _, par := range p.Params {
		lv.def[par.Value] = -2
		lv.param[par.Value] = true
	}
	lv.readers = make([][]int32, len(p.Values))
	for k, l := range p.Layers {
		for _, id := range l.In {
			lv.last[id] = max(lv.last[id], k)
			if r := lv.readers[id]; len(r) == 0 || r[len(r)-1] != int32(k) {
				lv.readers[id] = append(r, int32(k))
			}
		}
		lv.def[l.Out] = min(lv.def[l.Out], k)
		if l.Restricted() {
			for _, id := range append([]int{l.Out}, l.In...) {
				lv.elem[id] = !lv.param[id]
			}
		}
	}
	for _, id := range p.Outputs {
		lv.last[id] = len(p.Layers)
	}
	size := func(id int) int {
		n := 1
		for _, d := range p.Values[id].Shape {
			n *= d
		}
		return n
	}
	stamp := map[int][]int32{}
	for id, e := range lv.elem {
		if !e {
			continue
		}
		n := size(id)
		w, lr := make([]int32, n), make([]int32, n)
		for j := range w {
			w[j], lr[j] = math.MaxInt32, -1
		}
		if lv.def[id] == -1 {
			for j := range w {
				w[j] = -1
			}
			lv.own[id] = p.InputVis == quant.Private && !slices.Contains(p.Outputs, id)
		}
		lv.writer[id], lv.lastRead[id] = w, lr
		stamp[id] = make([]int32, n)
	}
	for _, id := range p.Outputs {
		if lv.elem[id] {
			for j := range lv.lastRead[id] {
				lv.lastRead[id][j] = int32(len(p.Layers))
			}
		}
	}
	for k, l := range p.Layers {
		if w := lv.writer[l.Out]; w != nil {
			lo, hi := 0, len(w)
			if l.Restricted() {
				lo, hi = l.OutLo, l.OutHi
			}
			for j := lo; j < hi; j++ {
				w[j] = int32(k)
			}
		}
		// The elements layer k reads are stamped k+1; their span per input, scanned
		// afterwards, lists them in increasing order without sorting.
		lo, hi := make([]int, len(l.In)), make([]int, len(l.In))
		for kk := range l.In {
			lo[kk], hi[kk] = math.MaxInt, -1
		}
		p.ElemDepsIn(l, func(kk int) bool { return stamp[l.In[kk]] != nil }, func(kk, j int) {
			id := l.In[kk]
			st := stamp[id]
			if st[j] == int32(k+1) {
				return
			}
			st[j] = int32(k + 1)
			if lv.own[id] && lv.writer[id][j] == -1 {
				lv.writer[id][j] = int32(k) // its first reader
			}
			lv.lastRead[id][j] = int32(k)
			lo[kk], hi[kk] = min(lo[kk], j), max(hi[kk], j)
		})
		span := map[int][2]int{}
		for kk, id := range l.In {
			if hi[kk] < 0 {
				continue
			}
			s, ok := span[id]
			if !ok {
				s = [2]int{lo[kk], hi[kk]}
			}
			span[id] = [2]int{min(s[0], lo[kk]), max(s[1], hi[kk])}
		}
		for _, id := range slices.Sorted(maps.Keys(span)) {
			st, s := stamp[id], span[id]
			var es []int32
			for j := s[0]; j <= s[1]; j++ {
				if st[j] == int32(k+1) {
					es = append(es, int32(j))
				}
			}
			lv.reads[id] = append(lv.reads[id], elemRead{layer: k, elems: es})
		}
	}
	return lv
}

// live lists the values that cross a cut before layer c: not params, not carried by
// element, defined before c, read at or after c (or a model output), in increasing
// id order.
func (lv *liveness) live(c int) []int {
	var ids []int
	for id := range lv.def {
		if !lv.param[id] && !lv.elem[id] && lv.def[id] < c && lv.last[id] >= c {
			ids = append(ids, id)
		}
	}
	return ids
}

// cutAllowed reports why a cut before layer c is refused ("" if it is allowed): a
// cut never carries the unrescaled accumulator of a linear layer (it is as wide as
// the products it sums; the rescale that follows belongs with it), not even one
// element of it.
func cutAllowed(p *quant.Program, lv *liveness, c int) string {
	if c <= 0 || c >= len(p.Layers) {
		return fmt.Sprintf("cut %d outside (0, %d)", c, len(p.Layers))
	}
	for _, id := range lv.live(c) {
		if d := lv.def[id]; d >= 0 && p.Layers[d].Kind == quant.KLinear {
			return fmt.Sprintf("cut %d would carry the accumulator of linear layer %s", c, p.Layers[d].Name)
		}
	}
	for id, w := range lv.writer {
		if w == nil || lv.def[id] < 0 || lv.def[id] >= c {
			continue
		}
		for j, k := range w {
			if k >= 0 && int(k) < c && p.Layers[k].Kind == quant.KLinear && int(lv.lastRead[id][j]) >= c {
				return fmt.Sprintf("cut %d would carry the accumulator of linear layer %s (element %d)", c, p.Layers[k].Name, j)
			}
		}
	}
	return ""
}

// Split cuts p before each layer index of cuts (strictly increasing, each in
// (0, len(p.Layers))).
func Split(p *quant.Program, cuts []int) (*Plan, error) {
	return SplitWith(p, nil, cuts)
}

// SplitWith splits the layers of splits (ApplySplits), then cuts the split program
// before each layer index of cuts (indices of the split program).
func SplitWith(p *quant.Program, splits []LayerSplit, cuts []int) (*Plan, error) {
	modelID, err := prover.ModelID(p)
	if err != nil {
		return nil, err
	}
	if p, err = ApplySplits(p, splits); err != nil {
		return nil, err
	}
	lv := analyze(p)
	bounds := append(append([]int{0}, cuts...), len(p.Layers))
	for i, c := range cuts {
		if i > 0 && c <= cuts[i-1] {
			return nil, fmt.Errorf("%w: cuts %v not strictly increasing", ErrBadCut, cuts)
		}
		if why := cutAllowed(p, lv, c); why != "" {
			return nil, fmt.Errorf("%w: %s", ErrBadCut, why)
		}
	}
	pl := &Plan{ModelID: modelID, Pairs: lv.pairs(p, bounds), Splits: splits, Program: p}
	n := len(bounds) - 1
	for i := range n {
		s, err := segment(p, lv, i, n, bounds[i], bounds[i+1], pl.InPairs(i), pl.OutPairs(i))
		if err != nil {
			return nil, err
		}
		if s.ID, err = prover.ModelID(s.Program); err != nil {
			return nil, err
		}
		pl.Segments = append(pl.Segments, s)
	}
	// Each group's commitment among its segments' public inputs: the input groups'
	// and the output groups' boundary commitments, in the groups' order.
	for i, s := range pl.Segments {
		var in, out []int
		for _, h := range circuits.NewLayout(s.Program).Hashes {
			switch {
			case h.Domain != circuits.TagBoundary:
			case h.Tag == circuits.TagInputs:
				in = append(in, h.Offset)
			default:
				out = append(out, h.Offset)
			}
		}
		ins, outs := pl.InPairs(i), pl.OutPairs(i)
		if len(in) != len(ins) || len(out) != len(outs) {
			return nil, fmt.Errorf("shard: segment %d has %d and %d boundary commitments for %d and %d groups", i, len(in), len(out), len(ins), len(outs))
		}
		for j, pr := range ins {
			pr.InSlot = in[j]
		}
		for j, pr := range outs {
			pr.OutSlot = out[j]
		}
	}
	if err := pl.CheckElems(); err != nil {
		return nil, err
	}
	if pl.ID, err = pl.planID(); err != nil {
		return nil, err
	}
	return pl, nil
}

// segmentOf returns the index of the segment of bounds (segment i runs layers
// [bounds[i], bounds[i+1])) holding layer k; a model input (k = -1) is the first
// segment's, a model output (k = len(Layers)) the last's.
func segmentOf(bounds []int, k int) int {
	n := len(bounds) - 1
	i, _ := slices.BinarySearch(bounds[1:n], k+1)
	return i
}

// pairs computes the pair table of the segments delimited by bounds: for every
// non-param value, its producer (the segment of the layer defining it, the first for
// a model input) and its consumers (the segments of the layers reading it, and the
// last one for a model output), each consumer after the producer getting it in the
// producer's group for it, in increasing value id. A value carried by element goes,
// element by element, from the segment writing it to every later segment reading it
// (the last for a model output); a group carrying every element of such a value
// carries it whole. Slots are left to Split.
func (lv *liveness) pairs(p *quant.Program, bounds []int) []*Pair {
	n := len(bounds) - 1
	groups := map[[2]int][]int{}
	elems := map[[2]int]map[int][]int32{}
	readers := make([][]int, len(p.Values))
	for k, l := range p.Layers {
		c := segmentOf(bounds, k)
		for _, id := range l.In {
			readers[id] = append(readers[id], c)
		}
	}
	for _, id := range p.Outputs {
		readers[id] = append(readers[id], n-1)
	}
	for id := range lv.def {
		if lv.param[id] || lv.def[id] == math.MaxInt {
			continue
		}
		if lv.elem[id] {
			w := lv.writer[id]
			take := func(c int, es []int32) {
				for _, j := range es {
					from := segmentOf(bounds, int(w[j]))
					if from < c {
						key := [2]int{from, c}
						if elems[key] == nil {
							elems[key] = map[int][]int32{}
						}
						elems[key][id] = append(elems[key][id], j)
					}
				}
			}
			for _, r := range lv.reads[id] {
				take(segmentOf(bounds, r.layer), r.elems)
			}
			if slices.Contains(p.Outputs, id) {
				all := make([]int32, len(w))
				for j := range all {
					all[j] = int32(j)
				}
				take(n-1, all)
			}
			continue
		}
		from := segmentOf(bounds, lv.def[id])
		seen := map[int]bool{}
		for _, c := range readers[id] {
			if c > from && !seen[c] {
				seen[c] = true
				groups[[2]int{from, c}] = append(groups[[2]int{from, c}], id)
			}
		}
	}
	return lv.assemble(groups, elems)
}

// segmentPairs returns the pairs of lv.pairs(p, bounds) that segment i imports or
// exports (To or From i), in the same order, looking only at the values its layers
// read and write: what the planner needs to build one candidate segment, without a
// pass over the whole program.
func (lv *liveness) segmentPairs(p *quant.Program, bounds []int, i int) []*Pair {
	n := len(bounds) - 1
	first, end := bounds[i], bounds[i+1]
	groups := map[[2]int][]int{}
	elems := map[[2]int]map[int][]int32{}
	// takeElems adds the elements es of elem value id to the pair key(j) gives (ok
	// false: none).
	var buf []int32
	takeElems := func(id int, es []int32, key func(j int32) ([2]int, bool)) {
		var cur [2]int
		flush := func() {
			if len(buf) > 0 {
				if elems[cur] == nil {
					elems[cur] = map[int][]int32{}
				}
				elems[cur][id] = append(elems[cur][id], buf...)
			}
			buf = buf[:0]
		}
		for _, j := range es {
			if k, ok := key(j); ok {
				if k != cur {
					flush()
					cur = k
				}
				buf = append(buf, j)
			}
		}
		flush()
	}
	// segOf is segmentOf(bounds, k), remembering the last layer asked (elements in a
	// row mostly share their writer).
	lastK, lastSeg := math.MinInt, 0
	segOf := func(k int) int {
		if k != lastK {
			lastK, lastSeg = k, segmentOf(bounds, k)
		}
		return lastSeg
	}
	isOutput := func(id int) bool { return slices.Contains(p.Outputs, id) }
	allElems := func(id int) []int32 {
		all := make([]int32, len(lv.writer[id]))
		for j := range all {
			all[j] = int32(j)
		}
		return all
	}
	// readsIn returns the element reads of elem value id by layers in [lo, hi).
	readsIn := func(id, lo, hi int) []elemRead {
		rs := lv.reads[id]
		a, _ := slices.BinarySearchFunc(rs, lo, func(r elemRead, k int) int { return cmp.Compare(r.layer, k) })
		b, _ := slices.BinarySearchFunc(rs, hi, func(r elemRead, k int) int { return cmp.Compare(r.layer, k) })
		return rs[a:b]
	}
	// Imports: the values the segment's layers read (and, for the last segment, the
	// model outputs), from the segments before it.
	read := map[int]bool{}
	for k := first; k < end; k++ {
		for _, id := range p.Layers[k].In {
			read[id] = true
		}
	}
	if i == n-1 {
		for _, id := range p.Outputs {
			read[id] = true
		}
	}
	for id := range read {
		if lv.param[id] || lv.def[id] == math.MaxInt {
			continue
		}
		if !lv.elem[id] {
			if from := segmentOf(bounds, lv.def[id]); from < i {
				groups[[2]int{from, i}] = append(groups[[2]int{from, i}], id)
			}
			continue
		}
		w := lv.writer[id]
		from := func(j int32) ([2]int, bool) {
			f := segOf(int(w[j]))
			return [2]int{f, i}, f < i
		}
		for _, r := range readsIn(id, first, end) {
			takeElems(id, r.elems, from)
		}
		if i == n-1 && isOutput(id) {
			takeElems(id, allElems(id), from)
		}
	}
	// Exports: the values (or elements) the segment writes (the first segment: the
	// model inputs too; a private input carried by element is its first reader's), to
	// the segments after it that read them.
	written := map[int]bool{}
	for k := first; k < end; k++ {
		written[p.Layers[k].Out] = true
	}
	for id := range read {
		if lv.own[id] {
			written[id] = true
		}
	}
	if i == 0 {
		for _, id := range p.Inputs {
			written[id] = true
		}
	}
	for id := range written {
		if lv.param[id] || lv.def[id] == math.MaxInt {
			continue
		}
		if !lv.elem[id] {
			if segmentOf(bounds, lv.def[id]) != i {
				continue
			}
			seen := map[int]bool{}
			for _, k := range lv.readers[id] {
				if c := segmentOf(bounds, int(k)); c > i && !seen[c] {
					seen[c] = true
					groups[[2]int{i, c}] = append(groups[[2]int{i, c}], id)
				}
			}
			if isOutput(id) && n-1 > i && !seen[n-1] {
				groups[[2]int{i, n - 1}] = append(groups[[2]int{i, n - 1}], id)
			}
			continue
		}
		w := lv.writer[id]
		to := func(c int) func(j int32) ([2]int, bool) {
			return func(j int32) ([2]int, bool) { return [2]int{i, c}, segOf(int(w[j])) == i }
		}
		for _, r := range readsIn(id, end, len(p.Layers)) {
			takeElems(id, r.elems, to(segmentOf(bounds, r.layer)))
		}
		if isOutput(id) && n-1 > i {
			takeElems(id, allElems(id), to(n-1))
		}
	}
	for key, g := range groups {
		slices.Sort(g)
		groups[key] = slices.Compact(g)
	}
	return lv.assemble(groups, elems)
}

// assemble turns the values (groups) and elements (elems) each pair of segments
// carries into pairs, ordered by producer and consumer, each pair's values by id.
func (lv *liveness) assemble(groups map[[2]int][]int, elems map[[2]int]map[int][]int32) []*Pair {
	keys := slices.Collect(maps.Keys(groups))
	for k := range elems {
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	var out []*Pair
	for _, k := range keys {
		pr := &Pair{From: k[0], To: k[1]}
		ids := slices.Concat(groups[k], slices.Collect(maps.Keys(elems[k])))
		slices.Sort(ids)
		byElem := false
		for _, id := range ids {
			es := elems[k][id]
			if es != nil {
				slices.Sort(es)
				if es = slices.Compact(es); len(es) == len(lv.writer[id]) {
					es = nil // every element: the whole value
				}
			}
			byElem = byElem || es != nil
			pr.Values = append(pr.Values, id)
			pr.Elems = append(pr.Elems, es)
		}
		if !byElem {
			pr.Elems = nil
		}
		out = append(out, pr)
	}
	return out
}

// elemsOf returns g's element list of its j-th value (nil: the whole value).
func (g *Pair) elemsOf(j int) []int32 {
	if g.Elems == nil {
		return nil
	}
	return g.Elems[j]
}

// signedWidth is the smallest signed width w with |v| < 2^(w-1) for |v| <= bound.
func signedWidth(bound float64) int {
	w := 1
	for math.Ldexp(1, w-1) <= bound {
		w++
	}
	return w
}

// Names of the layers a segment adds for values carried by element.
const (
	// OpScatter places a segment's boundary inputs of one value (each range-checked
	// first) at their elements of a full-shaped value (quant.KMove, Fill 0 elsewhere:
	// elements never read).
	OpScatter = "BoundaryScatter"
	// OpGather takes the elements of one value a boundary output group carries
	// (quant.KMove).
	OpGather = "BoundaryGather"
)

// segment builds segment i of n, layers [first, end), with its input groups ins and
// output groups outs (in order; the first segment's inputs are the model inputs, the
// last's outputs the model outputs). Its ID is left to the caller (the planner builds
// many candidate segments and hashes none).
func segment(p *quant.Program, lv *liveness, i, n, first, end int, ins, outs []*Pair) (*Segment, error) {
	s := &Segment{Index: i, First: first, End: end}
	var inSizes, outSizes []int
	// owns reports whether element j of value id, written by layer w (-1: a model
	// input no layer reads), is the segment's: written in it, or a model input of the
	// first segment.
	owns := func(w int32) bool { return w >= int32(first) && w < int32(end) || w == -1 && i == 0 }
	// The segment's pieces of private model inputs carried by element (lv.own) lead its
	// inputs; the first segment takes the other model inputs whole.
	pieces, pieceNames := 0, []string{}
	for j, id := range p.Inputs {
		if !lv.own[id] {
			if i == 0 {
				s.In, s.InElems = append(s.In, id), append(s.InElems, nil)
				pieceNames = append(pieceNames, p.InputNames[j])
			}
			continue
		}
		var es []int32
		for e, w := range lv.writer[id] {
			if owns(w) {
				es = append(es, int32(e))
			}
		}
		if len(es) > 0 {
			s.In, s.InElems = append(s.In, id), append(s.InElems, es)
			pieceNames = append(pieceNames, p.InputNames[j])
			pieces++
		}
	}
	if i > 0 {
		for _, g := range ins {
			s.In = append(s.In, g.Values...)
			for j := range g.Values {
				s.InElems = append(s.InElems, g.elemsOf(j))
			}
			s.From = append(s.From, g.From)
			inSizes = append(inSizes, len(g.Values))
		}
	}
	if i == n-1 {
		s.Out = slices.Clone(p.Outputs)
		s.OutElems = make([][]int32, len(s.Out))
	} else {
		for _, g := range outs {
			s.Out = append(s.Out, g.Values...)
			for j := range g.Values {
				s.OutElems = append(s.OutElems, g.elemsOf(j))
			}
			s.To = append(s.To, g.To)
			outSizes = append(outSizes, len(g.Values))
		}
	}
	// One group is written as none (quant.Program.InputGroups): a segment with one
	// group on each side is the program it was before boundary groups.
	if len(inSizes) < 2 {
		inSizes = nil
	}
	if len(outSizes) < 2 {
		outSizes = nil
	}
	q := &quant.Program{Config: p.Config, InputGroups: inSizes, OutputGroups: outSizes}
	newID := map[int]int{}
	add := func(old int) int {
		v := p.Values[old]
		q.Values = append(q.Values, quant.Value{Shape: slices.Clone(v.Shape), Scale: v.Scale, Bound: v.Bound})
		newID[old] = len(q.Values) - 1
		return len(q.Values) - 1
	}
	// addElems adds a boundary tensor of the listed elements of value old.
	addElems := func(old int, es []int32) int {
		v := p.Values[old]
		q.Values = append(q.Values, quant.Value{Shape: []int{len(es)}, Scale: v.Scale, Bound: v.Bound})
		return len(q.Values) - 1
	}
	// imported[old] lists, for a value carried by element, the segment's own pieces of
	// it (model inputs) and its range-checked boundary tensors, with their elements.
	type piece struct {
		id    int
		elems []int32
	}
	imported := map[int][]piece{}
	mine := len(pieceNames) // the model inputs the segment takes (whole or pieces)
	for j, old := range s.In {
		if es := s.InElems[j]; es != nil {
			q.Inputs = append(q.Inputs, addElems(old, es))
			if j < mine {
				imported[old] = append(imported[old], piece{q.Inputs[j], es})
			}
		} else {
			q.Inputs = append(q.Inputs, add(old))
		}
		if j < mine {
			q.InputNames = append(q.InputNames, pieceNames[j])
		} else {
			q.InputNames = append(q.InputNames, fmt.Sprintf("boundary%d/v%d", i, old))
		}
	}
	if i == 0 && pieces == 0 {
		q.InputQuant = p.InputQuant
	} else if p.InputQuant != nil && mine > 0 {
		// Pieces of model inputs are integer tensors of the segment: no quantization.
		q.InputQuant = make([]*quant.QuantIO, len(q.Inputs))
		k := 0
		for j, id := range p.Inputs {
			if k < mine && s.In[k] == id {
				if s.InElems[k] == nil {
					q.InputQuant[k] = p.InputQuant[j]
				}
				k++
			}
		}
		q.InputQuant = q.InputQuant[:mine]
	}
	if len(s.In) > mine {
		q.InputVis = quant.Boundary
		q.PrivateInputs = mine
		// Range-check every boundary input to its static bound, which every bound
		// after it relies on: the layer reads the input and redefines the value.
		for j, old := range s.In {
			if j < mine {
				continue
			}
			v := p.Values[old]
			in := q.Inputs[j]
			var out int
			if es := s.InElems[j]; es != nil {
				out = addElems(old, es)
				imported[old] = append(imported[old], piece{out, es})
			} else {
				out = add(old)
			}
			q.Layers = append(q.Layers, &quant.Layer{Name: fmt.Sprintf("boundary%d/v%d", i, old), Op: "Boundary",
				Kind: quant.KRangeChk, In: []int{in}, Out: out, Bits: signedWidth(v.Bound)})
		}
	}
	{
		// Scatter the elements of each value carried by element into a full-shaped
		// value; the others are never read (checked below) and cost nothing.
		for _, old := range slices.Sorted(maps.Keys(imported)) {
			l := &quant.Layer{Name: fmt.Sprintf("boundary%d/v%d/scatter", i, old), Op: OpScatter, Kind: quant.KMove,
				Index: make([]int32, len(lv.writer[old]))}
			for k := range l.Index {
				l.Index[k] = -1
			}
			at := int32(0)
			for _, pc := range imported[old] {
				l.In = append(l.In, pc.id)
				for _, e := range pc.elems {
					l.Index[e] = at
					at++
				}
			}
			l.Out = add(old)
			q.Layers = append(q.Layers, l)
		}
	}
	// Params the segment's layers read (and params that are outputs), in program order.
	used := map[int]bool{}
	for _, l := range p.Layers[first:end] {
		for _, id := range l.In {
			used[id] = true
		}
	}
	for _, id := range s.Out {
		used[id] = true
	}
	for _, par := range p.Params {
		if used[par.Value] {
			cp := *par
			cp.Value = add(par.Value)
			q.Params = append(q.Params, &cp)
		}
	}
	// Every element a layer of the segment reads of a value carried by element is
	// written in the segment, imported, or (first segment) a model input.
	whole := map[int]bool{}
	for j, old := range s.In {
		whole[old] = whole[old] || s.InElems[j] == nil
	}
	have := func(old int, j int32) bool {
		if owns(lv.writer[old][j]) && !lv.own[old] || whole[old] {
			return true
		}
		for _, pc := range imported[old] {
			if _, ok := slices.BinarySearch(pc.elems, j); ok {
				return true
			}
		}
		return false
	}
	for old, rs := range lv.reads {
		for _, r := range rs {
			if r.layer < first || r.layer >= end {
				continue
			}
			for _, j := range r.elems {
				if !have(old, j) {
					return nil, fmt.Errorf("shard: segment %d: layer %s reads element %d of value %d, which is not available", i, p.Layers[r.layer].Name, j, old)
				}
			}
		}
	}
	tables := map[*quant.Table]bool{}
	for _, l := range p.Layers[first:end] {
		cp := *l
		cp.In = make([]int, len(l.In))
		for j, id := range l.In {
			nid, ok := newID[id]
			if !ok {
				return nil, fmt.Errorf("shard: segment %d: layer %s reads value %d, which is not available", i, l.Name, id)
			}
			cp.In[j] = nid
		}
		if nid, ok := newID[l.Out]; ok && l.Restricted() && lv.elem[l.Out] {
			cp.Out = nid // another part of the value, or its imported elements
		} else {
			cp.Out = add(l.Out)
		}
		q.Layers = append(q.Layers, &cp)
		if l.Table != nil {
			tables[l.Table] = true
		}
	}
	for _, t := range p.Tables {
		if tables[t] {
			q.Tables = append(q.Tables, t)
		}
	}
	names := p.OutputNames
	if i < n-1 {
		names = nil
		for _, g := range outs {
			for _, old := range g.Values {
				names = append(names, fmt.Sprintf("boundary%d/v%d", g.To, old))
			}
		}
	}
	for j, old := range s.Out {
		nid, ok := newID[old]
		if !ok {
			return nil, fmt.Errorf("shard: segment %d: output value %d is not available", i, old)
		}
		if es := s.OutElems[j]; es != nil {
			for _, e := range es {
				if !owns(lv.writer[old][e]) {
					return nil, fmt.Errorf("shard: segment %d: exports element %d of value %d, which it does not write", i, e, old)
				}
			}
			g := addElems(old, es)
			q.Layers = append(q.Layers, &quant.Layer{Name: fmt.Sprintf("boundary%d/v%d/gather", i, old), Op: OpGather,
				Kind: quant.KMove, In: []int{nid}, Out: g, Index: slices.Clone(es)})
			nid = g
		}
		q.Outputs = append(q.Outputs, nid)
		q.OutputNames = append(q.OutputNames, names[j])
	}
	if i == n-1 {
		q.OutputQuant = p.OutputQuant
	} else {
		q.OutputVis = quant.Boundary
	}
	if err := circuits.CheckGroups(q); err != nil {
		return nil, fmt.Errorf("shard: segment %d: %w", i, err)
	}
	s.Program = q
	return s, nil
}

// Imported returns, per input tensor of a segment program, the elements of its value
// it carries (increasing), read from the program's scatter layers (OpScatter); nil for
// a tensor carrying a whole value.
func Imported(q *quant.Program) ([][]int32, error) {
	out := make([][]int32, len(q.Inputs))
	// The range layer of input j redefines it; a scatter reads those, or (the
	// segment's own pieces of model inputs) the inputs themselves.
	checked := map[int]int{}
	for j, id := range q.Inputs[:q.PrivateInputs] {
		checked[id] = j
	}
	if q.InputVis != quant.Boundary {
		for j, id := range q.Inputs {
			checked[id] = j
		}
	}
	for _, l := range q.Layers {
		if l.Op == "Boundary" && l.Kind == quant.KRangeChk && len(l.In) == 1 {
			if j := slices.Index(q.Inputs, l.In[0]); j >= 0 {
				checked[l.Out] = j
			}
		}
	}
	for _, l := range q.Layers {
		if l.Op != OpScatter {
			continue
		}
		var starts []int
		at := 0
		for _, id := range l.In {
			j, ok := checked[id]
			if !ok || out[j] != nil {
				return nil, fmt.Errorf("shard: scatter layer %s reads a value that is not a boundary input", l.Name)
			}
			starts = append(starts, at)
			n := 1
			for _, d := range q.Values[id].Shape {
				n *= d
			}
			out[j] = make([]int32, n)
			for k := range out[j] {
				out[j][k] = -1
			}
			at += n
		}
		for e, src := range l.Index {
			if src < 0 {
				continue
			}
			k, _ := slices.BinarySearch(starts, int(src)+1)
			out[checked[l.In[k-1]]][int(src)-starts[k-1]] = int32(e)
		}
		for k := range l.In {
			es := out[checked[l.In[k]]]
			for m, e := range es {
				if e < 0 || m > 0 && e <= es[m-1] {
					return nil, fmt.Errorf("shard: scatter layer %s: input %d's elements are not a list of increasing indices", l.Name, k)
				}
			}
		}
	}
	return out, nil
}

// Exported returns, per output tensor of a segment program, the elements of the value
// it carries, read from the program's gather layers (OpGather); nil for a whole value.
func Exported(q *quant.Program) [][]int32 {
	out := make([][]int32, len(q.Outputs))
	for _, l := range q.Layers {
		if l.Op == OpGather {
			if j := slices.Index(q.Outputs, l.Out); j >= 0 {
				out[j] = l.Index
			}
		}
	}
	return out
}

// CheckElems checks, for every pair, that the producer's segment program exports
// exactly the elements the consumer's imports, value by value and in the same order,
// from values of the same shape, as the pair lists them: both sides of a pair commit
// the same elements (a segment program importing other elements than its producer
// exports is refused).
func (pl *Plan) CheckElems() error {
	for _, pr := range pl.Pairs {
		src, dst := pl.Segments[pr.From], pl.Segments[pr.To]
		exp := Exported(src.Program)
		imp, err := Imported(dst.Program)
		if err != nil {
			return err
		}
		off := func(s *Segment, pairs []*Pair) int {
			o := 0
			for _, g := range pairs {
				if g == pr {
					return o
				}
				o += len(g.Values)
			}
			return -1
		}
		oo, io := off(src, pl.OutPairs(pr.From)), off(dst, pl.InPairs(pr.To))
		if io >= 0 {
			io += dst.Program.PrivateInputs
		}
		if oo < 0 || io < 0 {
			return fmt.Errorf("shard: pair %d->%d not among its segments' groups", pr.From, pr.To)
		}
		for j, id := range pr.Values {
			want := pr.elemsOf(j)
			e, ie := exp[oo+j], imp[io+j]
			if !slices.Equal(e, want) || !slices.Equal(ie, want) {
				return fmt.Errorf("shard: pair %d->%d: value %d: segment %d exports elements %s, segment %d imports %s",
					pr.From, pr.To, id, pr.From, elemString(e), pr.To, elemString(ie))
			}
			sv := src.Program.Values[src.Program.Outputs[oo+j]]
			dv := dst.Program.Values[dst.Program.Inputs[io+j]]
			if !slices.Equal(sv.Shape, dv.Shape) || sv.Bound != dv.Bound || sv.Scale != dv.Scale {
				return fmt.Errorf("shard: pair %d->%d: value %d has shape %v (bound %g) in segment %d and %v (bound %g) in segment %d",
					pr.From, pr.To, id, sv.Shape, sv.Bound, pr.From, dv.Shape, dv.Bound, pr.To)
			}
		}
	}
	return nil
}

func elemString(es []int32) string {
	if es == nil {
		return "(whole value)"
	}
	if len(es) > 6 {
		return fmt.Sprintf("%v... (%d)", es[:6], len(es))
	}
	return fmt.Sprint(es)
}

// SplitBudget cuts p into segments whose circuits' estimates (bench.EstimateProgram,
// for every system of syss) fit limits: each segment ends at about the furthest
// allowed cut at which its estimate fits, and when no segment can start where the
// previous one ended, an earlier end is tried (budgetCuts). A segment's estimate
// includes its boundary commitments, which depend on where it is cut (a cut where
// few, narrow values cross is cheap): candidate ends are ranked by the layers'
// approximate costs and the values crossing each cut, and confirmed by the exact
// estimate of the segment.
//
// A layer whose own estimate is over the budget is first split into bands of output
// rows (LayerSplit, quant.BandRanges; a linear layer with the element-wise rescale
// after it), enough that a band's estimate is about half the budget, and cuts are
// allowed between bands (not between the parts of one band); a split whose bands
// still fit no segment is split again into twice as many bands. Where no segment can
// start at a layer in no split though every layer fits alone, the run from it is
// split too (growSplits), and so are its identical repeats further on (siblings: the
// other blocks of a ResNet stage fail the same way). A layer that cannot be split
// (quant.Splittable) or no band count fits is an error wrapping bench.ErrOverBudget.
func SplitBudget(p *quant.Program, syss []circuits.System, limits bench.Limits) (*Plan, error) {
	splits, err := overBudget(p, syss, limits)
	if err != nil {
		return nil, err
	}
	// A split whose bands fit no segment is tried again with other band counts: more
	// bands (smaller layers) or fewer (less halo: every band imports the rows under
	// its window, so thin bands import their input several times over).
	first := map[int]int{}
	var q *quant.Program // the split program of splits, when growSplits built it
	var regs []region
	// keep are the cuts of the last attempt's partial plan before the layers the
	// splits changed since (its last segment before them is planned again: its
	// exports depend on the bands after it).
	var keep []int
	// bad are the segments [first, end) of the split program that the search found
	// to fit but that were over the budget in the plan it made (repairs).
	bad := map[[2]int]bool{}
	repairs := 0
	for attempt := 0; ; attempt++ {
		if q == nil {
			if q, regs, err = applySplits(p, splits); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		cuts, failed, at, err := budgetCuts(q, regs, syss, limits, keep, bad)
		tracef("attempt %d: splits %v, %d layers, %v: cuts %v, failed split %d at layer %d, err %v", attempt, splits, len(q.Layers), time.Since(t0).Round(time.Millisecond), cuts, failed, at, err)
		if err == nil {
			pl, err := SplitWith(p, splits, cuts)
			if err != nil {
				return nil, err
			}
			// The search estimates a segment with the layers after it as one segment
			// (or one per band), and kept segments were planned against other splits:
			// the plan's segments can export more groups (one per consumer segment,
			// each at least a sponge permutation) than the search charged. Check
			// every segment; plan again from one over the budget, without its end.
			over, err := overSegment(pl, syss, limits)
			if err != nil || over < 0 {
				return pl, err
			}
			s := pl.Segments[over]
			if repairs++; repairs > maxRepairs {
				return nil, fmt.Errorf("%w: segment %d, layers [%d, %d), of the plan is over the budget after %d repairs", bench.ErrOverBudget, over, s.First, s.End, maxRepairs)
			}
			tracef("  repair %d: segment %d [%d, %d) over the budget in the plan: planning again from layer %d", repairs, over, s.First, s.End, s.First)
			bad[[2]int{s.First, s.End}] = true
			keep, attempt = cuts[:over], attempt-1
			continue
		}
		if attempt >= 8+4*len(splits) || at < 0 {
			return nil, err
		}
		// The layers from change on are planned again.
		change := at
		if failed >= 0 {
			change = min(change, regs[failed].start)
		}
		j := slices.IndexFunc(cuts, func(c int) bool { return c >= change })
		if j < 0 {
			j = len(cuts)
		}
		keep = cuts[:max(0, j-1)]
		// k is layer at of q in p, when it is in no split.
		k, inSplit := at, false
		for _, r := range regs {
			if r.end <= at {
				k -= r.end - r.start - splits[r.split].Count
			}
			inSplit = inSplit || at >= r.start && at < r.end
		}
		if !inSplit && (failed < 0 || splits[failed].Layer > k) && quant.Splittable(p.Layers[k].Kind) {
			// No segment starting at layer k (in no split) fits though every layer
			// alone does: a model input's range check whose outputs cost more to commit
			// than to compute, or a layer before a split whose whole output a segment
			// would export to the bands. Split the run from k.
			// The run's identical siblings further on (the other blocks of a ResNet
			// stage) would fail the same way, one attempt each: split them too.
			ks := append([]int{k}, siblings(p, splits, k)...)
			lv := analyze(p)
			grown, gq, gregs, err2 := growSplits(p, splits, ks, func(k, end int) (int, error) {
				es, err := estimateCore(p, lv, k, end, syss)
				r := 0.0
				for _, e := range es {
					r = max(r, overUse(e, limits))
				}
				return max(2, int(math.Ceil(2*r))), err
			})
			if err2 != nil {
				return nil, err2
			}
			if grown != nil {
				tracef("  grew splits from layers %v", ks)
				splits, q, regs, first = grown, gq, gregs, map[int]int{}
				clear(bad) // layer indices of another split program
				continue
			}
		}
		if failed < 0 {
			return nil, err
		}
		b0, ok := first[failed]
		if !ok {
			b0, first[failed] = splits[failed].Bands, splits[failed].Bands
		}
		next := []int{2 * b0, b0 / 2, 4 * b0, b0 / 4, b0 / 8, 8 * b0}
		changed := false
		for _, b := range next {
			if b >= 2 && b != splits[failed].Bands {
				if splits[failed].Bands == b0 || slices.Index(next, splits[failed].Bands) < slices.Index(next, b) {
					splits[failed].Bands, changed = b, true
					break
				}
			}
		}
		if !changed {
			return nil, err // every band count tried
		}
		q = nil
		clear(bad)
	}
}

// overSegment returns the index of the first of pl's segments whose estimate is over
// limits, -1 if none.
func overSegment(pl *Plan, syss []circuits.System, limits bench.Limits) (int, error) {
	for i, s := range pl.Segments {
		for _, sys := range syss {
			e, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				return -1, err
			}
			if limits.Check(e) != nil {
				return i, nil
			}
		}
	}
	return -1, nil
}

// growSplits returns splits with the runs of layers from each of ks (chainEnd) split
// too, and the split program and regions applySplits makes of them (nil if p cannot
// be split so). Run [k, end) asks for bands(k, end) bands: a split it reaches starts
// at k instead (with the more bands of the two), splits that then overlap become one
// (with the most bands), else it is a new split.
func growSplits(p *quant.Program, splits []LayerSplit, ks []int, bands func(k, end int) (int, error)) ([]LayerSplit, *quant.Program, []region, error) {
	grown := slices.Clone(splits)
	for _, k := range ks {
		end := chainEnd(p, k)
		b, err := bands(k, end)
		if err != nil {
			return nil, nil, nil, err
		}
		if j := slices.IndexFunc(grown, func(sp LayerSplit) bool { return sp.Layer > k }); j >= 0 && grown[j].Layer <= end {
			grown[j].Count = max(end, grown[j].Layer+grown[j].Count) - k
			grown[j].Layer, grown[j].Bands = k, max(grown[j].Bands, b)
		} else {
			grown = append(grown, LayerSplit{Layer: k, Count: end - k, Bands: b})
			slices.SortFunc(grown, func(a, b LayerSplit) int { return a.Layer - b.Layer })
		}
		for i := 1; i < len(grown); {
			a, b := &grown[i-1], grown[i]
			if a.Layer+a.Count <= b.Layer {
				i++
				continue
			}
			a.Count = max(a.Layer+a.Count, b.Layer+b.Count) - a.Layer
			a.Bands = max(a.Bands, b.Bands)
			grown = slices.Delete(grown, i, i+1)
		}
	}
	q, regs, err := applySplits(p, grown)
	if err != nil {
		return nil, nil, nil, nil
	}
	return grown, q, regs, nil
}

// siblings returns the layers after k, in no split of splits and not in k's run,
// whose runs (chainEnd) are k's run again: the same kinds and ops, the same shapes
// read and written, the same convolution geometry (runSignature). A plan that could
// start no segment at k will start none at the blocks repeated from it either.
func siblings(p *quant.Program, splits []LayerSplit, k int) []int {
	end := chainEnd(p, k)
	sig := runSignature(p, k, end)
	var out []int
	for k2 := end; k2+(end-k) <= len(p.Layers); k2++ {
		if slices.ContainsFunc(splits, func(sp LayerSplit) bool { return k2 >= sp.Layer && k2 < sp.Layer+sp.Count }) {
			continue
		}
		if p.Layers[k2].Kind != p.Layers[k].Kind || chainEnd(p, k2)-k2 != end-k || runSignature(p, k2, k2+end-k) != sig {
			continue
		}
		out = append(out, k2)
		k2 += end - k - 1
	}
	return out
}

// runSignature describes layers [k, end) of p up to their place: per layer its kind
// and op, the shapes it reads and writes, which of its inputs the run itself wrote
// (by position in the run) and its convolution's geometry.
func runSignature(p *quant.Program, k, end int) string {
	var b strings.Builder
	at := map[int]int{}
	for i, l := range p.Layers[k:end] {
		fmt.Fprintf(&b, "%v %s %v relu=%v <-", l.Kind, l.Op, p.Values[l.Out].Shape, l.Relu)
		for _, id := range l.In {
			if j, ok := at[id]; ok {
				fmt.Fprintf(&b, " @%d", j)
			} else {
				fmt.Fprintf(&b, " %v", p.Values[id].Shape)
			}
		}
		if l.Conv != nil {
			fmt.Fprintf(&b, " %+v", *l.Conv)
		}
		b.WriteString(";")
		at[l.Out] = i
	}
	return b.String()
}

// coreProgram is segment s's program without its boundary commitments: its layers
// alone, the measure of whether a segment can fit at all (estimateCore; tests).
func coreProgram(s *Segment) *quant.Program {
	core := *s.Program
	core.InputVis, core.OutputVis = quant.Private, quant.Private
	core.InputGroups, core.OutputGroups, core.PrivateInputs = nil, nil, 0
	return &core
}

// estimateCore returns, per system, segment [first, end) of p's estimate without its
// boundary commitments (its layers alone).
func estimateCore(p *quant.Program, lv *liveness, first, end int, syss []circuits.System) ([]*bench.Estimate, error) {
	bounds := slices.Compact([]int{0, first, end, len(p.Layers)})
	i := slices.Index(bounds, first)
	n := len(bounds) - 1
	pl := &Plan{Pairs: lv.segmentPairs(p, bounds, i)}
	s, err := segment(p, lv, i, n, first, end, pl.InPairs(i), pl.OutPairs(i))
	if err != nil {
		return nil, err
	}
	core := coreProgram(s)
	var out []*bench.Estimate
	for _, sys := range syss {
		e, err := bench.EstimateProgram(core, sys)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// overUse is how many times an estimate exceeds limits (its largest ratio; memory
// counted above the fixed base).
func overUse(e *bench.Estimate, limits bench.Limits) float64 {
	r := 0.0
	if limits.MaxConstraints > 0 {
		r = float64(e.Constraints) / float64(limits.MaxConstraints)
	}
	if m := limits.MaxMemoryBytes - bench.EstimateBaseMemory; limits.MaxMemoryBytes > 0 {
		r = max(r, float64(e.MemoryBytes-bench.EstimateBaseMemory)/float64(max(m, 1)))
	}
	return r
}

// overBudget returns the splits of the layers of p whose own estimate is over
// limits. Each is split with the layers after it that read only what the run writes
// (and params), element-wise layers (a linear layer's rescale, which must stay with
// it) and at most three convolutions or pools in all (a convolution, the pool after
// it and the squeeze convolution after that), so that a band of the run carries its
// band of the last layer's outputs rather than full-resolution activations; into
// about twice as many bands as the run's estimate exceeds the budget by.
func overBudget(p *quant.Program, syss []circuits.System, limits bench.Limits) ([]LayerSplit, error) {
	lv := analyze(p)
	ratio := func(first, end int) (float64, error) {
		es, err := estimateCore(p, lv, first, end, syss)
		if err != nil {
			return 0, err
		}
		r := 0.0
		for _, e := range es {
			r = max(r, overUse(e, limits))
		}
		return r, nil
	}
	var splits []LayerSplit
	for k := 0; k < len(p.Layers); k++ {
		l := p.Layers[k]
		r, err := ratio(k, k+1)
		if err != nil {
			return nil, err
		}
		if r <= 1 {
			continue
		}
		if !quant.Splittable(l.Kind) {
			return nil, fmt.Errorf("%w: layer %d (%s, a %s layer) alone is over the budget and cannot be split", bench.ErrOverBudget, k, l.Name, l.Kind)
		}
		end := chainEnd(p, k)
		if r, err = ratio(k, end); err != nil {
			return nil, err
		}
		splits = append(splits, LayerSplit{Layer: k, Count: end - k, Bands: max(2, int(math.Ceil(2*r)))})
		k = end - 1
	}
	return splits, nil
}

// chainEnd returns the end of the run of layers split with layer k (see overBudget).
func chainEnd(p *quant.Program, k int) int {
	rank := len(p.Values[p.Layers[k].Out].Shape)
	written := map[int]bool{p.Layers[k].Out: true}
	params := map[int]bool{}
	for _, par := range p.Params {
		params[par.Value] = true
	}
	spatial := func(l *quant.Layer) bool { return l.Kind == quant.KLinear || l.Kind == quant.KMax }
	seen := 0
	if spatial(p.Layers[k]) {
		seen = 1
	}
	end := k + 1
	for ; end < len(p.Layers); end++ {
		l := p.Layers[end]
		ok := quant.Splittable(l.Kind) && len(p.Values[l.Out].Shape) == rank
		reads := false
		for _, id := range l.In {
			if written[id] {
				reads = true
			} else if !params[id] {
				ok = false
			}
		}
		if !ok || !reads {
			break
		}
		if !quant.ElementWise(l.Kind) {
			if !spatial(l) || seen >= 3 {
				break
			}
			seen++
		}
		written[l.Out] = true
	}
	// Never end on a linear layer: its rescale belongs with it.
	for end > k+1 && p.Layers[end-1].Kind == quant.KLinear {
		end--
	}
	return end
}

// allowedCuts returns, for every c in [0, len(p.Layers)], whether a cut before layer c
// is allowed (cutAllowed says why not), in one pass over the values and elements
// instead of one per cut: an accumulator written at layer k and last read at layer r
// forbids the cuts in (k, r].
func allowedCuts(p *quant.Program, lv *liveness) []bool {
	n := len(p.Layers)
	diff := make([]int, n+2)
	forbid := func(k, r int) {
		if r > k {
			diff[k+1]++
			diff[min(r, n)+1]--
		}
	}
	for id, d := range lv.def {
		if d >= 0 && d < n && !lv.param[id] && !lv.elem[id] && p.Layers[d].Kind == quant.KLinear {
			forbid(d, lv.last[id])
		}
	}
	for id, w := range lv.writer {
		if w == nil || lv.def[id] < 0 {
			continue
		}
		for j, k := range w {
			if k >= 0 && int(k) < n && p.Layers[k].Kind == quant.KLinear {
				forbid(int(k), int(lv.lastRead[id][j]))
			}
		}
	}
	ok := make([]bool, n+1)
	sum := 0
	for c := 0; c <= n; c++ {
		sum += diff[c]
		ok[c] = c > 0 && c < n && sum == 0
	}
	return ok
}

// Planner bounds. approxSlack scales the layers' approximate costs
// (bench.EstimateLayers) when listing a segment's candidate ends, so that an
// approximation above the exact estimate by up to 1/approxSlack still lists every end
// that can fit; at most maxLikely ends likely to fit by them with their
// boundaries (within likelySlack) are tried before a wider search; the search backs
// off at most maxBackoffs times; a plan with a segment over the budget is planned
// again without it at most maxRepairs times (SplitBudget).
const (
	approxSlack = 0.85
	likelySlack = 0.97
	maxLikely   = 8
	maxBackoffs = 64
	maxRepairs  = 16
)

// tracef reports the planner's attempts and the segments it finds over the budget
// on standard error when ZKML_PLAN_TRACE is set (planning a full-size network takes
// minutes).
var tracef = func(string, ...any) {}

func init() {
	if os.Getenv("ZKML_PLAN_TRACE") != "" {
		tracef = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "plan: "+format+"\n", args...) }
	}
}

// budgetCuts chooses the cuts of the split program q (see SplitBudget), never inside a
// region but at its band starts. Each segment ends at the latest allowed cut where it
// fits its estimate with its boundary commitments. The candidate ends are those where
// the segment's layers alone may fit by their approximate costs
// (bench.EstimateLayers), tried from the latest down by exact estimates (a bisection
// skips those whose layers alone are over). When no segment can start at some layer
// (a cut where many values cross, as before the Add that closes a residual block,
// leaves the next segment more imports than fit), the search backs off: the segment
// before ends at its next earlier candidate, and so on (a start that failed is not
// tried again). When no plan is found, it returns the error for the furthest layer
// the search reached, the cuts of the furthest partial plan it made, and the split
// whose region holds that layer (or starts right after it), -1 if none.
//
// keep warm-starts the search: cuts of an earlier attempt's partial plan, in a part of
// the program this attempt did not change, taken as they are (the search backs off
// into them if it must, as if it had chosen them). The segments bad lists do not fit.
func budgetCuts(q *quant.Program, regs []region, syss []circuits.System, limits bench.Limits, keep []int, bad map[[2]int]bool) ([]int, int, int, error) {
	lv := analyze(q)
	n := len(q.Layers)
	allowed := allowedCuts(q, lv)
	allowed[n] = true
	for _, r := range regs {
		for c := r.start + 1; c < r.end; c++ {
			allowed[c] = allowed[c] && slices.Contains(r.cuts, c)
		}
	}
	// The layers' approximate costs, per system.
	var approxs []*bench.LayerCosts
	for _, sys := range syss {
		lc, err := bench.EstimateLayers(q, sys)
		if err != nil {
			return nil, -1, -1, err
		}
		approxs = append(approxs, lc)
	}
	// approxFits reports whether the approximate estimate of segment [first, end) with
	// extra boundary constraints (per system) fits, its constraints scaled by slack
	// before its domain is taken (an approximation up to 1/slack above the exact
	// estimate still lets an end through whose exact domain fits).
	approxFits := func(first, end int, extra []int64, slack float64) bool {
		for i, lc := range approxs {
			e := lc.Run(first, end, extra[i])
			if limits.Check(lc.Run(first, end, extra[i]-int64((1-slack)*float64(e.Constraints)))) != nil {
				return false
			}
		}
		return true
	}
	none := make([]int64, len(syss))
	mayFit := func(first, end int) bool { return approxFits(first, end, none, approxSlack) }
	crossings := make([]*crossing, len(syss))
	for i, sys := range syss {
		crossings[i] = newCrossing(q, lv, sys)
	}
	// candidates lists the allowed ends of a segment starting at first after cuts
	// whose layers alone may fit (latest first), and marks those that may fit with
	// their boundaries too, by the approximate costs.
	candidates := func(first int, cuts []int) (ends []int, likely map[int]bool) {
		likely = map[int]bool{}
		for _, x := range crossings {
			x.start(first, cuts)
		}
		for end := first + 1; end <= n; end++ {
			for _, x := range crossings {
				x.advance()
			}
			if end > first+1 && !mayFit(first, end) {
				break
			}
			if !allowed[end] {
				continue
			}
			ends = append(ends, end)
			extra := make([]int64, len(crossings))
			for i, x := range crossings {
				extra[i] = x.cost()
			}
			likely[end] = approxFits(first, end, extra, likelySlack)
		}
		slices.Reverse(ends)
		return ends, likely
	}
	var cuts []int
	// fits reports whether segment [first, end) fits. Its input groups are the plan's
	// (the cuts before it, first the last of them, are chosen); the layers after it
	// stand for one segment, or one per band of a split, so its outputs are one group
	// or one per band (the final plan may split them by consumer, at the cost of a few
	// permutations per group).
	// Later bands are taken as segments of their own (their imports and exports an
	// upper bound of the plan's, where bands are merged).
	fits := func(first, end int) (bool, error) {
		if bad[[2]int{first, end}] {
			return false, nil
		}
		bounds := append(append([]int{0}, cuts...), end)
		for _, r := range regs {
			for _, c := range r.cuts {
				if c > end {
					bounds = append(bounds, c)
				}
			}
		}
		bounds = slices.Compact(append(bounds, n))
		i, m := len(cuts), len(bounds)-1
		pl := &Plan{Pairs: lv.segmentPairs(q, bounds, i)}
		s, err := segment(q, lv, i, m, first, end, pl.InPairs(i), pl.OutPairs(i))
		if err != nil {
			return false, err
		}
		for _, sys := range syss {
			e, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				return false, err
			}
			if over := limits.Check(e); over != nil {
				tracef("  [%d, %d) %s..%s: %d constraints, %d MiB, %d inputs, %d outputs: %v", first, end, q.Layers[first].Name, q.Layers[end-1].Name, e.Constraints, e.MemoryBytes>>20, len(s.Program.Inputs), len(s.Program.Outputs), over)
				return false, nil
			}
		}
		return true, nil
	}
	// next returns an end of ends (latest first) where segment [first, end) fits, -1
	// if it finds none, and the ends after it. It tries the latest ends likely to fit
	// by the approximate costs (at most maxLikely), then gallops down the whole list
	// (ends 0, 1, 3, 7, ... and the last) to the first that fits and bisects back up
	// between it and the last that did not, as if fitting were monotone in the end
	// (it is not quite: the layers grow with the end, the values crossing it vary):
	// a segment costs a few exact estimates; the end it returns fits, though a later
	// one may too.
	next := func(first int, ends []int, likely map[int]bool) (int, []int, error) {
		// The gallop may come back to an end the likely ones tried.
		known := map[int]bool{}
		try := func(i int) (bool, error) {
			if ok, seen := known[ends[i]]; seen {
				return ok, nil
			}
			ok, err := fits(first, ends[i])
			known[ends[i]] = ok
			return ok, err
		}
		tried := 0
		for i, end := range ends {
			if !likely[end] {
				continue
			}
			if tried++; tried > maxLikely {
				break
			}
			ok, err := try(i)
			if err != nil || ok {
				return end, ends[i+1:], err
			}
		}
		failed, found := -1, -1
		for i, step := 0, 1; found < 0 && failed < len(ends)-1; i, step = min(i+step, len(ends)-1), 2*step {
			ok, err := try(i)
			if err != nil {
				return -1, nil, err
			}
			if ok {
				found = i
			} else {
				failed = i
			}
		}
		if found < 0 {
			return -1, nil, nil
		}
		for lo := failed + 1; lo < found; {
			mid := (lo + found) / 2
			ok, err := try(mid)
			if err != nil {
				return -1, nil, err
			}
			if ok {
				found = mid
			} else {
				lo = mid + 1
			}
		}
		return ends[found], ends[found+1:], nil
	}
	// The search: stack[i] is segment i's start and its untried ends; cuts[i] its end.
	// A kept cut's frame lists its untried ends (those before it) only when the search
	// backs off into it (lazy).
	type frame struct {
		first  int
		rest   []int
		likely map[int]bool
		lazy   bool
	}
	var stack []frame
	dead := map[int]bool{}
	far, backoffs := 0, 0
	var reached []int // the furthest partial plan
	first := 0
	for _, c := range keep {
		if c <= first || c >= n || !allowed[c] {
			break
		}
		stack = append(stack, frame{first: first, lazy: true})
		cuts = append(cuts, c)
		first = c
	}
	if len(keep) > 0 {
		tracef("  warm start: %d cuts kept, from layer %d", len(cuts), first)
	}
	for {
		end, rest, likely := -1, []int(nil), map[int]bool(nil)
		if !dead[first] {
			ends, lk := candidates(first, cuts)
			var err error
			if end, rest, err = next(first, ends, lk); err != nil {
				return nil, -1, -1, err
			}
			likely = lk
		}
		if end == n {
			return cuts, -1, -1, nil
		}
		if end > 0 {
			stack = append(stack, frame{first: first, rest: rest, likely: likely})
			cuts = append(cuts, end)
			first = end
			continue
		}
		// No segment starts at first: back off.
		dead[first] = true
		if first > far || reached == nil {
			far, reached = first, slices.Clone(cuts)
		}
		for end < 0 && len(stack) > 0 && backoffs < maxBackoffs {
			backoffs++
			top := &stack[len(stack)-1]
			if top.lazy {
				kept := cuts[len(stack)-1]
				ends, lk := candidates(top.first, cuts[:len(stack)-1])
				top.rest, top.likely, top.lazy = slices.DeleteFunc(ends, func(e int) bool { return e >= kept }), lk, false
			}
			cuts = cuts[:len(stack)-1]
			ends := slices.DeleteFunc(top.rest, func(e int) bool { return dead[e] })
			var err error
			if end, top.rest, err = next(top.first, ends, top.likely); err != nil {
				return nil, -1, -1, err
			}
			if end < 0 {
				dead[top.first] = true
				stack = stack[:len(stack)-1]
			}
		}
		if end < 0 {
			failed := -1
			for i, r := range regs {
				if far >= r.start && far < r.end || far+1 == r.start {
					failed = regs[i].split
				}
			}
			return reached, failed, far, fmt.Errorf("%w: no segment starting at layer %d (%s) fits the budget (%d back-offs)", bench.ErrOverBudget, far, q.Layers[far].Name, backoffs)
		}
		if end == n {
			return cuts, -1, -1, nil
		}
		cuts = append(cuts, end)
		first = end
	}
}
