#!/usr/bin/env bash
# benchmarks/peers/setup.sh: creates the Python environments that cnnlite is checked and
# benchmarked against ("peers"), OUTSIDE the source tree, from pinned, hashed lock files.
#
# Interpreter: Debian's /usr/bin/python3 (CPython 3.11 on Debian 12), not the first python3 on
# PATH (which may be a per-user pyenv build): the lock files name one file per package for
# CPython 3.11 on Linux x86_64. Needs Debian's python3-venv, which this script installs with
# apt-get when it is missing and it runs as root (otherwise it prints the command).
#
# Environments, one venv each (README.md beside this file gives versions, sizes and times):
#   full      requirements.txt -> requirements.lock.txt
#             venv ${CNNLITE_PEERS_VENV:-$HOME/.cache/cnnlite/peers}
#             torch + torchvision, grad-cam, captum, safetensors, onnx, onnxruntime, onnxscript,
#             tensorflow-cpu 2.21 with Keras 3, umap-learn, numpy, scipy, scikit-learn.
#   ci        requirements-ci.txt -> requirements-ci.lock.txt
#             venv ${CNNLITE_PEERS_CI_VENV:-$HOME/.cache/cnnlite/peers-ci}
#             only what tests/python needs: torch + torchvision, grad-cam, captum, safetensors,
#             numpy, onnx, onnxruntime, onnxscript (no TensorFlow, no UMAP); small enough for
#             CI to keep between runs on one machine.
#   keras214  requirements-keras214.txt -> requirements-keras214.lock.txt
#             venv ${CNNLITE_PEERS_KERAS214_VENV:-$HOME/.cache/cnnlite/peers-keras214}
#             tensorflow-cpu 2.14.1 with tf.keras = Keras 2.14.0, the paper's versions; it runs
#             keras_paper.py. Separate because it needs numpy < 2, ml-dtypes 0.2.0 and
#             protobuf < 5, which onnx 1.23 and TensorFlow 2.21 exclude.
#
# torch: PyPI's Linux x86_64 torch wheels list some 2.5 GB of NVIDIA CUDA wheels. The locks
# keep only the ones torch 2.15 loads when it is imported (its shared libraries link them) and
# leave out, on "# omit:" lines, those it loads only on a GPU (cuSOLVER, nvJitLink, NVTX,
# Triton, the CUDA Python bindings). The check after installing fails if torch then loads any
# CUDA library from outside the venv (this machine has a CUDA toolkit in ld.so.cache that could
# otherwise hide a missing wheel).
#
# Usage:
#   bash benchmarks/peers/setup.sh [--subset full|ci|keras214|all] [--venv DIR] [--force]
#   bash benchmarks/peers/setup.sh --lock [--subset ...]       re-resolve requirements*.txt into
#                                                              the lock files (newest matching
#                                                              versions of unpinned dependencies)
#   bash benchmarks/peers/setup.sh --print-venv [--subset ...] print the venv folder and exit
# A second run with the environment in place only compares a stamp (sha256 of the lock file)
# and the installed versions with the lock, and says it is up to date.
set -euo pipefail

PY_SYSTEM=/usr/bin/python3
PIP_VERSION=26.3            # pip inside the venvs (Debian's venv starts with pip 23.0.1)
PY_TAG="cpython 3.11 linux x86_64"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root="$HOME/.cache/cnnlite"

# What PyPI's torch wheel depends on but never loads on a CPU (checked for torch 2.15.0:
# `import torch`, training, grad-cam, captum and ONNX export run without them).
TORCH_CPU_OMIT=(
  "triton:compiler of GPU kernels for torch.compile; the CPU backend generates C++"
  "cuda-toolkit:metapackage that only pulls nvidia-* wheels; the loaded ones are listed directly"
  "cuda-bindings:Python bindings of the CUDA driver; imported only on GPU code paths"
  "cuda-pathfinder:finds CUDA libraries for cuda-bindings"
  "nvidia-cusolver:loaded by libtorch_cuda_linalg.so on the first GPU linear-algebra call"
  "nvidia-nvjitlink:dlopen()ed by cuFFT/cuSPARSE on a GPU only; no library links it"
  "nvidia-nvtx:profiler markers; no torch library links it"
  "nvidia-cuda-cccl:CUDA C++ headers, an nvshmem dependency"
)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "setup.sh: $*" >&2; exit 1; }

