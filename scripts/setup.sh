#!/usr/bin/env bash
# Installs what this machine lacks (Debian/Ubuntu packages) and builds VimDense (NuGet restore,
# native CMake build, .NET build, TorchSharp GLIBCXX fix). Idempotent, and quick when nothing
# changed: the build runs only when a source is newer than the last successful build.
#   scripts/setup.sh [--quiet] [--force-build]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quiet=0; force=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --force-build) force=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "setup: $*" >&2; }

# --- system packages ------------------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
# Ubuntu 24.04 renamed libgtk-3-0 (OpenCvSharp's native library needs it) to libgtk-3-0t64.
gtk=libgtk-3-0
if ! installed libgtk-3-0 && { installed libgtk-3-0t64 || apt-cache show libgtk-3-0t64 >/dev/null 2>&1; }; then gtk=libgtk-3-0t64; fi
required=("$gtk" patchelf cmake g++ make openmpi-bin libopenmpi-dev)
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${required[@]}"; do installed "$p" || missing+=("$p"); done
else
  for tool in patchelf cmake g++ make; do command -v "$tool" >/dev/null || missing+=("$tool"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (sudo)"
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: these packages are missing and I cannot install them (not root, no passwordless sudo or no apt):" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if ! command -v dotnet >/dev/null; then
  echo "setup: the .NET 10 SDK is missing: install it from https://dotnet.microsoft.com/download (package dotnet-sdk-10.0)" >&2
  exit 1
fi
if ! dotnet --list-sdks | grep -q '^10\.'; then
  echo "setup: a .NET 10 SDK is required; found: $(dotnet --list-sdks | tr '\n' ' ')" >&2
  exit 1
fi

# --- build (only when stale) ----------------------------------------------------------------------
stamp="$root/artifacts/.build-stamp"
stale=1
if [ "$force" = 0 ] && [ -f "$stamp" ] && [ -f "$root/artifacts/bin/VimDense.dll" ]; then
  newer=$(find "$root" \( -path "$root/artifacts" -o -path "$root/.git" -o -path "$root/work_dirs" -o -path "$root/data" \
            -o -name bin -o -name obj \) -prune -o \
          \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.targets' -o -name '*.sln' \
             -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name 'CMakeLists.txt' -o -name '*.cmake' \) \
          -newer "$stamp" -print -quit)
  [ -z "$newer" ] && stale=0
fi
if [ "$stale" = 1 ]; then
  say "building VimDense (native kernels + .NET; the first build restores ~1 GB of packages and takes a few minutes)"
  log="$root/artifacts/build.log"
  mkdir -p "$root/artifacts"
  if ! dotnet build "$root/VimDense.sln" -c Release -nologo -v q -clp:NoSummary >"$log" 2>&1; then
    grep -E 'error|Error' "$log" | head -40 >&2 || true
    echo "setup: build failed; full log in $log" >&2
    exit 1
  fi
  touch "$stamp"
  say "build ok"
fi
