#!/usr/bin/env bash
# ensure-solc.sh: install the pinned solc-js compiler (contracts/package.json and
# package-lock.json) and print the absolute path of the standard-JSON wrapper that Go code
# runs with node (internal/evm reads it from $ZKML_SOLCJS, or finds it in the checkout).
#
# Idempotent: `npm ci` runs only when contracts/node_modules is missing, was installed from a
# different package-lock.json, or holds a solc version other than the pinned one.
# Needs only node and npm. Everything except the final path goes to stderr, so
#
#   export ZKML_SOLCJS="$(scripts/ensure-solc.sh)"
#
# works in CI.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/contracts"
wrapper="$dir/solcjs-standard-json.js"
stamp="$dir/node_modules/.zkml-lock.sha256"

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "ensure-solc: $tool not found in PATH; install Node.js (>= 18) and npm" >&2
		exit 1
	fi
done

lock_sum() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$dir/package-lock.json" | cut -d' ' -f1
	else
		shasum -a 256 "$dir/package-lock.json" | cut -d' ' -f1
	fi
}

pinned="$(node -p "require('$dir/package.json').dependencies.solc")"
want_sum="$(lock_sum)"

up_to_date() {
	[[ -f "$stamp" ]] || return 1
	[[ "$(cat "$stamp")" == "$want_sum" ]] || return 1
	local have
	have="$(node -p "require('$dir/node_modules/solc/package.json').version" 2>/dev/null)" || return 1
	[[ "$have" == "$pinned" ]]
}

if ! up_to_date; then
	echo "ensure-solc: installing solc $pinned with npm ci in $dir" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	echo "$want_sum" >"$stamp"
fi

version="$(node "$wrapper" --version)"
echo "ensure-solc: solc $version ready" >&2
echo "$wrapper"
