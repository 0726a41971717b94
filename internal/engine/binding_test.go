package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/internal/onnxtest"
)

// TestVerifyBindsParams is the audit's exploit 1 against the service's verifier (POST
// /v1/verify answers what Engine.Verify says): a proof made with model A's keys and
// other weights B is invalid for A, and the reason names the params commitment; the
// exported Solidity wrapper pins A's commitment.
func TestVerifyBindsParams(t *testing.T) {
	ctx := context.Background()
	e := &Engine{}
	tmp := t.TempDir()
	dirs := map[string]string{}
	for name, w0 := range map[string]float32{"a": 1, "b": 0.5} {
		dirs[name] = filepath.Join(tmp, name)
		if _, err := e.Compile(ctx, dirs[name], onnxtest.TinyGemm(w0), []byte(`{"param_visibility": "hashed"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Setup(ctx, dirs["a"], "groth16"); err != nil {
		t.Fatal(err)
	}
	if err := adversary.ShareKeys(dirs["a"], dirs["b"], "groth16"); err != nil {
		t.Fatal(err)
	}
	honest, err := e.Prove(ctx, dirs["a"], "groth16", []byte(onnxtest.TinyGemmInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := e.Prove(ctx, dirs["b"], "groth16", []byte(onnxtest.TinyGemmInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.Verify(ctx, dirs["a"], "groth16", honest.Proof, honest.PublicInputs); err != nil || !v.Valid {
		t.Fatalf("honest proof: %+v %v", v, err)
	}
	if v, err := e.Verify(ctx, dirs["b"], "groth16", forged.Proof, forged.PublicInputs); err != nil || !v.Valid {
		t.Fatalf("B's proof for B: %+v %v", v, err)
	}
	v, err := e.Verify(ctx, dirs["a"], "groth16", forged.Proof, forged.PublicInputs)
	if err != nil || v.Valid || !strings.Contains(v.Reason, "params commitment") {
		t.Fatalf("B's proof verified for A: %+v %v", v, err)
	}
	sol, err := e.SolidityVerifier(ctx, dirs["a"], "groth16")
	if err != nil || !strings.Contains(string(sol), "The model's params commitment is pinned") {
		t.Fatalf("verifier does not pin the params commitment (%v)", err)
	}
}
