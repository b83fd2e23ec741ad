#!/usr/bin/env bash
# The README's "Compile time" table: user time and peak memory of g++ compiling one translation
# unit at a time (-O2 -fopenmp, one job), with /usr/bin/time: the median of REPEATS runs
# (default 3). Run from anywhere; writes nothing but a temporary folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d -t cnnlite-compile.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cxx="${CXX:-g++}"
repeats="${REPEATS:-3}"
flags=(-std=c++17 -O2 -fopenmp -I"$root/include" -isystem /usr/include/eigen3 -isystem /usr/include/stb)

measure() {  # measure <label> <compiler arguments...>: the median user time, and that run's memory
    local label="$1"
    shift
    : > "$tmp/times"
    for ((run = 0; run < repeats; ++run)); do
        /usr/bin/time -f '%U %M' -o "$tmp/time" "$cxx" "${flags[@]}" "$@" -c -o "$tmp/out.o"
        cat "$tmp/time" >> "$tmp/times"
    done
    sort -n "$tmp/times" | awk -v label="$label" '{ t[NR] = $1; m[NR] = $2 }
        END { i = int((NR + 1) / 2); printf "| %-62s | %5.1f s | %6.0f MB |\n", label, t[i], m[i] / 1024 }'
}
source_of() {  # source_of <name> <line>...: a translation unit from the given lines
    local name="$1"
    shift
    printf '%s\n' "$@" > "$tmp/$name.cpp"
    echo "$tmp/$name.cpp"
}

third_party="$(source_of third_party '#include <Eigen/Dense>' '#include <Eigen/Sparse>' '#include <nlohmann/json.hpp>' \
    '#include <boost/math/distributions/fisher_f.hpp>' '#include <Spectra/SymEigsSolver.h>' \
    '#include <Spectra/MatOp/DenseSymMatProd.h>' '#include <zlib.h>' 'int main() {}')"
umbrella="$(source_of umbrella '#include <cnnlite/cnnlite.hpp>' 'int main() {}')"
lean="$(source_of lean '#include <cnnlite/nn.hpp>' '#include <cnnlite/train.hpp>' 'int main() {}')"
analysis="$(source_of analysis '#include <cnnlite/analysis.hpp>' 'int main() {}')"
quickstart="$root/examples/quickstart/main.cpp"
quickstart_umbrella="$tmp/quickstart_umbrella.cpp"
{ echo '#include <cnnlite/cnnlite.hpp>'; grep -v '#include <cnnlite/' "$quickstart"; } > "$quickstart_umbrella"

echo "| translation unit | time | memory |"
echo "|---|---|---|"
measure "third-party headers alone, empty main" "$third_party"
measure "cnnlite/cnnlite.hpp, empty main" "$umbrella"
measure "cnnlite/nn.hpp + cnnlite/train.hpp, empty main" "$lean"
measure "cnnlite/analysis.hpp, empty main" "$analysis"
measure "examples/quickstart with the umbrella" "$quickstart_umbrella"
measure "examples/quickstart (its areas)" "$quickstart"
measure "examples/quickstart with cnnlite/extern_templates.hpp" -DQUICKSTART_PRECOMPILED "$quickstart"
measure "examples/quickstart/instantiations.cpp (once)" "$root/examples/quickstart/instantiations.cpp"
