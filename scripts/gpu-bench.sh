#!/usr/bin/env bash
# gpu-bench.sh: on a machine with an NVIDIA GPU and the CUDA toolkit, one command
# builds ICICLE's CUDA backend for this GPU's architecture (scripts/build-icicle.sh
# --cuda, cached), builds zkml with -tags icicle, benchmarks Groth16 proving on the GPU
# and on this machine's CPU cores (gnark) on the synthetic models, and writes the
# comparison into the "## GPU (ICICLE)" section of BENCHMARKS.md and docs/bench-notes.md
# (and bench-gpu.md).
# Every GPU proof is verified on the CPU before it counts (bench verifies each proof).
#
# MODELS overrides the models (default cnn_2e18,cnn_2e20,cnn_2e22: 2^18 to 2^22
# constraints, fixed-weight CNNs from internal/bench); extra arguments go to both
# `zkml bench` runs (e.g. -n 1). The run stops if a GPU proof fell back to the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v nvidia-smi >/dev/null || { echo "gpu-bench: no nvidia-smi: this needs an NVIDIA GPU" >&2; exit 1; }

eval "$(scripts/build-icicle.sh --cuda)"
mkdir -p bin
go build -tags icicle -o bin/zkml-icicle ./cmd/zkml
models="${MODELS:-cnn_2e18,cnn_2e20,cnn_2e22}"
for device in gpu cpu; do
	bin/zkml-icicle bench --systems groth16 --models "$models" --device "$device" --no-budget --no-floor --max-constraints 4194304 \
		--json "bench-$device.json" --csv "bench-$device.csv" "$@" 2>&1 | tee "bench-$device.log"
done
if grep -q "proving on CPU" bench-gpu.log; then
	echo "gpu-bench: the GPU run fell back to the CPU (see bench-gpu.log); no table written" >&2
	exit 1
fi

# The table: prove medians of both runs, joined by model (bench's CSV: field 1 model,
# 3 constraints, 10 prove_s; fields 1-10 hold no free text).
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
cpu_name=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "## GPU (ICICLE)"
	echo
	echo "Measured by \`scripts/gpu-bench.sh\` on $(date -u +%Y-%m-%d): $gpu_name (ICICLE CUDA backend,"
	echo "built by \`scripts/build-icicle.sh --cuda\`) against gnark on the same machine's CPU"
	echo "($cpu_name, $(nproc) threads). Groth16, BN254, prove median of each run; every GPU proof"
	echo "was verified on the CPU."
	echo
	echo "| model | constraints | CPU prove s | GPU prove s | speedup |"
	echo "|---|---:|---:|---:|---:|"
	awk -F, 'FNR == 1 { next }
		NR == FNR { cpu[$1] = $10; next }
		($1 in cpu) && $10 > 0 { printf "| %s | %s | %.2f | %.2f | %.1fx |\n", $1, $3, cpu[$1], $10, cpu[$1] / $10 }' \
		bench-cpu.csv bench-gpu.csv
	echo
} >bench-gpu.md
cat bench-gpu.md

# Replace the section (up to the next "## " heading) in BENCHMARKS.md and in the notes
# `zkml bench --markdown --notes docs/bench-notes.md` regenerates it from.
for f in BENCHMARKS.md docs/bench-notes.md; do
	awk -v table=bench-gpu.md '
		/^## GPU \(ICICLE\)/ { while ((getline line < table) > 0) print line; skip = 1; next }
		skip && /^## / { skip = 0 }
		!skip { print }' "$f" >"$f.new"
	mv "$f.new" "$f"
done
echo "gpu-bench: the GPU sections of BENCHMARKS.md and docs/bench-notes.md updated (bench-{cpu,gpu}.{json,csv,log}, bench-gpu.md)" >&2
