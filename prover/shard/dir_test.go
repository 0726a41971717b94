package shard

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestSegmentProvingKeyPointOffCurve: a stored segment proving key is decoded
// without per-point checks (the file is checksum-verified and our own, as
// prover.Model.ProvingKey's), so a key holding a point off the curve, whose manifest
// checksum matches, loads; the segment proof made with it does not verify and Prove
// returns an error, never the bundle.
func TestSegmentProvingKeyPointOffCurve(t *testing.T) {
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		m, err := prover.Create(t.TempDir(), residualNet(t), quant.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		pl := split(t, m.Program, residualCuts(t, m.Program)[:1])
		d := Dir{M: m, Sys: sys}
		setupAll(t, d, pl)
		qi := inputs(t, m.Program, 1)
		if _, err := Prove(pl, m.Program, sys, d, qi); err != nil {
			t.Fatalf("%s: prove with the stored keys: %v", sys, err)
		}
		last := len(pl.Segments) - 1
		pk, err := d.ProvingKey(last)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := adversary.OffCurveProvingKey(pk, prover.EncodeProvingKey)
		if err != nil {
			t.Fatalf("%s: %v", sys, err)
		}
		if err := m.WriteArtifact(segmentFile(last, "pk", sys), bad); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ProvingKey(last); err != nil {
			t.Fatalf("%s: stored segment key decoded with checks: %v", sys, err)
		}
		b, err := Prove(pl, m.Program, sys, d, qi)
		if err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("%s: prove with an off-curve key point: bundle %v, err %v; want the segment proof refused", sys, b != nil, err)
		}
	}
}

// setupAll compiles and sets up every segment of pl into d.
func setupAll(t *testing.T, d Dir, pl *Plan) {
	t.Helper()
	for i := range pl.Segments {
		if _, err := d.Compile(pl, i); err != nil {
			t.Fatal(err)
		}
		if err := d.Setup(i); err != nil {
			t.Fatal(err)
		}
	}
}

