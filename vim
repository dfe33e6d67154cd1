#!/usr/bin/env bash
# Repository launcher for the VimDense CLI: builds what is stale, then runs it.
# (Deliberately not installed anywhere on PATH: `vim` there is the editor.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/setup.sh" --quiet
exec dotnet "$root/artifacts/bin/VimDense.dll" "$@"
