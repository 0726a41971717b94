package shard

import (
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
		for i := range pl.Segments {
			if _, err := d.Compile(pl, i); err != nil {
				t.Fatal(err)
			}
			if err := d.Setup(i); err != nil {
				t.Fatal(err)
			}
		}
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