// bandedPlan applies splits (one) and cuts after every band of it where a cut is
// allowed.
func bandedPlan(t testing.TB, p *quant.Program, splits []LayerSplit) *Plan {
	t.Helper()
	q, regs, err := applySplits(p, splits)
	if err != nil {
		t.Fatal(err)
	}
	lv := analyze(q)
	var cuts []int
	for _, c := range append(slices.Clone(regs[0].cuts), regs[0].end) {
		if c < len(q.Layers) && cutAllowed(q, lv, c) == "" {
			cuts = append(cuts, c)
		}
	}
	pl, err := SplitWith(p, splits, cuts)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestSetupSharesIdenticalCircuits: segments whose stored circuits are identical (the
// inner bands of a split layer) share the keys of the first of them: one setup and
// one pair of key files per distinct circuit; the bundle proves and verifies with
// them. Keys are refused once a segment's circuit is no longer the one they were made
// for (its own, or the segment it borrows from), and a record that borrows the keys of
// a different circuit is refused.
// (Setup and SetupUniversal share setupWith for both systems: Groth16 is proven here.)
func TestSetupSharesIdenticalCircuits(t *testing.T) {
	for _, sys := range []circuits.System{circuits.Groth16} {
		m, err := prover.Create(t.TempDir(), convNet(t, 1, 3, 3, 24, 12), quant.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		// The first convolution's chain of convNet in 6 bands, a segment each: the
		// inner bands' circuits are identical.
		pl := bandedPlan(t, m.Program, []LayerSplit{{Layer: 0, Count: 3, Bands: 6}})
		// A Model of the directory opened before the setup (a service process
		// holding it) must find the key records written since.
		early, err := prover.Open(m.Dir)
		if err != nil {
			t.Fatal(err)
		}
		d := Dir{M: m, Sys: sys}
		setupAll(t, d, pl)
		first := map[string]int{} // circuit checksum -> first segment with it
		for i := range pl.Segments {
			sum, _ := d.circuitSum(i)
			if _, ok := first[sum]; !ok {
				first[sum] = i
			}
		}
		shared := d.SharedKeys(len(pl.Segments))
		own := 0
		for i, j := range shared {
			sum, _ := d.circuitSum(i)
			if j != first[sum] {
				t.Fatalf("%s: segment %d uses the keys of segment %d, want %d (the first with its circuit)", sys, i, j, first[sum])
			}
			if m.HasArtifact(segmentFile(i, "pk", sys)) != (j == i) {
				t.Fatalf("%s: segment %d: own key file %v, uses segment %d's keys", sys, i, m.HasArtifact(segmentFile(i, "pk", sys)), j)
			}
			if j == i {
				own++
			}
		}
		if own != len(first) || own >= len(pl.Segments)-2 {
			t.Fatalf("%s: %d segments, %d distinct circuits, %d setups", sys, len(pl.Segments), len(first), own)
		}
		t.Logf("%s: %d segments, %d setups", sys, len(pl.Segments), own)
		borrower := -1
		for k, j := range shared {
			if j != k {
				borrower = k
				break
			}
		}
		if _, err := (Dir{M: early, Sys: sys}).VerifyingKey(borrower); err != nil {
			t.Fatalf("%s: segment %d's shared key read through a Model opened before the setup: %v", sys, borrower, err)
		}
		qi := inputs(t, m.Program, 1)
		b, err := Prove(pl, m.Program, sys, d, qi)
		if err != nil {
			t.Fatalf("%s: prove with shared keys: %v", sys, err)
		}
		if _, err := Verify(pl, sys, d.VerifyingKey, b); err != nil {
			t.Fatalf("%s: verify with shared keys: %v", sys, err)
		}

		// A borrowing segment and the segment it borrows from.
		i := borrower
		j := shared[i]
		other := slices.IndexFunc(shared, func(k int) bool { return k != j && shared[k] == k })
		circuitOf := func(k int) []byte {
			raw, err := m.ReadArtifact(segmentFile(k, "circuit", sys))
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		// A record borrowing the keys of a segment with another circuit.
		sumI, _ := d.circuitSum(i)
		if err := d.writeKeyRecord(i, keyRecord{sumI, other}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ProvingKey(i); !errors.Is(err, prover.ErrCorrupt) {
			t.Fatalf("%s: segment %d borrowing segment %d's keys of another circuit: %v, want ErrCorrupt", sys, i, other, err)
		}
		if err := d.writeKeyRecord(i, keyRecord{sumI, j}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.VerifyingKey(i); err != nil {
			t.Fatal(err)
		}
		// The lender's circuit replaced (compiled again, differently): both refused.
		orig := circuitOf(j)
		if err := m.WriteArtifact(segmentFile(j, "circuit", sys), circuitOf(other)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []int{i, j} {
			if _, err := d.ProvingKey(k); !errors.Is(err, prover.ErrCorrupt) {
				t.Fatalf("%s: segment %d's keys after segment %d's circuit changed: %v, want ErrCorrupt", sys, k, j, err)
			}
		}
		// Setup again makes new keys for the new circuit; the borrower now borrows
		// from the first segment that still has its circuit.
		if err := m.WriteArtifact(segmentFile(j, "circuit", sys), orig); err != nil {
			t.Fatal(err)
		}
		if err := m.WriteArtifact(segmentFile(i, "circuit", sys), circuitOf(other)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.VerifyingKey(i); !errors.Is(err, prover.ErrCorrupt) {
			t.Fatalf("%s: segment %d's keys after its circuit changed: %v, want ErrCorrupt", sys, i, err)
		}
		if err := d.Setup(i); err != nil {
			t.Fatal(err)
		}
		if k, err := d.keysOf(i); err != nil || k != min(other, i) {
			t.Fatalf("%s: segment %d set up again on segment %d's circuit uses segment %d's keys (%v), want %d", sys, i, other, k, err, min(other, i))
		}
	}
}
