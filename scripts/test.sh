#!/usr/bin/env bash
# The test command: sets up and builds, runs the native CTest programs and the NUnit suite, and
# prints a summary. Results: artifacts/test-results/tests.trx and artifacts/test-results/ctest.log.
#   scripts/test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Config]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" || exit 1
results="$root/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"

status=0
if [ -f "$root/artifacts/native/CTestTestfile.cmake" ]; then
  ctest --test-dir "$root/artifacts/native" --output-on-failure >"$results/ctest.log" 2>&1 || status=1
  tail -n 3 "$results/ctest.log"
fi
dotnet test "$root/tests/Vim.Tests.csproj" -c Release --no-build -nologo \
  --logger "trx;LogFileName=tests.trx" --logger "console;verbosity=minimal" --results-directory "$results" "$@" || status=1
exit $status
