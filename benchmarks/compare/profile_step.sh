#!/usr/bin/env bash
# Where a cnnlite training step spends its time: builds cnnlite_driver with frame pointers and
# debug info, records `perf record -g` over ~8 s of batch-64 training steps, and prints
#   1. self time per function (the kernels themselves), and
#   2. time including callees for the functions that stand for a layer (the dense layer's
#      forward `cnnlite::linear<float>` and backward `linear...{lambda}` own their Eigen GEMMs).
# With --threads 1 the attribution is exact; with 2 the OpenMP workers' samples lose their
# callers (libgomp has no frame pointers), so use 1 for the per-layer table and 2 for the
# serial-fraction question. Percentages stay meaningful on a busy machine; times do not.
#
#   bash benchmarks/compare/profile_step.sh [--threads 1] [--mode train|infer] [--batch 64]
# Needs perf (Debian: linux-perf) and the data that run.sh writes (or writes it itself).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${PROFILE_BUILD_DIR:-/tmp/cnnlite-profile-build}"
threads=1 mode=train batch=64
while (($#)); do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --mode) mode="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS="-g -fno-omit-frame-pointer" >/dev/null
cmake --build "$build" --target cnnlite_driver
[[ -f "$build/data/train_images.u8" ]] || /usr/bin/python3 "$here/prepare_data.py" "$build/data"

out="$build/perf-$mode-$batch-t$threads.data"
perf record -F 2000 -g -o "$out" "$build/cnnlite_driver" --data "$build/data" --mode "$mode" \
     --batch "$batch" --threads "$threads" --seconds 8
set +o pipefail  # `head` closes the pipe early
echo
echo "== self time per function (top 30) =="
perf report -i "$out" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | head -30 | cut -c1-170
echo
echo "== time including callees, per layer-level function =="
perf report -i "$out" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | grep -E 'TrainStep|Sequential<float>::(run|predict)|cnnlite::linear<float>|conv_relu_pool_(forward|backward)|dropout|max_pool|adam|Adam|softmax|gradients_finite|small_patch|im2col' |
    cut -c1-170
echo
echo "perf data: $out  (perf report -i $out)"
