package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/zkml/zkml/api"
	"github.com/zkml/zkml/prover"
)

// TestSetupPolicy checks the service's trusted-setup settings end to end on the small
// ReLU model of the repository: with ZKML_REQUIRE_TRUSTED_SETUP a development setup is a
// user error (the job fails, it is not retried), PLONK keys come from the public SRS
// when a ptau is configured, and a verifier for development keys is refused under the
// policy and carries a warning banner without it.
func TestSetupPolicy(t *testing.T) {
	ctx := context.Background()
	onnx, err := os.ReadFile("../../model/testdata/relu/network.onnx")
	if err != nil {
		t.Fatal(err)
	}
	strict := &Engine{SetupPolicy: prover.SetupPolicy{RequireTrusted: true}}
	dir := t.TempDir()
	if _, err := strict.Compile(ctx, dir, onnx, nil); err != nil {
		t.Fatal(err)
	}
	for _, sys := range api.Systems {
		_, err := strict.Setup(ctx, dir, sys)
		if !errors.Is(err, api.ErrInvalidSettings) || !strings.Contains(err.Error(), "ZKML_REQUIRE_TRUSTED_SETUP") {
			t.Fatalf("%s: development setup under the policy: %v", sys, err)
		}
	}

	lax := &Engine{}
	prov, err := lax.Setup(ctx, dir, "groth16")
	if err != nil {
		t.Fatal(err)
	}
	if prov.Trust != api.TrustDevelopment || prov.Ptau != nil || !strings.Contains(prov.Summary, "NOT FOR PRODUCTION") {
		t.Fatalf("development setup reports %+v", prov)
	}
	src, err := lax.SolidityVerifier(ctx, dir, "groth16")
	if err != nil || !strings.HasPrefix(string(src), prover.DevVerifierBanner) {
		t.Fatalf("development verifier without the banner: %v", err)
	}
	if _, err := strict.SolidityVerifier(ctx, dir, "groth16"); !errors.Is(err, api.ErrInvalidSettings) {
		t.Fatalf("development verifier under the policy: %v", err)
	}

	strict.SetupPolicy.Ptau, strict.SetupPolicy.SRSCache = "../../srs/testdata/pot9.ptau", t.TempDir()
	prov, err = strict.Setup(ctx, dir, "plonk")
	if err != nil {
		t.Fatalf("plonk on the public SRS under the policy: %v", err)
	}
	if prov.Trust != api.TrustUniversalSRS || prov.Ptau == nil || prov.Ptau.Power != 9 || len(prov.Ptau.BLAKE2b) != 128 || len(prov.Contributions) != 0 {
		t.Fatalf("universal-srs setup reports %+v", prov)
	}
	src, err = strict.SolidityVerifier(ctx, dir, "plonk")
	if err != nil || strings.Contains(string(src), "DEVELOPMENT KEYS") {
		t.Fatalf("universal-srs verifier: %v", err)
	}
}
