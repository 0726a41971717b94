package shard

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// skipCuts picks two cuts of the residual net such that a value skips the middle
// segment: the first segment's output (the skip input a) is read by the second
// (conv) and the third (the add), so the plan's pairs are 0->1, 0->2 and 1->2.
func skipCuts(t testing.TB, p *quant.Program) []int {
	t.Helper()
	al := allowed(p)
	for i := range al {
		for j := i + 1; j < len(al); j++ {
			pl, err := Split(p, []int{al[i], al[j]})
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range pl.Pairs {
				if pr.To > pr.From+1 {
					return []int{al[i], al[j]}
				}
			}
		}
	}
	t.Fatal("no plan where a value skips a segment")
	return nil
}

// TestSplitDAG: with a skip connection across two cuts, the value is committed once
// in its producer per consumer and once in each consumer, never in the segment it
// skips; the segments, run on each other's outputs, compute the whole program's.
func TestSplitDAG(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	pl := split(t, p, skipCuts(t, p))
	got := pairsOf(pl)
	if !slices.Equal(got, [][2]int{{0, 1}, {0, 2}, {1, 2}}) {
		t.Fatalf("pairs %v, want 0->1, 0->2, 1->2", got)
	}
	skip := pl.Pairs[1].Values
	if len(skip) != 1 || !slices.Equal(pl.Pairs[0].Values, skip) {
		t.Fatalf("the skip value: pairs %+v %+v", pl.Pairs[0], pl.Pairs[1])
	}
	s0, s1, s2 := pl.Segments[0], pl.Segments[1], pl.Segments[2]
	if slices.Contains(s1.Out, skip[0]) || !slices.Equal(s1.In, skip) {
		t.Fatalf("segment 1 carries the skip value: in %v out %v", s1.In, s1.Out)
	}
	if !slices.Equal(s0.To, []int{1, 2}) || !slices.Equal(s0.Out, []int{skip[0], skip[0]}) || !slices.Equal(s0.Program.OutputGroups, []int{1, 1}) {
		t.Fatalf("segment 0: to %v, out %v, groups %v", s0.To, s0.Out, s0.Program.OutputGroups)
	}
	if !slices.Equal(s2.From, []int{0, 1}) || !slices.Equal(s2.Program.InputGroups, []int{1, 1}) || s1.Program.InputGroups != nil {
		t.Fatalf("segment 2: from %v, groups %v; segment 1 groups %v", s2.From, s2.Program.InputGroups, s1.Program.InputGroups)
	}
	// One commitment per group, each at the slot the pair table records.
	for _, pr := range pl.Pairs {
		lp, lc := circuits.NewLayout(pl.Segments[pr.From].Program), circuits.NewLayout(pl.Segments[pr.To].Program)
		ho, hi := hashAt(lp, pr.OutSlot), hashAt(lc, pr.InSlot)
		if ho == nil || hi == nil || ho.Domain != circuits.TagBoundary || hi.Domain != circuits.TagBoundary ||
			ho.Tag != circuits.TagOutputs || hi.Tag != circuits.TagInputs || ho.Width != hi.Width || ho.Count != len(pr.Values) || hi.Count != len(pr.Values) {
			t.Fatalf("pair %d -> %d: slots %d, %d: %+v %+v", pr.From, pr.To, pr.OutSlot, pr.InSlot, ho, hi)
		}
	}
	checkChain(t, pl, p, 1)
	// The plan ID binds the pair table: another table, same segments, another ID.
	ids := []string{s0.ID, s1.ID, s2.ID}
	for name, f := range map[string]func(ps []*Pair){
		"slot":     func(ps []*Pair) { ps[1].InSlot++ },
		"consumer": func(ps []*Pair) { ps[1].To = 1 },
		"dropped":  func(ps []*Pair) { ps[1] = ps[2] },
	} {
		ps := clonePairs(pl.Pairs)
		f(ps)
		if id, err := PlanID(pl.ModelID, ids, ps); err != nil || id == pl.ID {
			t.Errorf("pair table with another %s: plan ID %s, %v", name, id, err)
		}
	}
	// A two-segment plan's segments are the chain's: one group a side, no groups in
	// the program (their model IDs are as before boundary groups).
	two := split(t, p, residualCuts(t, p)[:1])
	if len(two.Pairs) != 1 || two.Segments[0].Program.OutputGroups != nil || two.Segments[1].Program.InputGroups != nil {
		t.Fatalf("two segments: pairs %+v", two.Pairs)
	}
}

