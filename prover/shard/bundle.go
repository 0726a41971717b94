package shard

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/verifier"
)

// BundleVersion is the version of the bundle format (2: boundary groups per pair of
// segments).
const BundleVersion = 2

// Bundle is a proved inference of a sharded model: one proof per segment, in order.
type Bundle struct {
	Version int             `json:"version"`
	System  circuits.System `json:"system"`
	// ModelID is the whole program's model ID; PlanID the plan's (Plan.ID).
	ModelID  string          `json:"model_id"`
	PlanID   string          `json:"plan_id"`
	Segments []*SegmentProof `json:"segments"`
	// The inference's integer and dequantized outputs (as claimed; Verify checks them
	// against the last segment's public outputs or output commitment).
	IntOutputs [][]int64   `json:"int_outputs"`
	Outputs    [][]float64 `json:"outputs"`
}

// SegmentProof is one segment's proof.
type SegmentProof struct {
	Index int    `json:"index"`
	ID    string `json:"segment_id"`
	Proof []byte `json:"proof"`
	// Public is the binary public witness; PublicInputs the same in decimal.
	Public       []byte   `json:"public_witness"`
	PublicInputs []string `json:"public_inputs"`
	// InCommitments and OutCommitments are the segment's boundary groups with their
	// commitments (among the public inputs), in order: the segment each input group
	// comes from and each output group goes to. Verify checks them against the plan's
	// pair table and the public inputs.
	InCommitments  []Link  `json:"in_commitments,omitempty"`
	OutCommitments []Link  `json:"out_commitments,omitempty"`
	ProveSeconds   float64 `json:"prove_seconds"`
}

// Link is one boundary group of a segment: the other segment of its pair and the
// group's commitment (decimal).
type Link struct {
	Segment    int    `json:"segment"`
	Commitment string `json:"commitment"`
}

// Activations runs the integer evaluator once over the whole program on integer
// inputs and returns, per segment, its input and output tensors, and the model
// outputs. It runs the plan's split program (the same function as p, with the values
// of the split layers' parts: partial sums of a split global pool) when it has one.
func (pl *Plan) Activations(p *quant.Program, inputs [][]int64) (ins, outs [][][]int64, final [][]int64, err error) {
	if pl.Program != nil {
		p = pl.Program
	}
	r, err := p.Eval(inputs)
	if err != nil {
		return nil, nil, nil, err
	}
	// A tensor carrying elements of a value (Segment.InElems, OutElems) holds those.
	pick := func(id int, es []int32) []int64 {
		if es == nil {
			return r.Values[id]
		}
		v := make([]int64, len(es))
		for i, e := range es {
			v[i] = r.Values[id][e]
		}
		return v
	}
	for _, s := range pl.Segments {
		var in, out [][]int64
		for j, id := range s.In {
			in = append(in, pick(id, s.InElems[j]))
		}
		for j, id := range s.Out {
			out = append(out, pick(id, s.OutElems[j]))
		}
		ins, outs = append(ins, in), append(outs, out)
	}
	return ins, outs, r.Outputs, nil
}

// Keys gives a segment's circuit and keys. A prover loads one segment at a time and
// drops it before the next, so that a bundle needs the memory of its largest segment.
type Keys interface {
	Circuit(i int) (constraint.ConstraintSystem, error)
	ProvingKey(i int) (any, error)
	VerifyingKey(i int) (any, error)
}

// ProveSegment proves segment s on its input and output tensors and checks the proof
// with vk before returning it.
func ProveSegment(s *Segment, sys circuits.System, ccs constraint.ConstraintSystem, pk, vk any, in, out [][]int64) (*SegmentProof, error) {
	full, err := prover.AssignWitness(s.Program, in, out)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", s.Index, err)
	}
	start := time.Now()
	proof, err := prover.ProveWitness(sys, ccs, pk, full)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", s.Index, err)
	}
	elapsed := time.Since(start)
	pub, err := full.Public()
	if err != nil {
		return nil, err
	}
	if err := prover.VerifyWitness(sys, vk, proof, pub); err != nil {
		return nil, fmt.Errorf("segment %d: proof does not verify (not returned): %w", s.Index, err)
	}
	var pb bytes.Buffer
	if _, err := proof.WriteTo(&pb); err != nil {
		return nil, err
	}
	pubBytes, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return segmentProof(s, pb.Bytes(), pubBytes, pub, elapsed.Seconds()), nil
}

