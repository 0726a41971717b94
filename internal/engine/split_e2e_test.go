package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// poolCNN is onnxgen.PoolCNN{k, h} and its sample input: a budget below its k x k
// max-pool's own estimate makes the planner split the pool into bands of output rows
// (shard.LayerSplit).
func poolCNN(t *testing.T, k, h int64) (onnxModel, input []byte) {
	t.Helper()
	onnxModel, input, err := onnxgen.PoolCNN{K: k, H: h}.Build()
	if err != nil {
		t.Fatal(err)
	}
	return onnxModel, input
}

// TestShardedLayerSplitWorkerLimit: a model sharded under the worker's own memory
// limit (Engine.Limits, ZKML_MAX_JOB_MEMORY), which the whole model is over in PLONK
// and its max-pool alone too, is compiled with a plan that splits the pool into bands
// (it was refused before lowering: the structural check took the sharded model whole,
// as the CLI did before it checked sharded models for their lowering only), and
// setup's check of its directory passes (it refused it likewise); the model unsharded
// is still refused before lowering. Its Groth16 bundle, proved through the engine's
// sharded steps, verifies with the whole program's outputs, also on-chain; with one
// boundary commitment or one output changed it is invalid, with a reason.
func TestShardedLayerSplitWorkerLimit(t *testing.T) {
	ctx := context.Background()
	onnxModel, input := poolCNN(t, 5, 12)
	_, p, err := prover.Build(onnxModel, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := bench.EstimateProgram(p, circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	limit := bench.EstimateBaseMemory + (whole.MemoryBytes-bench.EstimateBaseMemory)*6/10
	e := &Engine{Limits: bench.Limits{MaxMemoryBytes: limit}}
	dir := t.TempDir()
	info, err := e.Compile(ctx, dir, onnxModel, []byte(`{"shard":{}}`))
	if err != nil {
		t.Fatalf("compile under the worker's limit of %d MiB (whole model %d MiB in PLONK): %v", limit>>20, whole.MemoryBytes>>20, err)
	}
	m, pl, _, err := openSharded(dir, "groth16")
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Splits) == 0 || len(pl.Segments) < 2 {
		t.Fatalf("plan %s: splits %+v, %d segments; want a layer split", pl.ID, pl.Splits, len(pl.Segments))
	}
	if l := m.Program.Layers[pl.Splits[0].Layer]; l.Kind != quant.KMax {
		t.Fatalf("split layer %s is a %s layer, want the max-pool", l.Name, l.Kind)
	}
	for i, s := range pl.Segments {
		for _, sys := range systems {
			est, err := bench.EstimateProgram(s.Program, sys)
			if err != nil {
				t.Fatal(err)
			}
			if est.MemoryBytes > limit {
				t.Errorf("segment %d: %s estimate %d MiB over the limit", i, sys, est.MemoryBytes>>20)
			}
		}
	}
	if !strings.Contains(string(info.Stats), pl.ID) {
		t.Fatalf("model stats do not name the plan %s: %.300s", pl.ID, info.Stats)
	}
	t.Logf("limit %d MiB: splits %+v, %d segments", limit>>20, pl.Splits, len(pl.Segments))
	// Setup's check before lowering takes the directory's model as sharded too (the
	// whole model is over the limit in PLONK only, whose setup is not run here); the
	// same model unsharded is still refused before lowering.
	if err := e.checkDir(dir, circuits.Plonk); err != nil {
		t.Fatalf("PLONK setup's check of the sharded directory: %v", err)
	}
	if _, err := e.Compile(ctx, t.TempDir(), onnxModel, nil); !errors.Is(err, api.ErrOverBudget) || !strings.Contains(err.Error(), "before lowering") {
		t.Fatalf("the model unsharded: %v, want refused before lowering", err)
	}

	res := proveSplitBundle(t, e, dir, "groth16", input)
	// On-chain: the served segment verifiers and bundle verifier accept the bundle's
	// calldata (its pairs carry band boundaries element by element).
	bundleOnChain(t, evm.RequireCompiler(t), e, dir, res)
}

// TestShardedLayerSplitPlonk: a plan that splits the max-pool into bands under a
// segment constraint budget (the compile settings' "shard" object) proves and
// verifies as a PLONK bundle through the engine's sharded steps, with the whole
// program's outputs; tampered, it is invalid.
func TestShardedLayerSplitPlonk(t *testing.T) {
	onnxModel, input := poolCNN(t, 5, 8)
	_, p, err := prover.Build(onnxModel, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := bench.EstimateProgram(p, circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{}
	dir := t.TempDir()
	budget := whole.Constraints * 95 / 100
	if _, err := e.Compile(context.Background(), dir, onnxModel, fmt.Appendf(nil, `{"shard":{"segment_constraints":%d}}`, budget)); err != nil {
		t.Fatal(err)
	}
	_, pl, _, err := openSharded(dir, "plonk")
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Splits) == 0 || len(pl.Segments) < 2 {
		t.Fatalf("plan %s: splits %+v, %d segments; want a layer split", pl.ID, pl.Splits, len(pl.Segments))
	}
	t.Logf("budget %d PLONK constraints (whole %d): splits %+v, %d segments", budget, whole.Constraints, pl.Splits, len(pl.Segments))
	proveSplitBundle(t, e, dir, "plonk", input)
}

// proveSplitBundle sets up a sharded model with a layer split in sys and proves a
// bundle on input through the engine's sharded steps; the bundle verifies with the
// whole program's outputs, and with one boundary commitment or one output changed it
// is invalid, with a reason. It returns the bundle.
func proveSplitBundle(t *testing.T, e *Engine, dir, sys string, input []byte) api.ProofResult {
	t.Helper()
	ctx := context.Background()
	m, pl, _, err := openSharded(dir, sys)
	if err != nil {
		t.Fatal(err)
	}
	// The whole program's outputs on the input.
	in, err := model.ParseInput(input, m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := m.Program.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Program.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Setup(ctx, dir, sys); err != nil {
		t.Fatalf("%s setup: %v", sys, err)
	}
	acts, n, err := e.PrepareSegments(ctx, dir, sys, input)
	if err != nil || n != len(pl.Segments) {
		t.Fatalf("%s prepare: %d segments, %v", sys, n, err)
	}
	var segs [][]byte
	for i := range n {
		sp, err := e.ProveSegment(ctx, dir, sys, acts, i)
		if err != nil {
			t.Fatalf("%s segment %d: %v", sys, i, err)
		}
		segs = append(segs, sp)
	}
	res, err := e.AssembleBundle(ctx, dir, sys, acts, segs)
	if err != nil {
		t.Fatalf("%s assemble: %v", sys, err)
	}
	var b shard.Bundle
	if err := json.Unmarshal(res.Proof, &b); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(b.IntOutputs, want.Outputs, slices.Equal) {
		t.Fatalf("%s bundle outputs %v, want the whole program's %v", sys, b.IntOutputs, want.Outputs)
	}
	if v, err := e.VerifyBundle(ctx, dir, sys, res.Proof); err != nil || !v.Valid {
		t.Fatalf("%s bundle: %+v, %v", sys, v, err)
	}
	// A segment importing a band boundary, and its first input pair.
	cons := slices.IndexFunc(pl.Segments, func(s *shard.Segment) bool { return len(s.From) > 0 })
	if cons < 0 {
		t.Fatal("no segment imports a boundary")
	}
	for name, change := range map[string]func(b *shard.Bundle){
		"boundary commitment": func(b *shard.Bundle) {
			// The commitment among the consumer's public inputs (and as listed):
			// its proof no longer verifies.
			s, slot := b.Segments[cons], pl.InPairs(cons)[0].InSlot
			s.PublicInputs[slot] = plusOne(t, s.PublicInputs[slot])
			s.InCommitments[0].Commitment = s.PublicInputs[slot]
			s.Public = publicPlusOne(t, s.Public, slot)
		},
		"output": func(b *shard.Bundle) { b.IntOutputs[0][0]++ },
	} {
		var bad shard.Bundle
		if err := json.Unmarshal(res.Proof, &bad); err != nil {
			t.Fatal(err)
		}
		change(&bad)
		raw, err := json.Marshal(&bad)
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.VerifyBundle(ctx, dir, sys, raw)
		if err != nil || v.Valid || !strings.Contains(v.Reason, "invalid bundle") {
			t.Errorf("%s bundle with a changed %s: %+v, %v; want invalid with a reason", sys, name, v, err)
		}
	}
	return res
}

// plusOne returns the decimal field element s plus one.
func plusOne(t *testing.T, s string) string {
	t.Helper()
	out, err := adversary.BumpDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publicPlusOne returns the binary public witness pub with its value at slot plus one.
func publicPlusOne(t *testing.T, pub []byte, slot int) []byte {
	t.Helper()
	out, err := adversary.BumpPublic(pub, slot)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
