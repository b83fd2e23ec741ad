#!/usr/bin/env bash
# A consumer of an installed cnnlite through pkg-config, with nothing but the compiler:
#   PKG_CONFIG_PATH=<prefix>/share/pkgconfig bash tests/consumer/pkgconfig/build.sh <output>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
output="${1:-consumer}"
flags="$(pkg-config --cflags --libs cnnlite)"
echo "consumer: pkg-config --cflags --libs cnnlite = $flags"
# $flags is split into words on purpose.
# shellcheck disable=SC2086
"${CXX:-c++}" -std=c++17 -O2 "$here/../main.cpp" -o "$output" $flags