subset=full venv_opt="" force=0 mode=install
while [ $# -gt 0 ]; do
  case "$1" in
    --subset) [ $# -ge 2 ] || die "--subset needs a value"; subset=$2; shift 2 ;;
    --subset=*) subset=${1#*=}; shift ;;
    --venv) [ $# -ge 2 ] || die "--venv needs a folder"; venv_opt=$2; shift 2 ;;
    --venv=*) venv_opt=${1#*=}; shift ;;
    --force) force=1; shift ;;
    --lock) mode=lock; shift ;;
    --print-venv) mode=print; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
case "$subset" in
  full|ci|keras214) subsets=("$subset") ;;
  all) subsets=(full ci keras214); [ -z "$venv_opt" ] || die "--venv cannot be used with --subset all" ;;
  *) die "unknown subset '$subset' (full, ci, keras214 or all)" ;;
esac

req_file() { case "$1" in full) echo "$here/requirements.txt" ;; *) echo "$here/requirements-$1.txt" ;; esac; }
lock_file() { case "$1" in full) echo "$here/requirements.lock.txt" ;; *) echo "$here/requirements-$1.lock.txt" ;; esac; }
venv_dir() {
  if [ -n "$venv_opt" ]; then echo "$venv_opt"; return; fi
  case "$1" in
    full) echo "${CNNLITE_PEERS_VENV:-$cache_root/peers}" ;;
    ci) echo "${CNNLITE_PEERS_CI_VENV:-$cache_root/peers-ci}" ;;
    keras214) echo "${CNNLITE_PEERS_KERAS214_VENV:-$cache_root/peers-keras214}" ;;
  esac
}
rel() { echo "${1#"$repo"/}"; }

if [ "$mode" = print ]; then
  for s in "${subsets[@]}"; do venv_dir "$s"; done
  exit 0
fi

# ---- the interpreter and python3-venv -------------------------------------------------------
[ -x "$PY_SYSTEM" ] || die "$PY_SYSTEM not found: install Debian's python3 (apt-get install python3 python3-venv)"
if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing python3-venv (apt-get)"
    apt-get install -y python3-venv >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y python3-venv >/dev/null; } \
      || die "apt-get could not install python3-venv"
  else
    die "Debian's python3-venv is missing; install it with: sudo apt-get install python3-venv"
  fi
fi
py_tag=$("$PY_SYSTEM" -c 'import platform,sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2], sys.platform, platform.machine())')
py_version=$("$PY_SYSTEM" -c 'import platform; print(platform.python_version())')

# ---- helpers in Python (run by the venv's interpreter) --------------------------------------
helper=$(mktemp --suffix=.py)
tmpdirs=("$helper")
cleanup() { rm -rf "${tmpdirs[@]}"; }
trap cleanup EXIT
cat >"$helper" <<'PY'
import json, re, sys

