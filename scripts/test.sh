#!/usr/bin/env bash
# test.sh runs every test: it first makes sure the services and tools the full suite
# needs are there (PostgreSQL on 127.0.0.1:5432, the pinned solc-js from
# contracts/package.json, and snarkjs from
# srs/testdata/snarkjs/package.json, which makes the Powers of Tau files the srs tests read),
# then runs gofmt, go vet, staticcheck (pinned in go.mod's
# tool block), `go test ./...` and scripts/test-icicle.sh (the `icicle`-tagged prover on
# ICICLE's CPU backend, whose libraries scripts/build-icicle.sh builds once per machine).
# Extra arguments go to `go test` (e.g. scripts/test.sh -run TestX ./prover/).
# The hint fuzzer (internal/hintfuzz) runs its CI budget; ZKML_HINTFUZZ_BUDGET=full runs
# the long one (see docs/soundness.md and docs/bench-notes.md, "CI time").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== ensure PostgreSQL"
scripts/ensure-postgres.sh
echo "== ensure solc"
ZKML_SOLC="$(scripts/ensure-solc.sh)"
export ZKML_SOLC
echo "== ensure the TypeScript client's npm dependencies"
scripts/ensure-ts-client.sh
echo "== ensure snarkjs"
ZKML_SNARKJS="$(scripts/ensure-snarkjs.sh)"
export ZKML_SNARKJS
export ZKML_TEST_DATABASE_URL="${ZKML_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

echo "== go vet"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './contracts/node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== staticcheck"
go tool staticcheck ./...

echo "== go test"
if [ $# -gt 0 ]; then
	exec go test -timeout 60m "$@"
fi
go test -timeout 60m ./...

# The ICICLE prover (-tags icicle) on ICICLE's CPU backend: the GPU code path, run on
# every CI run. The native libraries are built once per machine (cached by version in
# the user cache directory; the first build takes about 7 minutes on 2 cores).
echo "== ICICLE (CPU backend)"
exec scripts/test-icicle.sh
