#!/usr/bin/env bash
# Training speed when another process holds a core. Runs `fashion_mnist train` (one epoch of the
# paper's network on 20,000 images, and of ResNet-8 on 12,800) under several thread settings,
# first on the machine as it is, then with a load generator that it starts and stops itself
# (`yes > /dev/null`, one CPU-bound process), and prints each run's training images/s.
#
#   bash benchmarks/busy_machine.sh BUILD_DIR [REPEATS] [SETTINGS...]
#
# BUILD_DIR holds examples/fashion_mnist/fashion_mnist (a Release build); REPEATS defaults to 2;
# SETTINGS default to: default fixed threads1 passive, where default is the program's defaults
# (all cores, the thread governor on), fixed is `--adapt-threads off` (the whole team for every
# step), threadsN is `--threads N`, spinN sets GOMP_SPINCOUNT=N (libgomp spins that many times
# before sleeping) and passive sets OMP_WAIT_POLICY=passive with the governor off, each for that
# one process. Each line ends with the share of steps the governor ran on one thread. Start it
# on a quiet machine: the quiet half is the baseline. Needs the data set (Debian's
# dataset-fashion-mnist).
set -euo pipefail
build="${1:?usage: busy_machine.sh BUILD_DIR [REPEATS] [SETTINGS...]}"
repeats="${2:-2}"
shift $(($# < 2 ? $# : 2))
settings=("$@")
((${#settings[@]})) || settings=(default fixed threads1 passive)
program="$build/examples/fashion_mnist/fashion_mnist"
[[ -x "$program" ]] || { echo "busy_machine.sh: no $program (build the examples first)" >&2; exit 1; }
out="$(mktemp -d)"
load=""
cleanup() { [[ -n "$load" ]] && kill "$load" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

run() {  # state setting network
    local env=() extra=() args=()
    case "$2" in
        default) ;;
        fixed) extra=(--adapt-threads off) ;;
        threads*) extra=(--threads "${2#threads}") ;;
        spin*) env=(GOMP_SPINCOUNT="${2#spin}") extra=(--adapt-threads off) ;;
        passive) env=(OMP_WAIT_POLICY=passive) extra=(--adapt-threads off) ;;
        *) echo "busy_machine.sh: unknown setting $2" >&2; exit 1 ;;
    esac
    if [[ "$3" == paper ]]; then
        args=(--epochs 1 --limit 20000 --val 1000)
    else
        args=(--arch resnet8 --recipe fast --epochs 1 --limit 12800 --val 500)
    fi
    env "${env[@]}" "$program" train "${args[@]}" "${extra[@]}" --overwrite --out "$out/$3" >"$out/log" 2>&1 ||
        { echo "busy_machine.sh: the run failed:" >&2; cat "$out/log" >&2; exit 1; }
    printf '%-6s %-10s %-8s %-12s one-thread steps %s\n' "$1" "$2" "$3" "$(grep -o '[0-9]* img/s' "$out/log" | tail -n 1)" \
        "$(grep -o '"one_thread_share": [0-9.e-]*' "$out/$3/metrics.json" | cut -d' ' -f2)"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; load average $(cut -d' ' -f1 /proc/loadavg)"
for state in quiet busy; do
    if [[ "$state" == busy ]]; then
        yes >/dev/null &
        load=$!
        sleep 1
    fi
    for ((r = 1; r <= repeats; r++)); do
        for setting in "${settings[@]}"; do
            for network in paper resnet8; do run "$state" "$setting" "$network"; done
        done
    done
done
