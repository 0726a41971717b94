package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"github.com/zkml/zkml/internal/evm"
	"github.com/zkml/zkml/verifier"
)

// Deployment is deployment.json, which `zkml export-verifier` writes beside the
// verifier: what a deploy script or a dApp needs to know about it.
type Deployment struct {
	Contract      string `json:"contract"` // the contract to deploy: ZKMLVerifier
	Source        string `json:"source"`   // its source file, relative to the folder
	ABI           string `json:"abi"`      // its ABI file, relative to the folder
	ModelID       string `json:"model_id"` // 0x-prefixed bytes32
	ProvingSystem string `json:"proving_system"`
	Constructor   struct {
		Signature string   `json:"signature"`
		Args      []string `json:"args"`    // as a deploy tool takes them
		Encoded   string   `json:"encoded"` // ABI-encoded, to append to the creation code
	} `json:"constructor"`
	// Compiler is the setting zkml compiles and measures the verifier with.
	Compiler struct {
		Solc          string `json:"solc"`
		OptimizerRuns int    `json:"optimizer_runs"`
		EVMVersion    string `json:"evm_version"`
	} `json:"compiler"`
}

// projectFiles are the files beside the verifier, relative to the folder, as templates
// of a Deployment.
var projectFiles = []struct{ name, text string }{
	{"foundry.toml", `# Foundry settings of the exported verifier (zkml export-verifier).
[profile.default]
src = "."
script = "script"
out = "out"
libs = []
solc_version = "{{.Compiler.Solc}}"
optimizer = true
optimizer_runs = {{.Compiler.OptimizerRuns}}
evm_version = "{{.Compiler.EVMVersion}}"
`},
	{"script/Deploy" + verifier.WrapperContract + ".s.sol", `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ZKMLVerifier} from "../ZKMLVerifier.sol";

/// The Foundry cheatcodes this script uses (forge-std's Vm, without the dependency).
interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

/// @notice Deploys ZKMLVerifier ({{.ProvingSystem}}) for model {{.ModelID}}:
///   forge script script/DeployZKMLVerifier.s.sol --rpc-url "$RPC_URL" --private-key "$PRIVATE_KEY" --broadcast
contract DeployZKMLVerifier {
    Vm internal constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// The model ID the verifier is deployed with (deployment.json's model_id).
    bytes32 public constant MODEL_ID = {{.ModelID}};

    function run() external returns (ZKMLVerifier verifier) {
        VM.startBroadcast();
        verifier = new ZKMLVerifier(MODEL_ID);
        VM.stopBroadcast();
    }
}
`},
	{"ignition/modules/" + verifier.WrapperContract + ".ts", `// Hardhat Ignition module of the exported verifier (zkml export-verifier): copy
// ZKMLVerifier.sol into the project's contracts/ and this file into ignition/modules/, then
//   npx hardhat ignition deploy ignition/modules/ZKMLVerifier.ts --network <network>
// Compile with solc {{.Compiler.Solc}}, optimizer on ({{.Compiler.OptimizerRuns}} runs), evmVersion {{.Compiler.EVMVersion}}.
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

const MODEL_ID = "{{.ModelID}}"; // {{.ProvingSystem}} verifier of this model

export default buildModule("ZKMLVerifier", (m) => {
  const verifier = m.contract("ZKMLVerifier", [MODEL_ID]);
  return { verifier };
});
`},
	{"README.md", `# ZKMLVerifier for model {{.ModelID}}

Written by ` + "`zkml export-verifier`" + `: the {{.ProvingSystem}} verifier of one zkml model, ready to deploy.

| File | What |
|---|---|
| ` + "`ZKMLVerifier.sol`" + ` | gnark's verifier, the ` + "`IZKMLVerifier`" + ` interface and the ` + "`ZKMLVerifier`" + ` wrapper to deploy |
| ` + "`ZKMLVerifier.abi.json`" + ` | the wrapper's ABI |
| ` + "`deployment.json`" + ` | model ID, constructor arguments (plain and ABI-encoded), compiler settings |
| ` + "`foundry.toml`, `script/DeployZKMLVerifier.s.sol`" + ` | Foundry: ` + "`forge build`" + `, then ` + "`forge script script/DeployZKMLVerifier.s.sol --rpc-url \"$RPC_URL\" --private-key \"$PRIVATE_KEY\" --broadcast`" + ` |
| ` + "`ignition/modules/ZKMLVerifier.ts`" + ` | Hardhat Ignition: copy ` + "`ZKMLVerifier.sol`" + ` to ` + "`contracts/`" + ` and this module to ` + "`ignition/modules/`" + ` |

Deploy only ` + "`ZKMLVerifier`" + `, with ` + "`{{.Constructor.Signature}}`" + ` and modelId ` + "`{{.ModelID}}`" + `; it creates gnark's verifier
in the same transaction. Compile with solc {{.Compiler.Solc}}, optimizer on ({{.Compiler.OptimizerRuns}} runs), evmVersion {{.Compiler.EVMVersion}}.
A dApp then calls ` + "`verify(proof, publicInputs)`" + ` or ` + "`verifyAndDecode(proof, publicInputs)`" + `: the zkml service returns the calldata of
` + "`verify`" + ` with every proof, and ` + "`zkml calldata`" + ` prints it for a local one.
`},
}

// writeVerifierProject writes deployment.json and the files of projectFiles into out,
// which holds the exported verifier, and returns their paths.
func writeVerifierProject(out string, modelID [32]byte, system string) ([]string, error) {
	solc, err := evm.PinnedSolcVersion()
	if err != nil {
		return nil, err
	}
	var d Deployment
	d.Contract, d.Source, d.ABI = verifier.WrapperContract, verifier.WrapperContract+".sol", verifier.WrapperContract+".abi.json"
	d.ModelID, d.ProvingSystem = "0x"+hex.EncodeToString(modelID[:]), system
	d.Constructor.Signature = "constructor(bytes32 modelId)"
	d.Constructor.Args = []string{d.ModelID}
	d.Constructor.Encoded = d.ModelID // a bytes32 encodes as itself
	d.Compiler.Solc, d.Compiler.OptimizerRuns, d.Compiler.EVMVersion = solc, evm.DefaultOptimizerRuns, string(evm.DefaultFork)

	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := []string{filepath.Join(out, "deployment.json")}
	if err := os.WriteFile(paths[0], append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	for _, f := range projectFiles {
		t, err := template.New(f.name).Option("missingkey=error").Parse(f.text)
		if err != nil {
			return nil, fmt.Errorf("export-verifier: template %s: %w", f.name, err)
		}
		p := filepath.Join(out, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		w, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		err = t.Execute(w, d)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("export-verifier: writing %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
