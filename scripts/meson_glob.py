#!/usr/bin/env python3
"""Prints the files (or folders) of the source tree that match a pattern, one per line, sorted.

Meson has no glob on purpose; cnnlite's meson.build files call this at configure time so that
nobody edits a list when adding a test, benchmark or header. Re-run `meson setup --reconfigure
<builddir>` after adding a file to an existing Meson build directory (CMake notices by itself).

    meson_glob.py ROOT PATTERN [--relative-to DIR] [--exclude REGEX]

PATTERN is a pathlib glob relative to ROOT ('tests/test_*.cpp', 'include/cnnlite/**/*.hpp',
'examples/*/meson.build'); output paths are relative to --relative-to (default ROOT).
"""

import argparse
import re
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("pattern")
    parser.add_argument("--relative-to", type=Path)
    parser.add_argument("--exclude", action="append", default=[], help="regex on the printed path")
    args = parser.parse_args()

    base = (args.relative_to or args.root).resolve()
    paths = sorted(p.resolve().relative_to(base).as_posix() for p in args.root.glob(args.pattern))
    for path in paths:
        if not any(re.search(rx, path) for rx in args.exclude):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
