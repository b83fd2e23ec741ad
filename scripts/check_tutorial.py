#!/usr/bin/env python3
"""Keeps docs/tutorial/ honest: the code the chapters quote is the current source, and the
output they show is what the programs print.

Fenced blocks in docs/tutorial/*.md are tagged in their info string (GitHub ignores everything
after the language word):

    ```cpp {snippet=01_autograd.cpp#graph}      the region `// [snippet:graph]` ... `// [end]`
                                                of examples/tutorial/01_autograd.cpp, verbatim
                                                (common indentation removed)
    ```cpp {excerpt=include/cnnlite/autograd/variable.hpp}
                                                lines that appear, in this order and contiguous,
                                                in that file (indentation removed): quotes of
                                                the library itself
    ```text {output=01_autograd}                lines the program prints, contiguous; a line
                                                `...` skips any number of printed lines
    ```text {output=05_training tolerance=0.03} the same, numbers may differ by the tolerance
                                                (training results vary in the last digits
                                                between compilers and instruction sets)

Every ```cpp block must carry a snippet or excerpt tag, so no quoted C++ can drift.

    check_tutorial.py --root REPO                     checks snippets, excerpts and tags
    check_tutorial.py --root REPO --run NAME EXE ARGS also runs EXE (the program NAME.cpp) and
                                                      checks every output block of NAME
Exit status 0 when everything matches, 1 otherwise (each problem printed with file:line).
"""

import argparse
import difflib
import pathlib
import re
import subprocess
import sys
import textwrap

FENCE = re.compile(r"^(\s*)```(\S*)\s*(.*)$")
TAG = re.compile(r"\{([^}]*)\}")
NUMBER = re.compile(r"([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")
REGION_START = re.compile(r"^\s*// \[snippet:([A-Za-z0-9_]+)\]\s*$")
REGION_END = re.compile(r"^\s*// \[end\]\s*$")


class Block:
    def __init__(self, path, line, language, tags, lines):
        self.path, self.line, self.language, self.tags, self.lines = path, line, language, tags, lines

    def where(self):
        return f"{self.path}:{self.line}"


def parse_tags(text):
    tags = {}
    match = TAG.search(text)
    if not match:
        return tags
    for item in match.group(1).split():
        key, _, value = item.partition("=")
        tags[key] = value
    return tags


def read_blocks(path):
    """Every fenced block of a Markdown file, with its language and tags."""
    blocks, current = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if current is None:
            if fence:
                current = Block(path, number, fence.group(2), parse_tags(fence.group(3)), [])
                indent = len(fence.group(1))
        elif fence and not fence.group(2) and not fence.group(3):
            blocks.append(current)
            current = None
        else:
            current.lines.append(line[indent:] if line[:indent].strip() == "" else line)
    if current is not None:
        raise SystemExit(f"{path}:{current.line}: unterminated code block")
    return blocks


