#!/usr/bin/env bash
# The README's main command: runs the paper's full Fashion-MNIST pipeline (examples/
# fashion_mnist, "all" stages) on the data set that Debian's dataset-fashion-mnist installs.
# Installs missing Debian packages, configures an optimised build (-O3, -march=native) into
# build-release/, builds the fashion_mnist program and runs it from the repository root.
# Works from any directory; extra arguments go to the program:
#
#   bash scripts/run_pipeline.sh
#   bash scripts/run_pipeline.sh --help
#
# Environment: CNNLITE_RELEASE_DIR (default <repo>/build-release), JOBS (default: all cores),
# CNNLITE_SKIP_APT=1 (do not check packages).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ ! -f "$CNNLITE_ROOT/examples/fashion_mnist/CMakeLists.txt" ]]; then
    cnnlite_die "examples/fashion_mnist/ (the pipeline program) is not in this tree yet; nothing to run.
       'bash scripts/test.sh' builds and tests what is there."
fi

cnnlite_ensure_packages
build_dir="${CNNLITE_RELEASE_DIR:-$CNNLITE_ROOT/build-release}"
jobs="$(cnnlite_jobs)"
cnnlite_check_build_dir "$build_dir"

cnnlite_log "configuring $build_dir (Release, native)"
cmake -S "$CNNLITE_ROOT" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DCNNLITE_NATIVE=ON \
    -DCNNLITE_BUILD_EXAMPLES=ON \
    -DCNNLITE_BUILD_TESTS=OFF \
    -DCNNLITE_CHECK_HEADERS=OFF \
    -DCNNLITE_BUILD_BENCHMARKS=OFF

cnnlite_log "building fashion_mnist with $jobs jobs"
cmake --build "$build_dir" --parallel "$jobs" --target fashion_mnist

program="$build_dir/examples/fashion_mnist/fashion_mnist"
[[ -x "$program" ]] || cnnlite_die "the build did not produce $program"
cd "$CNNLITE_ROOT"
# The reproduction command always starts a new run: it replaces the previous run in the output
# folder (--overwrite), unless asked to continue it (--resume).
args=("$@")
[[ " ${args[*]} " == *" --resume "* || " ${args[*]} " == *" --overwrite "* ]] || args+=(--overwrite)
cnnlite_log "running: ${program#"$CNNLITE_ROOT"/} all ${args[*]}"
exec "$program" all "${args[@]}"