// segmentProof is segment s's proof record: the proof and its public witness (binary
// and in decimal) with the boundary links read from it.
func segmentProof(s *Segment, proof, pubBytes []byte, pub witness.Witness, seconds float64) *SegmentProof {
	sp := &SegmentProof{Index: s.Index, ID: s.ID, Proof: proof, Public: pubBytes, ProveSeconds: seconds}
	vec := pub.Vector().(fr.Vector)
	for i := range vec {
		sp.PublicInputs = append(sp.PublicInputs, vec[i].String())
	}
	sp.InCommitments, sp.OutCommitments = links(s, vec)
	return sp
}

// links reads a segment's boundary commitments from its public values, with the
// segments of their pairs.
func links(s *Segment, pub fr.Vector) (in, out []Link) {
	for _, h := range circuits.NewLayout(s.Program).Hashes {
		if h.Domain != circuits.TagBoundary || h.Offset >= len(pub) {
			continue
		}
		if h.Tag == circuits.TagInputs {
			if j := len(in); j < len(s.From) {
				in = append(in, Link{Segment: s.From[j], Commitment: pub[h.Offset].String()})
			}
		} else if j := len(out); j < len(s.To) {
			out = append(out, Link{Segment: s.To[j], Commitment: pub[h.Offset].String()})
		}
	}
	return in, out
}

// Prove proves an inference of p (the whole program pl was split from) on integer
// inputs: one evaluation of the whole program, then each segment in turn, holding
// one segment's circuit and keys at a time.
func Prove(pl *Plan, p *quant.Program, sys circuits.System, keys Keys, inputs [][]int64) (*Bundle, error) {
	return ProveWith(pl, p, sys, keys, inputs, nil)
}

// Checkpoint lets the proving of a bundle stop and go on (a full-width network's
// takes most of an hour): Save stores each segment's proof as soon as it is made;
// Saved returns an earlier run's proof of segment i, or nil. A saved proof is used
// only when it proves segment i on this inference (Reusable); any other is proved
// again.
type Checkpoint struct {
	Saved func(i int) *SegmentProof
	Save  func(sp *SegmentProof) error
	// Reused counts the saved proofs used.
	Reused int
}

// ProveWith is Prove with a checkpoint (nil: none).
func ProveWith(pl *Plan, p *quant.Program, sys circuits.System, keys Keys, inputs [][]int64, cp *Checkpoint) (*Bundle, error) {
	ins, outs, final, err := pl.Activations(p, inputs)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Version: BundleVersion, System: sys, ModelID: pl.ModelID, PlanID: pl.ID, IntOutputs: final}
	for _, o := range p.Dequantize(final) {
		b.Outputs = append(b.Outputs, o.Data)
	}
	for i, s := range pl.Segments {
		vk, err := keys.VerifyingKey(i)
		if err != nil {
			return nil, err
		}
		if cp != nil && cp.Saved != nil {
			if sp := Reusable(s, sys, vk, ins[i], outs[i], cp.Saved(i)); sp != nil {
				cp.Reused++
				b.Segments = append(b.Segments, sp)
				continue
			}
		}
		ccs, err := keys.Circuit(i)
		if err != nil {
			return nil, err
		}
		pk, err := keys.ProvingKey(i)
		if err != nil {
			return nil, err
		}
		sp, err := ProveSegment(s, sys, ccs, pk, vk, ins[i], outs[i])
		if err != nil {
			return nil, err
		}
		if cp != nil && cp.Save != nil {
			if err := cp.Save(sp); err != nil {
				return nil, err
			}
		}
		b.Segments = append(b.Segments, sp)
	}
	return b, nil
}

// Reusable returns saved, an earlier proof of segment s, when it proves s on these
// input and output tensors: it is for s (index and segment ID), its public witness is
// the one these tensors give (boundary commitments included, so the same inference's
// values) and it verifies with vk. Its listed public inputs and boundary links are
// rebuilt from that witness. Else (or saved nil) it returns nil.
func Reusable(s *Segment, sys circuits.System, vk any, in, out [][]int64, saved *SegmentProof) *SegmentProof {
	if saved == nil || saved.Index != s.Index || saved.ID != s.ID {
		return nil
	}
	full, err := prover.AssignWitness(s.Program, in, out)
	if err != nil {
		return nil
	}
	pub, err := full.Public()
	if err != nil {
		return nil
	}
	pubBytes, err := pub.MarshalBinary()
	if err != nil || !bytes.Equal(pubBytes, saved.Public) {
		return nil
	}
	proof, err := verifier.DecodeProof(string(sys), saved.Proof)
	if err != nil || prover.VerifyWitness(sys, vk, proof, pub) != nil {
		return nil
	}
	return segmentProof(s, saved.Proof, pubBytes, pub, saved.ProveSeconds)
}

