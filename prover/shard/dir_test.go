package shard

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"

	"github.com/zkml/zkml/circuits"
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
		// Move one point every proof uses off the curve: PLONK's [τ]₁ (commitments to
		// the quotient and the openings), Groth16's [α]₁.
		var p *bn254.G1Affine
		switch k := pk.(type) {
		case *plonkbn254.ProvingKey:
			p = &k.Kzg.G1[1]
		case *groth16bn254.ProvingKey:
			p = &k.G1.Alpha
		default:
			t.Fatalf("%s: proving key %T", sys, pk)
		}
		var one fp.Element
		one.SetOne()
		p.Y.Add(&p.Y, &one)
		if p.IsOnCurve() {
			t.Fatal("tampered point still on the curve")
		}
		bad, err := prover.EncodeProvingKey(pk.(io.WriterTo))
		if err != nil {
			t.Fatal(err)
		}
		var checked io.ReaderFrom = groth16.NewProvingKey(ecc.BN254)
		if sys == circuits.Plonk {
			checked = plonk.NewProvingKey(ecc.BN254)
		}
		if _, err := checked.ReadFrom(bytes.NewReader(bad)); err == nil {
			t.Fatalf("%s: gnark's checked decoder accepts the tampered key", sys)
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