def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def read_lock(path):
    """{canonical name: (name, version, line number)} of the lock's requirement lines."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            s = line.split("#", 1)[0].strip()
            if not s:
                continue
            m = re.match(r"([A-Za-z0-9._-]+)==(\S+)", s)
            if not m:
                sys.exit(f"{path}:{no}: not a 'name==version --hash=...' line")
            out[canon(m[1])] = (m[1], m[2], no)
    return out

def state(lock):
    """Prints 'todo name==version' for what pip must install and 'extra name' for what the
    lock does not list; exit status 0 when the venv matches the lock exactly."""
    import importlib.metadata as md
    want = read_lock(lock)
    have = {}
    for d in md.distributions():
        name = d.metadata["Name"]
        if name:
            have[canon(name)] = d.version
    bad = 0
    for key, (name, version, _) in sorted(want.items()):
        if have.get(key) != version:
            print(f"todo {name}=={version}" + (f" (installed: {have[key]})" if key in have else ""))
            bad = 1
    for key in sorted(have):
        if key not in want and key != "pip":
            print(f"extra {key}")
            bad = 1
    return bad

def writelock(report, req, lock, subset, py_tag, pip_version, date, *omit):
    omit = dict(o.split(":", 1) for o in omit)
    r = json.load(open(report, encoding="utf-8"))
    rows, omitted, sdists = [], [], []
    has_torch = any(canon(i["metadata"]["name"]) == "torch" for i in r["install"])
    for i in sorted(r["install"], key=lambda i: canon(i["metadata"]["name"])):
        name, version = i["metadata"]["name"], i["metadata"]["version"]
        url = i["download_info"]["url"]
        sha = i["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not sha:
            sys.exit(f"no sha256 for {name} {version} ({url})")
        if has_torch and canon(name) in omit:
            omitted.append(f"# omit: {name}=={version}  ({omit[canon(name)]})")
            continue
        if not url.endswith(".whl"):
            sdists.append(canon(name))
        rows.append(f"{name}=={version} --hash=sha256:{sha}")
    base = req.rsplit("/", 1)[-1]
    with open(lock, "w", encoding="utf-8") as f:
        f.write(f"# GENERATED by `bash benchmarks/peers/setup.sh --lock --subset {subset}` from {base}: do not edit.\n")
        f.write(f"# environment: {py_tag}\n")
        f.write(f"# resolved with pip {pip_version} on {date}\n")
        f.write("# Every package of the venv: exact version and the sha256 of its one file for this platform.\n")
        f.write("# setup.sh installs it with pip install --no-deps --require-hashes --only-binary=:all:\n")
        f.write("# (--no-binary for the '# sdist:' packages, which PyPI has as source only).\n")
        if sdists:
            f.write(f"# sdist: {' '.join(sdists)}\n")
        if omitted:
            f.write("# Left out on purpose: torch's wheel lists them, but torch imports and runs on a CPU without them.\n")
            f.write("\n".join(omitted) + "\n")
        f.write("\n".join(rows) + "\n")
    print(f"{lock}: {len(rows)} packages" + (f", {len(omitted)} left out" if omitted else ""))

def diagnose(log, lock, req):
    """Names the requirement that pip failed on, with its line in the lock (and in the
    requirements file when it is a direct pin)."""
    text = open(log, encoding="utf-8", errors="replace").read().splitlines()
    want = read_lock(lock)
    culprit = None
    pats = [r"Could not find a version that satisfies the requirement (\S+)",
            r"No matching distribution found for (\S+)",
            r"^\s+(\S+?==\S+) from \S+ \(from -r .*\(line \d+\)\):",      # hash mismatch
            r"Failed (?:to build|building wheel for) (\S+)",
            r"Building wheel for (\S+) .*error",
            r"Failed to build installable wheels for some .* \((\S+?)\)"]
    for line in text:
        for p in pats:
            m = re.search(p, line)
            if m:
                culprit = m[1]
                break
        if culprit:
            break
    if culprit is None:  # e.g. a network error: the last package pip was working on
        first_error = next((n for n, l in enumerate(text) if l.startswith("ERROR")), len(text))
        for line in reversed(text[:first_error]):
            m = re.match(r"\s*(?:Collecting|Downloading|Processing|Installing collected packages:)\s*(\S+)", line)
            if m:
                culprit = m[1]
                break
    if culprit is None:
        return print("could not tell which package failed")
    key = canon(re.split(r"[=<>!~ ;\[(]", culprit.strip(",'\""))[0])
    if key not in want:  # a file name such as torch-2.15.0-cp311-...whl
        key = canon(culprit.split("-")[0])
    if key not in want:
        return print(f"the package '{culprit}'")
    name, version, no = want[key]
    where = f"{lock.rsplit('/', 1)[-1]} line {no}"
    with open(req, encoding="utf-8") as f:
        for rno, line in enumerate(f, 1):
            s = line.split("#", 1)[0].strip()
            if s and canon(re.split(r"[=<>!~ ;\[]", s)[0]) == key:
                where += f"; pinned in {req.rsplit('/', 1)[-1]} line {rno}"
    print(f"{name}=={version} ({where})")

def cudamaps(prefix):
    """Imports torch, runs an op, then checks that every CUDA library mapped into the process
    comes from the venv (prefix), not from a CUDA toolkit elsewhere on the machine."""
    import os
    import torch
    torch.ones(2) @ torch.ones(2)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split(None, 5)[-1].strip() if line.count(" ") >= 5 else ""
            base = os.path.basename(path)
            if re.match(r"lib(cu|nv|nccl|cudnn)[A-Za-z_]*\.so", base):
                libs.add(os.path.realpath(path))
    prefix = os.path.realpath(prefix)
    outside = sorted(p for p in libs if not p.startswith(prefix + "/"))
    for p in outside:
        print(f"loaded from outside the venv: {p}")
    if not outside:
        print(f"torch loaded {len(libs)} CUDA libraries, all from the venv")
    return 1 if outside else 0

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit(globals()[cmd](*args) or 0)
PY

# ---- --lock: re-resolve the requirements files ----------------------------------------------
if [ "$mode" = lock ]; then
  [ "$py_tag" = "$PY_TAG" ] || echo "setup.sh: warning: resolving for '$py_tag', the locks so far were for '$PY_TAG'" >&2
  tmp=$(mktemp -d); tmpdirs+=("$tmp")
  "$PY_SYSTEM" -m venv "$tmp/v"
  "$tmp/v/bin/python" -m pip install -q --disable-pip-version-check "pip==$PIP_VERSION"
  for s in "${subsets[@]}"; do
    req=$(req_file "$s"); lock=$(lock_file "$s")
    echo "== resolving $(rel "$req")"
    "$tmp/v/bin/python" -m pip install --disable-pip-version-check --dry-run --ignore-installed \
      -q --report "$tmp/$s.json" -r "$req" || die "pip could not resolve $(rel "$req")"
    "$tmp/v/bin/python" "$helper" writelock "$tmp/$s.json" "$req" "$lock" "$s" "$py_tag" "$PIP_VERSION" \
      "$(date -u +%F)" "${TORCH_CPU_OMIT[@]}"
  done
  exit 0
fi

# ---- install --------------------------------------------------------------------------------
# $1 = megabytes as pip prints them (10^6 bytes) -> MiB/GiB, the units of du -h
human_mb() { awk -v m="$1" 'BEGIN { b = m * 1e6; if (b >= 2^30) printf "%.2f GiB", b / 2^30; else printf "%.0f MiB", b / 2^20 }'; }

report_sizes() {  # venv: total and the largest packages
  local venv=$1 sp
  sp=$(echo "$venv"/lib/python3*/site-packages)
  echo "venv size: $(du -sh "$venv" | cut -f1)iB  ($venv)"
  echo "largest packages (MiB):"
  { for d in "$sp"/*; do
      case "$d" in *.dist-info|*/__pycache__|*.pth|*/_distutils_hack) continue ;; esac
      if [ "$(basename "$d")" = nvidia ] && [ -d "$d" ]; then
        for n in "$d"/*; do [ -d "$n" ] && printf '%s\t%s\n' "$(du -sm "$n" | cut -f1)" "nvidia/$(basename "$n")"; done
      else printf '%s\t%s\n' "$(du -sm "$d" | cut -f1)" "$(basename "$d")"; fi
    done; } | sort -rn | head -12 | awk -F'\t' '{ printf "  %7d  %s\n", $1, $2 }'
}

smoke_test() {  # imports what the subset is for, from the venv
  local s=$1 venv=$2 py=$2/bin/python
  export TF_CPP_MIN_LOG_LEVEL=2
  if [ "$s" = full ] || [ "$s" = ci ]; then
    "$py" -c '
import torch, torchvision, pytorch_grad_cam, captum, safetensors, onnx, onnxruntime, onnxscript, numpy
m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 27 * 27, 10))
torch.nn.functional.cross_entropy(m(torch.rand(2, 1, 28, 28)), torch.tensor([1, 2])).backward()
torchvision.ops.nms(torch.tensor([[0., 0, 1, 1]]), torch.tensor([1.]), 0.5)
print("  torch", torch.__version__, "torchvision", torchvision.__version__, "captum", captum.__version__,
      "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)
' || die "$s: the torch-side imports fail in $venv (see above)"
    "$py" "$helper" cudamaps "$venv" | sed 's/^/  /' || die "$s: torch loads CUDA libraries from outside the venv: a wheel the lock leaves out is needed"
  fi
  if [ "$s" = full ]; then
    "$py" -c '
import tensorflow as tf, keras, umap, sklearn, scipy
print("  tensorflow", tf.__version__, "keras", keras.__version__, "umap-learn", umap.__version__,
      "scikit-learn", sklearn.__version__, "scipy", scipy.__version__)
' 2>&1 | grep -v -E "absl::InitializeLog|oneDNN custom operations|^$" || die "$s: the TensorFlow/UMAP imports fail in $venv"
  fi
  if [ "$s" = keras214 ]; then
    "$py" -c '
import tensorflow as tf, keras, numpy
assert tf.__version__.startswith("2.14.") and keras.__version__.startswith("2.14."), (tf.__version__, keras.__version__)
assert tf.keras.Sequential.__module__.startswith("keras."), tf.keras.Sequential.__module__  # tf.keras is Keras 2
print("  tensorflow", tf.__version__, "tf.keras = keras", keras.__version__, "numpy", numpy.__version__)
' || die "$s: tensorflow 2.14 does not import in $venv"
  fi
}

install_subset() {
  local s=$1 venv req lock py start=$SECONDS stamp want sdists log st todo extra omits
  venv=$(venv_dir "$s"); req=$(req_file "$s"); lock=$(lock_file "$s")
  [ -f "$lock" ] || die "$(rel "$lock") is missing: run bash $(rel "$here")/setup.sh --lock --subset $s"
  grep -q "^# environment: $py_tag\$" "$lock" \
    || die "$(rel "$lock") is for '$(sed -n 's/^# environment: //p' "$lock")', $PY_SYSTEM is '$py_tag': re-resolve with --lock"
  mkdir -p "$(dirname "$venv")"
  venv=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")
  case "$venv/" in "$repo"/*) die "the venv must be outside the source tree ($venv)" ;; esac
  py=$venv/bin/python
  echo "== $s: $venv (from $(rel "$lock"))"

  # One run at a time per venv.
  exec 9>"$venv.setup-lock"
  flock 9

  want="lock $(sha256sum "$lock" | cut -d' ' -f1) python $py_version pip $PIP_VERSION"
  stamp=$venv/.cnnlite-peers-stamp
  if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$py" -c '' 2>/dev/null \
     && "$py" "$helper" state "$lock" >/dev/null; then
    echo "environment is up to date ($(grep -c '^[A-Za-z]' "$lock") packages; $(cat "$venv/.cnnlite-peers-installed" 2>/dev/null || echo "installed earlier"))"
    echo "python: $py"
    return 0
  fi

  if [ -e "$venv" ] && { [ "$force" = 1 ] || ! "$py" -c '' 2>/dev/null \
       || [ "$("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null)" != "$py_version" ]; }; then
    [ -f "$venv/pyvenv.cfg" ] || die "$venv exists and is not a venv: not removing it"
    echo "removing $venv"
    rm -rf "$venv"
  fi
  if [ ! -e "$venv" ]; then
    echo "creating the venv with $PY_SYSTEM ($py_version)"
    "$PY_SYSTEM" -m venv "$venv"
  fi
  if [ "$("$py" -m pip --version 2>/dev/null | awk '{print $2}')" != "$PIP_VERSION" ]; then
    "$py" -m pip install -q --disable-pip-version-check "pip==$PIP_VERSION" || die "could not install pip==$PIP_VERSION"
  fi
  rm -f "$stamp"

  log=$(mktemp); tmpdirs+=("$log" "$log.check")
  todo=$("$py" "$helper" state "$lock" | sed -n 's/^todo //p' || true)
  if [ -n "$todo" ]; then
    echo "installing $(echo "$todo" | wc -l) packages:"
    while IFS= read -r line; do echo "  $line"; done <<<"$todo"
    sdists=$(sed -n 's/^# sdist: //p' "$lock" | tr ' ' ',')
    set +e
    "$py" -m pip install --disable-pip-version-check --no-input --no-deps --require-hashes \
      --only-binary=:all: ${sdists:+--no-binary="$sdists"} --no-cache-dir --progress-bar off -r "$lock" 2>&1 \
      | tee "$log" | grep --line-buffered -E "Downloading|Building wheel|Successfully|ERROR|error:" | sed -u 's/^ */  /'
    st=${PIPESTATUS[0]}
    set -e
    if [ "$st" != 0 ]; then
      echo "---- last lines of pip's output:" >&2; tail -n 12 "$log" >&2
      die "FAILED to install $("$py" "$helper" diagnose "$log" "$lock" "$req") (pip exit status $st)"
    fi
    download_mb=$(sed -n 's/.*Downloading .* (\([0-9.]*\) \(kB\|MB\|GB\|bytes\)).*/\1 \2/p' "$log" \
      | awk '{ m = $1; if ($2 == "kB") m /= 1000; else if ($2 == "GB") m *= 1000; else if ($2 == "bytes") m /= 1e6; s += m } END { printf "%.0f", s }')
  else
    download_mb=0
  fi
  extra=$("$py" "$helper" state "$lock" | sed -n 's/^extra //p' || true)
  if [ -n "$extra" ]; then
    echo "removing packages the lock does not list: ${extra//$'\n'/ }"
    # shellcheck disable=SC2086
    "$py" -m pip uninstall -y -q --disable-pip-version-check $extra
  fi
  "$py" "$helper" state "$lock" >/dev/null || { "$py" "$helper" state "$lock" >&2; die "$venv still differs from $(rel "$lock")"; }

  # pip check: only the wheels the lock leaves out on purpose may be missing.
  omits=$(sed -n 's/^# omit: \([^=]*\)==.*/\1/p' "$lock" | tr '\n' '|'); omits=${omits%|}
  st=0; "$py" -m pip check --disable-pip-version-check >"$log.check" 2>&1 || st=$?
  if [ "$st" != 0 ]; then
    if grep -v -E "requires (${omits:-^$}), which is not installed" "$log.check" | grep -q .; then
      cat "$log.check" >&2; die "pip check found broken requirements in $venv"
    fi
    echo "pip check: only the deliberately omitted CUDA wheels are missing ($(echo "$omits" | tr '|' ' '))"
  fi
  rm -f "$log.check"
  echo "checking the imports"
  smoke_test "$s" "$venv"

  local took=$((SECONDS - start))
  echo "$want" >"$stamp"
  if [ -n "$todo" ] || [ ! -f "$venv/.cnnlite-peers-installed" ]; then
    echo "installed $(date -u '+%F %H:%M UTC') in ${took} s, downloaded $(human_mb "$download_mb")" >"$venv/.cnnlite-peers-installed"
  fi
  report_sizes "$venv"
  echo "downloaded: $(human_mb "$download_mb"); time: ${took} s"
  echo "python: $py"
}

for s in "${subsets[@]}"; do install_subset "$s"; done