// ErrInvalid is wrapped by every reason a bundle does not verify.
var ErrInvalid = errors.New("invalid bundle")

// Verified is what a verified bundle establishes about the inference.
type Verified struct {
	// Inputs are the model inputs when they are public (else nil).
	Inputs [][]int64
	// Outputs are the model outputs when they are public, or hashed and the bundle's
	// claimed outputs match their commitment (else nil: private outputs).
	Outputs [][]int64
	// Commitments are the public commitments of the model's own hashed groups:
	// "inputs" (first segment), "outputs" (last segment), and "params/i" for each
	// segment i with hashed params.
	Commitments map[string]string
}

// Verify checks a bundle against the verifier's own plan and the segments' verifying
// keys: the bundle is for this model and this split (model and plan IDs), has every
// segment once and in order, every segment proof verifies against its segment's key,
// for every pair of the plan the producer's output commitment is the consumer's input
// commitment, the boundary commitments the bundle lists are the pair table's and the
// proofs', and the claimed outputs are what the last segment proves.
func Verify(pl *Plan, sys circuits.System, vk func(i int) (any, error), b *Bundle) (*Verified, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if id, err := pl.planID(); err != nil || id != pl.ID {
		return nil, fmt.Errorf("shard: the verifier's plan %s does not reproduce its ID (%s, %v)", pl.ID, id, err)
	}
	switch {
	case b.Version != BundleVersion:
		return nil, bad("version %d, want %d", b.Version, BundleVersion)
	case b.System != sys:
		return nil, bad("system %s, want %s", b.System, sys)
	case b.ModelID != pl.ModelID:
		return nil, bad("model ID %s, want %s", b.ModelID, pl.ModelID)
	case b.PlanID != pl.ID:
		return nil, bad("plan ID %s, want %s (another split of the model?)", b.PlanID, pl.ID)
	case len(b.Segments) != len(pl.Segments):
		return nil, bad("%d segment proofs, want %d", len(b.Segments), len(pl.Segments))
	}
	pubs := make([]fr.Vector, len(pl.Segments))
	for i, s := range pl.Segments {
		sp := b.Segments[i]
		if sp == nil || sp.Index != i || sp.ID != s.ID {
			return nil, bad("segment proof %d is not for segment %d (%s)", i, i, s.ID)
		}
		l := circuits.NewLayout(s.Program)
		pub, err := witness.New(circuits.Field)
		if err != nil {
			return nil, err
		}
		if err := pub.UnmarshalBinary(sp.Public); err != nil {
			return nil, bad("segment %d: public witness: %v", i, err)
		}
		vec, ok := pub.Vector().(fr.Vector)
		if !ok || len(vec) != l.NbPublic {
			return nil, bad("segment %d: %d public values, want %d", i, len(vec), l.NbPublic)
		}
		// The public inputs that identify the model's params (hashed params'
		// commitment, or public params) must be the segment's own, as
		// verifier.VerifyModel and the segment's Solidity verifier require: the key
		// fixes the architecture, not witness params.
		binding, err := circuits.ModelBinding(s.Program)
		if err != nil {
			return nil, err
		}
		if err := verifier.CheckBinding(pub, binding); err != nil {
			return nil, bad("segment %d: %v", i, err)
		}
		key, err := vk(i)
		if err != nil {
			return nil, err
		}
		proof, err := verifier.DecodeProof(string(sys), sp.Proof)
		if err != nil {
			return nil, bad("segment %d: proof: %v", i, err)
		}
		if err := prover.VerifyWitness(sys, key, proof, pub); err != nil {
			return nil, bad("segment %d: proof does not verify: %v", i, err)
		}
		pubs[i] = vec
	}
	// Every pair: the producer's output commitment for the consumer is the consumer's
	// input commitment for the producer (the slots are the plan's, which its ID binds).
	for _, pr := range pl.Pairs {
		if pr.From < 0 || pr.To >= len(pubs) || pr.From >= pr.To || pr.OutSlot >= len(pubs[pr.From]) || pr.InSlot >= len(pubs[pr.To]) {
			return nil, fmt.Errorf("shard: the verifier's plan has a bad pair %d -> %d", pr.From, pr.To)
		}
		if out, in := pubs[pr.From][pr.OutSlot], pubs[pr.To][pr.InSlot]; !out.Equal(&in) {
			return nil, bad("segment %d's output commitment for segment %d is not segment %d's input commitment for segment %d", pr.From, pr.To, pr.To, pr.From)
		}
	}
	// The boundary commitments the bundle lists (for its readers) are the pair
	// table's and the proofs'.
	for i, s := range pl.Segments {
		in, out := links(s, pubs[i])
		sp := b.Segments[i]
		if !slices.Equal(sp.InCommitments, in) || !slices.Equal(sp.OutCommitments, out) {
			return nil, bad("segment %d lists boundary commitments %v and %v, its proof and the plan's pairs give %v and %v", i, sp.InCommitments, sp.OutCommitments, in, out)
		}
	}
	v := &Verified{Commitments: map[string]string{}}
	first, last := pl.Segments[0].Program, pl.Segments[len(pl.Segments)-1].Program
	fl, ll := circuits.NewLayout(first), circuits.NewLayout(last)
	if first.InputVis == quant.Public {
		for j, s := range fl.Inputs {
			in, ok := signed(pubs[0][s.Offset : s.Offset+s.Len])
			if !ok {
				return nil, bad("public input %d is not an integer tensor", j)
			}
			v.Inputs = append(v.Inputs, in)
		}
	}
	if c, ok := hashOf(first, pubs[0], circuits.TagInputs, circuits.TagInputs); ok {
		v.Commitments["inputs"] = c.String()
	}
	for i, s := range pl.Segments {
		if c, ok := hashOf(s.Program, pubs[i], circuits.TagParams, circuits.TagParams); ok {
			v.Commitments[fmt.Sprintf("params/%d", i)] = c.String()
		}
	}
	if len(b.IntOutputs) != len(ll.Outputs) {
		return nil, bad("%d claimed outputs, want %d", len(b.IntOutputs), len(ll.Outputs))
	}
	switch last.OutputVis {
	case quant.Public:
		for j, s := range ll.Outputs {
			got, ok := signed(pubs[len(pubs)-1][s.Offset : s.Offset+s.Len])
			if !ok || !equal(got, b.IntOutputs[j]) {
				return nil, bad("claimed output %d is not the proven output", j)
			}
			v.Outputs = append(v.Outputs, got)
		}
	case quant.Hashed:
		c, _ := hashOf(last, pubs[len(pubs)-1], circuits.TagOutputs, circuits.TagOutputs)
		v.Commitments["outputs"] = c.String()
		cs, err := circuits.Commitments(last, nil, b.IntOutputs)
		if err != nil {
			return nil, bad("claimed outputs: %v", err)
		}
		for k, h := range ll.Hashes {
			if h.Tag == circuits.TagOutputs && cs[k].Cmp(c.BigInt(new(big.Int))) != 0 {
				return nil, bad("claimed outputs do not match the output commitment")
			}
		}
		v.Outputs = b.IntOutputs
	}
	// The claimed dequantized outputs are the proven integers' (what a reader of the
	// bundle takes for the result); private outputs are not bound, as unsharded.
	if last.OutputVis == quant.Public || last.OutputVis == quant.Hashed {
		want := last.Dequantize(b.IntOutputs)
		if len(b.Outputs) != len(want) {
			return nil, bad("%d claimed dequantized outputs, want %d", len(b.Outputs), len(want))
		}
		for j, w := range want {
			if !slices.Equal(b.Outputs[j], w.Data) {
				return nil, bad("claimed dequantized output %d is not the proven output's", j)
			}
		}
	}
	return v, nil
}

// hashOf returns the public commitment of group tag under domain, if p has one.
func hashOf(p *quant.Program, pub fr.Vector, tag, domain int) (fr.Element, bool) {
	for _, h := range circuits.NewLayout(p).Hashes {
		if h.Tag == tag && h.Domain == domain && h.Offset < len(pub) {
			return pub[h.Offset], true
		}
	}
	return fr.Element{}, false
}

// signed reads field elements as signed integers (x - p for the upper half); ok is
// false if one is not an int64.
func signed(vec fr.Vector) (out []int64, ok bool) {
	out = make([]int64, len(vec))
	half := new(big.Int).Rsh(circuits.Field, 1)
	for i := range vec {
		x := vec[i].BigInt(new(big.Int))
		if x.Cmp(half) > 0 {
			x.Sub(x, circuits.Field)
		}
		if !x.IsInt64() {
			return nil, false
		}
		out[i] = x.Int64()
	}
	return out, true
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
