package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// poolCNN writes onnxgen.PoolCNN{k, h} and its sample input.json into dir: a budget
// below its k x k max-pool's own estimate makes the planner split the pool into bands
// of output rows (shard.LayerSplit) instead of refusing the model.
func poolCNN(t *testing.T, dir string, k, h int64) (onnxPath, inputPath string) {
	t.Helper()
	raw, in, err := onnxgen.PoolCNN{K: k, H: h}.Build()
	if err != nil {
		t.Fatal(err)
	}
	onnxPath, inputPath = filepath.Join(dir, "network.onnx"), filepath.Join(dir, "input.json")
	if err := os.WriteFile(onnxPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputPath, in, 0o644); err != nil {
		t.Fatal(err)
	}
	return onnxPath, inputPath
}

// TestCLIShardedLayerSplit drives a plan with a layer split through the CLI: `compile
// --shard --max-memory` (and setup and prove under the same budget) with a budget
// that the whole model and its max-pool alone are over, so that the planner must
// split the pool into bands; setup, prove and verify of the Groth16 bundle, whose
// proven outputs are the whole program's; and bundles with a changed boundary
// commitment (listed, or inside a segment's public witness) or a changed output are
// INVALID (exit status 2), naming what is wrong.
// threeQuarterBudget is a memory budget of three quarters of the model's whole
// Groth16 estimate above the base: the model is over it unsharded.
func threeQuarterBudget(t *testing.T, onnxPath string) int64 {
	t.Helper()
	raw, err := os.ReadFile(onnxPath)
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := prover.Build(raw, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := bench.EstimateProgram(p, circuits.Groth16)
	if err != nil {
		t.Fatal(err)
	}
	return bench.EstimateBaseMemory + (whole.MemoryBytes-bench.EstimateBaseMemory)*3/4
}

func TestCLIShardedLayerSplit(t *testing.T) {
	onnxPath, input := poolCNN(t, t.TempDir(), 5, 12)
	dir := filepath.Join(t.TempDir(), "m.zkml")
	budget := threeQuarterBudget(t, onnxPath)
	maxMemory := strconv.FormatInt(budget, 10)
	// Unsharded, the model is refused under this budget.
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "whole.zkml"), "--system", "groth16", "--max-memory", maxMemory); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("unsharded compile under %d MiB: %v, want over budget", budget>>20, err)
	}
	out := mustRun(t, "compile", onnxPath, "-d", dir, "--system", "groth16", "--shard", "--max-memory", maxMemory, "--json")
	var rep struct {
		PlanID   string             `json:"plan_id"`
		Splits   []shard.LayerSplit `json:"splits"`
		Segments []json.RawMessage  `json:"segments"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("compile --json: %v\n%s", err, out)
	}
	m, pl := openPlan(t, dir)
	if len(pl.Splits) == 0 || !slices.Equal(pl.Splits, rep.Splits) || pl.ID != rep.PlanID || len(pl.Segments) != len(rep.Segments) || len(pl.Segments) < 2 {
		t.Fatalf("plan %s: splits %+v, %d segments; compile reported %s, %+v, %d segments", pl.ID, pl.Splits, len(pl.Segments), rep.PlanID, rep.Splits, len(rep.Segments))
	}
	if pool := m.Program.Layers[pl.Splits[0].Layer]; pool.Kind != quant.KMax {
		t.Fatalf("split layer %d is %s (%s), want the max-pool", pl.Splits[0].Layer, pool.Name, pool.Kind)
	}
	// A split layer's bands end in different segments, and every segment fits.
	bands := map[int]bool{}
	for i, s := range pl.Segments {
		e, err := bench.EstimateProgram(s.Program, circuits.Groth16)
		if err != nil {
			t.Fatal(err)
		}
		if e.MemoryBytes > budget {
			t.Errorf("segment %d: estimated %d bytes, over the budget of %d", i, e.MemoryBytes, budget)
		}
		for _, l := range pl.Program.Layers[s.First:s.End] {
			if l.OutHi > 0 {
				bands[i] = true
			}
		}
	}
	if len(bands) < 2 {
		t.Fatalf("the split layer's bands are in segments %v, want two or more", bands)
	}
	t.Logf("budget %d MiB: splits %+v, %d segments", budget>>20, pl.Splits, len(pl.Segments))

	_, errOut, err := runBoth(t, "setup", "-d", dir, "--system", "groth16", "--max-memory", maxMemory)
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, errOut)
	}
	// Setup says how many distinct circuits it set up: the segments that share keys
	// are the ones whose stored circuits are identical.
	m, pl = openPlan(t, dir)
	d := shard.Dir{M: m, Sys: circuits.Groth16}
	sums := map[string]bool{}
	shared := d.SharedKeys(len(pl.Segments))
	for i := range pl.Segments {
		sum, _ := m.ArtifactSum(fmt.Sprintf("segment%d.circuit.groth16.bin", i))
		sums[sum] = true
		if j := shared[i]; j < 0 || j > i {
			t.Fatalf("segment %d uses the keys of segment %d", i, j)
		}
	}
	if want := fmt.Sprintf("groth16: %d segments, %d distinct circuits set up", len(pl.Segments), len(sums)); !strings.Contains(errOut, want) {
		t.Fatalf("setup: want %q in\n%s", want, errOut)
	}
	out = mustRun(t, "prove", "-d", dir, "--system", "groth16", "--max-memory", maxMemory, "--input", input)
	if !strings.Contains(out, fmt.Sprintf("bundle of %d segment proofs", len(pl.Segments))) {
		t.Fatalf("prove:\n%s", out)
	}
	// The proven outputs are the unsplit program's on the input.
	rawIn, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.ParseInput(rawIn, m.Graph)
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
	out = mustRun(t, "verify", "-d", dir, "--system", "groth16")
	if !strings.Contains(out, fmt.Sprintf("valid groth16 bundle of %d segment proofs", len(pl.Segments))) ||
		!strings.Contains(out, fmt.Sprintf("proven outputs (integers): %v\n", want.Outputs)) {
		t.Fatalf("verify (want outputs %v):\n%s", want.Outputs, out)
	}
	bundleRaw, err := os.ReadFile(filepath.Join(dir, shard.BundleFile(circuits.Groth16)))
	if err != nil {
		t.Fatal(err)
	}
	var b shard.Bundle
	if err := json.Unmarshal(bundleRaw, &b); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(b.IntOutputs, want.Outputs, slices.Equal) {
		t.Fatalf("bundle outputs %v, want %v", b.IntOutputs, want.Outputs)
	}

	// A consumer of a band boundary: a segment with an input group.
	cons := slices.IndexFunc(b.Segments, func(s *shard.SegmentProof) bool { return len(s.InCommitments) > 0 })
	if cons < 0 {
		t.Fatal("no segment has an input commitment")
	}
	pair := pl.InPairs(cons)[0]
	tampered := map[string]struct {
		change func(b *shard.Bundle)
		reason string
	}{
		"listed boundary commitment": {func(b *shard.Bundle) {
			c := &b.Segments[cons].InCommitments[0]
			c.Commitment = bumpDecimal(t, c.Commitment)
		}, fmt.Sprintf("segment %d lists boundary commitments", cons)},
		"boundary commitment in the public witness": {func(b *shard.Bundle) {
			s := b.Segments[cons]
			s.Public = bumpPublic(t, s.Public, pair.InSlot)
			s.PublicInputs[pair.InSlot] = bumpDecimal(t, s.PublicInputs[pair.InSlot])
			s.InCommitments[0].Commitment = s.PublicInputs[pair.InSlot]
		}, fmt.Sprintf("segment %d: proof does not verify", cons)},
		"output": {func(b *shard.Bundle) {
			b.IntOutputs[0][0]++
		}, "claimed output 0 is not the proven output"},
	}
	for name, c := range tampered {
		var bad shard.Bundle
		if err := json.Unmarshal(bundleRaw, &bad); err != nil {
			t.Fatal(err)
		}
		c.change(&bad)
		path := filepath.Join(t.TempDir(), "bad.json")
		bj, err := json.Marshal(&bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bj, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, "verify", "-d", dir, "--system", "groth16", "--proof", path)
		var ee exitError
		if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID: ") || !strings.Contains(out, c.reason) {
			t.Errorf("%s: err %v, out %q; want exit status 2 and INVALID: ...%s", name, err, out, c.reason)
		}
	}
}

// bumpDecimal returns the decimal field element s plus one.
func bumpDecimal(t *testing.T, s string) string {
	t.Helper()
	out, err := adversary.BumpDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bumpPublic returns the binary public witness pub with its value at slot plus one.
func bumpPublic(t *testing.T, pub []byte, slot int) []byte {
	t.Helper()
	out, err := adversary.BumpPublic(pub, slot)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCLIShardedBudgetBelowLayer: `compile --shard --max-memory` with a budget below
// the structural estimate of the model's largest layer (a max-pool), but not below
// its lowering, is not refused before lowering: the planner splits that layer into
// bands whose segments fit (it was refused, "a segment holds at least one layer",
// since before layers could be split), and setup checks the directory likewise.
func TestCLIShardedBudgetBelowLayer(t *testing.T) {
	onnxPath, _ := poolCNN(t, t.TempDir(), 7, 24)
	raw, err := os.ReadFile(onnxPath)
	if err != nil {
		t.Fatal(err)
	}
	est := graphEstimate(t, raw)
	largest := est.Largest(1)[0]
	budget := bench.EstimateBaseMemory + largest.Bytes*3/4
	if largest.Op != "MaxPool" || est.LoweringBytes() >= budget {
		t.Fatalf("largest layer %s %s, lowering %d bytes: the test needs a pool above the budget of %d and a lowering below it", largest.Op, largest.Name, est.LoweringBytes(), budget)
	}
	maxMemory := strconv.FormatInt(budget, 10)
	dir := filepath.Join(t.TempDir(), "m.zkml")
	out, errOut, err := runBoth(t, "compile", onnxPath, "-d", dir, "--system", "groth16", "--shard", "--max-memory", maxMemory)
	if err != nil {
		t.Fatalf("compile --shard under %d MiB, below the pool's %d MiB: %v\n%s%s", budget>>20, (bench.EstimateBaseMemory+largest.Bytes)>>20, err, out, errOut)
	}
	m, pl := openPlan(t, dir)
	if len(pl.Splits) == 0 || m.Program.Layers[pl.Splits[0].Layer].Name != largest.Name {
		t.Fatalf("splits %+v, want the pool %s split", pl.Splits, largest.Name)
	}
	var b memoryBudget
	t.Setenv(envJobMemory, maxMemory)
	if err := b.checkDir(dir, []circuits.System{circuits.Groth16}); err != nil {
		t.Fatalf("setup's check of the sharded directory: %v", err)
	}
	t.Logf("budget %d MiB: splits %+v, %d segments", budget>>20, pl.Splits, len(pl.Segments))
}

// TestCLIShardedPlanReuse: compile --shard --plan splits as a recorded plan does
// (another directory's shard.json) without planning: the same plan ID, splits and
// segments, every segment checked against the budget; a plan of other settings, one
// that does not rebuild, --plan with --cuts and a plan file over its limit are refused.
func TestCLIShardedPlanReuse(t *testing.T) {
	onnxPath, _ := poolCNN(t, t.TempDir(), 5, 12)
	maxMemory := strconv.FormatInt(threeQuarterBudget(t, onnxPath), 10)
	first := filepath.Join(t.TempDir(), "a.zkml")
	mustRun(t, "compile", onnxPath, "-d", first, "--system", "groth16", "--shard", "--max-memory", maxMemory)
	_, want := openPlan(t, first)
	if len(want.Splits) == 0 {
		t.Fatalf("the budget splits no layer: %+v", want.Splits)
	}
	rec := filepath.Join(first, shard.PlanFile)

	second := filepath.Join(t.TempDir(), "b.zkml")
	_, errOut, err := runBoth(t, "compile", onnxPath, "-d", second, "--system", "groth16", "--shard", "--max-memory", maxMemory, "--plan", rec)
	if err != nil {
		t.Fatalf("compile --plan: %v\n%s", err, errOut)
	}
	_, got := openPlan(t, second)
	if got.ID != want.ID || !slices.Equal(got.Splits, want.Splits) || !slices.Equal(got.Cuts(), want.Cuts()) {
		t.Fatalf("--plan: plan %s splits %+v cuts %v, want %s %+v %v", got.ID, got.Splits, got.Cuts(), want.ID, want.Splits, want.Cuts())
	}
	// Under a smaller budget a segment of the recorded plan is over it: refused.
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "c.zkml"), "--system", "groth16", "--shard",
		"--max-memory", strconv.FormatInt(bench.EstimateBaseMemory+1<<20, 10), "--plan", rec); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("--plan under a smaller budget: %v, want over budget", err)
	}
	// Other settings: another model ID.
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "d.zkml"), "--system", "groth16", "--shard",
		"--max-memory", maxMemory, "--scale", "6", "--plan", rec); err == nil || !strings.Contains(err.Error(), "plan is for model "+want.ModelID) {
		t.Fatalf("--plan of other settings: %v", err)
	}
	// A plan whose splits were edited does not rebuild its ID.
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	var edited map[string]any
	if err := json.Unmarshal(b, &edited); err != nil {
		t.Fatal(err)
	}
	splits := edited["splits"].([]any)
	splits[0].(map[string]any)["bands"] = splits[0].(map[string]any)["bands"].(float64) + 1
	eb, err := json.Marshal(edited)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(bad, eb, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "e.zkml"), "--system", "groth16", "--shard",
		"--max-memory", maxMemory, "--plan", bad); err == nil || !strings.Contains(err.Error(), "--plan") {
		t.Fatalf("--plan with edited splits: %v", err)
	}
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "f.zkml"), "--system", "groth16", "--shard",
		"--max-memory", maxMemory, "--plan", rec, "--cuts", "3"); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Fatalf("--plan with --cuts: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, make([]byte, maxPlanBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "compile", onnxPath, "-d", filepath.Join(t.TempDir(), "g.zkml"), "--system", "groth16", "--shard",
		"--max-memory", maxMemory, "--plan", big); err == nil || !strings.Contains(err.Error(), "byte limit") {
		t.Fatalf("--plan over its size limit: %v", err)
	}
}
