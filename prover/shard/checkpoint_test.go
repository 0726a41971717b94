package shard

import (
	"slices"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// TestProveCheckpoint: a proving that stopped part way goes on with its saved segment
// proofs. ProveWith uses a saved proof only where it proves this inference's segment
// (Reusable), proves and saves the rest, and the bundle verifies; a saved proof of
// another inference, of another segment, or with its proof or listed public inputs
// changed is never put into the bundle as it is.
func TestProveCheckpoint(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	f := proveBundle(t, p, split(t, p, skipCuts(t, p)), circuits.Groth16)
	n := len(f.pl.Segments)
	other := f.prove(t, 2) // the bundle of another inference
	if slices.Equal(other.Segments[0].Public, f.b.Segments[0].Public) {
		t.Fatal("fixture: the two inferences have the same first segment's public values")
	}
	flipped := *f.b.Segments[1]
	flipped.Proof = slices.Clone(flipped.Proof)
	flipped.Proof[len(flipped.Proof)/2] ^= 1
	relisted := *f.b.Segments[0]
	relisted.PublicInputs = slices.Clone(relisted.PublicInputs)
	relisted.PublicInputs[0] = "12345"
	relisted.InCommitments = append(relisted.InCommitments, Link{Segment: 9, Commitment: "1"})

	for _, tc := range []struct {
		name   string
		saved  []*SegmentProof // per segment, nil for none
		reused int
	}{
		{"stopped after segment 0", []*SegmentProof{f.b.Segments[0]}, 1},
		{"all saved", f.b.Segments, n},
		{"another inference", other.Segments, 0},
		{"another segment's", []*SegmentProof{f.b.Segments[1], f.b.Segments[0]}, 0},
		{"proof bytes changed", []*SegmentProof{nil, &flipped}, 0},
		{"listed inputs changed", []*SegmentProof{&relisted}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var saves []int
			cp := &Checkpoint{
				Saved: func(i int) *SegmentProof {
					if i < len(tc.saved) {
						return tc.saved[i]
					}
					return nil
				},
				Save: func(sp *SegmentProof) error { saves = append(saves, sp.Index); return nil },
			}
			b, err := ProveWith(f.pl, f.p, f.sys, f.keys, f.qi, cp)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Reused != tc.reused || len(saves) != n-tc.reused {
				t.Fatalf("reused %d (want %d), saved %v", cp.Reused, tc.reused, saves)
			}
			if _, err := f.verify(b); err != nil {
				t.Fatalf("bundle with %d reused proofs: %v", cp.Reused, err)
			}
			if !slices.Equal(b.Segments[0].PublicInputs, f.b.Segments[0].PublicInputs) || !slices.EqualFunc(b.Segments[0].InCommitments, f.b.Segments[0].InCommitments, func(a, b Link) bool { return a == b }) {
				t.Fatal("segment 0's listed public inputs are not rebuilt from its witness")
			}
		})
	}
}
