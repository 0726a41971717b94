package shard

import (
	"context"
	"slices"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/model/quant"
)

// TestBundleOnEVM deploys the residual net's 2-segment Groth16 bundle verifier (the
// skip value crossing the cut) on an in-process EVM: a valid bundle verifies; a
// segment of another input's run (the chain breaks), swapped segments, a missing one
// and a changed public output do not.
func TestBundleOnEVM(t *testing.T) {
	solc := evm.RequireCompiler(t)
	p := lower(t, residualNet(t), quant.DefaultConfig())
	pl, err := Split(p, residualCuts(t, p)[:1])
	if err != nil {
		t.Fatal(err)
	}
	sys := circuits.Groth16
	keys, err := SetupDev(pl, sys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prove(pl, p, sys, keys, inputs(t, p, 1))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Prove(pl, p, sys, keys, inputs(t, p, 2))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DeployBundleOnEVM(context.Background(), solc, pl, keys.VerifyingKey)
	if err != nil {
		t.Fatal(err)
	}
	ok, gas, err := d.Verify(b)
	if err != nil || !ok {
		t.Fatalf("valid bundle: %v, %v", ok, err)
	}
	t.Logf("%d segments: verify gas %d, deploy gas %d", len(pl.Segments), gas, d.DeployGas)
	with := func(f func(c *Bundle)) *Bundle {
		c := *b
		c.Segments = slices.Clone(b.Segments)
		f(&c)
		return &c
	}
	// The last segment's first public input is its first output (public outputs).
	out := *b.Segments[1]
	out.Public = slices.Clone(out.Public)
	out.Public[12+31] ^= 1
	for name, bad := range map[string]*Bundle{
		"segment from another input": with(func(c *Bundle) { c.Segments[1] = other.Segments[1] }),
		"swapped":                    with(func(c *Bundle) { c.Segments[0], c.Segments[1] = c.Segments[1], c.Segments[0] }),
		"dropped":                    with(func(c *Bundle) { c.Segments = c.Segments[:1] }),
		"output changed":             with(func(c *Bundle) { c.Segments[1] = &out }),
	} {
		if ok, _, err := d.Verify(bad); err != nil || ok {
			t.Errorf("%s: verify = %v, %v; want false", name, ok, err)
		}
	}
}
