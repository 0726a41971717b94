package main

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/zkml/zkml/internal/adversary"
	"github.com/zkml/zkml/internal/onnxtest"
)

// TestVerifyBindsParams replays the audit's exploit 1 through the CLI: compile model A
// with hashed params and set it up; model B has one other weight; B's directory gets A's
// circuit and keys (a prover holding A's proving key), proves, and `zkml verify -d A`
// is given B's proof. It said "valid groth16 proof for model A"; it must say INVALID,
// naming the params commitment.
func TestVerifyBindsParams(t *testing.T) {
	tmp := t.TempDir()
	input := filepath.Join(tmp, "input.json")
	must(t, os.WriteFile(input, []byte(onnxtest.TinyGemmInput), 0o644))
	dirs := map[string]string{}
	for name, w0 := range map[string]float32{"a": 1, "b": 0.5} {
		onnx := filepath.Join(tmp, name+".onnx")
		must(t, os.WriteFile(onnx, onnxtest.TinyGemm(w0), 0o644))
		dirs[name] = filepath.Join(tmp, name+".zkml")
		if out, err := run(t, "compile", onnx, "-d", dirs[name], "--param-visibility", "hashed", "--system", "groth16"); err != nil {
			t.Fatalf("compile %s: %v\n%s", name, err, out)
		}
	}
	if out, err := run(t, "setup", "-d", dirs["a"], "--system", "groth16"); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	must(t, adversary.ShareKeys(dirs["a"], dirs["b"], "groth16"))
	if out, err := run(t, "prove", "-d", dirs["b"], "--input", input, "--system", "groth16"); err != nil {
		t.Fatalf("prove with A's keys: %v\n%s", err, out)
	}
	proof, public := filepath.Join(dirs["b"], "proof.groth16.bin"), filepath.Join(dirs["b"], "public.groth16.bin")
	// B's proof is B's: it verifies against B.
	if out, err := run(t, "verify", "-d", dirs["b"], "--system", "groth16"); err != nil || !strings.Contains(out, "valid groth16") {
		t.Fatalf("verify B: %v\n%s", err, out)
	}
	out, err := run(t, "verify", "-d", dirs["a"], "--proof", proof, "--public", public, "--system", "groth16")
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID") || !strings.Contains(out, "params commitment") {
		t.Fatalf("B's proof verified as A's: err %v\n%s", err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCanonicalPublicInputs is the audit's exploit 3 through the CLI: a public
// witness file whose last element is v + r (the same field element; the EVM rejects it)
// is INVALID, not "valid".
func TestVerifyCanonicalPublicInputs(t *testing.T) {
	tmp := t.TempDir()
	input, onnx, dir := filepath.Join(tmp, "input.json"), filepath.Join(tmp, "m.onnx"), filepath.Join(tmp, "m.zkml")
	must(t, os.WriteFile(input, []byte(onnxtest.TinyGemmInput), 0o644))
	must(t, os.WriteFile(onnx, onnxtest.TinyGemm(1), 0o644))
	for _, args := range [][]string{
		{"compile", onnx, "-d", dir, "--system", "groth16"},
		{"setup", "-d", dir, "--system", "groth16"},
		{"prove", "-d", dir, "--input", input, "--system", "groth16"},
	} {
		if out, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "public.groth16.bin"))
	must(t, err)
	last := pub[len(pub)-32:]
	v := new(big.Int).SetBytes(last)
	v.Add(v, fr.Modulus()).FillBytes(last)
	forged := filepath.Join(tmp, "public.bin")
	must(t, os.WriteFile(forged, pub, 0o644))
	out, err := run(t, "verify", "-d", dir, "--public", forged, "--system", "groth16")
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "INVALID") {
		t.Fatalf("public input v + r: err %v\n%s", err, out)
	}
}
