#!/usr/bin/env bash
# ensure-solc.sh: install the pinned solc-js compiler (contracts/package.json and
# package-lock.json) where zkml looks for it, and print that directory. Without
# $ZKML_SOLC / $ZKML_SOLCJS it is zkml's user cache directory (<cache>/zkml/solc-<version>,
# e.g. ~/.cache/zkml/solc-0.8.37), the one `zkml verify --evm` installs into on first use;
# nothing is written to the checkout. Idempotent: npm runs only when solc-js is missing.
# Needs Go, node and npm. Everything except the final path goes to stderr, so
#
#   export ZKML_SOLC="$(scripts/ensure-solc.sh)"
#
# works in CI (tests find the cache directory without it too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

exec go run ./internal/evm/cmd/ensure-solc
