#!/usr/bin/env bash
# test-icicle.sh [go test args]: build ICICLE's CPU backend (cached per machine by
# scripts/build-icicle.sh), then vet and test the `icicle`-tagged code: proofs of the
# example model, a commitment (range argument) circuit and the 2^16-constraint synthetic
# CNN made by gnark's ICICLE prover on ICICLE's CPU backend and re-verified on gnark's
# CPU verifier, and a build of the `icicle` zkml binary.
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
echo "== go test -tags icicle"
go test -tags icicle -timeout 30m -count=1 -run 'ICICLE|ResolveDevice|ParseDevice' "$@" ./prover/
