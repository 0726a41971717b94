#!/usr/bin/env bash
# test-icicle.sh [go test args]: build ICICLE's CPU backend (cached per machine by
# scripts/build-icicle.sh), then vet and test the `icicle`-tagged code: proofs of the
# example model, a commitment (range argument) circuit and the 2^16-constraint synthetic
# CNN made by gnark's ICICLE prover on ICICLE's CPU backend and re-verified on gnark's
# CPU verifier; and the `icicle` zkml binary, which proves the example with
# --device icicle-cpu and verifies it with `zkml verify`.
# Extra arguments go to `go test` (e.g. -short skips the 2^16 model; -run TestX).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== build ICICLE (cached)"
eval "$(scripts/build-icicle.sh --cpu)"
echo "== go vet -tags icicle"
go vet -tags icicle ./prover/
echo "== go build -tags icicle ./cmd/zkml"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -tags icicle -o "$out/zkml" ./cmd/zkml
echo "== zkml prove --device icicle-cpu (examples/mnist_cnn), zkml verify"
"$out/zkml" compile examples/mnist_cnn/network.onnx --system groth16 --dir "$out/mnist_cnn.zkml" --input examples/mnist_cnn/input.json >/dev/null
"$out/zkml" setup --dir "$out/mnist_cnn.zkml" >/dev/null
"$out/zkml" prove --dir "$out/mnist_cnn.zkml" --input examples/mnist_cnn/input.json --device icicle-cpu 2>&1 | tee "$out/prove.log"
grep -q "groth16 proof (icicle-cpu)" "$out/prove.log" || { echo "test-icicle: the CLI proof was not made on icicle-cpu" >&2; exit 1; }
"$out/zkml" verify --dir "$out/mnist_cnn.zkml"
echo "== go test -tags icicle"
go test -tags icicle -timeout 30m -count=1 -run 'ICICLE|ResolveDevice|ParseDevice' "$@" ./prover/
