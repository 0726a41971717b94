package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/verifier"
)

// TestExportVerifierProject checks that the folder `export-verifier` writes works as
// is: every Solidity file in it (the verifier and the Foundry deploy script) compiles
// with the pinned solc; ZKMLVerifier deployed with deployment.json's encoded
// constructor arguments has the model ID and verifies the model's proof (from
// `zkml calldata`); the deploy script deploys with the same model ID.
func TestExportVerifierProject(t *testing.T) {
	solc := evm.RequireCompiler(t)
	model := filepath.Join(modelsDir, "1l_mlp")
	dir := filepath.Join(t.TempDir(), "m.zkml")
	out := filepath.Join(t.TempDir(), "verifier")
	for _, args := range [][]string{
		{"compile", filepath.Join(model, "network.onnx"), "-d", dir},
		{"setup", "-d", dir, "--system", "groth16"},
		{"prove", "-d", dir, "--input", filepath.Join(model, "input.json"), "--system", "groth16"},
	} {
		if o, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, o)
		}
	}
	o, err := run(t, "export-verifier", "-d", dir, "-o", out)
	if err != nil {
		t.Fatalf("export-verifier: %v\n%s", err, o)
	}
	for _, f := range []string{"ZKMLVerifier.sol", "ZKMLVerifier.abi.json", "deployment.json", "foundry.toml",
		"script/DeployZKMLVerifier.s.sol", "ignition/modules/ZKMLVerifier.ts", "README.md"} {
		if !strings.Contains(o, filepath.Join(out, f)) {
			t.Errorf("export-verifier did not report writing %s:\n%s", f, o)
		}
	}
	var d Deployment
	if err := json.Unmarshal(readTestFile(t, filepath.Join(out, "deployment.json")), &d); err != nil {
		t.Fatal(err)
	}
	for f, wants := range map[string][]string{
		"foundry.toml":                     {`solc_version = "` + d.Compiler.Solc + `"`, `evm_version = "` + d.Compiler.EVMVersion + `"`},
		"script/DeployZKMLVerifier.s.sol":  {d.ModelID},
		"ignition/modules/ZKMLVerifier.ts": {d.ModelID},
		"README.md":                        {d.ModelID, d.Compiler.Solc},
	} {
		for _, want := range wants {
			if !bytes.Contains(readTestFile(t, filepath.Join(out, f)), []byte(want)) {
				t.Errorf("%s lacks %s", f, want)
			}
		}
	}

	// Compile the folder as Foundry would: every .sol file, by its path in the folder.
	sources := map[string]string{}
	err = filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".sol") {
			return err
		}
		rel, err := filepath.Rel(out, p)
		sources[filepath.ToSlash(rel)] = string(readTestFile(t, p))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	arts, err := solc.Compile(t.Context(), sources)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := evm.NewChain(solc.Fork())
	if err != nil {
		t.Fatal(err)
	}
	wrapper, err := arts.Get(d.Contract)
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := hex.DecodeString(strings.TrimPrefix(d.Constructor.Encoded, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	addr, _, err := chain.DeployArtifact(wrapper, encoded)
	if err != nil {
		t.Fatal(err)
	}
	wabi, err := verifier.ParsedWrapperABI()
	if err != nil {
		t.Fatal(err)
	}
	if got := callBytes32(t, chain, addr, wabi, "modelId"); got != d.ModelID {
		t.Fatalf("deployed modelId %s, deployment.json says %s", got, d.ModelID)
	}
	calldata, err := run(t, "calldata", "-d", dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(calldata), "0x"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := chain.Call(addr, data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reverted {
		t.Fatalf("verify reverted: %s", res.RevertReason())
	}
	if ok, err := wabi.Unpack("verify", res.Return); err != nil || !ok[0].(bool) {
		t.Fatalf("the exported verifier rejects the model's proof: %v %v", ok, err)
	}

	script, err := arts.Get("DeployZKMLVerifier")
	if err != nil {
		t.Fatal(err)
	}
	saddr, _, err := chain.DeployArtifact(script, nil)
	if err != nil {
		t.Fatal(err)
	}
	sabi, err := abi.JSON(bytes.NewReader(script.ABI))
	if err != nil {
		t.Fatal(err)
	}
	if got := callBytes32(t, chain, saddr, sabi, "MODEL_ID"); got != d.ModelID {
		t.Fatalf("the deploy script deploys model %s, deployment.json says %s", got, d.ModelID)
	}
}

func readTestFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// callBytes32 calls a view method without arguments that returns a bytes32, as 0x hex.
func callBytes32(t *testing.T, chain *evm.Chain, to common.Address, a abi.ABI, method string) string {
	t.Helper()
	data, err := a.Pack(method)
	if err != nil {
		t.Fatal(err)
	}
	res, err := chain.Call(to, data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reverted {
		t.Fatalf("%s reverted: %s", method, res.RevertReason())
	}
	v, err := a.Unpack(method, res.Return)
	if err != nil {
		t.Fatal(err)
	}
	b := v[0].([32]byte)
	return "0x" + hex.EncodeToString(b[:])
}
