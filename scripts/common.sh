# Shared by scripts/test.sh, scripts/run_pipeline.sh and .ci/run (sourced, not run).
# Defines CNNLITE_ROOT (the repository, whatever the caller's current directory) and
# cnnlite_ensure_packages, which installs the Debian packages of scripts/debian-packages.txt
# that are missing.

CNNLITE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CNNLITE_ROOT

cnnlite_log() { printf '==> %s\n' "$*" >&2; }
cnnlite_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Package names of the list file, without comments and blank lines.
cnnlite_package_list() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$CNNLITE_ROOT/scripts/debian-packages.txt"
}

# Installs the missing packages (apt-get update only when something is missing). Not root:
# prints the apt-get line to run and exits 1. Set CNNLITE_SKIP_APT=1 to skip the check on
# systems without dpkg (the build then reports whatever is missing itself).
cnnlite_ensure_packages() {
    [[ "${CNNLITE_SKIP_APT:-0}" == 1 ]] && return 0
    if ! command -v dpkg-query >/dev/null 2>&1; then
        cnnlite_log "not a Debian system (no dpkg-query): not checking packages; see scripts/debian-packages.txt"
        return 0
    fi
    local missing=() package
    while read -r package; do
        if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]]; then
            missing+=("$package")
        fi
    done < <(cnnlite_package_list)
    [[ ${#missing[@]} -eq 0 ]] && return 0

    if [[ "$(id -u)" -ne 0 ]]; then
        printf 'error: these Debian packages are missing: %s\n' "${missing[*]}" >&2
        printf 'Install them with:\n    sudo apt-get update && sudo apt-get install -y %s\n' "${missing[*]}" >&2
        printf 'then run this command again.\n' >&2
        exit 1
    fi
    cnnlite_log "installing missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Compile jobs: all cores unless JOBS is set (ninja's default would add 2 to the count).
cnnlite_jobs() { echo "${JOBS:-$(nproc 2>/dev/null || echo 2)}"; }

# Refuses a build folder that another generator configured (CMake would fail less clearly).
cnnlite_check_build_dir() {
    local dir="$1" cache="$1/CMakeCache.txt"
    if [[ -f "$cache" ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache"; then
        cnnlite_die "$dir was configured with another CMake generator; remove it (rm -rf $dir) and run again"
    fi
}