func hashAt(l *circuits.Layout, offset int) *circuits.HashSlot {
	for _, h := range l.Hashes {
		if h.Offset == offset {
			return &h
		}
	}
	return nil
}

// TestLoadRefusesOtherPairs: shard.json records the plan; a recorded pair table
// (or ID) that the model's split does not reproduce is refused.
func TestLoadRefusesOtherPairs(t *testing.T) {
	cfg := quant.DefaultConfig()
	m, err := prover.Create(t.TempDir(), residualNet(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pl := split(t, m.Program, skipCuts(t, m.Program))
	if err := Save(m, pl); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(m); err != nil || got.ID != pl.ID {
		t.Fatalf("load: %v", err)
	}
	for name, f := range map[string]func(rec *Plan){
		"pair slot changed": func(rec *Plan) {
			rec.Pairs[1].InSlot++
			rec.ID, _ = rec.planID()
		},
		"version 1 ID": func(rec *Plan) { rec.ID = strings.Repeat("ab", 32) },
	} {
		rec := *pl
		rec.Pairs = clonePairs(pl.Pairs)
		f(&rec)
		b, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WriteArtifact(PlanFile, b); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(m); !errors.Is(err, prover.ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

// TestBundleDAG proves the residual net in 3 segments with the skip value going from
// segment 0 to segment 2 past segment 1, and checks that a consumer proven over other
// boundary values, commitments swapped between its groups, and a pair table tampered
// in the bundle or in the verifier's plan are refused.
func TestBundleDAG(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	f := proveBundle(t, p, split(t, p, skipCuts(t, p)), circuits.Groth16)
	pl, b, ins := f.pl, f.b, f.ins
	// Segment 2 proven over another skip value (its group from segment 0), the value
	// from segment 1 the true one: only the skip pair 0->2 tells. Its outputs are what
	// the forged value gives, so the proof itself is valid.
	last := 2
	forged, forgedOut := f.proveOn(t, pl.Segments[last], bumped(ins[last], 0))
	// Segment 2 proven with its two groups' values swapped (same shapes): each group's
	// commitment is the other pair's.
	if len(ins[last]) != 2 || len(ins[last][0]) != len(ins[last][1]) {
		t.Fatalf("segment 2's groups: %d tensors", len(ins[last]))
	}
	swapped, swappedOut := f.proveOn(t, pl.Segments[last], [][]int64{ins[last][1], ins[last][0]})
	with := f.tampered
	linked := func(i int, edit func(sp *SegmentProof)) func(c *Bundle) {
		return func(c *Bundle) {
			sp := *c.Segments[i]
			sp.InCommitments, sp.OutCommitments = slices.Clone(sp.InCommitments), slices.Clone(sp.OutCommitments)
			edit(&sp)
			c.Segments[i] = &sp
		}
	}
	for name, bad := range map[string]*Bundle{
		"consumer over another skip value": with(func(c *Bundle) {
			c.Segments[last] = forged
			f.claim(c, forgedOut)
		}),
		"consumer with its groups swapped": with(func(c *Bundle) {
			c.Segments[last] = swapped
			f.claim(c, swappedOut)
		}),
		"listed commitments swapped": with(linked(last, func(sp *SegmentProof) {
			a, b := sp.InCommitments[0], sp.InCommitments[1]
			sp.InCommitments[0].Commitment, sp.InCommitments[1].Commitment = b.Commitment, a.Commitment
		})),
		"listed producer changed":  with(linked(last, func(sp *SegmentProof) { sp.InCommitments[0].Segment = 1 })),
		"listed consumer dropped":  with(linked(0, func(sp *SegmentProof) { sp.OutCommitments = sp.OutCommitments[:1] })),
		"listed commitment forged": with(linked(0, func(sp *SegmentProof) { sp.OutCommitments[1].Commitment = forged.InCommitments[0].Commitment })),
	} {
		if _, err := f.verify(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	// The verifier's own plan with a tampered pair table: its ID is not reproduced (an
	// error, not a verdict on the bundle); with its ID recomputed, the bundle (of the
	// true plan) is refused.
	sys, vk := f.sys, f.keys.VerifyingKey
	tampered := *pl
	tampered.Pairs = clonePairs(pl.Pairs)
	tampered.Pairs[2].InSlot = pl.Pairs[1].InSlot
	if _, err := Verify(&tampered, sys, vk, b); err == nil {
		t.Error("verified against a plan whose pair table its ID does not cover")
	}
	var err error
	if tampered.ID, err = tampered.planID(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(&tampered, sys, vk, b); !errors.Is(err, ErrInvalid) {
		t.Errorf("bundle against another pair table: got %v, want ErrInvalid", err)
	}
	// ... and relabelled with that plan's ID: segment 1's commitment for segment 2 is
	// compared with segment 2's for segment 0.
	relabelled := *b
	relabelled.PlanID = tampered.ID
	if _, err := Verify(&tampered, sys, vk, &relabelled); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "input commitment") {
		t.Errorf("bundle relabelled for another pair table: got %v, want ErrInvalid (commitments)", err)
	}
}

// TestBundleDAGPlonkHashed: the skip plan with PLONK and inputs, outputs and params
// hashed: the first segment's input commitment and the last segment's output
// commitment are the unsharded model's (the model's own groups keep their
// visibility next to the boundary groups), and the bundle verifies.
func TestBundleDAGPlonkHashed(t *testing.T) {
	p := lower(t, residualNet(t), hashedConfig())
	f := proveBundle(t, p, split(t, p, skipCuts(t, p)), circuits.Plonk)
	f.checkWholeCommitments(t)
	if len(f.v.Commitments) != 5 {
		t.Fatalf("bundle commitments %v: want 5", f.v.Commitments)
	}
}

// earlyOutputNet is residualNet with a second model output: the first convolution's
// activation a (also the skip value), produced in the first segment of a split.
func earlyOutputNet(t testing.TB) []byte { return residualNetOutputs(t, true) }

// TestBundleEarlyOutput: a model output produced in the first segment of three and
// read by no later layer past the second goes straight to the last segment (pair
// 0->2), which outputs it with the model's visibility; the bundle verifies, its
// outputs are the whole program's, and a last segment proven over another value of
// that output (its group from segment 0) is refused.
func TestBundleEarlyOutput(t *testing.T) {
	p := lower(t, earlyOutputNet(t), quant.DefaultConfig())
	if len(p.Outputs) != 2 {
		t.Fatalf("%d outputs", len(p.Outputs))
	}
	// The first cut right after a is produced, the second after the Add (the last
	// reader of a): a reaches the last segment only as a model output.
	lv := analyze(p)
	early := p.Outputs[1]
	var cuts []int
	for _, c := range allowed(p) {
		readLater := slices.ContainsFunc(p.Layers[c:], func(l *quant.Layer) bool { return slices.Contains(l.In, early) })
		if len(cuts) == 0 && lv.def[early] < c || len(cuts) == 1 && !readLater {
			cuts = append(cuts, c)
		}
	}
	if len(cuts) < 2 {
		t.Fatalf("no cuts for the early output: %v", cuts)
	}
	cuts = cuts[:2]
	pl := split(t, p, cuts)
	pairs := pairsOf(pl)
	if len(pl.Segments) != 3 || !slices.Contains(pairs, [2]int{0, 2}) || slices.Contains(pl.Segments[1].Out, early) {
		t.Fatalf("cuts %v: pairs %v, segment 1 out %v", cuts, pairs, pl.Segments[1].Out)
	}
	f := proveBundle(t, p, pl, circuits.Groth16)
	// The last segment over another early output: a valid proof of its own, outputs
	// and all, that only the pair 0->2 refuses.
	j := slices.Index(pl.Segments[2].In, early)
	forged, out := f.proveOn(t, pl.Segments[2], bumped(f.ins[2], j))
	c := f.tampered(func(c *Bundle) {
		c.Segments[2] = forged
		f.claim(c, out)
	})
	if _, err := f.verify(c); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "segment 0's output commitment for segment 2") {
		t.Fatalf("last segment over another early output: got %v", err)
	}
}
