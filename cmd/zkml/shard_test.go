package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/ptautest"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// TestCLISharded compiles a small CNN into 2 segments (cut before its fully connected
// layer), sets up, proves and verifies the bundle; a bundle with its segments swapped
// is INVALID (exit status 2).
func TestCLISharded(t *testing.T) {
	model := filepath.Join(modelsDir, "3l_relu_conv_fc")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	onnx, input := filepath.Join(model, "network.onnx"), filepath.Join(model, "input.json")
	out, err := run(t, "compile", onnx, "-d", dir, "--system", "groth16", "--shard", "--cuts", "7")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if !strings.Contains(out, "sharded into 2 segments") || !strings.Contains(out, "[7, 9)") {
		t.Fatalf("compile report:\n%s", out)
	}
	// Cutting off a linear layer's accumulator is refused.
	if _, err := run(t, "compile", onnx, "-d", filepath.Join(t.TempDir(), "x.zkml"), "--system", "groth16", "--shard", "--cuts", "8"); !errors.Is(err, shard.ErrBadCut) {
		t.Fatalf("cut after Gemm's accumulator: %v", err)
	}
	if _, err := run(t, "setup", "-d", dir); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if out, err = run(t, "prove", "-d", dir, "--input", input); err != nil || !strings.Contains(out, "bundle of 2 segment proofs") {
		t.Fatalf("prove: %v\n%s", err, out)
	}
	if out, err = run(t, "verify", "-d", dir); err != nil || !strings.Contains(out, "valid groth16 bundle of 2 segment proofs") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, shard.BundleFile("groth16")))
	if err != nil {
		t.Fatal(err)
	}
	var b shard.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	// On-chain artifacts of the bundle (they were not written for sharded models):
	// each segment's verifier, the bundle verifier with its constructor arguments, and
	// the bundle's calldata.
	out, err = run(t, "export-verifier", "-d", dir)
	if err != nil {
		t.Fatalf("export-verifier: %v", err)
	}
	for _, f := range []string{"segment0/ZKMLVerifier.sol", "segment1/ZKMLVerifier.sol", "ZKMLBundleVerifier.sol"} {
		src, err := os.ReadFile(filepath.Join(dir, "contracts-groth16", f))
		if err != nil || !strings.Contains(string(src), "contract ") {
			t.Fatalf("export-verifier did not write %s: %v\n%s", f, err, out)
		}
	}
	bundleSrc, _ := os.ReadFile(filepath.Join(dir, "contracts-groth16", "ZKMLBundleVerifier.sol"))
	if !strings.Contains(string(bundleSrc), "planId_    = 0x"+b.PlanID) {
		t.Fatalf("bundle verifier header lacks the plan ID:\n%.600s", bundleSrc)
	}
	want, err := shard.Calldata(&b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = run(t, "calldata", "-d", dir); err != nil || strings.TrimSpace(out) != "0x"+hex.EncodeToString(want) {
		t.Fatalf("calldata: %v\n%.200s", err, out)
	}

	b.Segments[0], b.Segments[1] = b.Segments[1], b.Segments[0]
	swapped, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, swapped, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "verify", "-d", dir, "--proof", bad)
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID") {
		t.Fatalf("swapped bundle: err %v, out %q; want exit status 2 and INVALID", err, out)
	}
}

