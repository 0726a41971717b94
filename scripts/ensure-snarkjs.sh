#!/usr/bin/env bash
# ensure-snarkjs.sh: install the pinned snarkjs (srs/testdata/snarkjs/package.json and
# package-lock.json), the independent implementation whose Powers of Tau files the srs
# tests import, and print the absolute path of its command-line entry point (run it with
# node). Idempotent like ensure-solc.sh: `npm ci` runs only when node_modules is missing,
# was installed from another package-lock.json, or holds another snarkjs version.
#
#   export ZKML_SNARKJS="$(scripts/ensure-snarkjs.sh)"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/srs/testdata/snarkjs"
stamp="$dir/node_modules/.zkml-lock.sha256"

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "ensure-snarkjs: $tool not found in PATH; install Node.js (>= 18) and npm" >&2
		exit 1
	fi
done

if command -v sha256sum >/dev/null 2>&1; then
	want_sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
else
	want_sum="$(shasum -a 256 "$dir/package-lock.json" | cut -d' ' -f1)"
fi
pinned="$(node -p "require('$dir/package.json').dependencies.snarkjs")"

up_to_date() {
	[[ -f "$stamp" ]] || return 1
	[[ "$(cat "$stamp")" == "$want_sum" ]] || return 1
	local have
	have="$(node -p "require('$dir/node_modules/snarkjs/package.json').version" 2>/dev/null)" || return 1
	[[ "$have" == "$pinned" ]]
}

if ! up_to_date; then
	echo "ensure-snarkjs: installing snarkjs $pinned with npm ci in $dir" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	echo "$want_sum" >"$stamp"
fi

cli="$dir/node_modules/snarkjs/build/cli.cjs"
[[ -f "$cli" ]] || { echo "ensure-snarkjs: $cli missing after install" >&2; exit 1; }
echo "ensure-snarkjs: snarkjs $pinned ready" >&2
echo "$cli"
