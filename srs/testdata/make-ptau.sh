#!/usr/bin/env bash
# make-ptau.sh POWER OUTDIR: make a small Powers of Tau file with snarkjs (an implementation
# independent of zkml's reader), the way a real ceremony does: `powersoftau new`, two
# contributions with fixed entropy, a beacon, then `prepare phase2`. Writes
#   OUTDIR/pot<POWER>.ptau           the plain layout (sections 1-7)
#   OUTDIR/pot<POWER>_prepared.ptau  with the Lagrange sections (12-15)
# In this directory, pot9.ptau is the plain file of `srs/testdata/make-ptau.sh 9 DIR` and
# pot8_prepared.ptau the prepared file of `srs/testdata/make-ptau.sh 8 DIR`.
# snarkjs comes from scripts/ensure-snarkjs.sh (or $ZKML_SNARKJS).
# The entropy is fixed so that the script is reproducible in what it exercises, not
# secret: these files are for tests only.
set -euo pipefail
power="${1:?usage: make-ptau.sh POWER OUTDIR}"
out="${2:?usage: make-ptau.sh POWER OUTDIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
snarkjs="${ZKML_SNARKJS:-$("$root/scripts/ensure-snarkjs.sh")}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run() { node "$snarkjs" "$@" >/dev/null; }
run powersoftau new bn128 "$power" "$tmp/0.ptau"
run powersoftau contribute "$tmp/0.ptau" "$tmp/1.ptau" --name="first contributor" -e="zkml test entropy one"
run powersoftau contribute "$tmp/1.ptau" "$tmp/2.ptau" --name="second contributor" -e="zkml test entropy two"
run powersoftau beacon "$tmp/2.ptau" "$tmp/3.ptau" 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 10 -n="final beacon"
run powersoftau prepare phase2 "$tmp/3.ptau" "$tmp/prep.ptau"
mkdir -p "$out"
cp "$tmp/3.ptau" "$out/pot${power}.ptau"
cp "$tmp/prep.ptau" "$out/pot${power}_prepared.ptau"
