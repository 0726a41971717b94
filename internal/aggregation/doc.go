// Package aggregation measures what it would cost to aggregate a sharded bundle's
// segment proofs (package prover/shard) into one proof with gnark's recursion (#16,
// item 3). It holds benchmarks only (aggregation_test.go; figures and method in
// docs/bench-notes.md, "Aggregation by recursion"): no bundle is aggregated in
// production, because one recursive verification costs far more than the segments it
// would replace (see the figures).
//
// Two routes are measured:
//
//   - Emulated: a BN254 Groth16 proof, as zkml makes them (with the range argument's
//     commitment), verified inside a BN254 circuit with emulated field arithmetic
//     (std/algebra/emulated/sw_bn254). Needs no change to zkml's circuits, only
//     recursion-friendly prover options for the inner proofs.
//   - 2-chain: segment proofs on BLS12-377 verified natively inside a BW6-761
//     circuit (std/algebra/native/sw_bls12377), and that BW6-761 proof verified once
//     inside a BN254 circuit (emulated sw_bw6761) so that Ethereum can check it. Needs
//     zkml's circuits over BLS12-377's scalar field (a port: Poseidon2 parameters,
//     hints and tables are BN254-specific today); the inner circuits here are
//     synthetic ones with a segment's public inputs and commitment.
package aggregation
