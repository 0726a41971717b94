package shard

import (
	"errors"
	"slices"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/model/quant"
)

// TestReviewBundleForeignParams (security review): with hashed (or public) params, a prover who
// holds the segment proving keys proves the last segment with weights that are not the
// model's. Each segment proof verifies against its key (the key fixes the architecture,
// not witness params), the boundary commitments match, and the claimed outputs are what the
// tampered segment proves. shard.Verify must refuse the bundle, as verifier.VerifyModel
// (CheckBinding) refuses an unsharded proof whose params commitment is not the model's.
func TestReviewBundleForeignParams(t *testing.T) {
	for _, vis := range []quant.Visibility{quant.Hashed, quant.Public} {
		t.Run(string(vis), func(t *testing.T) { foreignParams(t, vis) })
	}
}

func foreignParams(t *testing.T, vis quant.Visibility) {
	cfg := quant.DefaultConfig()
	cfg.ParamVis = vis
	p := lower(t, residualNet(t), cfg)
	f := proveBundle(t, p, split(t, p, residualCuts(t, p)[:1]), circuits.Groth16)
	// The last segment with other weights: every witness param entry set to 0 except
	// the first entry of each, so the outputs differ from the model's.
	last := len(f.pl.Segments) - 1
	s := *f.pl.Segments[last]
	prog := *s.Program
	prog.Params = nil
	changed := false
	for _, par := range s.Program.Params {
		c := *par
		if prog.Witness(par) && len(c.Data) > 0 {
			c.Data = make([]int64, len(par.Data))
			c.Data[0] = 1
			changed = true
		}
		prog.Params = append(prog.Params, &c)
	}
	if !changed {
		t.Fatal("the last segment has no witness params")
	}
	s.Program = &prog
	forged, out := f.proveOn(t, &s, f.ins[last])
	if slices.EqualFunc(out, f.b.IntOutputs, slices.Equal) {
		t.Fatal("the tampered weights give the model's outputs")
	}
	c := f.tampered(func(c *Bundle) {
		c.Segments[last] = forged
		c.IntOutputs = out
	})
	v, err := f.verify(c)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bundle with another model's weights in segment %d: got %v (verified outputs %v, model's %v), want ErrInvalid",
			last, err, v.Outputs, f.b.IntOutputs)
	}
}

// TestReviewBundleClaimedFloatOutputs (security review): Bundle.Outputs, the claimed
// dequantized outputs, are documented as checked by Verify ("Verify checks them against
// the last segment's public outputs or output commitment"), but Verify reads only
// IntOutputs: a bundle whose float outputs are not the proven ones verifies.
func TestReviewBundleClaimedFloatOutputs(t *testing.T) {
	p := lower(t, residualNet(t), quant.DefaultConfig())
	f := proveBundle(t, p, split(t, p, residualCuts(t, p)[:1]), circuits.Groth16)
	c := f.tampered(func(c *Bundle) { c.Outputs = edited(c.Outputs, 0, func(x []float64) { x[0] += 100 }) })
	if _, err := f.verify(c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("claimed float outputs %v (proven %v): got %v, want ErrInvalid", c.Outputs, f.b.IntOutputs, err)
	}
}
