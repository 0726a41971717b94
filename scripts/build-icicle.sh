#!/usr/bin/env bash
# build-icicle.sh [--cpu|--cuda] [PREFIX]: build ICICLE's native libraries from the
# sources vendored in the Go module github.com/ingonyama-zk/icicle-gnark/v3 (the version
# go.mod pins), once per machine, and print the environment a `-tags icicle` build needs:
#
#   eval "$(scripts/build-icicle.sh)"
#   go build -tags icicle -o bin/zkml-icicle ./cmd/zkml
#   bin/zkml-icicle prove --device icicle-cpu ...   # or --device gpu where CUDA was built
#
# Curves: zkml proves on BN254 only, but gnark's ICICLE Groth16 package links the
# libraries of every curve it supports (bn254, bls12_377, bls12_381, bw6_761), so all
# four are built, one after the other; an interrupted build resumes at the next curve.
# Only BN254 gets the CUDA backend: the others are linked, never run.
#
# Backends: ICICLE's CPU backend is always built (it is compiled into libicicle_device and
# the field/curve libraries); the CUDA backend (lib/backend/) is built too where nvcc is
# found (--cuda requires it, --cpu skips it). CUDA_ARCH picks the GPU architecture
# (default: the first GPU's compute capability from nvidia-smi, else 90 for H100/H200).
#
# Cache: without PREFIX the libraries go to
#   ${XDG_CACHE_HOME:-~/.cache}/zkml/icicle-<version>-<patch>-<cpu|cuda<arch>>
# and a second run (any checkout, same ICICLE version and patch) only prints the
# environment. With PREFIX (e.g. /opt/icicle in the Dockerfile) they are installed there.
#
# The CPU backend is patched (scripts/icicle-cpu.patch) for two bugs of ICICLE 3.2 that
# abort the process: its CPU device does not report its available memory, which gnark's
# ICICLE prover requires during its device warm-up (the patch reports host memory, within
# RLIMIT_AS); and its vector operations start no worker thread on a two-thread machine
# (an assertion; the patch starts at least one, as MSM already does).
#
# cmake and a C++ compiler are installed with apt-get when missing (as root). Logs go
# to stderr; stdout carries only the `export` lines. ICICLE_JOBS sets the build's
# parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

want=auto
prefix=
for a in "$@"; do
	case "$a" in
	--cpu) want=cpu ;;
	--cuda) want=cuda ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "build-icicle: unknown option $a" >&2
		exit 2
		;;
	*) prefix=$a ;;
	esac
done
log() { echo "build-icicle: $*" >&2; }

nvcc="${NVCC:-$(command -v nvcc || true)}"
[ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; } || true
case "$want" in
auto) if [ -n "$nvcc" ]; then want=cuda; else want=cpu; fi ;;
cuda) [ -n "$nvcc" ] || { log "nvcc not found (install the CUDA toolkit or set NVCC)"; exit 1; } ;;
esac
variant=cpu
if [ "$want" = cuda ]; then
	arch="${CUDA_ARCH:-}"
	if [ -z "$arch" ] && command -v nvidia-smi >/dev/null; then
		arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ' || true)
	fi
	arch="${arch:-90}"
	variant="cuda$arch"
fi

version=$(go list -m -f '{{.Version}}' github.com/ingonyama-zk/icicle-gnark/v3)
patch_file="$repo/scripts/icicle-cpu.patch"
patch_id=$(sha256sum "$patch_file" | cut -c1-8)
if [ -z "$prefix" ]; then
	prefix="${XDG_CACHE_HOME:-$HOME/.cache}/zkml/icicle-$version-$patch_id-$variant"
fi
curves=(bn254 bls12_377 bls12_381 bw6_761)
id="$version $patch_id $variant"
# built reports whether curve $1 is installed in the prefix by this build's settings.
built() { [ -f "$prefix/.built-$1" ] && [ "$(cat "$prefix/.built-$1")" = "$id" ]; }
all_built() {
	for c in "${curves[@]}"; do built "$c" || return 1; done
}

print_env() {
	printf "export CGO_ENABLED=1\n"
	printf "export CGO_LDFLAGS='-L%s/lib -licicle_device -lstdc++ -lm -Wl,-rpath,%s/lib'\n" "$prefix" "$prefix"
	printf "export ICICLE_BACKEND_INSTALL_DIR='%s/lib/backend'\n" "$prefix"
}

if all_built; then
	log "ICICLE $version ($variant) already built in $prefix"
	print_env
	exit 0
fi

# Tools: cmake and a C++17 compiler, from the distribution when missing.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=(g++)
command -v patch >/dev/null || missing+=(patch)
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || { log "missing ${missing[*]} and no apt-get to install them"; exit 1; }
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	log "installing ${missing[*]}"
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

src=$(go mod download -json "github.com/ingonyama-zk/icicle-gnark/v3@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -d "$src/icicle" ] || { log "no icicle sources in $src"; exit 1; }

mkdir -p "$(dirname "$prefix")"
# One build per prefix at a time: concurrent CI jobs wait for the first one.
exec 9>"$prefix.lock"
flock 9
if all_built; then
	log "ICICLE $version ($variant) built meanwhile in $prefix"
	print_env
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/icicle" "$work/icicle"
chmod -R u+w "$work"
patch -s -d "$work" -p1 <"$patch_file"

cuda_flags=(-DCUDA_BACKEND=OFF)
if [ "$want" = cuda ]; then
	cuda_flags=(-DCUDA_BACKEND=local -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch")
fi
start=$(date +%s)
mkdir -p "$prefix/lib/backend" # ICICLE_BACKEND_INSTALL_DIR must exist even with no CUDA backend
for c in "${curves[@]}"; do
	built "$c" && continue
	backend_flags=(-DCUDA_BACKEND=OFF)
	[ "$c" != bn254 ] || backend_flags=("${cuda_flags[@]}")
	log "building ICICLE $version ($variant, $c) from $src into $prefix"
	cmake -S "$work/icicle" -B "$work/build-$c" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
		-DCURVE="$c" -DMSM=ON -DNTT=ON -DG2=ON -DCPU_BACKEND=ON "${backend_flags[@]}" >&2
	cmake --build "$work/build-$c" --target install -j"${ICICLE_JOBS:-$(nproc)}" >&2
	echo "$id" >"$prefix/.built-$c"
done
log "built ICICLE $version ($variant) in $(($(date +%s) - start))s under $prefix"
print_env
