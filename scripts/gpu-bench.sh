#!/usr/bin/env bash
# gpu-bench.sh: on a machine with an NVIDIA GPU, build ICICLE and a GPU zkml, then
# compare GPU and CPU Groth16 prove times on synthetic models of 2^18..2^22 constraints.
# Every GPU proof is verified on the CPU by the prover before it is counted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix="${ICICLE_PREFIX:-/opt/icicle}"
[ -f "$prefix/lib/libicicle_device.so" ] || scripts/build-icicle.sh "$prefix"
export CGO_LDFLAGS="-L$prefix/lib -licicle_device -lstdc++ -lm -Wl,-rpath=$prefix/lib"
export ICICLE_BACKEND_INSTALL_DIR="$prefix/lib/backend"
go build -tags icicle -o bin/zkml-gpu ./cmd/zkml
for device in gpu cpu; do
	bin/zkml-gpu bench --systems groth16 --models "${MODELS:-cnn_2e18,cnn_2e20}" --device "$device" \
		--json "bench-$device.json" "$@"
done
