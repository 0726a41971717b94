// Package contracts holds zkml's Solidity sources, the pinned solc-js (package.json and its
// lockfile, which internal/evm installs with npm into the user cache directory) and the
// wrapper's ABI, and embeds them so the binary does not need the checkout at run time.
package contracts

import _ "embed"

// ZKMLVerifierSol is ZKMLVerifier.sol: the IZKMLVerifier interface and the
// proof-system-independent ZKMLVerifierBase contract. verifier.ExportSolidity appends a
// concrete ZKMLVerifier bound to one gnark verifying key.
//
//go:embed ZKMLVerifier.sol
var ZKMLVerifierSol string

// ZKMLBundleVerifierSol is ZKMLBundleVerifier.sol: the verifier of a sharded model's
// bundle of segment proofs (prover/shard), which calls one ZKMLVerifier per segment.
//
//go:embed ZKMLBundleVerifier.sol
var ZKMLBundleVerifierSol string

// ZKMLVerifierABI is the ABI (JSON) of the concrete ZKMLVerifier contract that
// verifier.ExportSolidity generates; it is the same for Groth16 and PLONK.
//
//go:embed ZKMLVerifier.abi.json
var ZKMLVerifierABI []byte

// PackageJSON and PackageLock are package.json and package-lock.json: the solc-js version
// zkml compiles verifiers with, installed by `npm ci` (internal/evm.Install).
//
//go:embed package.json
var PackageJSON []byte

// PackageLock is package-lock.json; see PackageJSON.
//
//go:embed package-lock.json
var PackageLock []byte

// SolcJSWrapper is solcjs-standard-json.js, the node script internal/evm runs (with
// node -e) to drive solc-js with standard-JSON input.
//
//go:embed solcjs-standard-json.js
var SolcJSWrapper string