// TestCLIShardedBudget: a --max-memory below the whole model's structural estimate
// refuses the model before lowering it unsharded, but not with --shard: a sharded
// model is checked, before lowering, only for its lowering (the pre-lowering check
// refused it whole before it knew about --shard), then segment by segment; a budget
// below the lowering is refused before lowering, one below the largest layer is not
// (the planner splits that layer, TestCLIShardedBudgetBelowLayer).
func TestCLIShardedBudget(t *testing.T) {
	model := filepath.Join(modelsDir, "3l_relu_conv_fc")
	onnx := filepath.Join(model, "network.onnx")
	raw, err := os.ReadFile(onnx)
	if err != nil {
		t.Fatal(err)
	}
	est := graphEstimate(t, raw)
	whole := est.Groth16.MemoryBytes
	largest := est.Largest(1)[0]
	floor := est.LoweringBytes()
	if layer := bench.EstimateBaseMemory + largest.Bytes; floor >= layer || layer >= whole {
		t.Fatalf("model too small for the test: whole %d, largest layer %d, lowering %d", whole, layer, floor)
	}
	groth16 := []circuits.System{circuits.Groth16}
	var b memoryBudget
	t.Setenv(envJobMemory, strconv.FormatInt(whole-1, 10))
	if err := b.checkGraph(raw, quant.DefaultConfig(), groth16, false, nil); !errors.Is(err, bench.ErrOverBudget) {
		t.Fatalf("unsharded, over the budget: %v", err)
	}
	if err := b.checkGraph(raw, quant.DefaultConfig(), groth16, true, nil); err != nil {
		t.Fatalf("sharded, lowering and largest layer within the budget: %v", err)
	}
	// Through the CLI: past the structural check, each segment is checked (this small
	// model's segments, with their boundary commitments, do not fit a budget just
	// below its largest layer).
	dir := filepath.Join(t.TempDir(), "m.zkml")
	_, err = run(t, "compile", onnx, "-d", dir, "--system", "groth16", "--shard", "--cuts", "7", "--max-memory", strconv.FormatInt(bench.EstimateBaseMemory+largest.Bytes-1, 10))
	if err == nil || strings.Contains(err.Error(), "before lowering") || !strings.Contains(err.Error(), "segment 0") {
		t.Fatalf("sharded compile: %v; want a segment's refusal, not the whole model's", err)
	}
	t.Setenv(envJobMemory, strconv.FormatInt(bench.EstimateBaseMemory+largest.Bytes-1, 10))
	if err := b.checkGraph(raw, quant.DefaultConfig(), groth16, true, nil); err != nil {
		t.Fatalf("sharded, below the largest layer but not the lowering: %v", err)
	}
	t.Setenv(envJobMemory, strconv.FormatInt(floor-1, 10))
	err = b.checkGraph(raw, quant.DefaultConfig(), groth16, true, nil)
	if !errors.Is(err, bench.ErrOverBudget) || !strings.Contains(err.Error(), "lowering the model") {
		t.Fatalf("sharded, below the lowering: %v", err)
	}
}

// TestCLIShardedUniversalSetup: `setup --srs` of a sharded model makes every segment's
// PLONK keys on the public SRS (it was refused: development keys only), the bundle
// proves and verifies, and its trust is universal-srs; Groth16 is refused with --srs;
// a bundle with one development segment key is reported as development.
func TestCLIShardedUniversalSetup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relu.zkml")
	cache := t.TempDir()
	// The boundary commitments make a segment larger than the whole tiny model: a
	// (test-only, known-τ) ptau file of power 12 instead of the bundled power-9 one.
	ptau := filepath.Join(t.TempDir(), "pot12.ptau")
	if err := ptautest.Write(ptau, 12, 5, 7, 11); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "compile", reluONNX, "-d", dir, "--system", "plonk", "--shard", "--cuts", "1")
	out := mustRun(t, "setup", "-d", dir, "--system", "plonk", "--srs", ptau, "--srs-cache", cache)
	if !strings.Contains(out, "plonk keys: universal-srs") {
		t.Fatalf("setup --srs output:\n%s", out)
	}
	if _, _, err := runBoth(t, "setup", "-d", dir, "--system", "groth16", "--srs", testPtau); err == nil || !strings.Contains(err.Error(), "PLONK") {
		t.Fatalf("setup --srs for groth16: %v", err)
	}
	input := filepath.Join(filepath.Dir(reluONNX), "input.json")
	mustRun(t, "prove", "-d", dir, "--system", "plonk", "--input", input)
	out = mustRun(t, "verify", "-d", dir, "--system", "plonk")
	if !strings.Contains(out, "valid plonk bundle of 2 segment proofs") || !strings.Contains(out, "plonk keys: universal-srs") {
		t.Fatalf("verify:\n%s", out)
	}
	m, pl := openPlan(t, dir)
	d := shard.Dir{M: m, Sys: circuits.Plonk}
	if err := d.Setup(1); err != nil {
		t.Fatal(err)
	}
	if tr := d.Trust(pl).Trust; tr != prover.TrustDevelopment {
		t.Fatalf("a bundle with a development segment key: trust %q", tr)
	}
	// --resume keeps segment 0's keys (this file's) and makes segment 1's again on the
	// SRS: its development keys are not what was asked for.
	sum0 := pkSum(t, dir, 0, circuits.Plonk)
	_, errOut, err := runBoth(t, "setup", "-d", dir, "--system", "plonk", "--srs", ptau, "--srs-cache", cache, "--resume")
	if err != nil || !strings.Contains(errOut, "plonk: kept the keys of 1 of 2 segments") {
		t.Fatalf("setup --srs --resume: %v\n%s", err, errOut)
	}
	m, pl = openPlan(t, dir)
	if tr := (shard.Dir{M: m, Sys: circuits.Plonk}).Trust(pl).Trust; tr != prover.TrustUniversalSRS || pkSum(t, dir, 0, circuits.Plonk) != sum0 {
		t.Fatalf("after --resume: trust %q, segment 0's key kept: %v", tr, pkSum(t, dir, 0, circuits.Plonk) == sum0)
	}
}

