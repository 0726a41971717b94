package prover

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/adversary"
)

// TestProvingKeyStoredRaw: setup stores each system's proving key uncompressed
// (EncodeProvingKey: read ~100x faster than the compressed form), the model proves
// with it, and a directory whose proving key was stored compressed, as before
// 2026-11-30, still opens and proves.
func TestProvingKeyStoredRaw(t *testing.T) {
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		m, in := reluModel(t, sys)
		if err := m.Setup(sys); err != nil {
			t.Fatal(err)
		}
		stored, err := m.ReadArtifact(fileName("pk", sys))
		if err != nil {
			t.Fatal(err)
		}
		pk, err := m.ProvingKey(sys)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := EncodeProvingKey(pk.(writerTo))
		if err != nil {
			t.Fatal(err)
		}
		var compressed bytes.Buffer
		if _, err := pk.(writerTo).WriteTo(&compressed); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, raw) || len(raw) <= compressed.Len() {
			t.Fatalf("%s: stored pk is %d bytes; raw %d, compressed %d: want the raw form stored", sys, len(stored), len(raw), compressed.Len())
		}
		proveAndVerify(t, m, sys, in)

		// A compressed key, as older directories hold.
		if err := m.WriteArtifact(fileName("pk", sys), compressed.Bytes()); err != nil {
			t.Fatal(err)
		}
		old, err := Open(m.Dir)
		if err != nil {
			t.Fatal(err)
		}
		proveAndVerify(t, old, sys, in)
	}
}

// TestProvingKeyPointOffCurve: a stored proving key is decoded without per-point
// checks (the file is checksum-verified and our own; the checks were most of a PLONK
// key's load time), so a key holding a point off the curve, whose manifest checksum
// matches, loads; the proof made with it does not verify and Prove returns an error,
// never the proof.
func TestProvingKeyPointOffCurve(t *testing.T) {
	for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
		m, in := reluModel(t, sys)
		if err := m.Setup(sys); err != nil {
			t.Fatal(err)
		}
		pk, err := m.ProvingKey(sys)
		if err != nil {
			t.Fatal(err)
		}
		bad, err := adversary.OffCurveProvingKey(pk, EncodeProvingKey)
		if err != nil {
			t.Fatalf("%s: %v", sys, err)
		}
		if err := m.WriteArtifact(fileName("pk", sys), bad); err != nil {
			t.Fatal(err)
		}
		re, err := Open(m.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := re.ProvingKey(sys); err != nil {
			t.Fatalf("%s: stored key decoded with checks: %v", sys, err)
		}
		proof, err := re.Prove(sys, in)
		if err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("%s: prove with an off-curve key point: proof %v, err %v; want the proof refused", sys, proof != nil, err)
		}
	}
}
