package bench

import (
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// TestEstimateChargesTerms: the memory estimate charges every multiply-accumulate
// term, EstimateBytesPerTerm in an R1CS sum that stays a linear expression (below
// circuits.WireSumTerms) and EstimateBytesPerWideTerm in one materialized as one wire
// (from WireSumTerms), in one gnark compressed (300 terms) or in PLONK, on top of the
// per-slot cost (#16: the compile's memory grows with the MACs, not only the
// constraints).
func TestEstimateChargesTerms(t *testing.T) {
	for _, c := range []struct {
		k, n int
		wide bool
	}{{circuits.WireSumTerms / 2, 128, false}, {64, 128, true}, {400, 16, true}} {
		p := lowerBytes(t, oneLayer("gemm", c.k, c.n), quant.DefaultConfig())
		terms := int64(c.k * c.n)
		for _, sys := range []circuits.System{circuits.Groth16, circuits.Plonk} {
			est, err := EstimateProgram(p, sys)
			if err != nil {
				t.Fatal(err)
			}
			per := int64(EstimateBytesPerWideTerm)
			if sys == circuits.Groth16 && !c.wide {
				per = EstimateBytesPerTerm
			}
			want := EstimateBaseMemory + BytesPerSlot(sys == circuits.Plonk)*est.Domain + per*terms
			if est.Terms != terms || est.MemoryBytes != want {
				t.Errorf("gemm %dx%d %s: %d terms, %d bytes; want %d terms, %d bytes", c.k, c.n, sys, est.Terms, est.MemoryBytes, terms, want)
			}
		}
	}
}
