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
	pl, err := Split(p, residualCuts(t, p)[:1])
	if err != nil {
		t.Fatal(err)
	}
	sys := circuits.Groth16
	keys, err := SetupDev(pl, sys)
	if err != nil {
		t.Fatal(err)
	}
	qi := inputs(t, p, 1)
	b, err := Prove(pl, p, sys, keys, qi)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(pl, sys, keys.VerifyingKey, b); err != nil {
		t.Fatal(err)
	}
	ins, _, _, err := pl.Activations(p, qi)
	if err != nil {
		t.Fatal(err)
	}
	// The last segment with other weights: every witness param entry set to 0 except
	// the first entry of each, so the outputs differ from the model's.
	last := len(pl.Segments) - 1
	s := *pl.Segments[last]
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
	r, err := prog.Eval(ins[last])
	if err != nil {
		t.Fatal(err)
	}
	if slices.EqualFunc(r.Outputs, b.IntOutputs, slices.Equal) {
		t.Fatal("the tampered weights give the model's outputs")
	}
	forged, err := ProveSegment(&s, sys, keys.CCS[last], keys.PK[last], keys.VK[last], ins[last], r.Outputs)
	if err != nil {
		t.Fatal(err)
	}
	c := *b
	c.Segments = slices.Clone(b.Segments)
	c.Segments[last] = forged
	c.IntOutputs = r.Outputs
	v, err := Verify(pl, sys, keys.VerifyingKey, &c)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bundle with another model's weights in segment %d: got %v (verified outputs %v, model's %v), want ErrInvalid",
			last, err, v.Outputs, b.IntOutputs)
	}
}

// TestReviewBundleClaimedFloatOutputs (security review): Bundle.Outputs, the claimed
// dequantized outputs, are documented as checked by Verify ("Verify checks them against
// the last segment's public outputs or output commitment"), but Verify reads only
// IntOutputs: a bundle whose float outputs are not the proven ones verifies.
func TestReviewBundleClaimedFloatOutputs(t *testing.T) {
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
	if _, err := Verify(pl, sys, keys.VerifyingKey, b); err != nil {
		t.Fatal(err)
	}
	c := *b
	c.Outputs = [][]float64{slices.Clone(b.Outputs[0])}
	c.Outputs[0][0] += 100
	if _, err := Verify(pl, sys, keys.VerifyingKey, &c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("claimed float outputs %v (proven %v): got %v, want ErrInvalid", c.Outputs, b.IntOutputs, err)
	}
}
