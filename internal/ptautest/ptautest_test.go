package ptautest

import (
	"math/big"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/kzg"

	"github.com/zkml/zkml/srs"
)

// TestWriteImports checks a written file passes every import check and holds the powers
// of the chosen τ (compared with gnark-crypto's own KZG SRS for that τ).
func TestWriteImports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.ptau")
	if err := Write(path, 5, 7, 11, 13); err != nil {
		t.Fatal(err)
	}
	if _, err := srs.Import(path, 5, srs.Groth16); err != nil {
		t.Fatal(err)
	}
	s, err := srs.Import(path, 5, srs.KZG)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kzg.NewSRS(uint64(len(s.TauG1)), big.NewInt(7))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Pk.G1 {
		if !want.Pk.G1[i].Equal(&s.TauG1[i]) {
			t.Fatalf("tauG1[%d] differs", i)
		}
	}
	if !want.Vk.G2[1].Equal(&s.TauG2[1]) {
		t.Fatal("tauG2[1] differs")
	}
	// The prepared file's Lagrange block passes the reader's check (it is compared with
	// the powers) and equals the computed basis.
	prep := filepath.Join(t.TempDir(), "p.ptau")
	if err := WritePrepared(prep, 5, 7, 11, 13, 3, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := srs.Import(prep, 3, srs.Groth16); err != nil { // all four bases at 2^3
		t.Fatal(err)
	}
	sp, err := srs.Import(prep, 5, srs.KZG)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.LagrangeG1 {
		if !s.LagrangeG1[i].Equal(&sp.LagrangeG1[i]) {
			t.Fatalf("lagrange[%d] differs", i)
		}
	}
}
