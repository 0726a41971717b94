package prover

import (
	"bytes"
	"testing"

	"github.com/zkml/zkml/circuits"
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
