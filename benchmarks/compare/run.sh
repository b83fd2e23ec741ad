#!/usr/bin/env bash
# The side-by-side comparison in one command: installs what is missing (Debian packages as
# root, otherwise prints the apt-get line; the peers venvs with benchmarks/peers/setup.sh),
# builds the cnnlite and tiny-dnn drivers, writes the few Fashion-MNIST images they all read,
# and runs cnnlite, PyTorch 2.x (fastest configuration and as installed), Keras 3 / TF 2.21,
# tf.keras 2.14 and tiny-dnn alternately at 1 and 2 threads, printing medians and ratios
# (see compare.py).
#
#   bash benchmarks/compare/run.sh                          # 5 repeats of 3 s, threads 1 and 2
#   bash benchmarks/compare/run.sh --repeats 1 --seconds 1  # a quick check that everything runs
#   bash benchmarks/compare/run.sh --sweep                  # first re-measure the peers' variants
#                                                           # (sweep.py, rewrites fastest.json)
#   bash benchmarks/compare/run.sh --only cnnlite,keras --threads 2 --extras debian-torch
#   bash benchmarks/compare/run.sh --model out/r8/model.safetensors --torch-variants channels-last
#                                          # ResNet-8 (any cnnlite model file): cnnlite vs PyTorch
#   bash benchmarks/compare/run.sh --busy 1   # with one CPU-bound process running throughout
# --sweep-args "..." passes options to sweep.py (e.g. "--repeats 3 --seconds 2"); every other
# argument goes to compare.py. Environment: COMPARE_BUILD_DIR (default
# /tmp/cnnlite-compare-build), FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist),
# CNNLITE_PEERS_VENV, CNNLITE_PEERS_KERAS214_VENV, COMPARE_NO_KERAS214=1 (skip the keras214 venv).
# Measure on a quiet machine: `uptime` should show a 1-minute load average below 1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${COMPARE_BUILD_DIR:-/tmp/cnnlite-compare-build}"
source_data="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"

sweep=0 sweep_args=() args=()
while (($#)); do
    case "$1" in
        --sweep) sweep=1; shift ;;
        --sweep-args) read -r -a sweep_args <<<"$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

# Build tools, the libraries cnnlite's headers use, tiny-dnn, the data; the allocators that
# sweep.py tries for PyTorch. Debian's PyTorch 1.13 (python3-torch) and OpenBLAS are only for
# the optional --extras columns and are not installed here.
packages=(g++ cmake ninja-build libeigen3-dev zlib1g-dev libpng-dev libjpeg-dev nlohmann-json3-dev libstb-dev
          libboost-dev libspectra-dev tiny-dnn libcereal-dev libgemmlowp-dev python3-venv libjemalloc2
          libtcmalloc-minimal4 dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
        echo "missing packages; run: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
# The peers: torch 2.x and Keras 3 / TF 2.21 (full venv), tf.keras 2.14 (keras214 venv).
bash "$here/../peers/setup.sh" --subset full | tail -n 1
peers="$(bash "$here/../peers/setup.sh" --print-venv --subset full)"
keras214="$(bash "$here/../peers/setup.sh" --print-venv --subset keras214)"
if [[ "${COMPARE_NO_KERAS214:-0}" == 1 ]]; then
    keras214=/nonexistent  # compare.py and sweep.py then leave tf.keras 2.14 out
else
    bash "$here/../peers/setup.sh" --subset keras214 | tail -n 1
fi

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j1
/usr/bin/python3 "$here/prepare_data.py" "$build/data" "$source_data"
echo "uptime: $(uptime)"
if ((sweep)); then
    /usr/bin/python3 "$here/sweep.py" --build "$build" --data "$build/data" --peers-python "$peers/bin/python" \
        --keras214-python "$keras214/bin/python" "${sweep_args[@]}"
fi
/usr/bin/python3 "$here/compare.py" --build "$build" --data "$build/data" --peers-python "$peers/bin/python" \
    --keras214-python "$keras214/bin/python" --json "$build/results.json" "${args[@]}"
