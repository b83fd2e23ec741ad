#!/usr/bin/env bash
# The README's test command: installs missing Debian packages, configures CMake into build/,
# builds everything (library header checks, tests, examples, benchmarks) and runs the test
# suite with CTest. Works from any directory.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -R reshape      # extra arguments go to ctest (here: a name filter)
#
# Environment: CNNLITE_BUILD_DIR (default <repo>/build), JOBS (default: all cores),
# CXX (compiler for a fresh build folder), CNNLITE_SKIP_APT=1 (do not check packages).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

cnnlite_ensure_packages
build_dir="${CNNLITE_BUILD_DIR:-$CNNLITE_ROOT/build}"
jobs="$(cnnlite_jobs)"
cnnlite_check_build_dir "$build_dir"

# Build type: -O2 without NDEBUG, i.e. optimised but with asserts and Tensor bounds checks
# on. Tests include short training runs that must stay fast (an unoptimised Eigen build is
# 10-50x slower), yet a test build should still catch every out-of-range index.
cnnlite_log "configuring $build_dir"
cmake -S "$CNNLITE_ROOT" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O2" \
    -DCNNLITE_WERROR=ON \
    -DCNNLITE_BUILD_TESTS=ON \
    -DCNNLITE_CHECK_HEADERS=ON \
    -DCNNLITE_BUILD_EXAMPLES=ON \
    -DCNNLITE_BUILD_BENCHMARKS=ON

cnnlite_log "building with $jobs jobs"
cmake --build "$build_dir" --parallel "$jobs"

cnnlite_log "running the tests"
log="$build_dir/ctest-output.log"
set +e
ctest --test-dir "$build_dir" --output-on-failure --parallel "$jobs" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# CTest's summary line: "100% tests passed, 0 tests failed out of 42".
summary="$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
if [[ -n "$summary" ]]; then
    total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")"
    failed="$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")"
    printf '==> CTest: %s tests run, %s passed, %s failed\n' "$total" "$((total - failed))" "$failed"
elif [[ $status -eq 0 ]]; then
    printf '==> CTest: no tests run (filter matched nothing?)\n'
fi
exit "$status"
