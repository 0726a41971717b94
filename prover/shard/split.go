// Package shard splits a model too large for one circuit into segments, each its own
// circuit and proof, and proves and verifies an inference as a bundle of segment
// proofs.
//
// A plan cuts the lowered program (quant.Program) at layer boundaries. Segment i runs
// layers [First, End) of the whole program. Its inputs are the values live at its
// first cut (produced before it and read at or after it, or model outputs produced
// before it: skip connections and early outputs are carried across every cut they
// span), its outputs the values live at its last cut; the first segment's inputs are
// the model inputs, the last segment's outputs the model outputs. Each segment is a
// program of its own (carrying only the values, params and tables it uses, re-indexed)
// with its own model ID.
//
// Soundness. At a cut the two segments commit to the crossing values with the same
// Poseidon2 commitment (quant.Boundary visibility, circuits.TagBoundary): same values,
// same order (increasing value id of the whole program), same packing width (the
// widest static bound among them, the same bounds in both programs), so the output
// commitment of segment i equals the input commitment of segment i+1 exactly when
// both proofs are about the same activations (Poseidon2 binding; packing is injective
// because the commitment gadget range-checks every value to its width). Segment i+1
// also range-checks each boundary input to its own static bound in a range layer of
// its program, so the bounds the rest of its circuit relies on hold for every
// witness, whatever the commitment. The order, count and width of the committed values
// are fixed by the segment programs, hence by their model IDs; the plan ID binds the
// whole program's model ID and every segment's ID in order, so a bundle verifies only
// against the verifier's own plan: segments of another model or another split, or
// reordered, dropped or duplicated segments, are refused.
//
// Visibility: the first segment's inputs and the last segment's outputs have the
// model's visibility settings; params have the model's param visibility in every
// segment, so a model with hashed params publishes one params commitment per segment
// (each over the params that segment uses, in the order of the whole program).
package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
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
	// outputs, in the segment program's order.
	In  []int `json:"in"`
	Out []int `json:"out"`
	// ID is the segment program's model ID.
	ID      string         `json:"id"`
	Program *quant.Program `json:"-"`
}

// Plan is a program split into segments.
type Plan struct {
	// ModelID is the whole program's model ID.
	ModelID string `json:"model_id"`
	// ID binds ModelID and every segment's ID, in order (see PlanID).
	ID       string     `json:"id"`
	Segments []*Segment `json:"segments"`
}

// Cuts returns the layer index each segment after the first starts at.
func (pl *Plan) Cuts() []int {
	var cuts []int
	for _, s := range pl.Segments[1:] {
		cuts = append(cuts, s.First)
	}
	return cuts
}

// PlanID is the SHA-256 of a domain tag, the model ID and the segment IDs in order,
// each length-prefixed.
func PlanID(modelID string, segmentIDs []string) string {
	h := sha256.New()
	put := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put("zkml/shard.Plan v1")
	put(modelID)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(segmentIDs)))
	h.Write(n[:])
	for _, id := range segmentIDs {
		put(id)
	}
	return hex.EncodeToString(h.Sum(nil))
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
	pl := &Plan{ModelID: modelID}
	var ids []string
	for i := 0; i+1 < len(bounds); i++ {
		s, err := segment(p, lv, i, len(bounds)-1, bounds[i], bounds[i+1])
		if err != nil {
			return nil, err
		}
		pl.Segments = append(pl.Segments, s)
		ids = append(ids, s.ID)
	}
	pl.ID = PlanID(modelID, ids)
	return pl, nil
}

// signedWidth is the smallest signed width w with |v| < 2^(w-1) for |v| <= bound.
func signedWidth(bound float64) int {
	w := 1
	for math.Ldexp(1, w-1) <= bound {
		w++
	}
	return w
}

// segment builds segment i of n: layers [first, end).
func segment(p *quant.Program, lv *liveness, i, n, first, end int) (*Segment, error) {
	s := &Segment{Index: i, First: first, End: end}
	if i == 0 {
		s.In = slices.Clone(p.Inputs)
	} else {
		s.In = lv.live(first)
	}
	if i == n-1 {
		s.Out = slices.Clone(p.Outputs)
	} else {
		s.Out = lv.live(end)
	}
	q := &quant.Program{Config: p.Config}
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
	for j, old := range s.Out {
		nid, ok := newID[old]
		if !ok {
			return nil, fmt.Errorf("shard: segment %d: output value %d is not available", i, old)
		}
		q.Outputs = append(q.Outputs, nid)
		if i == n-1 {
			q.OutputNames = append(q.OutputNames, p.OutputNames[j])
		} else {
			q.OutputNames = append(q.OutputNames, fmt.Sprintf("boundary%d/v%d", i+1, old))
		}
	}
	if i == n-1 {
		q.OutputQuant = p.OutputQuant
	} else {
		q.OutputVis = quant.Boundary
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
	// fits reports whether segment [first, end) fits, and whether its layers alone are
	// over the budget (so that no later end can fit).
	fits := func(first, end int) (ok, over bool, err error) {
		i := min(first, 1)
		n := i + 2
		if end == len(p.Layers) {
			n = i + 1
		}
		s, err := segment(p, lv, i, n, first, end)
		if err != nil {
			return false, false, err
		}
		core := *s.Program
		core.InputVis, core.OutputVis = quant.Private, quant.Private
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
	var cuts []int
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
