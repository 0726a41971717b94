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
	"slices"

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
// output).
type liveness struct {
	def, last []int
	param     []bool
}

func analyze(p *quant.Program) *liveness {
	lv := &liveness{def: make([]int, len(p.Values)), last: make([]int, len(p.Values)), param: make([]bool, len(p.Values))}
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
	for k, l := range p.Layers {
		for _, id := range l.In {
			lv.last[id] = max(lv.last[id], k)
		}
		lv.def[l.Out] = min(lv.def[l.Out], k)
	}
	for _, id := range p.Outputs {
		lv.last[id] = len(p.Layers)
	}
	return lv
}

// live lists the values that cross a cut before layer c: not params, defined before
// c, read at or after c (or a model output), in increasing id order.
func (lv *liveness) live(c int) []int {
	var ids []int
	for id := range lv.def {
		if !lv.param[id] && lv.def[id] < c && lv.last[id] >= c {
			ids = append(ids, id)
		}
	}
	return ids
}

// cutAllowed reports why a cut before layer c is refused ("" if it is allowed): a
// cut never carries the unrescaled accumulator of a linear layer (it is as wide as
// the products it sums; the rescale that follows belongs with it).
func cutAllowed(p *quant.Program, lv *liveness, c int) string {
	if c <= 0 || c >= len(p.Layers) {
		return fmt.Sprintf("cut %d outside (0, %d)", c, len(p.Layers))
	}
	for _, id := range lv.live(c) {
		if d := lv.def[id]; d >= 0 && p.Layers[d].Kind == quant.KLinear {
			return fmt.Sprintf("cut %d would carry the accumulator of linear layer %s", c, p.Layers[d].Name)
		}
	}
	return ""
}

// Split cuts p before each layer index of cuts (strictly increasing, each in
// (0, len(p.Layers))).
func Split(p *quant.Program, cuts []int) (*Plan, error) {
	modelID, err := prover.ModelID(p)
	if err != nil {
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
	pl := &Plan{ModelID: modelID, Pairs: lv.pairs(p, bounds)}
	n := len(bounds) - 1
	for i := range n {
		s, err := segment(p, i, n, bounds[i], bounds[i+1], pl.InPairs(i), pl.OutPairs(i))
		if err != nil {
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
// producer's group for it, in increasing value id. Slots are left to Split.
func (lv *liveness) pairs(p *quant.Program, bounds []int) []*Pair {
	n := len(bounds) - 1
	groups := map[[2]int][]int{}
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
		from := segmentOf(bounds, lv.def[id])
		seen := map[int]bool{}
		for _, c := range readers[id] {
			if c > from && !seen[c] {
				seen[c] = true
				groups[[2]int{from, c}] = append(groups[[2]int{from, c}], id)
			}
		}
	}
	var out []*Pair
	for _, k := range slices.SortedFunc(maps.Keys(groups), func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	}) {
		out = append(out, &Pair{From: k[0], To: k[1], Values: groups[k]})
	}
	return out
}

// signedWidth is the smallest signed width w with |v| < 2^(w-1) for |v| <= bound.
func signedWidth(bound float64) int {
	w := 1
	for math.Ldexp(1, w-1) <= bound {
		w++
	}
	return w
}

// segment builds segment i of n, layers [first, end), with its input groups ins and
// output groups outs (in order; the first segment's inputs are the model inputs, the
// last's outputs the model outputs).
func segment(p *quant.Program, i, n, first, end int, ins, outs []*Pair) (*Segment, error) {
	s := &Segment{Index: i, First: first, End: end}
	var inSizes, outSizes []int
	if i == 0 {
		s.In = slices.Clone(p.Inputs)
	} else {
		for _, g := range ins {
			s.In = append(s.In, g.Values...)
			s.From = append(s.From, g.From)
			inSizes = append(inSizes, len(g.Values))
		}
	}
	if i == n-1 {
		s.Out = slices.Clone(p.Outputs)
	} else {
		for _, g := range outs {
			s.Out = append(s.Out, g.Values...)
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
	for j, old := range s.In {
		q.Inputs = append(q.Inputs, add(old))
		if i > 0 {
			q.InputNames = append(q.InputNames, fmt.Sprintf("boundary%d/v%d", i, old))
		} else {
			q.InputNames = append(q.InputNames, p.InputNames[j])
		}
	}
	if i == 0 {
		q.InputQuant = p.InputQuant
	} else {
		q.InputVis = quant.Boundary
		// Range-check every boundary input to its static bound, which every bound
		// after it relies on: the layer reads the input and redefines the value.
		for j, old := range s.In {
			v := p.Values[old]
			in := q.Inputs[j]
			out := add(old)
			q.Layers = append(q.Layers, &quant.Layer{Name: fmt.Sprintf("boundary%d/v%d", i, old), Op: "Boundary",
				Kind: quant.KRangeChk, In: []int{in}, Out: out, Bits: signedWidth(v.Bound)})
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
		cp.Out = add(l.Out)
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
	id, err := prover.ModelID(q)
	if err != nil {
		return nil, err
	}
	s.ID, s.Program = id, q
	return s, nil
}

// SplitBudget cuts p greedily into segments whose circuits' estimates
// (bench.EstimateProgram, for every system of syss) fit limits: each segment ends at
// the furthest allowed cut at which its estimate fits. A segment's estimate includes
// its boundary commitments, which depend on where it is cut (a cut where few, narrow
// values cross is cheap), so the search tries every allowed end until the segment's
// layers alone (without commitments, which only grow with more layers) are over the
// budget. A layer that no segment fits is an error wrapping bench.ErrOverBudget.
func SplitBudget(p *quant.Program, syss []circuits.System, limits bench.Limits) (*Plan, error) {
	lv := analyze(p)
	var cuts []int
	// fits reports whether segment [first, end) fits, and whether its layers alone are
	// over the budget (so that no later end can fit). Its input groups are the plan's
	// (the cuts before it, first the last of them, are chosen); the layers after it
	// stand for one segment, so its outputs are one group (the final plan may split it
	// by consumer, at the cost of a few permutations per group).
	fits := func(first, end int) (ok, over bool, err error) {
		bounds := slices.Compact(append(append(append([]int{0}, cuts...), end), len(p.Layers)))
		i, n := len(cuts), len(bounds)-1
		pl := &Plan{Pairs: lv.pairs(p, bounds)}
		s, err := segment(p, i, n, first, end, pl.InPairs(i), pl.OutPairs(i))
		if err != nil {
			return false, false, err
		}
		core := *s.Program
		core.InputVis, core.OutputVis = quant.Private, quant.Private
		core.InputGroups, core.OutputGroups = nil, nil
		ok = true
		for _, sys := range syss {
			e, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				return false, false, err
			}
			ok = ok && limits.Check(e) == nil
			if e, err = bench.EstimateProgram(&core, sys); err != nil {
				return false, false, err
			}
			over = over || limits.Check(e) != nil
		}
		return ok, over, nil
	}
	for first := 0; ; {
		best := -1
		for end := first + 1; end <= len(p.Layers); end++ {
			if end < len(p.Layers) && cutAllowed(p, lv, end) != "" {
				continue
			}
			ok, over, err := fits(first, end)
			if err != nil {
				return nil, err
			}
			if over {
				break
			}
			if ok {
				best = end
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("%w: no segment starting at layer %d (%s) fits the budget", bench.ErrOverBudget, first, p.Layers[first].Name)
		}
		if best == len(p.Layers) {
			break
		}
		cuts = append(cuts, best)
		first = best
	}
	return Split(p, cuts)
}
