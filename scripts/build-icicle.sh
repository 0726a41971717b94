#!/usr/bin/env bash
# build-icicle.sh [PREFIX]: build ICICLE's native BN254 libraries (CUDA backend) from the
# sources vendored in the Go module github.com/ingonyama-zk/icicle-gnark/v3 (the version
# gnark pins in go.mod), and install them under PREFIX (default /opt/icicle).
#
# Needs: Go, cmake, a C++ compiler and the CUDA toolkit (nvcc). CUDA_ARCH defaults to 90
# (H100/H200). Then build zkml with ICICLE:
#   CGO_LDFLAGS="-L$PREFIX/lib -licicle_device -lstdc++ -lm -Wl,-rpath=$PREFIX/lib" \
#     go build -tags icicle -o zkml-gpu ./cmd/zkml
#   export ICICLE_BACKEND_INSTALL_DIR=$PREFIX/lib/backend
set -euo pipefail
prefix="${1:-/opt/icicle}"
arch="${CUDA_ARCH:-90}"
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=$(go list -m -f '{{.Version}}' github.com/ingonyama-zk/icicle-gnark/v3)
src=$(go mod download -json "github.com/ingonyama-zk/icicle-gnark/v3@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -d "$src/icicle" ] || { echo "build-icicle: no icicle sources in $src" >&2; exit 1; }
[ -x "$nvcc" ] || { echo "build-icicle: nvcc not found (install the CUDA toolkit or set NVCC)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/icicle" "$work/icicle"
chmod -R u+w "$work"
cmake -S "$work/icicle" -B "$work/build" \
	-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
	-DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
	-DCURVE=bn254 -DMSM=ON -DNTT=ON -DG2=ON -DCUDA_BACKEND=local
cmake --build "$work/build" --target install -j"$(nproc)"
echo "build-icicle: installed ICICLE $version (bn254, sm_$arch) under $prefix"
