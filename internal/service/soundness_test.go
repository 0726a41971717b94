package service_test

import (
	"context"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/circuits"
	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/internal/engine"
	"github.com/zkml/zkml/internal/onnxtest"
	"github.com/zkml/zkml/internal/service"
)

// TestVerifyEndpointBindsModel replays the audit's exploits 1 and 3 over HTTP with the
// real engine: POST /v1/verify of model A with a proof made offline with A's proving
// key and other weights (hashed params) answers {"valid": false} with a reason naming
// the params commitment; A's own proof is valid; a public input written as v + r is a
// 400, as the EVM rejects it.
func TestVerifyEndpointBindsModel(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles, sets up and proves with the real engine")
	}
	eng := &engine.Engine{}
	cfg := fastConfig(service.Config{DataDir: t.TempDir()}, eng)
	e := newEnv(t, cfg)
	k := e.newKey("alice")
	m, j := e.upload(k.Key, onnxtest.TinyGemm(1), `{"param_visibility":"hashed"}`)
	if got := e.wait(k.Key, j, time.Minute); got.Status != "succeeded" {
		t.Fatalf("compile: %+v", got)
	}
	var sj api.JobView
	e.want(e.do("POST", "/v1/models/"+m+"/setup", k.Key, strings.NewReader(`{"system":"groth16"}`)), 202).json(t, &sj)
	if got := e.wait(k.Key, sj.ID, time.Minute); got.Status != "succeeded" {
		t.Fatalf("setup: %+v", got)
	}
	var pj api.JobView
	e.want(e.prove(k.Key, m, `{"input":`+onnxtest.TinyGemmInput+`}`), 202).json(t, &pj)
	done := e.wait(k.Key, pj.ID, time.Minute)
	if done.Status != "succeeded" {
		t.Fatalf("prove: %+v", done)
	}
	var v struct {
		Valid  bool
		Reason string
	}
	e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(map[string]string{"proof_id": done.ProofID})), 200).json(t, &v)
	if !v.Valid {
		t.Fatalf("A's own proof: %+v", v)
	}

	// The forger holds A's artifacts (the service's working directory of A).
	ctx := context.Background()
	dirA := filepath.Join(cfg.DataDir, "work", "models", m)
	dirB := t.TempDir()
	if _, err := eng.Compile(ctx, dirB, onnxtest.TinyGemm(0.5), []byte(`{"param_visibility":"hashed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := adversary.ShareKeys(dirA, dirB, "groth16"); err != nil {
		t.Fatal(err)
	}
	forged, err := eng.Prove(ctx, dirB, "groth16", []byte(onnxtest.TinyGemmInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"model_id": m, "system": "groth16", "proof": "0x" + hex.EncodeToString(forged.Proof), "public_inputs": forged.PublicInputs}
	e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(req)), 200).json(t, &v)
	if v.Valid || !strings.Contains(v.Reason, "params commitment") {
		t.Fatalf("B's proof verified as model A's: %+v", v)
	}

	// Exploit 3: the same field element written as v + r.
	plusR := append([]string(nil), forged.PublicInputs...)
	x, _ := new(big.Int).SetString(plusR[0], 10)
	plusR[0] = x.Add(x, circuits.Field).String()
	req["public_inputs"] = plusR
	if c := e.want(e.do("POST", "/v1/verify", k.Key, jsonBody(req)), 400).code(t); c != "bad_request" {
		t.Fatalf("public input v + r: code %s", c)
	}
}
