// Package contracts holds zkml's Solidity sources, the pinned solc-js (package.json, installed
// by scripts/ensure-solc.sh) and the wrapper's ABI, and embeds the files Go code emits so the
// binary does not need the checkout at run time.
package contracts

import _ "embed"

// ZKMLVerifierSol is ZKMLVerifier.sol: the IZKMLVerifier interface and the
// proof-system-independent ZKMLVerifierBase contract. verifier.ExportSolidity appends a
// concrete ZKMLVerifier bound to one gnark verifying key.
//
//go:embed ZKMLVerifier.sol
var ZKMLVerifierSol string

// ZKMLVerifierABI is the ABI (JSON) of the concrete ZKMLVerifier contract that
// verifier.ExportSolidity generates; it is the same for Groth16 and PLONK.
//
//go:embed ZKMLVerifier.abi.json
var ZKMLVerifierABI []byte
