#!/usr/bin/env bash
# The explanation comparison in one command: checks the Debian packages (installs them as
# root; otherwise prints the apt-get line) and the peers venv (benchmarks/peers/setup.sh, which
# installs it when missing), builds cnnlite_explain_driver, trains the shared model file once
# (the paper's network, 1 epoch on the 60,000 training images; kept in the build folder), and
# runs cnnlite against pytorch-grad-cam and Captum alternately, printing medians and ratios
# (see compare.py).
#
#   bash benchmarks/compare_explain/run.sh                       # 5 repeats, 1 and 2 threads
#   bash benchmarks/compare_explain/run.sh --repeats 1 --seconds 1 --ig-images 200
# Environment: COMPARE_EXPLAIN_BUILD_DIR (default /tmp/cnnlite-compare-explain-build),
# FASHION_MNIST_DIR (default /usr/share/datasets/fashion-mnist), CNNLITE_PEERS_VENV. Other
# arguments go to compare.py. Measure on a quiet machine: `uptime` should show a load below 1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${COMPARE_EXPLAIN_BUILD_DIR:-/tmp/cnnlite-compare-explain-build}"
data="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"

packages=(g++ cmake ninja-build libeigen3-dev zlib1g-dev libpng-dev libjpeg-dev nlohmann-json3-dev libstb-dev
          libboost-dev libspectra-dev python3-venv dataset-fashion-mnist)
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
bash "$here/../peers/setup.sh" --subset full | tail -n 1
peers="$(bash "$here/../peers/setup.sh" --print-venv --subset full)"

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j1
model="$build/paper_model.safetensors"
[[ -f "$model" ]] || "$build/cnnlite_explain_driver" --train "$model" --data "$data" --epochs 1 --threads 2
echo "uptime: $(uptime)"
/usr/bin/python3 "$here/compare.py" --build "$build" --model "$model" --data "$data" --peers-python "$peers/bin/python" \
    --json "$build/results.json" "$@"
