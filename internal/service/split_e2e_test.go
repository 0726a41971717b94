package service_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/bench"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/onnxgen"
	"github.com/zkml/zkml/model"
	"github.com/zkml/zkml/model/quant"
	"github.com/zkml/zkml/prover"
	"github.com/zkml/zkml/prover/shard"
)

// poolCNN is onnxgen.PoolCNN{5, 12} and its sample input: a budget below its 5x5
// max-pool's own estimate makes the planner split the pool into bands.
func poolCNN(t *testing.T) (onnxModel, input []byte) {
	t.Helper()
	onnxModel, input, err := onnxgen.PoolCNN{K: 5, H: 12}.Build()
	if err != nil {
		t.Fatal(err)
	}
	return onnxModel, input
}

// TestShardedLayerSplitService runs a plan with a layer split through the HTTP API on
// the embedded store, with the engine as `zkml serve` runs it (each step in a child
// process) under a worker memory limit that the whole model is over in PLONK and its
// max-pool alone too: upload with a "shard" object (no limits of its own: the
// worker's apply), the compile job splits the pool into bands, setup, a prove job
// whose segment jobs all succeed, the bundle's outputs are the whole program's, it
// verifies, and with a boundary commitment changed it is invalid, not an error.
func TestShardedLayerSplitService(t *testing.T) {
	onnxModel, input := poolCNN(t)
	g, p, err := prover.Build(onnxModel, quant.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := bench.EstimateProgram(p, circuits.Plonk)
	if err != nil {
		t.Fatal(err)
	}
	limit := bench.EstimateBaseMemory + (whole.MemoryBytes-bench.EstimateBaseMemory)*6/10
	eng := &engine.Engine{Limits: bench.Limits{MaxMemoryBytes: limit}, ChildCommand: childCommand(t)}
	cfg := fastConfig(backends(t)[0].cfg(t), eng)
	e := newEnv(t, cfg)
	k := e.newKey("dapp").Key

	m, cj := e.upload(k, onnxModel, `{"shard":{}}`)
	if got := e.wait(k, cj, 30*time.Second); got.Status != "succeeded" {
		t.Fatalf("compile under a worker limit of %d MiB: %+v (error %+v)", limit>>20, got, got.Error)
	}
	dir := filepath.Join(cfg.DataDir, "work", "models", m)
	mod, err := prover.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := shard.Load(mod)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Splits) == 0 || len(pl.Segments) < 2 {
		t.Fatalf("plan %s: splits %+v, %d segments; want a layer split", pl.ID, pl.Splits, len(pl.Segments))
	}
	var mv api.ModelView
	e.want(e.do("GET", "/v1/models/"+m, k, nil), 200).json(t, &mv)
	if !strings.Contains(string(mv.Stats), pl.ID) {
		t.Fatalf("model stats do not name the plan %s: %.300s", pl.ID, mv.Stats)
	}
	var sj api.JobView
	e.want(e.do("POST", "/v1/models/"+m+"/setup", k, strings.NewReader(`{"system":"groth16"}`)), 202).json(t, &sj)
	if got := e.wait(k, sj.ID, 30*time.Second); got.Status != "succeeded" {
		t.Fatalf("setup: %+v (error %+v)", got, got.Error)
	}

	body, _ := json.Marshal(map[string]any{"input": json.RawMessage(input)})
	var pj api.JobView
	e.want(e.prove(k, m, string(body)), 202).json(t, &pj)
	got := e.wait(k, pj.ID, 60*time.Second)
	n := len(pl.Segments)
	if got.Status != "succeeded" || got.ProofID == "" || got.Segments == nil || *got.Segments != (api.SegmentsView{Done: n, Total: n}) {
		t.Fatalf("prove job = %+v (segments %+v, error %+v)", got, got.Segments, got.Error)
	}
	var pv api.ProofView
	e.want(e.do("GET", "/v1/proofs/"+got.ProofID, k, nil), 200).json(t, &pv)
	var b shard.Bundle
	if err := json.Unmarshal(pv.Bundle, &b); err != nil || b.PlanID != pl.ID || len(b.Segments) != n {
		t.Fatalf("proof view bundle: %v, %.300s", err, pv.Bundle)
	}
	in, err := model.ParseInput(input, g)
	if err != nil {
		t.Fatal(err)
	}
	qi, err := p.QuantizeInputs(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Eval(qi)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(b.IntOutputs, want.Outputs, slices.Equal) {
		t.Fatalf("bundle outputs %v, want the whole program's %v", b.IntOutputs, want.Outputs)
	}
	verify := func(req any) (valid bool, reason string) {
		t.Helper()
		var v struct {
			Valid  bool   `json:"valid"`
			Reason string `json:"reason"`
		}
		e.want(e.do("POST", "/v1/verify", k, jsonBody(req)), 200).json(t, &v)
		return v.Valid, v.Reason
	}
	if ok, why := verify(map[string]any{"proof_id": pv.ID}); !ok {
		t.Fatalf("stored bundle: invalid (%s)", why)
	}
	// The first input group of a segment that imports one, as listed.
	cons := slices.IndexFunc(b.Segments, func(s *shard.SegmentProof) bool { return len(s.InCommitments) > 0 })
	if cons < 0 {
		t.Fatal("no segment has an input commitment")
	}
	b.Segments[cons].InCommitments[0].Commitment = "1"
	if ok, why := verify(map[string]any{"model_id": m, "system": "groth16", "bundle": &b}); ok || !strings.Contains(why, "boundary commitments") {
		t.Fatalf("bundle with a changed boundary commitment: valid %v, reason %q", ok, why)
	}
}
