#!/usr/bin/env bash
# The side-by-side comparison in one command: installs what is missing (Debian packages, as
# root; otherwise prints the apt-get line), builds the cnnlite and tiny-dnn drivers, writes the
# few Fashion-MNIST images they all read, and runs cnnlite, PyTorch (fastest configuration and as
# installed) and tiny-dnn alternately, printing medians and ratios (see compare.py).
#
#   bash benchmarks/compare/run.sh                   # 5 repeats, 2 threads, batch 64 and 1,000
#   bash benchmarks/compare/run.sh --repeats 3 --seconds 2 --only cnnlite,pytorch-fast
# Environment: COMPARE_BUILD_DIR (default /tmp/cnnlite-compare-build), FASHION_MNIST_DIR
# (default /usr/share/datasets/fashion-mnist). Extra arguments go to compare.py.
# Measure on a quiet machine: `uptime` should show a load average below 1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${COMPARE_BUILD_DIR:-/tmp/cnnlite-compare-build}"
source_data="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"

packages=(g++ cmake ninja-build libeigen3-dev zlib1g-dev nlohmann-json3-dev libboost-dev libstb-dev
          python3-torch python3-numpy libopenblas0-pthread tiny-dnn libcereal-dev libgemmlowp-dev
          dataset-fashion-mnist)
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

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build"
/usr/bin/python3 "$here/prepare_data.py" "$build/data" "$source_data"
echo "uptime: $(uptime)"
/usr/bin/python3 "$here/compare.py" --build "$build" --data "$build/data" --json "$build/results.json" "$@"
