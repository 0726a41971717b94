package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Test inputs inside the repository: the small ReLU model and a snarkjs Powers of Tau file
// (two contributions and a beacon, power 9; srs/testdata/make-ptau.sh).
const (
	reluONNX  = "../../model/testdata/relu/network.onnx"
	reluInput = "../../model/testdata/relu/input.json"
	testPtau  = "../../srs/testdata/pot9.ptau"
)

// runBoth executes the CLI in-process and returns stdout, stderr and the error.
func runBoth(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errw bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errw)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errw.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runBoth(t, args...)
	if err != nil {
		t.Fatalf("zkml %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// TestCLIProductionSetup runs the production paths the way a user would: PLONK keys on
// the public SRS (reproduced by `keys reproduce`), a Groth16 ceremony with a remote-style
// contribution (--in/--out, then accept), a local one, a beacon seal, proofs verified in
// Go (and in the EVM outside -short), and the trust level printed everywhere.
func TestCLIProductionSetup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relu.zkml")
	cache := t.TempDir()
	mustRun(t, "compile", reluONNX, "-d", dir)

	// PLONK on the public SRS.
	out := mustRun(t, "setup", "-d", dir, "--system", "plonk", "--srs", testPtau, "--srs-cache", cache)
	if !strings.Contains(out, "plonk keys: universal-srs") {
		t.Fatalf("setup --srs output:\n%s", out)
	}
	if _, _, err := runBoth(t, "setup", "-d", dir, "--system", "groth16", "--srs", testPtau); err == nil || !strings.Contains(err.Error(), "ceremony init") {
		t.Fatalf("setup --srs for groth16: %v", err)
	}
	out = mustRun(t, "keys", "reproduce", "-d", dir, "--ptau", testPtau, "--srs-cache", cache)
	if !strings.Contains(out, "reproduced: plonk verifying key") {
		t.Fatalf("keys reproduce:\n%s", out)
	}

	// A development key is not reproduced, and is flagged wherever it is used.
	devDir := filepath.Join(t.TempDir(), "dev.zkml")
	mustRun(t, "compile", reluONNX, "-d", devDir)
	mustRun(t, "setup", "-d", devDir, "--system", "plonk")
	out, _, err := runBoth(t, "keys", "reproduce", "-d", dir, "--ptau", testPtau, "--srs-cache", cache, "--vk", filepath.Join(devDir, "vk.plonk.bin"))
	var ee exitError
	if !errors.As(err, &ee) || ee != 2 || !strings.Contains(out, "NOT REPRODUCED") {
		t.Fatalf("reproduce against a development vk: %v\n%s", err, out)
	}
	out, errOut, err := runBoth(t, "export-verifier", "-d", devDir, "--system", "plonk", "-o", t.TempDir())
	if err != nil || !strings.Contains(out, "plonk keys: development") || !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "DEVELOPMENT keys") {
		t.Fatalf("export-verifier with development keys: %v\n%s\n%s", err, out, errOut)
	}

	// Groth16 ceremony.
	out = mustRun(t, "ceremony", "init", "-d", dir, "--ptau", testPtau, "--srs-cache", cache)
	current := regexp.MustCompile(`--in (\S+)`).FindStringSubmatch(out)
	if current == nil {
		t.Fatalf("ceremony init names no state file:\n%s", out)
	}
	remote := filepath.Join(t.TempDir(), "alice.bin")
	out = mustRun(t, "ceremony", "contribute", "--in", current[1], "--out", remote)
	hash := regexp.MustCompile(`hash \(publish this\): ([0-9a-f]{64})`).FindStringSubmatch(out)
	if hash == nil {
		t.Fatalf("contribute printed no hash:\n%s", out)
	}
	out = mustRun(t, "ceremony", "accept", "-d", dir, "--file", remote, "--name", "alice")
	if !strings.Contains(out, hash[1]) {
		t.Fatalf("accept does not show the published hash %s:\n%s", hash[1], out)
	}
	mustRun(t, "ceremony", "contribute", "-d", dir, "--name", "bob")
	out = mustRun(t, "ceremony", "status", "-d", dir)
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, hash[1]) {
		t.Fatalf("status:\n%s", out)
	}
	out = mustRun(t, "ceremony", "seal", "-d", dir, "--ptau", testPtau, "--srs-cache", cache, "--beacon", "cafe0123")
	if !strings.Contains(out, "groth16 keys: ceremony") || !strings.Contains(out, "2 phase-2 contribution(s)") {
		t.Fatalf("seal:\n%s", out)
	}
	out = mustRun(t, "ceremony", "verify", "-d", dir, "--ptau", testPtau, "--srs-cache", cache)
	if !strings.Contains(out, "valid transcript; the model's Groth16 keys are its sealed result") {
		t.Fatalf("ceremony verify:\n%s", out)
	}
	out = mustRun(t, "keys", "reproduce", "-d", dir, "--system", "groth16", "--ptau", testPtau, "--srs-cache", cache)
	if !strings.Contains(out, "reproduced: the groth16 keys") {
		t.Fatalf("keys reproduce groth16:\n%s", out)
	}
	out = mustRun(t, "keys", "show", "-d", dir, "--json")
	if !strings.Contains(out, `"trust": "ceremony"`) || !strings.Contains(out, `"trust": "universal-srs"`) || !strings.Contains(out, `"beacon": "cafe0123"`) {
		t.Fatalf("keys show:\n%s", out)
	}

	for _, sys := range []string{"groth16", "plonk"} {
		mustRun(t, "prove", "-d", dir, "--input", reluInput, "--system", sys)
		args := []string{"verify", "-d", dir, "--system", sys}
		if !testing.Short() {
			args = append(args, "--evm") // needs solc (scripts/ensure-solc.sh)
		}
		out, errOut, err := runBoth(t, args...)
		if err != nil || !strings.Contains(out, "valid "+sys) || strings.Contains(errOut, "WARNING") {
			t.Fatalf("verify %s: %v\n%s%s", sys, err, out, errOut)
		}
		want := map[string]string{"groth16": "groth16 keys: ceremony", "plonk": "plonk keys: universal-srs"}[sys]
		if !strings.Contains(out, want) {
			t.Fatalf("verify %s does not say where the keys come from:\n%s", sys, out)
		}
		if !testing.Short() && !strings.Contains(out, "valid=true") {
			t.Fatalf("EVM verification of %s:\n%s", sys, out)
		}
	}
}

func TestSetupPolicyFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name, ptau, require string
		want                string // error substring, "" for none
		strict              bool
	}{
		{"unset", "", "", "", false},
		{"required", "", "true", "", true},
		{"bad bool", "", "maybe", "ZKML_REQUIRE_TRUSTED_SETUP", false},
		{"ptau", testPtau, "1", "", true},
		{"missing ptau", "/nonexistent.ptau", "", "ZKML_PTAU", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("ZKML_PTAU", tc.ptau)
			t.Setenv("ZKML_REQUIRE_TRUSTED_SETUP", tc.require)
			t.Setenv("ZKML_SRS_CACHE", t.TempDir())
			pol, err := setupPolicyFromEnv()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil || pol.RequireTrusted != tc.strict || pol.Ptau != tc.ptau || (tc.ptau != "" && pol.SRSCache == "") {
				t.Fatalf("policy %+v, err %v", pol, err)
			}
		})
	}
}
