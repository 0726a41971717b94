package shard

import (
	"context"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/model/quant"
)

// TestBundleOnEVM deploys Groth16 bundle verifiers of the residual net on an
// in-process EVM: 2 segments (the skip value crossing the cut) and 3 segments with the
// skip value going from segment 0 to segment 2 past segment 1 (pairs 0->1, 0->2, 1->2).
// A valid bundle verifies; a segment of another input's run (a pair's commitments
// differ), the last segment proven over another skip value, swapped segments, a
// missing one and a changed public output do not; a deployment whose pair table is
// not the plan's is refused by the constructor.
func TestBundleOnEVM(t *testing.T) {
	solc := evm.RequireCompiler(t)
	p := lower(t, residualNet(t), quant.DefaultConfig())
	for _, c := range []struct {
		name string
		cuts []int
	}{{"2 segments", residualCuts(t, p)[:1]}, {"3 segments, skip", skipCuts(t, p)}} {
		t.Run(c.name, func(t *testing.T) { bundleOnEVM(t, solc, p, c.cuts) })
	}
}

func bundleOnEVM(t *testing.T, solc *evm.Compiler, p *quant.Program, cuts []int) {
	f := proveBundle(t, p, split(t, p, cuts), circuits.Groth16)
	pl, b := f.pl, f.b
	other := f.prove(t, 2)
	d, err := DeployBundleOnEVM(context.Background(), solc, pl, f.keys.VerifyingKey)
	if err != nil {
		t.Fatal(err)
	}
	ok, gas, err := d.Verify(b)
	if err != nil || !ok {
		t.Fatalf("valid bundle: %v, %v", ok, err)
	}
	t.Logf("%d segments, %d pairs: verify gas %d, deploy gas %d", len(pl.Segments), len(pl.Pairs), gas, d.DeployGas)
	with := f.tampered
	last := len(pl.Segments) - 1
	// The last segment's first public input is its first output (public outputs).
	out := *b.Segments[last]
	out.Public = slices.Clone(out.Public)
	out.Public[12+31] ^= 1
	bad := map[string]*Bundle{
		"segment from another input": with(func(c *Bundle) { c.Segments[1] = other.Segments[1] }),
		"swapped":                    with(func(c *Bundle) { c.Segments[0], c.Segments[1] = c.Segments[1], c.Segments[0] }),
		"dropped":                    with(func(c *Bundle) { c.Segments = c.Segments[:last] }),
		"output changed":             with(func(c *Bundle) { c.Segments[last] = &out }),
	}
	if len(pl.Segments) > 2 {
		// The last segment proven over another value of the skip group (from segment
		// 0), segment 1's group the true one: only the pair 0->2 tells.
		forged, _ := f.proveOn(t, pl.Segments[last], bumped(f.ins[last], 0))
		bad["last segment over another skip value"] = with(func(c *Bundle) { c.Segments[last] = forged })
	}
	for name, bad := range bad {
		if ok, _, err := d.Verify(bad); err != nil || ok {
			t.Errorf("%s: verify = %v, %v; want false", name, ok, err)
		}
	}
	// The constructor recomputes the plan ID from the segment verifiers' model IDs and
	// the pair table: another table (a slot moved) or another order of the segment
	// verifiers is refused.
	art, err := d.artifact(context.Background(), solc)
	if err != nil {
		t.Fatal(err)
	}
	table := PairArgs(pl)
	moved := slices.Clone(table)
	moved[3] = new(big.Int).Add(moved[3], big.NewInt(1))
	reversed := slices.Clone(d.Segments)
	slices.Reverse(reversed)
	for name, args := range map[string][]any{
		"pair slot moved":         {d.Segments, moved},
		"pair dropped":            {d.Segments, table[:len(table)-4]},
		"segment verifiers moved": {reversed, table},
	} {
		if _, _, err := d.deploy(art, pl, args[0], args[1]); err == nil || !strings.Contains(err.Error(), "plan ID") {
			t.Errorf("%s: deploy: %v, want a revert on the plan ID", name, err)
		}
	}
	if _, _, err := d.deploy(art, pl, d.Segments, table); err != nil {
		t.Fatalf("the plan's own table: %v", err)
	}
}
