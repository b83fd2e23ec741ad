#!/usr/bin/env bash
# The measurements of benchmarks/README_distributed.md, on this machine:
#   1. throughput of the paper network, global batch 64: 1 rank x 2 threads vs 2 ranks x 1 thread
#   2. allreduce times up to 805,962 floats over shared memory (OpenMPI's vader) and over TCP
#      on loopback (--mca btl tcp,self), with the ring's alpha-beta fit for each
#   3. the ring model's projection to 8 and 64 machines from the TCP fit and the step time of 1.
#
#   bash benchmarks/bench_distributed.sh [BUILD_DIR]     # default build-mpi; needs bench_distributed
#
# BUILD_DIR must be a CMake build with -DCNNLITE_WITH_MPI=ON -DCNNLITE_BUILD_BENCHMARKS=ON
# (cmake --build BUILD_DIR --target bench_distributed). Runs as root too (OpenMPI's two
# OMPI_ALLOW_RUN_AS_ROOT variables are set here). Writes BUILD_DIR/bench_distributed.log.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-mpi}"
bench="$build/benchmarks/bench_distributed"
[[ -x "$bench" ]] || { echo "error: $bench not found; build it with CNNLITE_WITH_MPI=ON (see the top of this file)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
log="$build/bench_distributed.log"
: >"$log"
run() { echo "\$ $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log"; }

steps="${STEPS:-60}"
# 1 rank may use both cores only without OpenMPI's default binding of a rank to one core.
run mpirun -np 1 --bind-to none "$bench" train --threads 2 --steps "$steps"
run mpirun -np 2 "$bench" train --threads 1 --steps "$steps"
run mpirun -np 2 "$bench" train --threads 1 --steps "$steps" --algorithm mpi
run mpirun -np 2 "$bench" allreduce
run mpirun -np 2 --mca btl tcp,self "$bench" allreduce

# Projection: alpha and beta of the TCP fit (the last one), the 1 x 2 step time.
fit="$(grep 'alpha-beta fit' "$log" | tail -n 1)"
alpha="$(sed -E 's/.*alpha ([0-9.e+-]+) s per message.*/\1/' <<<"$fit")"
beta="$(sed -E 's/.*beta ([0-9.e+-]+) s per byte.*/\1/' <<<"$fit")"
step_ms="$(grep -m1 '^train: 1 rank' "$log" | sed -E 's/.*images\/s, ([0-9.]+) ms\/step.*/\1/')"
step="$(awk -v ms="$step_ms" 'BEGIN { printf "%.6f", ms / 1000 }')"
run "$bench" project --alpha "$alpha" --beta "$beta" --step "$step"
# The same with a 10 Gbit/s link (1.25 GB/s, beta = 8e-10 s/B) and 20 us per message: typical
# cluster Ethernet, an assumption rather than a measurement.
run "$bench" project --alpha 2e-5 --beta 8e-10 --step "$step"
echo "log: $log"
