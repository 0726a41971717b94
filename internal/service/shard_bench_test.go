package service_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
)

// TestShardedProofTiming is a measurement, not a test (ZKML_SHARD_BENCH=1): a small
// SqueezeNet sharded by a constraint budget, proved (Groth16) through the service on
// the embedded store with ZKML_SHARD_BENCH_WORKERS workers (default 1 and 2), printing
// the prove job's wall time and the segment proofs' CPU-bound sum. With
// ZKML_SHARD_BENCH_CHILD=1 the engine runs every step in a child process (this test
// binary, as `zkml serve` runs `zkml internal-job`). Figures in docs/bench-notes.md.
func TestShardedProofTiming(t *testing.T) {
	if os.Getenv("ZKML_SHARD_BENCH") == "" {
		t.Skip("measurement; set ZKML_SHARD_BENCH=1")
	}
	onnx, input, _, err := onnxgen.SqueezeNet{Size: 32, Div: 16, Classes: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := prover.Build(onnx, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Compile builds both systems' circuits: the budget is PLONK's (the larger).
	whole, err := bench.EstimateProgram(p, circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	settings := fmt.Sprintf(`{"shard":{"segment_constraints":%d}}`, whole.Constraints*3/4)
	workers := []int{1, 2}
	if w := os.Getenv("ZKML_SHARD_BENCH_WORKERS"); w != "" {
		workers = nil
		for _, f := range strings.Split(w, ",") {
			var n int
			fmt.Sscan(f, &n)
			workers = append(workers, n)
		}
	}
	for _, n := range workers {
		eng := &countingEngine{}
		if os.Getenv("ZKML_SHARD_BENCH_CHILD") == "1" {
			eng.ChildCommand = childCommand(t)
		}
		cfg := fastConfig(backends(t)[0].cfg(t), eng)
		cfg.Workers = n
		cfg.Timeouts.Prove, cfg.Timeouts.Setup, cfg.Timeouts.Compile = time.Hour, time.Hour, time.Hour
		e := newEnv(t, cfg)
		k := e.newKey("bench").Key
		start := time.Now()
		m, cj := e.upload(k, onnx, settings)
		if got := e.wait(k, cj, time.Hour); got.Status != "succeeded" {
			t.Fatalf("compile: %+v", got.Error)
		}
		compiled := time.Since(start)
		var sj api.JobView
		e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"groth16"}`)), 202).json(t, &sj)
		if got := e.wait(k, sj.ID, time.Hour); got.Status != "succeeded" {
			t.Fatalf("setup: %+v", got)
		}
		body, _ := json.Marshal(map[string]any{"input": json.RawMessage(input)})
		var pj api.JobView
		start = time.Now()
		e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
		got := e.wait(k, pj.ID, time.Hour)
		wall := time.Since(start)
		if got.Status != "succeeded" {
			t.Fatalf("prove: %+v", got)
		}
		var pv api.ProofView
		e.want(e.do("GET", "/v1/proofs/"+got.ProofID, k, nil), 200).json(t, &pv)
		t.Logf("workers %d: %d segments (budget %d of the whole's %d constraints), compile %.1fs, proof wall %.1fs, segment proofs sum %.1fs",
			n, got.Segments.Total, whole.Constraints*3/4, whole.Constraints, compiled.Seconds(), wall.Seconds(), pv.ProveSeconds)
	}
}
