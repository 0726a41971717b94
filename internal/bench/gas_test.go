package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/evm"
)

// TestRunGas: with Options.Gas every proof is verified again by the exported Solidity
// verifier in the EVM, and the gas table of the markdown report lists each one.
func TestRunGas(t *testing.T) {
	evm.UseCompiler(evm.RequireCompiler(t))
	rs, err := Run(context.Background(), Options{Models: []string{"1l_mlp"}, Systems: []circuits.System{circuits.Groth16, circuits.Plonk}, N: 1, Gas: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Fatalf("%s %s: %s", r.Model, r.System, r.Err)
		}
		// A Groth16 or PLONK verification costs at least its pairing check (2 pairs are
		// 113,000 gas) plus the transaction base; deployment at least a few hundred k.
		if r.VerifyGas < 150_000 || r.VerifyGas > 1_000_000 || r.DeployGas < 500_000 {
			t.Fatalf("%s %s: implausible gas: verify %d, deploy %d", r.Model, r.System, r.VerifyGas, r.DeployGas)
		}
	}
	var b strings.Builder
	writeGas(&b, rs)
	md := b.String()
	if !strings.Contains(md, "## On-chain verification gas per model") {
		t.Fatalf("no gas section:\n%s", md)
	}
	for _, r := range rs {
		row := "| 1l_mlp | " + r.System + " |"
		if !strings.Contains(md, row) {
			t.Fatalf("gas table lacks %q:\n%s", row, md)
		}
	}
	b.Reset()
	rs[0].VerifyGas, rs[1].VerifyGas = 0, 0
	if writeGas(&b, rs); b.Len() != 0 {
		t.Fatalf("gas section without gas figures:\n%s", b.String())
	}
}