def read_regions(path):
    """The `// [snippet:name]` ... `// [end]` regions of a source file, dedented."""
    regions, name, start, body, errors = {}, None, 0, [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if REGION_START.match(line):
            if name is not None:
                errors.append(f"{path}:{number}: region '{REGION_START.match(line).group(1)}' starts inside '{name}'")
            name, start, body = REGION_START.match(line).group(1), number, []
        elif REGION_END.match(line):
            if name is None:
                errors.append(f"{path}:{number}: '// [end]' without a region")
            elif name in regions:
                errors.append(f"{path}:{start}: region '{name}' is defined twice")
            else:
                regions[name] = textwrap.dedent("\n".join(body)).splitlines()
            name = None
        elif name is not None:
            body.append(line.rstrip())
    if name is not None:
        errors.append(f"{path}:{start}: region '{name}' has no '// [end]'")
    return regions, errors


def dedent(lines):
    return [line.rstrip() for line in textwrap.dedent("\n".join(lines)).splitlines()]


def check_sources(root, blocks):
    """Snippet and excerpt blocks against the files they quote; returns the problems."""
    problems, regions_cache = [], {}
    sources = root / "examples" / "tutorial"
    for block in blocks:
        if block.language == "cpp" and not ({"snippet", "excerpt"} & block.tags.keys()):
            problems.append(f"{block.where()}: a cpp block without a snippet= or excerpt= tag")
        if "snippet" in block.tags:
            file_name, _, region = block.tags["snippet"].partition("#")
            path = sources / file_name
            if not path.is_file() or not region:
                problems.append(f"{block.where()}: snippet '{block.tags['snippet']}' names no file#region "
                                f"of examples/tutorial/")
                continue
            if path not in regions_cache:
                regions_cache[path] = read_regions(path)
                problems.extend(regions_cache[path][1])
            regions = regions_cache[path][0]
            if region not in regions:
                problems.append(f"{block.where()}: {path.relative_to(root)} has no region '{region}' "
                                f"(regions: {', '.join(sorted(regions)) or 'none'})")
                continue
            expected, shown = regions[region], dedent(block.lines)
            if expected != shown:
                problems.append(f"{block.where()}: the quoted code differs from {path.relative_to(root)}#{region}:\n"
                                + first_difference(shown, expected, "text", "source"))
        if "excerpt" in block.tags:
            path = root / block.tags["excerpt"]
            if not path.is_file():
                problems.append(f"{block.where()}: excerpt file '{block.tags['excerpt']}' does not exist")
                continue
            source = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            shown = [line.strip() for line in block.lines]
            if not any(source[i:i + len(shown)] == shown for i in range(len(source) - len(shown) + 1)):
                problems.append(f"{block.where()}: these {len(shown)} lines do not appear, contiguous, in "
                                f"{block.tags['excerpt']} (was the code changed?)")
    return problems


def first_difference(shown, actual, shown_name, actual_name):
    for i in range(max(len(shown), len(actual))):
        a = shown[i] if i < len(shown) else "<end>"
        b = actual[i] if i < len(actual) else "<end>"
        if a != b:
            return f"    line {i + 1}:\n    {shown_name:>6}: {a}\n    {actual_name:>6}: {b}"
    return "    (same lines)"


def lines_match(shown, printed, tolerance):
    shown_parts, printed_parts = NUMBER.split(shown), NUMBER.split(printed)
    if len(shown_parts) != len(printed_parts):
        return False
    for i, (a, b) in enumerate(zip(shown_parts, printed_parts)):
        if i % 2 == 0 or tolerance == 0:
            if a != b:
                return False
        elif abs(float(a) - float(b)) > tolerance * (1 + 1e-9):
            return False
    return True


def match_segment(segment, printed, start, tolerance):
    """First index >= start where `segment` matches printed lines; else (None, best index, depth)."""
    best, best_depth = start, -1
    for i in range(start, len(printed) - len(segment) + 1):
        depth = 0
        while depth < len(segment) and lines_match(segment[depth], printed[i + depth], tolerance):
            depth += 1
        if depth == len(segment):
            return i, None, None
        if depth > best_depth:
            best, best_depth = i, depth
    return None, best, max(best_depth, 0)


def check_output(block, printed, tolerance):
    shown = [line.rstrip() for line in block.lines]
    segments, current = [], []
    for line in shown:
        if line.strip() == "...":
            segments.append(current)
            current = []
        else:
            current.append(line)
    segments.append(current)
    position = 0
    for segment in segments:
        if not segment:
            continue
        found, best, depth = match_segment(segment, printed, position, tolerance)
        if found is None:
            if depth == 0:  # not even the first line matched: show the most similar printed line
                best = max(range(len(printed)), default=0,
                           key=lambda i: difflib.SequenceMatcher(None, segment[0], printed[i]).ratio())
            actual = printed[best + depth] if best + depth < len(printed) else "<end of output>"
            return (f"{block.where()}: the shown output is not what '{block.tags['output']}' prints"
                    f" (tolerance {tolerance}); closest match differs at\n    shown:   {segment[depth]}\n"
                    f"    printed: {actual}")
        position = found + len(segment)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=pathlib.Path, help="the repository")
    parser.add_argument("--run", nargs=argparse.REMAINDER, metavar="NAME EXE ARGS",
                        help="run a tutorial program and check the output the chapters show")
    args = parser.parse_args()
    root = args.root.resolve()
    chapters = sorted((root / "docs" / "tutorial").glob("*.md"))
    if not chapters:
        print(f"check_tutorial: no chapters in {root / 'docs' / 'tutorial'}", file=sys.stderr)
        return 1
    blocks = [block for chapter in chapters for block in read_blocks(chapter)]
    programs = {path.stem for path in (root / "examples" / "tutorial").glob("*.cpp")}
    problems = []
    for block in blocks:
        if "output" in block.tags and block.tags["output"] not in programs:
            problems.append(f"{block.where()}: output of unknown program '{block.tags['output']}'")

    if args.run is None:
        problems += check_sources(root, blocks)
        snippets = sum("snippet" in b.tags for b in blocks)
        excerpts = sum("excerpt" in b.tags for b in blocks)
        summary = f"{len(chapters)} Markdown files, {snippets} snippets, {excerpts} excerpts"
    else:
        if len(args.run) < 2:
            parser.error("--run needs NAME and EXE")
        name, command = args.run[0], args.run[1:]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            print(f"check_tutorial: cannot run {command[0]}: {error}", file=sys.stderr)
            return 1
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            print(f"check_tutorial: {name} exited with {done.returncode}:\n{done.stderr}", file=sys.stderr)
            return 1
        printed = [line.rstrip() for line in done.stdout.splitlines()]
        shown = [b for b in blocks if b.tags.get("output") == name]
        if not shown:
            problems.append(f"no chapter shows the output of '{name}' (a block tagged {{output={name}}})")
        for block in shown:
            try:
                tolerance = float(block.tags.get("tolerance", "0"))
            except ValueError:
                problems.append(f"{block.where()}: tolerance '{block.tags['tolerance']}' is not a number")
                continue
            problem = check_output(block, printed, tolerance)
            if problem:
                problems.append(problem)
        summary = f"{name}: {len(shown)} output blocks"

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check_tutorial: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_tutorial: ok ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