// TestCLIShardedResume: `setup --resume` after a setup that stopped part way keeps
// the keys already made (byte for byte) and makes the rest, and the bundle proves and
// verifies; `prove --resume` uses the segment proofs the last prove stored; a setup
// without --resume makes every segment's keys again, and proofs made with the old
// keys are then proved again; --resume of an unsharded model is refused.
func TestCLIShardedResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relu.zkml")
	mustRun(t, "compile", reluONNX, "-d", dir, "--system", "groth16", "--shard", "--cuts", "1")
	m, _ := openPlan(t, dir)
	if err := (shard.Dir{M: m, Sys: circuits.Groth16}).Setup(0); err != nil {
		t.Fatal(err)
	}
	sum0 := pkSum(t, dir, 0, circuits.Groth16)
	_, errOut, err := runBoth(t, "setup", "-d", dir, "--resume")
	if err != nil || !strings.Contains(errOut, "groth16: kept the keys of 1 of 2 segments") || strings.Contains(errOut, "setup groth16 segment 0") || !strings.Contains(errOut, "setup groth16 segment 1") {
		t.Fatalf("setup --resume: %v\n%s", err, errOut)
	}
	if pkSum(t, dir, 0, circuits.Groth16) != sum0 {
		t.Fatal("setup --resume made segment 0's keys again")
	}
	input := filepath.Join(filepath.Dir(reluONNX), "input.json")
	mustRun(t, "prove", "-d", dir, "--input", input)
	if out := mustRun(t, "verify", "-d", dir); !strings.Contains(out, "valid groth16 bundle of 2 segment proofs") {
		t.Fatalf("verify:\n%s", out)
	}
	if _, errOut, err = runBoth(t, "setup", "-d", dir, "--resume"); err != nil || !strings.Contains(errOut, "groth16: kept the keys of 2 of 2 segments") {
		t.Fatalf("setup --resume, all set up: %v\n%s", err, errOut)
	}
	if _, errOut, err = runBoth(t, "prove", "-d", dir, "--input", input, "--resume"); err != nil || !strings.Contains(errOut, "reused the proofs of 2 of 2 segments") {
		t.Fatalf("prove --resume: %v\n%s", err, errOut)
	}
	mustRun(t, "verify", "-d", dir)
	mustRun(t, "setup", "-d", dir)
	if pkSum(t, dir, 0, circuits.Groth16) == sum0 {
		t.Fatal("setup without --resume kept segment 0's keys")
	}
	if _, errOut, err = runBoth(t, "prove", "-d", dir, "--input", input, "--resume"); err != nil || !strings.Contains(errOut, "reused the proofs of 0 of 2 segments") {
		t.Fatalf("prove --resume after new keys: %v\n%s", err, errOut)
	}
	mustRun(t, "verify", "-d", dir)
	plain := filepath.Join(t.TempDir(), "plain.zkml")
	mustRun(t, "compile", reluONNX, "-d", plain, "--system", "groth16")
	for _, cmd := range [][]string{{"setup", "-d", plain, "--resume"}, {"prove", "-d", plain, "--input", input, "--resume"}} {
		if _, _, err := runBoth(t, cmd...); err == nil || !strings.Contains(err.Error(), "--resume") {
			t.Fatalf("%s --resume of an unsharded model: %v", cmd[0], err)
		}
	}
}

// pkSum is the stored checksum of segment i's proving key file, read afresh.
func pkSum(t *testing.T, dir string, i int, sys circuits.System) string {
	t.Helper()
	m, err := prover.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, ok := m.ArtifactSum(fmt.Sprintf("segment%d.pk.%s.bin", i, sys))
	if !ok {
		t.Fatalf("segment %d has no %s proving key", i, sys)
	}
	return sum
}

// openPlan opens a sharded model directory and its plan.
func openPlan(t *testing.T, dir string) (*prover.Model, *shard.Plan) {
	t.Helper()
	m, err := prover.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := shard.Load(m)
	if err != nil {
		t.Fatal(err)
	}
	return m, pl
}
